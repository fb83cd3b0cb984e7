//! No line, however malformed, panics the parser, and every line is accounted for:
//! an account, a skip or a rejection, each counted.

use portcullis_audit::line::{Line, parse_line};
use portcullis_audit::{Audit, AuditOptions, CandidateOptions, Inventory};
use proptest::prelude::*;

/// Real lines of every layout, to mutate.
const SEEDS: &[&str] = &[
    "Administrator:500:aad3b435b51404eeaad3b435b51404ee:8846f7eaee8fb117ad06bdd830b7586c:::",
    "CORP\\j.smith:1104:e52cac67419a9a224a3b108f3fa6cb6d:8846F7EAEE8FB117AD06BDD830B7586C:::",
    "u@example.org:{SHA512-CRYPT}$6$rounds=5000$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1:1000:1000::/h::",
    "u:{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    "u:$2y$04$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96",
    "u:{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
    "u:$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0",
    "u:aZGJuE6EXrjEE",
    "u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
    "u:{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9gxMjM0",
    "u:{PLAIN.B64}aHVudGVyMg==",
    "u:{NTLM}8846f7eaee8fb117ad06bdd830b7586c",
];

fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 0..6),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, c, op) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = at.index(chars.len());
                match op {
                    0 => chars[i] = c,
                    1 => {
                        chars.remove(i);
                    }
                    _ => chars.insert(i, c),
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_lines_never_panic(line in ".{0,200}") {
        let _ = parse_line(&line);
    }

    #[test]
    fn lines_of_colons_and_hash_characters_never_panic(
        line in "[a-zA-Z0-9:{}$./=+!*#\\\\-]{0,160}"
    ) {
        let _ = parse_line(&line);
    }
}

proptest! {
    // Each case verifies guesses against real slow hashes: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutated_real_lines_never_panic_and_every_line_is_counted(
        lines in prop::collection::vec(mutated(), 1..20)
    ) {
        let mut inv = Inventory::new();
        let f = inv.add_file("x");
        let mut expected_accounts = 0;
        for (i, l) in lines.iter().enumerate() {
            if matches!(parse_line(l), Line::Entry(_)) {
                expected_accounts += 1;
            }
            inv.push_line(f, i as u64 + 1, l);
        }
        let options = AuditOptions {
            candidates: CandidateOptions { cap: 3, org: None, words: vec![], years: 2024..=2025 },
            reveal: false,
            deadline: None,
        };
        let report = Audit::new(&inv, &options).run(None, &|_| {});
        let i = &report.input;
        prop_assert_eq!(i.accounts, expected_accounts);
        let skipped: u64 = i.skipped.values().sum();
        let rejected: u64 = i.rejected.values().sum();
        prop_assert_eq!(i.accounts + skipped + rejected, lines.len() as u64);
    }
}
