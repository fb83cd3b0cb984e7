//! Blocklists and the normalisation that makes them hard to dodge.
//!
//! The built-in list of common passwords, organisation words and the user's own name
//! are compared with a password after Lithnet Password Protection's normalisation
//! (its "normalized banned word" check): lower case, trailing digits and punctuation
//! and leading digits stripped (`Password2024!` → `password`), and leetspeak mapped
//! back to letters (`P@ssw0rd` → `password`; `1` is tried as both `i` and `l`).

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization as _;

/// The built-in common-password list, most common first.
///
/// Provenance: the UK National Cyber Security Centre's list of the 100,000 passwords
/// most often seen in breaches (NCSC, "Passwords, passwords everywhere", 2019, derived
/// from Have I Been Pwned), as redistributed in SecLists (MIT licence) as
/// `Passwords/Common-Credentials/100k-most-used-passwords-NCSC.txt`. We keep its first
/// entries in order, leaving out machine-generated strings (`FQRG7CS493`), entries
/// shorter than three characters and slurs; the last few lines (`changeme`, `admin`,
/// `P@ssw0rd`, …) come from further down the same list.
pub const COMMON_PASSWORDS: &str = include_str!("data/common-passwords.txt");

/// The built-in list as lines.
pub fn common_passwords() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS.lines().filter(|l| !l.is_empty())
}

/// The forms of a password that are compared with blocklist words: the password in
/// lower case (NFKC), its leetspeak reading, and the same with affixes stripped. Forms
/// shorter than three characters are dropped, so stripping `123456` to nothing does
/// not match everything.
pub fn normal_forms(password: &str) -> Vec<String> {
    let lower: String = password.nfkc().collect::<String>().to_lowercase();
    let trailing = lower.trim_end_matches(|c: char| {
        c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace()
    });
    let core = trailing.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_whitespace());
    let mut forms: Vec<String> = Vec::with_capacity(7);
    let mut push = |s: String| {
        if s.chars().count() >= 3 && !forms.contains(&s) {
            forms.push(s);
        }
    };
    push(lower.clone());
    for base in [lower.as_str(), trailing, core] {
        push(base.to_owned());
        push(unleet(base, 'i'));
        push(unleet(base, 'l'));
    }
    // Leet first, then strip: `$ummer2024!` → `summer`, once the `$` is read as `s`.
    let leet = unleet(&lower, 'i');
    let stripped = leet
        .trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation())
        .to_owned();
    push(stripped);
    forms
}

/// Maps leetspeak back to letters; `one` is what `1` reads as.
fn unleet(s: &str, one: char) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '8' => 'b',
            '(' => 'c',
            '3' | '€' => 'e',
            '6' | '9' => 'g',
            '1' => one,
            '!' | '|' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' | '+' => 't',
            '2' => 'z',
            c => c,
        })
        .collect()
}

/// A set of banned words, compared whole with each normal form of a password.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    words: HashSet<String>,
}

impl Blocklist {
    /// The built-in common-password list.
    pub fn common() -> Self {
        Self::from_words(common_passwords())
    }

    /// Any words (compared in lower case).
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        Blocklist {
            words: words
                .into_iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    /// Whether a normal form of `password` is a banned word.
    pub fn matches(&self, password: &str) -> bool {
        normal_forms(password)
            .iter()
            .any(|f| self.words.contains(f))
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// The first context word (user name part, organisation, service) that a normal form
/// of `password` contains. Words shorter than three characters are ignored: they
/// occur by chance.
pub fn context_word<'a>(password: &str, words: &'a [String]) -> Option<&'a str> {
    let forms = normal_forms(password);
    words.iter().map(String::as_str).find(|w| {
        let w = w.to_lowercase();
        w.chars().count() >= 3 && forms.iter().any(|f| f.contains(&w))
    })
}

/// The parts of a user name worth banning: the whole name, the local part of an email
/// address, the name after a `DOMAIN\` prefix, and its pieces split on `. _ -` (first
/// and last name).
pub fn user_parts(user: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.to_lowercase();
        if !s.is_empty() && !parts.contains(&s) {
            parts.push(s);
        }
    };
    push(user);
    let name = user.rsplit('\\').next().unwrap_or(user);
    push(name);
    let local = name.split('@').next().unwrap_or(name);
    push(local);
    for piece in local.split(['.', '_', '-']) {
        if piece.chars().count() >= 3 {
            push(piece);
        }
    }
    parts
}

/// Whether `password` is the user name itself (case-insensitive), or its local part,
/// or the name after a `DOMAIN\` prefix.
pub fn equals_username(password: &str, user: &str) -> bool {
    let p = password.to_lowercase();
    if p.is_empty() {
        return false;
    }
    let name = user.rsplit('\\').next().unwrap_or(user);
    let local = name.split('@').next().unwrap_or(name);
    [user, name, local].iter().any(|u| u.to_lowercase() == p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leetspeak_and_affixes_are_normalised() {
        let common = Blocklist::common();
        for p in [
            "password",
            "Password",
            "P@ssw0rd",
            "Password2024!",
            "p4ssw0rd123",
            "Welcome1",
            "LETMEIN!!",
            "$unshine99",
            "2024Summer!",
            "Qwerty123",
        ] {
            assert!(common.matches(p), "{p} should match the common list");
        }
        for p in [
            "correct horse battery staple",
            "Xq9#vT2mLw",
            "zebra-kettle-moss",
        ] {
            assert!(!common.matches(p), "{p} should not match");
        }
    }

    #[test]
    fn one_reads_as_i_and_as_l() {
        let b = Blocklist::from_words(["million", "love"]);
        assert!(b.matches("m1lli0n"));
        assert!(b.matches("1ove"));
    }

    #[test]
    fn context_words_are_found_inside_passwords() {
        let words = vec!["parliament".to_owned(), "ab".to_owned()];
        assert_eq!(context_word("P@rliament2017!", &words), Some("parliament"));
        assert_eq!(context_word("MyParliamentSeat", &words), Some("parliament"));
        assert_eq!(context_word("absolutely-fine-words", &words), None);
    }

    #[test]
    fn user_parts_split_names() {
        assert_eq!(
            user_parts("CORP\\J.Smith@parliament.example"),
            vec![
                "corp\\j.smith@parliament.example",
                "j.smith@parliament.example",
                "j.smith",
                "smith"
            ]
        );
        assert!(equals_username(
            "J.SMITH",
            "CORP\\j.smith@parliament.example"
        ));
        assert!(equals_username("alice", "alice"));
        assert!(!equals_username("alice1", "alice"));
        assert!(!equals_username("", "alice"));
    }
}
