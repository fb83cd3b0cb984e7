//! Canonical account names.
//!
//! The same person logs in as `J.Smith`, `j.smith@parliament.example` and
//! `PARLIAMENT\j.smith`. Detection counts accounts, so these must meet in one canonical
//! name; which of them are the same account is a site decision, hence [`AccountRules`].

use serde::{Deserialize, Serialize};

/// What to do with the `@domain` part of `user@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "domain")]
pub enum DomainRule {
    /// Keep `user@domain` as it is (the default: mail sites log full addresses).
    #[default]
    Keep,
    /// Drop the domain: `user@domain` becomes `user`.
    Strip,
    /// Add this domain to names that have none: `user` becomes `user@domain`.
    Default(String),
}

/// What to do with the `DOMAIN\` part of a Windows `DOMAIN\user` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowsDomainRule {
    /// Drop `DOMAIN\` (the default): `CORP\jsmith` becomes `jsmith`, then the
    /// [`DomainRule`] applies.
    #[default]
    Strip,
    /// Keep `DOMAIN\user` as the account name.
    Keep,
}

/// How user names as logged become canonical account names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountRules {
    /// Compare names without regard to case (default true: mail and directory logins are
    /// case-insensitive almost everywhere).
    pub case_fold: bool,
    /// Handling of `user@domain`.
    pub domain: DomainRule,
    /// Handling of `DOMAIN\user`.
    pub windows_domain: WindowsDomainRule,
}

impl Default for AccountRules {
    fn default() -> Self {
        Self {
            case_fold: true,
            domain: DomainRule::Keep,
            windows_domain: WindowsDomainRule::Strip,
        }
    }
}

impl AccountRules {
    /// The canonical account for a user name as logged, or `None` when nothing is left
    /// (an empty name names no account).
    pub fn canonical(&self, user: &str) -> Option<String> {
        if user.is_ascii() {
            return self.canonical_ascii(user);
        }
        self.canonical_any(user)
    }

    /// [`Self::canonical`] of an ASCII name: the same steps, with one allocation
    /// (ASCII lowercase is all the case folding an ASCII name needs).
    fn canonical_ascii(&self, user: &str) -> Option<String> {
        let b = user.as_bytes();
        // Most names have no whitespace (nor control bytes) at either end to trim.
        let mut name =
            if b.first().is_some_and(|c| *c > b' ') && b.last().is_some_and(|c| *c > b' ') {
                user
            } else {
                user.trim()
            };
        if self.windows_domain == WindowsDomainRule::Strip
            && let Some((_, rest)) = name.split_once('\\')
        {
            name = rest;
        }
        let (name, domain) = match &self.domain {
            DomainRule::Keep => (name, None),
            DomainRule::Strip => (name.rsplit_once('@').map_or(name, |(local, _)| local), None),
            DomainRule::Default(domain) if !name.contains('@') && !name.is_empty() => {
                (name, Some(domain.as_str()))
            }
            DomainRule::Default(_) => (name, None),
        };
        if name.is_empty() && domain.is_none() {
            return None;
        }
        let mut out = String::with_capacity(name.len() + domain.map_or(0, |d| d.len() + 1));
        out.push_str(name);
        if let Some(domain) = domain {
            out.push('@');
            out.push_str(domain);
        }
        if self.case_fold {
            // The default domain may hold non-ASCII text: fold it as the general path does.
            if out.is_ascii() {
                out.make_ascii_lowercase();
            } else {
                out = out.to_lowercase();
            }
        }
        Some(out)
    }

    /// [`Self::canonical`] of any name.
    fn canonical_any(&self, user: &str) -> Option<String> {
        let mut name = user.trim();
        if self.windows_domain == WindowsDomainRule::Strip
            && let Some((_, rest)) = name.split_once('\\')
        {
            name = rest;
        }
        let mut out = match &self.domain {
            DomainRule::Keep => name.to_owned(),
            DomainRule::Strip => match name.rsplit_once('@') {
                Some((local, _)) => local.to_owned(),
                None => name.to_owned(),
            },
            DomainRule::Default(domain) => {
                if name.contains('@') || name.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name}@{domain}")
                }
            }
        };
        if self.case_fold {
            out = out.to_lowercase();
        }
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_folds_case_and_strips_windows_domain() {
        let r = AccountRules::default();
        assert_eq!(
            r.canonical(" J.Smith@Parliament.Example ").as_deref(),
            Some("j.smith@parliament.example")
        );
        assert_eq!(
            r.canonical("PARLIAMENT\\J.Smith").as_deref(),
            Some("j.smith")
        );
        assert_eq!(r.canonical(""), None);
        assert_eq!(r.canonical("  "), None);
    }

    #[test]
    fn strip_domain() {
        let r = AccountRules {
            domain: DomainRule::Strip,
            ..Default::default()
        };
        assert_eq!(r.canonical("Bob@example.org").as_deref(), Some("bob"));
        assert_eq!(r.canonical("CORP\\bob").as_deref(), Some("bob"));
    }

    #[test]
    fn default_domain() {
        let r = AccountRules {
            domain: DomainRule::Default("example.org".into()),
            ..Default::default()
        };
        assert_eq!(r.canonical("bob").as_deref(), Some("bob@example.org"));
        assert_eq!(
            r.canonical("bob@other.org").as_deref(),
            Some("bob@other.org")
        );
        assert_eq!(r.canonical("CORP\\Bob").as_deref(), Some("bob@example.org"));
    }

    use proptest::prelude::*;

    proptest! {
        /// The ASCII path gives exactly what the general one does, under every rule.
        #[test]
        fn ascii_names_as_any_names(
            user in "[ \t\\\\@a-zA-Z0-9.\x0b\x0c_-]{0,12}",
            case_fold in any::<bool>(),
            domain in prop_oneof![
                Just(DomainRule::Keep),
                Just(DomainRule::Strip),
                Just(DomainRule::Default("Example.ORG".into())),
                Just(DomainRule::Default("ÉCOLE.fr".into())),
                Just(DomainRule::Default(String::new())),
            ],
            windows_domain in prop_oneof![
                Just(WindowsDomainRule::Strip),
                Just(WindowsDomainRule::Keep),
            ],
        ) {
            let r = AccountRules { case_fold, domain, windows_domain };
            prop_assert!(user.is_ascii());
            prop_assert_eq!(r.canonical(&user), r.canonical_any(&user));
        }
    }

    #[test]
    fn keep_case_and_windows_domain() {
        let r = AccountRules {
            case_fold: false,
            windows_domain: WindowsDomainRule::Keep,
            ..Default::default()
        };
        assert_eq!(r.canonical("CORP\\Bob").as_deref(), Some("CORP\\Bob"));
    }
}
