//! One person under two account names: `j.smith` and `j.smith@corp.example`.
//!
//! SSH, OpenVPN and Windows (once `DOMAIN\` is dropped) log a directory's user name;
//! mail, OWA and Entra log the address. With the default [`crate::account::DomainRule::Keep`]
//! these are two accounts, so an attack across those doors counts its accounts twice and
//! an account that fell over SSH is not the one being sprayed over IMAP. Which names
//! are the same account is the site's decision (`--domain default:DOMAIN`); this watches
//! the canonical names go by and says when the site should make it. Bounded: it
//! remembers at most [`NameForms::CAP`] names of each form.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// What [`NameForms`] found: local parts seen both bare and with a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoForms {
    /// Local parts seen both ways (among the names remembered).
    pub names: u64,
    /// The domain most of them came with.
    pub domain: String,
    /// One of them, bare (the smallest, so that the note is the same on every run).
    pub example: String,
}

/// Watches canonical account names for the same local part with and without a domain.
#[derive(Debug, Default)]
pub struct NameForms {
    bare: HashSet<Box<str>>,
    /// Local part → the domains it came with (the first few).
    qualified: HashMap<Box<str>, Vec<Box<str>>>,
}

impl NameForms {
    /// Names of each form remembered, at most.
    pub const CAP: usize = 200_000;
    /// Domains remembered per local part, at most.
    const DOMAINS: usize = 4;

    /// An empty watcher.
    pub fn new() -> Self {
        Self {
            bare: HashSet::new(),
            qualified: HashMap::new(),
        }
    }

    /// Notes one canonical account name.
    pub fn observe(&mut self, account: &str) {
        match account.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                if let Some(domains) = self.qualified.get_mut(local) {
                    if domains.len() < Self::DOMAINS && !domains.iter().any(|d| &**d == domain) {
                        domains.push(domain.into());
                    }
                } else if self.qualified.len() < Self::CAP {
                    self.qualified.insert(local.into(), vec![domain.into()]);
                }
            }
            Some(_) => {}
            None => {
                if self.bare.len() < Self::CAP && !self.bare.contains(account) {
                    self.bare.insert(account.into());
                }
            }
        }
    }

    /// The local parts seen both bare and with a domain, if any.
    pub fn two_forms(&self) -> Option<TwoForms> {
        let mut names = 0u64;
        let mut example: Option<&str> = None;
        let mut domains: HashMap<&str, u64> = HashMap::new();
        for name in &self.bare {
            let Some(ds) = self.qualified.get(name) else {
                continue;
            };
            names += 1;
            if example.is_none_or(|e| **name < *e) {
                example = Some(name);
            }
            for d in ds {
                *domains.entry(d).or_default() += 1;
            }
        }
        let domain = domains
            .into_iter()
            .max_by(|(a, x), (b, y)| x.cmp(y).then_with(|| b.cmp(a)))?
            .0;
        Some(TwoForms {
            names,
            domain: domain.to_owned(),
            example: example?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_same_local_part_bare_and_with_a_domain() {
        let mut f = NameForms::new();
        for n in [
            "betty.jones",
            "betty.jones@corp.example",
            "al.ng",
            "al.ng@corp.example",
            "al.ng@other.example",
            "root",
            "zed@corp.example",
            "@corp.example",
            "odd@",
        ] {
            f.observe(n);
        }
        assert_eq!(
            f.two_forms(),
            Some(TwoForms {
                names: 2,
                domain: "corp.example".into(),
                example: "al.ng".into(),
            })
        );
    }

    #[test]
    fn one_form_only_says_nothing() {
        let mut f = NameForms::new();
        for n in ["root", "admin", "j.smith"] {
            f.observe(n);
        }
        assert_eq!(f.two_forms(), None);
        let mut f = NameForms::new();
        for n in ["j.smith@corp.example", "a@corp.example"] {
            f.observe(n);
        }
        assert_eq!(f.two_forms(), None);
    }

    #[test]
    fn memory_stays_bounded_whatever_names_come() {
        let mut f = NameForms::new();
        for i in 0..(NameForms::CAP as u64 + 50_000) {
            f.observe(&format!("u{i}"));
            f.observe(&format!("v{i}@d{}.example", i % 7));
            f.observe(&format!("v0@x{i}.example"));
        }
        assert_eq!(f.bare.len(), NameForms::CAP);
        assert_eq!(f.qualified.len(), NameForms::CAP);
        assert!(f.qualified.values().all(|d| d.len() <= NameForms::DOMAINS));
        assert_eq!(f.two_forms(), None);
    }
}
