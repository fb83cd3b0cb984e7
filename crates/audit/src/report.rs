//! The audit report: what was read, what was checked, and each account's findings,
//! worst first. JSON is the versioned contract (docs/audit.md); text and CSV are made
//! from the same structure.
//!
//! Secrets enter a report only when it is built with `reveal`: without it there is no
//! field that could carry a password or a hash, whatever the output format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The report's format version; fields may be added, never renamed.
pub const REPORT_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// What was read.
    pub input: InputSummary,
    /// What was checked, and how far.
    pub checks: ChecksSummary,
    /// Accounts per finding kind.
    pub summary: BTreeMap<&'static str, u64>,
    /// Every account with at least one finding, worst first.
    pub accounts: Vec<AccountReport>,
    /// Groups of accounts sharing one password, largest first.
    pub groups: Vec<Group>,
}

/// What was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// The files, in the order given.
    pub files: Vec<String>,
    /// Lines read.
    pub lines: u64,
    /// Accounts found.
    pub accounts: u64,
    /// Accounts per storage scheme.
    pub schemes: BTreeMap<&'static str, u64>,
    /// Lines skipped on purpose, per reason (`comment`, `blank`, `locked_account`, …).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Lines not understood, per reason (`no_separator`, `unsupported_scheme:NAME`, …).
    pub rejected: BTreeMap<String, u64>,
    /// The first few rejected lines of each reason (place only, never content).
    pub rejected_examples: Vec<LinePlace>,
}

/// Where a line is.
#[derive(Debug, Clone, Serialize)]
pub struct LinePlace {
    /// The file as given.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// The rejection key.
    pub reason: String,
}

/// What was checked, and how far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChecksSummary {
    /// Whether a breached-password lookup was given.
    pub breach_lookup: bool,
    /// The candidate cap per hash.
    pub candidates_per_hash: usize,
    /// Hashes that need a full hash per guess (salted or deliberately slow).
    pub slow_hashes: u64,
    /// Of those: every candidate tried, or the password found.
    pub fully_checked: u64,
    /// Of those: some candidates tried when the time budget ran out.
    pub partially_checked: u64,
    /// Of those: none tried when the time budget ran out.
    pub not_checked: u64,
    /// Of those: skipped because one guess costs too much (see docs/audit.md).
    pub too_costly: u64,
    /// Guesses made against slow hashes.
    pub guesses: u64,
    /// Whether the time budget stopped the guessing.
    pub stopped_by_time_budget: bool,
    /// Whether passwords and hashes are shown (`--reveal`).
    pub revealed: bool,
}

/// The kinds of finding, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The password is stored as plaintext.
    PlaintextStored,
    /// The password is empty.
    EmptyPassword,
    /// The password is in the breached-password lookup.
    Breached,
    /// The password was guessed from the candidate lists, or a known plaintext is on a
    /// blocklist.
    WeakPassword,
    /// The password is the user name.
    EqualsUsername,
    /// Other accounts have the same password.
    SharedPassword,
    /// A non-empty LM hash is stored.
    LmHash,
    /// The storage scheme is weak (SHA-1, salted SHA-1, MD5 crypt, DES crypt).
    WeakScheme,
}

impl FindingKind {
    /// All kinds, worst first.
    pub const ALL: [FindingKind; 8] = [
        FindingKind::PlaintextStored,
        FindingKind::EmptyPassword,
        FindingKind::Breached,
        FindingKind::WeakPassword,
        FindingKind::EqualsUsername,
        FindingKind::SharedPassword,
        FindingKind::LmHash,
        FindingKind::WeakScheme,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::PlaintextStored => "plaintext_stored",
            FindingKind::EmptyPassword => "empty_password",
            FindingKind::Breached => "breached",
            FindingKind::WeakPassword => "weak_password",
            FindingKind::EqualsUsername => "equals_username",
            FindingKind::SharedPassword => "shared_password",
            FindingKind::LmHash => "lm_hash",
            FindingKind::WeakScheme => "weak_scheme",
        }
    }

    /// What to do about it.
    pub fn action(self) -> &'static str {
        match self {
            FindingKind::PlaintextStored => {
                "migrate to a slow hash (ARGON2ID, BLF-CRYPT or SHA512-CRYPT) and force a password reset"
            }
            FindingKind::EmptyPassword => {
                "force a password reset now; disable the account if nobody uses it"
            }
            FindingKind::Breached => "force a password reset: the password is in attackers' lists",
            FindingKind::WeakPassword => "force a password reset: the password was guessed",
            FindingKind::EqualsUsername => "force a password reset",
            FindingKind::SharedPassword => {
                "force a password reset and find out why the accounts share one (a default or onboarding password?)"
            }
            FindingKind::LmHash => {
                "stop storing LM hashes (the NoLMHash policy) and reset the password so the LM hash goes"
            }
            FindingKind::WeakScheme => {
                "migrate the scheme (rehash at next login to ARGON2ID, BLF-CRYPT or SHA512-CRYPT)"
            }
        }
    }

    fn heading(self) -> &'static str {
        match self {
            FindingKind::PlaintextStored => "Passwords stored as plaintext",
            FindingKind::EmptyPassword => "Empty passwords",
            FindingKind::Breached => "Breached passwords",
            FindingKind::WeakPassword => "Weak passwords (guessed)",
            FindingKind::EqualsUsername => "Password equals the user name",
            FindingKind::SharedPassword => "Passwords shared between accounts",
            FindingKind::LmHash => "LM hashes stored",
            FindingKind::WeakScheme => "Weak storage schemes",
        }
    }
}

/// One finding on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// `breached`: how often the password was seen in breaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `weak_password`: which list found it (`common`, `organisation`, `season`,
    /// `username`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// `shared_password`: the group's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// `shared_password`: how many accounts share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// `weak_scheme` and `plaintext_stored`: the scheme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<&'static str>,
    /// What to do.
    pub action: &'static str,
}

impl Finding {
    /// A finding with no details.
    pub fn new(kind: FindingKind) -> Self {
        Finding {
            kind,
            count: None,
            rule: None,
            group: None,
            size: None,
            scheme: None,
            action: kind.action(),
        }
    }

    fn detail(&self) -> String {
        let mut d = Vec::new();
        if let Some(c) = self.count {
            d.push(format!("seen {} times", thousands(u64::from(c))));
        }
        if let Some(r) = self.rule {
            d.push(format!("found by the {r} guesses"));
        }
        if let (Some(g), Some(s)) = (self.group, self.size) {
            d.push(format!("group {g} of {s}"));
        }
        if let Some(s) = self.scheme {
            d.push(s.to_owned());
        }
        d.join(", ")
    }
}

/// How far the guessing went on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// Every candidate was tried, or the password was found (or it needs no guessing).
    Complete,
    /// Some candidates were tried before the time budget ran out.
    Partial,
    /// None were tried before the time budget ran out.
    NotChecked,
    /// Skipped: one guess costs too much.
    TooCostly,
}

/// One account with findings.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    /// The user name as written.
    pub user: String,
    /// The file it was read from.
    pub file: String,
    /// Its line there.
    pub line: u64,
    /// Its storage scheme.
    pub scheme: &'static str,
    /// How far guessing went on it.
    pub checked: Coverage,
    /// The findings, worst first.
    pub findings: Vec<Finding>,
    /// The recovered or stored password: only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The password field as stored: only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Accounts sharing one password.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// 1-based, largest group first.
    pub id: u32,
    /// How many accounts.
    pub size: u32,
    /// Their user names.
    pub users: Vec<String>,
    /// The shared password when it is known: only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The CSV columns: one row per account per finding.
pub const CSV_COLUMNS: [&str; 11] = [
    "user", "file", "line", "scheme", "finding", "count", "rule", "group", "action", "password",
    "hash",
];

impl Report {
    /// Whether any account has a finding.
    pub fn has_findings(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// One row per account per finding, in [`CSV_COLUMNS`] order. The password and hash
    /// columns are empty unless the report was built with `reveal`.
    pub fn csv_rows(&self) -> Vec<[String; 11]> {
        let mut rows = Vec::new();
        for a in &self.accounts {
            for f in &a.findings {
                rows.push([
                    a.user.clone(),
                    a.file.clone(),
                    a.line.to_string(),
                    a.scheme.to_owned(),
                    f.kind.name().to_owned(),
                    f.count.map(|c| c.to_string()).unwrap_or_default(),
                    f.rule.unwrap_or_default().to_owned(),
                    f.group.map(|g| g.to_string()).unwrap_or_default(),
                    f.action.to_owned(),
                    a.password.clone().unwrap_or_default(),
                    a.hash.clone().unwrap_or_default(),
                ]);
            }
        }
        rows
    }

    /// The report for a person: worst findings first, each with what to do; at most
    /// `limit` accounts named per section.
    pub fn to_text(&self, limit: usize) -> String {
        let mut out = String::new();
        let i = &self.input;
        let _ = writeln!(
            out,
            "Audited {} accounts from {} file(s), {} lines.",
            thousands(i.accounts),
            i.files.len(),
            thousands(i.lines)
        );
        if !self.has_findings() {
            let _ = writeln!(out, "No findings.");
        }
        for kind in FindingKind::ALL {
            if kind == FindingKind::SharedPassword {
                self.groups_text(&mut out, limit);
                continue;
            }
            let hits: Vec<(&AccountReport, &Finding)> = self
                .accounts
                .iter()
                .filter_map(|a| a.findings.iter().find(|f| f.kind == kind).map(|f| (a, f)))
                .collect();
            if hits.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n{} ({} account{}): {}.",
                kind.heading(),
                thousands(hits.len() as u64),
                if hits.len() == 1 { "" } else { "s" },
                kind.action()
            );
            for (a, f) in hits.iter().take(limit) {
                let _ = write!(out, "  {}  ({}:{})", a.user, a.file, a.line);
                let d = f.detail();
                if !d.is_empty() {
                    let _ = write!(out, "  {d}");
                }
                if let Some(p) = &a.password {
                    let _ = write!(out, "  password: {p}");
                }
                if let Some(h) = &a.hash {
                    let _ = write!(out, "  hash: {h}");
                }
                out.push('\n');
            }
            if hits.len() > limit {
                let _ = writeln!(
                    out,
                    "  … and {} more (--format json or csv lists all)",
                    thousands((hits.len() - limit) as u64)
                );
            }
        }
        self.coverage_text(&mut out);
        out
    }

    fn groups_text(&self, out: &mut String, limit: usize) {
        if self.groups.is_empty() {
            return;
        }
        let accounts: u64 = self.groups.iter().map(|g| u64::from(g.size)).sum();
        let _ = writeln!(
            out,
            "\n{} ({} groups, {} accounts): {}.",
            FindingKind::SharedPassword.heading(),
            self.groups.len(),
            thousands(accounts),
            FindingKind::SharedPassword.action()
        );
        for g in self.groups.iter().take(limit) {
            let names: Vec<&str> = g.users.iter().take(10).map(String::as_str).collect();
            let more = if g.users.len() > 10 { ", …" } else { "" };
            let _ = write!(
                out,
                "  group {} ({} accounts): {}{more}",
                g.id,
                g.size,
                names.join(", ")
            );
            if let Some(p) = &g.password {
                let _ = write!(out, "  password: {p}");
            }
            out.push('\n');
        }
    }

    fn coverage_text(&self, out: &mut String) {
        let c = &self.checks;
        if c.slow_hashes > 0 {
            let _ = writeln!(
                out,
                "\nGuessing against {} salted or slow hashes (at most {} candidates each): {} fully checked, {} partly, {} not checked, {} skipped as too costly.",
                thousands(c.slow_hashes),
                thousands(c.candidates_per_hash as u64),
                thousands(c.fully_checked),
                thousands(c.partially_checked),
                thousands(c.not_checked),
                thousands(c.too_costly)
            );
            if c.stopped_by_time_budget {
                let _ = writeln!(
                    out,
                    "The time budget ran out: {} hashes were not fully checked; a longer --time-budget checks them.",
                    thousands(c.partially_checked + c.not_checked)
                );
            }
        }
        if !c.breach_lookup {
            let _ = writeln!(
                out,
                "No breached-password list or index was given: breached passwords are found only by guessing."
            );
        }
        let i = &self.input;
        let rejected: u64 = i.rejected.values().sum();
        if rejected > 0 {
            let reasons: Vec<String> = i
                .rejected
                .iter()
                .map(|(k, n)| format!("{k} ×{}", thousands(*n)))
                .collect();
            let _ = writeln!(
                out,
                "\n{} lines not understood: {}.",
                thousands(rejected),
                reasons.join(", ")
            );
            let places: Vec<String> = i
                .rejected_examples
                .iter()
                .map(|p| format!("{}:{} ({})", p.file, p.line, p.reason))
                .collect();
            let _ = writeln!(out, "  for example {}", places.join(", "));
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
