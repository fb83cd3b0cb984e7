//! Candidate passwords for salted hashes, where no index lookup is possible and each
//! guess costs a full hash.
//!
//! Order matters more than size: a budget that runs out should have tried the likeliest
//! guesses on every hash first. Each hash gets its user-specific guesses (the empty
//! password, the user name and its parts with common endings) followed by the shared
//! list: the top of the common list, organisation words with their usual mutations,
//! seasons with years, the rest of the common list, then its mutations, all cut at the
//! candidate cap.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use serde::Serialize;

use crate::words::{common_passwords, user_parts};

/// Where a candidate came from; a recovered password is reported with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The empty password.
    Empty,
    /// The built-in common-password list, or a mutation of it.
    Common,
    /// The organisation's name or its word list, or a mutation of one.
    Organisation,
    /// A season with a year (`Summer2024!`).
    Season,
    /// The user name or a part of it, or a mutation of one.
    Username,
}

impl Origin {
    /// The stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Empty => "empty",
            Origin::Common => "common",
            Origin::Organisation => "organisation",
            Origin::Season => "season",
            Origin::Username => "username",
        }
    }
}

/// One guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The guessed password.
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

/// What the shared list is made from.
#[derive(Debug, Clone)]
pub struct CandidateOptions {
    /// Most guesses per hash, user-specific ones included.
    pub cap: usize,
    /// The organisation's name (`--org`).
    pub org: Option<String>,
    /// Further organisation words (`--words`).
    pub words: Vec<String>,
    /// Years for seasons and suffixes, most likely first is not needed: the range is
    /// tried newest first.
    pub years: RangeInclusive<i32>,
}

/// The shared list of guesses, deduplicated, at most `cap` long.
#[derive(Debug, Clone, Default)]
pub struct CandidateList {
    list: Vec<Candidate>,
}

const SEASONS: [&str; 5] = ["summer", "winter", "spring", "autumn", "fall"];
/// How many of the most common passwords come before organisation words and seasons.
const COMMON_HEAD: usize = 50;
/// How many common passwords get mutations at the end.
const MUTATED_COMMON: usize = 200;
/// Most user-specific guesses per hash.
pub const USER_CANDIDATES: usize = 24;

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A word's usual mutations, likeliest first: as is, capitalised, with `1`, `123`, `!`,
/// a year, a year and `!`.
fn mutations(word: &str, years: &[i32]) -> Vec<String> {
    let cap = capitalise(word);
    let mut out = vec![
        word.to_owned(),
        cap.clone(),
        format!("{cap}1"),
        format!("{word}1"),
        format!("{cap}123"),
        format!("{word}123"),
        format!("{cap}!"),
        format!("{cap}1!"),
    ];
    for y in years {
        out.push(format!("{cap}{y}"));
        out.push(format!("{cap}{y}!"));
        out.push(format!("{word}{y}"));
    }
    out
}

impl CandidateList {
    /// Builds the shared list.
    pub fn build(options: &CandidateOptions) -> Self {
        let years: Vec<i32> = options.years.clone().rev().collect();
        let mut seen: HashSet<String> = HashSet::new();
        let mut list: Vec<Candidate> = Vec::new();
        let cap = options.cap;
        let mut add = |text: String, origin: Origin| {
            if list.len() < cap && seen.insert(text.clone()) {
                list.push(Candidate { text, origin });
            }
        };
        let common: Vec<&str> = common_passwords().collect();
        for w in common.iter().take(COMMON_HEAD) {
            add((*w).to_owned(), Origin::Common);
        }
        let mut org_words: Vec<String> = Vec::new();
        if let Some(org) = &options.org {
            org_words.push(org.trim().to_lowercase());
            // "Houses of Parliament" → also "housesofparliament" and each long word.
            org_words.push(org.split_whitespace().collect::<String>().to_lowercase());
            org_words.extend(
                org.split_whitespace()
                    .filter(|w| w.chars().count() >= 4)
                    .map(str::to_lowercase),
            );
        }
        org_words.extend(options.words.iter().map(|w| w.trim().to_lowercase()));
        org_words.retain(|w| !w.is_empty());
        for w in &org_words {
            for m in mutations(w, &years) {
                add(m, Origin::Organisation);
            }
        }
        for y in &years {
            for s in SEASONS {
                let cap = capitalise(s);
                add(format!("{cap}{y}"), Origin::Season);
                add(format!("{cap}{y}!"), Origin::Season);
                add(format!("{s}{y}"), Origin::Season);
            }
        }
        for w in common.iter().skip(COMMON_HEAD) {
            add((*w).to_owned(), Origin::Common);
        }
        for w in common.iter().take(MUTATED_COMMON) {
            if w.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            for m in mutations(w, &years[..years.len().min(2)]) {
                add(m, Origin::Common);
            }
        }
        CandidateList { list }
    }

    /// The guesses, in order.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.list
    }

    /// Number of guesses.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The user-specific guesses for one account: the empty password, then the user name
/// and its parts with their mutations, at most [`USER_CANDIDATES`].
pub fn user_candidates(user: &str, years: &RangeInclusive<i32>) -> Vec<Candidate> {
    let newest = *years.end();
    let mut out = vec![Candidate {
        text: String::new(),
        origin: Origin::Empty,
    }];
    let parts = user_parts(user);
    // Shortest forms first: `jsmith` before `corp\jsmith@example.org`.
    let mut bases: Vec<&String> = parts.iter().collect();
    bases.sort_by_key(|p| p.len());
    for round in 0..5 {
        for b in &bases {
            let cap = capitalise(b);
            let text = match round {
                0 => (*b).clone(),
                1 => cap,
                2 => format!("{b}1"),
                3 => format!("{cap}123"),
                _ => format!("{cap}{newest}!"),
            };
            if out.len() < USER_CANDIDATES && !out.iter().any(|c| c.text == text) {
                out.push(Candidate {
                    text,
                    origin: Origin::Username,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(cap: usize) -> CandidateOptions {
        CandidateOptions {
            cap,
            org: Some("Houses of Parliament".into()),
            words: vec!["westminster".into()],
            years: 2023..=2025,
        }
    }

    #[test]
    fn the_list_has_the_expected_guesses_in_order_and_no_duplicates() {
        let l = CandidateList::build(&options(1000));
        let texts: Vec<&str> = l.as_slice().iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts.len(), 1000);
        assert_eq!(texts[0], "123456");
        let pos = |t: &str| texts.iter().position(|x| *x == t);
        for t in [
            "Parliament2025!",
            "Westminster123",
            "Summer2025!",
            "Winter2023",
            "housesofparliament",
            "letmein",
        ] {
            assert!(pos(t).is_some(), "{t} missing");
        }
        assert!(pos("Summer2025").unwrap() < pos("Summer2023").unwrap());
        let unique: HashSet<&&str> = texts.iter().collect();
        assert_eq!(unique.len(), texts.len());
        assert_eq!(
            l.as_slice()[pos("Parliament2025!").unwrap()].origin,
            Origin::Organisation
        );
    }

    #[test]
    fn the_cap_bounds_the_list() {
        assert_eq!(CandidateList::build(&options(10)).len(), 10);
        assert!(CandidateList::build(&options(0)).is_empty());
    }

    #[test]
    fn user_guesses_start_with_empty_and_the_name() {
        let c = user_candidates("CORP\\j.smith@example.org", &(2024..=2025));
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[0], "");
        for t in ["smith", "j.smith", "Smith123", "Smith2025!", "smith1"] {
            assert!(texts.contains(&t), "{t} missing from {texts:?}");
        }
        assert!(c.len() <= USER_CANDIDATES);
    }
}
