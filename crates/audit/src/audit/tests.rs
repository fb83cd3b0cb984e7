use std::time::{Duration, Instant};

use super::*;
use crate::lookup::{HashSetLookup, encode_hex};
use crate::report::CSV_COLUMNS;

fn options(reveal: bool) -> AuditOptions {
    AuditOptions {
        candidates: CandidateOptions {
            cap: 1000,
            org: Some("Parliament".into()),
            words: vec!["westminster".into()],
            years: 2023..=2025,
        },
        reveal,
        deadline: None,
    }
}

fn pwdump(user: &str, rid: u32, lm: &str, password: &str) -> String {
    format!("{user}:{rid}:{lm}:{}:::", encode_hex(&nt_hash(password)))
}

const NO_LM: &str = "aad3b435b51404eeaad3b435b51404ee";
const SOME_LM: &str = "e52cac67419a9a224a3b108f3fa6cb6d";

fn sha512(password: &str, salt: &str) -> String {
    let p = sha_crypt::Sha512Params::new(1000).unwrap();
    let sum = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &p).unwrap();
    format!("$6$rounds=1000${salt}${sum}")
}

fn bcrypt4(password: &str, salt: u8) -> String {
    bcrypt::hash_with_salt(password, 4, [salt; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

/// Secrets planted in the export, to look for in every output.
const SECRETS: &[&str] = &[
    "Summer2025!",
    "letmein",
    "Parliament2024!",
    "Westminster123",
    "sly-otter-quilt-77",
    "j.doe",
];

fn mixed_export() -> Vec<String> {
    vec![
        "# a mixed export".to_owned(),
        String::new(),
        pwdump("CORP\\empty", 1001, NO_LM, ""),
        pwdump("CORP\\lm.user", 1002, SOME_LM, "sly-otter-quilt-77"),
        pwdump("CORP\\j.doe", 1003, NO_LM, "j.doe"),
        pwdump("CORP\\a.one", 1004, NO_LM, "Summer2025!"),
        pwdump("CORP\\a.two", 1005, NO_LM, "Summer2025!"),
        pwdump("CORP\\breached", 1006, NO_LM, "unusual-but-leaked"),
        "plain@example.org:{PLAIN}Summer2025!:1000:1000::/home/p::".to_owned(),
        "sha@example.org:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".to_owned(),
        format!(
            "crypt@example.org:{{SHA512-CRYPT}}{}:1000:1000::/h::",
            sha512("Parliament2024!", "abcdefgh")
        ),
        format!("blf@example.org:{{BLF-CRYPT}}{}", bcrypt4("letmein", 3)),
        format!(
            "strong@example.org:{{BLF-CRYPT}}{}",
            bcrypt4("sly-otter-quilt-77", 4)
        ),
        format!("west:{}", sha512("Westminster123", "saltsalt")),
        "broken line without separator".to_owned(),
        "x:{SSHA512}abc".to_owned(),
        "y:$6$short$tooshort".to_owned(),
    ]
}

fn inventory(lines: &[String]) -> Inventory {
    let mut inv = Inventory::new();
    let f = inv.add_file("export.txt");
    for (i, l) in lines.iter().enumerate() {
        inv.push_line(f, i as u64 + 1, l);
    }
    inv
}

fn lookup() -> HashSetLookup {
    let mut l = HashSetLookup::new();
    l.add_password("unusual-but-leaked", 42);
    l.add_password("password", 10_434_004);
    l.add_password("Summer2025!", 77);
    l
}

fn run(inv: &Inventory, options: &AuditOptions) -> Report {
    let l = lookup();
    Audit::new(inv, options).run(Some(&l), &|_| {})
}

fn kinds<'a>(r: &'a Report, user: &str) -> Vec<&'a str> {
    r.accounts
        .iter()
        .find(|a| a.user == user)
        .map(|a| a.findings.iter().map(|f| f.kind.name()).collect())
        .unwrap_or_default()
}

#[test]
fn each_check_finds_its_accounts() {
    let inv = inventory(&mixed_export());
    let r = run(&inv, &options(false));
    assert_eq!(kinds(&r, "CORP\\empty"), ["empty_password"]);
    assert_eq!(kinds(&r, "CORP\\lm.user"), ["lm_hash"]);
    assert_eq!(kinds(&r, "CORP\\j.doe"), ["equals_username"]);
    assert_eq!(kinds(&r, "CORP\\breached"), ["breached"]);
    assert_eq!(
        kinds(&r, "plain@example.org"),
        [
            "plaintext_stored",
            "breached",
            "weak_password",
            "shared_password"
        ]
    );
    assert_eq!(
        kinds(&r, "CORP\\a.one"),
        ["breached", "weak_password", "shared_password"]
    );
    assert_eq!(
        kinds(&r, "sha@example.org"),
        ["breached", "weak_password", "weak_scheme"]
    );
    assert_eq!(kinds(&r, "crypt@example.org"), ["weak_password"]);
    assert_eq!(kinds(&r, "blf@example.org"), ["weak_password"]);
    assert_eq!(kinds(&r, "west"), ["weak_password"]);
    assert!(kinds(&r, "strong@example.org").is_empty());

    let rule = |user: &str| {
        r.accounts.iter().find(|a| a.user == user).unwrap().findings
            [usize::from(user == "CORP\\a.one")]
        .rule
    };
    assert_eq!(rule("crypt@example.org"), Some("organisation"));
    assert_eq!(rule("west"), Some("organisation"));
    assert_eq!(rule("blf@example.org"), Some("common"));
    assert_eq!(rule("CORP\\a.one"), Some("season"));

    let breached = &r
        .accounts
        .iter()
        .find(|a| a.user == "CORP\\breached")
        .unwrap();
    assert_eq!(breached.findings[0].count, Some(42));
    assert_eq!(r.accounts[0].findings[0].kind, FindingKind::PlaintextStored);

    // One group: the two NT accounts and the plaintext one share Summer2025!.
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].size, 3);
    assert_eq!(r.summary["shared_password"], 3);

    assert_eq!(r.input.accounts, 12);
    assert_eq!(r.input.skipped["comment"], 1);
    assert_eq!(r.input.skipped["blank"], 1);
    assert_eq!(r.input.rejected["no_separator"], 1);
    assert_eq!(r.input.rejected["unsupported_scheme:SSHA512"], 1);
    assert_eq!(r.input.rejected["malformed_hash:sha512-crypt"], 1);
    assert_eq!(r.input.rejected_examples.len(), 3);
    assert_eq!(r.input.rejected_examples[0].line, 15);

    assert_eq!(r.checks.slow_hashes, 4);
    assert_eq!(r.checks.fully_checked, 4);
    assert!(!r.checks.stopped_by_time_budget);
}

#[test]
fn nothing_secret_appears_without_reveal_in_any_format() {
    let lines = mixed_export();
    let inv = inventory(&lines);
    let hashes: Vec<String> = inv.accounts.iter().map(|a| a.hash_text.clone()).collect();
    let r = run(&inv, &options(false));
    let json = serde_json::to_string(&r).unwrap();
    let text = r.to_text(100);
    let csv: String = r
        .csv_rows()
        .iter()
        .map(|row| row.join(","))
        .collect::<Vec<_>>()
        .join("\n");
    for out in [&json, &text, &csv] {
        for s in SECRETS.iter().filter(|s| **s != "j.doe") {
            assert!(!out.contains(s), "{s} leaked:\n{out}");
        }
        for h in &hashes {
            assert!(!out.contains(h.as_str()), "hash {h} leaked:\n{out}");
        }
    }
    assert!(!json.contains("\"password\""));
    assert!(!json.contains("\"hash\""));

    let r = run(&inv, &options(true));
    let json = serde_json::to_string(&r).unwrap();
    let text = r.to_text(100);
    for s in [
        "Summer2025!",
        "letmein",
        "Parliament2024!",
        "Westminster123",
    ] {
        assert!(
            json.contains(s) && text.contains(s),
            "{s} missing with --reveal"
        );
    }
    let rows = r.csv_rows();
    assert!(rows.iter().any(|row| row[9] == "letmein"));
    assert_eq!(rows[0].len(), CSV_COLUMNS.len());
    assert!(json.contains(&hashes[1]));
}

#[test]
fn a_passed_deadline_checks_no_slow_hash_and_says_so() {
    let inv = inventory(&mixed_export());
    let mut o = options(false);
    o.deadline = Some(Instant::now());
    let r = run(&inv, &o);
    assert!(r.checks.stopped_by_time_budget);
    assert_eq!(r.checks.not_checked, 4);
    assert_eq!(r.checks.fully_checked, 0);
    assert_eq!(r.checks.guesses, 0);
    // Unsalted checks do not depend on the budget.
    assert_eq!(kinds(&r, "CORP\\j.doe"), ["equals_username"]);
    assert!(kinds(&r, "crypt@example.org").is_empty());
    assert!(r.to_text(10).contains("time budget ran out"));
}

#[test]
fn a_short_budget_stops_early_with_partial_counts() {
    // Strong passwords behind bcrypt cost 8: all 1,000 guesses on 8 hashes would take
    // many seconds; 150 ms must stop early and report what was not fully checked.
    let lines: Vec<String> = (0..8)
        .map(|i| {
            let h = bcrypt::hash_with_salt(format!("unguessable-{i}-quilt"), 8, [i; 16])
                .unwrap()
                .format_for_version(bcrypt::Version::TwoB);
            format!("user{i}:{h}")
        })
        .collect();
    let inv = inventory(&lines);
    let mut o = options(false);
    let start = Instant::now();
    o.deadline = Some(start + Duration::from_millis(150));
    let r = run(&inv, &o);
    assert!(r.checks.stopped_by_time_budget);
    assert_eq!(r.checks.fully_checked, 0);
    assert_eq!(r.checks.partially_checked + r.checks.not_checked, 8);
    // How many guesses fit depends on the machine's load; never all of them.
    assert!(r.checks.guesses < 8 * 1000);
    assert!(r.accounts.is_empty());
    // It stopped near the deadline, not after the whole list.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn costly_hashes_are_skipped_and_counted() {
    let h = "$2y$15$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96";
    let inv = inventory(&[format!("slow:{h}")]);
    let r = run(&inv, &options(false));
    assert_eq!(r.checks.too_costly, 1);
    assert_eq!(r.checks.guesses, 0);
}

#[test]
fn the_cap_bounds_guessing_on_slow_and_fast_hashes() {
    // "letmein" is in the common list beyond the first few guesses: a cap of 5 misses it.
    let lines = vec![
        format!("blf:{}", bcrypt4("letmein", 1)),
        pwdump("nt", 1, NO_LM, "letmein"),
    ];
    let inv = inventory(&lines);
    let mut o = options(false);
    o.candidates.cap = 5;
    let r = run(&inv, &o);
    assert!(kinds(&r, "blf").is_empty());
    assert!(!kinds(&r, "nt").contains(&"weak_password"));
    assert_eq!(r.checks.guesses, 5);
    o.candidates.cap = 1000;
    let r = run(&inv, &o);
    // Both found, and found to share one password.
    assert_eq!(kinds(&r, "blf"), ["weak_password", "shared_password"]);
    assert_eq!(kinds(&r, "nt"), ["weak_password", "shared_password"]);
}

#[test]
fn progress_is_told_of_every_guess() {
    let inv = inventory(&mixed_export());
    let o = options(false);
    let audit = Audit::new(&inv, &o);
    let planned = audit.planned_guesses();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let r = audit.run(None, &|n| {
        seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    });
    let seen = seen.into_inner();
    assert_eq!(seen, r.checks.guesses);
    assert!(seen <= planned);
    assert!(!r.checks.breach_lookup);
}
