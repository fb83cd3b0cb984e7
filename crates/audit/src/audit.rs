//! The audit: accounts in, report out.
//!
//! 1. [`Inventory`] collects the accounts of every line and counts what it skips or
//!    cannot read.
//! 2. [`Audit::run`] recovers what it can: stored plaintext, the empty password, and
//!    guesses from the candidate lists — all at once through precomputed maps for
//!    unsalted NT and SHA-1 hashes, one hash at a time on all cores for slow ones, in
//!    rounds (the ten likeliest guesses on every hash, then the next ninety, then the
//!    rest), so a time budget that runs out has spent itself on the likeliest guesses.
//! 3. It asks the breach lookup, groups accounts that share a password and writes each
//!    account's findings into the [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::candidates::{Candidate, CandidateList, CandidateOptions, Origin, user_candidates};
use crate::line::{Line, Rejection, parse_line};
use crate::lookup::{BreachLookup, nt_hash, plaintext_count, sha1};
use crate::report::{
    AccountReport, ChecksSummary, Coverage, Finding, FindingKind, Group, InputSummary, LinePlace,
    REPORT_VERSION, Report,
};
use crate::scheme::{EMPTY_NT, Scheme, StoredHash};
use crate::words::{Blocklist, context_word, equals_username, user_parts};

/// One account read from an export.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user name as written.
    pub user: String,
    /// Index into [`Inventory::files`].
    pub file: usize,
    /// 1-based line number.
    pub line: u64,
    /// The stored hash.
    pub hash: StoredHash,
    /// The password field as written.
    pub hash_text: String,
    /// A non-empty LM hash, when the export had one.
    pub lm: Option<[u8; 16]>,
}

/// Accounts and line counts from one or more exports.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The accounts, in input order.
    pub accounts: Vec<Account>,
    /// The file names, in the order added.
    pub files: Vec<String>,
    lines: u64,
    skipped: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<String, u64>,
    examples: Vec<LinePlace>,
}

/// Rejected lines remembered per reason, as examples for the report.
const EXAMPLES_PER_REASON: usize = 3;

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a file; lines of it are pushed with the returned index.
    pub fn add_file(&mut self, name: &str) -> usize {
        self.files.push(name.to_owned());
        self.files.len() - 1
    }

    /// Reads one line (without its newline).
    pub fn push_line(&mut self, file: usize, line: u64, text: &str) {
        self.lines += 1;
        match parse_line(text) {
            Line::Entry(e) => self.accounts.push(Account {
                user: e.user,
                file,
                line,
                hash: e.hash,
                hash_text: e.hash_text,
                lm: e.lm,
            }),
            Line::Skip(s) => *self.skipped.entry(s.key()).or_insert(0) += 1,
            Line::Rejected(r) => self.reject_parsed(file, line, &r),
        }
    }

    /// Counts a line the reader could not hand over (not UTF-8, too long).
    pub fn push_rejected(&mut self, file: usize, line: u64, why: Rejection) {
        self.lines += 1;
        self.reject_parsed(file, line, &why);
    }

    fn reject_parsed(&mut self, file: usize, line: u64, why: &Rejection) {
        let key = why.key();
        let n = self.rejected.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n as usize <= EXAMPLES_PER_REASON {
            self.examples.push(LinePlace {
                file: self.files.get(file).cloned().unwrap_or_default(),
                line,
                reason: key,
            });
        }
    }

    fn summary(&self) -> InputSummary {
        let mut schemes = BTreeMap::new();
        for a in &self.accounts {
            *schemes.entry(a.hash.scheme().name()).or_insert(0) += 1;
        }
        InputSummary {
            files: self.files.clone(),
            lines: self.lines,
            accounts: self.accounts.len() as u64,
            schemes,
            skipped: self.skipped.clone(),
            rejected: self.rejected.clone(),
            rejected_examples: self.examples.clone(),
        }
    }
}

/// How the audit runs.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The candidate lists and cap.
    pub candidates: CandidateOptions,
    /// Put recovered passwords and stored hashes into the report.
    pub reveal: bool,
    /// Stop guessing at this instant (the time budget); the report then says how many
    /// hashes were not fully checked.
    pub deadline: Option<Instant>,
}

/// A password that became known, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// Stored as plaintext.
    Stored(String),
    /// Guessed.
    Guessed(String, Origin),
}

impl Known {
    fn text(&self) -> &str {
        match self {
            Known::Stored(t) | Known::Guessed(t, _) => t,
        }
    }
}

/// Guessing state of one slow hash.
struct SlowHash {
    account: usize,
    user: Vec<Candidate>,
    total: usize,
    tried: usize,
    found: Option<Known>,
    too_costly: bool,
}

impl SlowHash {
    fn candidate<'a>(&'a self, shared: &'a [Candidate], i: usize) -> Option<&'a Candidate> {
        if i < self.user.len() {
            self.user.get(i)
        } else {
            shared.get(i - self.user.len())
        }
    }
}

/// Rounds of guessing: every hash gets its first 10 guesses, then up to 100, then all.
const ROUNDS: [usize; 3] = [10, 100, usize::MAX];

/// An audit ready to run.
pub struct Audit<'a> {
    inventory: &'a Inventory,
    options: &'a AuditOptions,
    shared: CandidateList,
}

impl<'a> Audit<'a> {
    /// Prepares the shared candidate list.
    pub fn new(inventory: &'a Inventory, options: &'a AuditOptions) -> Self {
        Audit {
            inventory,
            options,
            shared: CandidateList::build(&options.candidates),
        }
    }

    /// The most guesses the slow hashes can take (for a progress bar).
    pub fn planned_guesses(&self) -> u64 {
        let cap = self.options.candidates.cap;
        self.inventory
            .accounts
            .iter()
            .filter(|a| a.hash.scheme().is_slow() && !a.hash.too_costly())
            .map(|a| {
                let user = user_candidates(&a.user, &self.options.candidates.years).len();
                (user + self.shared.len()).min(cap) as u64
            })
            .sum()
    }

    /// Runs every check. `progress` is told of each guess against a slow hash.
    pub fn run(
        &self,
        lookup: Option<&dyn BreachLookup>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Report {
        let accounts = &self.inventory.accounts;
        let mut known: Vec<Option<Known>> = self.fast_recovery();
        let mut checks = ChecksSummary {
            breach_lookup: lookup.is_some(),
            candidates_per_hash: self.options.candidates.cap,
            revealed: self.options.reveal,
            ..ChecksSummary::default()
        };
        let slow = self.slow_recovery(progress, &mut checks);
        let mut coverage = vec![Coverage::Complete; accounts.len()];
        for s in slow {
            coverage[s.account] = if s.too_costly {
                Coverage::TooCostly
            } else if s.found.is_some() || s.tried >= s.total {
                Coverage::Complete
            } else if s.tried == 0 {
                Coverage::NotChecked
            } else {
                Coverage::Partial
            };
            if s.found.is_some() {
                known[s.account] = s.found;
            }
        }
        self.report(&known, &coverage, lookup, checks)
    }

    /// Plaintext, and guesses against NT and SHA-1 hashes: one hash per guess for the
    /// shared list, computed once, looked up in a map.
    fn fast_recovery(&self) -> Vec<Option<Known>> {
        let accounts = &self.inventory.accounts;
        let cap = self.options.candidates.cap;
        let shared = self.shared.as_slice();
        let any = |s: Scheme| accounts.iter().any(|a| a.hash.scheme() == s);
        let nt_map: HashMap<[u8; 16], usize> = if any(Scheme::Ntlm) {
            shared
                .par_iter()
                .enumerate()
                .map(|(i, c)| (nt_hash(&c.text), i))
                .collect::<Vec<_>>()
                .into_iter()
                .rev() // the first index wins
                .collect()
        } else {
            HashMap::new()
        };
        let sha_map: HashMap<[u8; 20], usize> = if any(Scheme::Sha1) {
            shared
                .iter()
                .enumerate()
                .rev()
                .map(|(i, c)| (sha1(&c.text), i))
                .collect()
        } else {
            HashMap::new()
        };
        let years = &self.options.candidates.years;
        accounts
            .par_iter()
            .map(|a| match &a.hash {
                StoredHash::Plain(p) => Some(Known::Stored(p.clone())),
                StoredHash::Ntlm(h) if *h == EMPTY_NT => {
                    Some(Known::Guessed(String::new(), Origin::Empty))
                }
                StoredHash::Ntlm(h) => {
                    let user = user_candidates(&a.user, years);
                    let hit = user.iter().take(cap).find(|c| nt_hash(&c.text) == *h);
                    hit.map(|c| Known::Guessed(c.text.clone(), c.origin))
                        .or_else(|| shared_hit(nt_map.get(h), user.len(), cap, shared))
                }
                StoredHash::Sha1(h) => {
                    let user = user_candidates(&a.user, years);
                    let hit = user.iter().take(cap).find(|c| sha1(&c.text) == *h);
                    hit.map(|c| Known::Guessed(c.text.clone(), c.origin))
                        .or_else(|| shared_hit(sha_map.get(h), user.len(), cap, shared))
                }
                _ => None,
            })
            .collect()
    }

    /// Guesses against slow hashes, in rounds, on all cores, until the deadline.
    fn slow_recovery(
        &self,
        progress: &(dyn Fn(u64) + Sync),
        checks: &mut ChecksSummary,
    ) -> Vec<SlowHash> {
        let cap = self.options.candidates.cap;
        let years = &self.options.candidates.years;
        let shared = self.shared.as_slice();
        let mut slow: Vec<SlowHash> = self
            .inventory
            .accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.hash.scheme().is_slow())
            .map(|(i, a)| {
                let user = user_candidates(&a.user, years);
                let total = (user.len() + shared.len()).min(cap);
                SlowHash {
                    account: i,
                    user,
                    total,
                    tried: 0,
                    found: None,
                    too_costly: a.hash.too_costly(),
                }
            })
            .collect();
        let stop = AtomicBool::new(false);
        let guesses = AtomicU64::new(0);
        let accounts = &self.inventory.accounts;
        let deadline = self.options.deadline;
        for round_end in ROUNDS {
            slow.par_iter_mut()
                .filter(|s| !s.too_costly && s.found.is_none())
                .for_each(|s| {
                    let hash = &accounts[s.account].hash;
                    while s.tried < s.total.min(round_end) {
                        if stop.load(Ordering::Relaxed)
                            || deadline.is_some_and(|d| Instant::now() >= d)
                        {
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                        let Some(c) = s.candidate(shared, s.tried) else {
                            break;
                        };
                        let hit = hash.verify(&c.text);
                        let found = hit.then(|| Known::Guessed(c.text.clone(), c.origin));
                        s.tried += 1;
                        guesses.fetch_add(1, Ordering::Relaxed);
                        progress(1);
                        if found.is_some() {
                            s.found = found;
                            return;
                        }
                    }
                });
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        checks.slow_hashes = slow.len() as u64;
        checks.guesses = guesses.load(Ordering::Relaxed);
        checks.stopped_by_time_budget = stop.load(Ordering::Relaxed);
        for s in &slow {
            if s.too_costly {
                checks.too_costly += 1;
            } else if s.found.is_some() || s.tried >= s.total {
                checks.fully_checked += 1;
            } else if s.tried == 0 {
                checks.not_checked += 1;
            } else {
                checks.partially_checked += 1;
            }
        }
        slow
    }

    fn report(
        &self,
        known: &[Option<Known>],
        coverage: &[Coverage],
        lookup: Option<&dyn BreachLookup>,
        checks: ChecksSummary,
    ) -> Report {
        let accounts = &self.inventory.accounts;
        let reveal = self.options.reveal;
        let common = Blocklist::common();
        let origins: HashMap<&str, Origin> = self
            .shared
            .as_slice()
            .iter()
            .map(|c| (c.text.as_str(), c.origin))
            .collect();
        let org_words: Vec<String> = self
            .options
            .candidates
            .org
            .iter()
            .chain(self.options.candidates.words.iter())
            .cloned()
            .collect();

        // Shared passwords: NT hash of a known password (so plaintext, guessed and
        // pwdump accounts meet), else the unsalted hash as stored.
        let mut keys: HashMap<GroupKey, Vec<usize>> = HashMap::new();
        for (i, a) in accounts.iter().enumerate() {
            let key = match (&known[i], &a.hash) {
                (Some(k), _) if k.text().is_empty() => None,
                (Some(k), _) => Some(GroupKey::Nt(nt_hash(k.text()))),
                (None, StoredHash::Ntlm(h)) => Some(GroupKey::Nt(*h)),
                (None, StoredHash::Sha1(h)) => Some(GroupKey::Sha1(*h)),
                _ => None,
            };
            if let Some(k) = key {
                keys.entry(k).or_default().push(i);
            }
        }
        let mut groups: Vec<Vec<usize>> = keys.into_values().filter(|v| v.len() > 1).collect();
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        let mut group_of: HashMap<usize, (u32, u32)> = HashMap::new();
        let mut group_reports = Vec::with_capacity(groups.len());
        for (n, members) in groups.iter().enumerate() {
            let id = n as u32 + 1;
            let size = members.len() as u32;
            for &m in members {
                group_of.insert(m, (id, size));
            }
            group_reports.push(Group {
                id,
                size,
                users: members.iter().map(|&m| accounts[m].user.clone()).collect(),
                password: if reveal {
                    members
                        .iter()
                        .find_map(|&m| known[m].as_ref().map(|k| k.text().to_owned()))
                } else {
                    None
                },
            });
        }

        let mut rows: Vec<AccountReport> = accounts
            .par_iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let scheme = a.hash.scheme();
                let k = known[i].as_ref();
                let mut findings = Vec::new();
                if scheme == Scheme::Plain {
                    let mut f = Finding::new(FindingKind::PlaintextStored);
                    f.scheme = Some(scheme.name());
                    findings.push(f);
                }
                let text = k.map(Known::text);
                if text == Some("") {
                    findings.push(Finding::new(FindingKind::EmptyPassword));
                }
                if let (Some(lookup), false) = (lookup, text == Some("")) {
                    let stored = match &a.hash {
                        StoredHash::Ntlm(h) => lookup.ntlm_count(h),
                        StoredHash::Sha1(h) => lookup.sha1_count(h),
                        _ => None,
                    };
                    let from_text = text.and_then(|t| plaintext_count(lookup, t));
                    if let Some(count) = stored.max(from_text) {
                        let mut f = Finding::new(FindingKind::Breached);
                        f.count = Some(count);
                        findings.push(f);
                    }
                }
                let equal = text.is_some_and(|t| equals_username(t, &a.user));
                if let Some(k) = k.filter(|k| !k.text().is_empty() && !equal) {
                    let rule = match k {
                        Known::Guessed(_, o) => Some(*o),
                        Known::Stored(t) => weak_rule(t, &a.user, &origins, &common, &org_words),
                    };
                    if let Some(o) = rule {
                        let mut f = Finding::new(FindingKind::WeakPassword);
                        f.rule = Some(o.name());
                        findings.push(f);
                    }
                }
                if equal {
                    findings.push(Finding::new(FindingKind::EqualsUsername));
                }
                if let Some(&(g, s)) = group_of.get(&i) {
                    let mut f = Finding::new(FindingKind::SharedPassword);
                    f.group = Some(g);
                    f.size = Some(s);
                    findings.push(f);
                }
                if a.lm.is_some() {
                    findings.push(Finding::new(FindingKind::LmHash));
                }
                if scheme.is_weak() {
                    let mut f = Finding::new(FindingKind::WeakScheme);
                    f.scheme = Some(scheme.name());
                    findings.push(f);
                }
                if findings.is_empty() {
                    return None;
                }
                Some(AccountReport {
                    user: a.user.clone(),
                    file: self
                        .inventory
                        .files
                        .get(a.file)
                        .cloned()
                        .unwrap_or_default(),
                    line: a.line,
                    scheme: scheme.name(),
                    checked: coverage[i],
                    findings,
                    password: if reveal {
                        text.map(str::to_owned)
                    } else {
                        None
                    },
                    hash: if reveal {
                        Some(a.hash_text.clone())
                    } else {
                        None
                    },
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            a.findings[0]
                .kind
                .cmp(&b.findings[0].kind)
                .then(a.file.cmp(&b.file))
                .then(a.line.cmp(&b.line))
        });
        let mut summary = BTreeMap::new();
        for kind in FindingKind::ALL {
            let n = rows
                .iter()
                .filter(|r| r.findings.iter().any(|f| f.kind == kind))
                .count() as u64;
            summary.insert(kind.name(), n);
        }
        Report {
            version: REPORT_VERSION,
            input: self.inventory.summary(),
            checks,
            summary,
            accounts: rows,
            groups: group_reports,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupKey {
    Nt([u8; 16]),
    Sha1([u8; 20]),
}

/// A hit in the shared list counts only within the cap.
fn shared_hit(
    index: Option<&usize>,
    user_len: usize,
    cap: usize,
    shared: &[Candidate],
) -> Option<Known> {
    let &i = index?;
    if user_len + i >= cap {
        return None;
    }
    shared
        .get(i)
        .map(|c| Known::Guessed(c.text.clone(), c.origin))
}

/// Why a stored plaintext is weak: it is one of the guesses, or a normal form of it is
/// a common password, an organisation word or part of the user name.
fn weak_rule(
    text: &str,
    user: &str,
    origins: &HashMap<&str, Origin>,
    common: &Blocklist,
    org_words: &[String],
) -> Option<Origin> {
    if let Some(o) = origins.get(text) {
        return Some(*o);
    }
    if common.matches(text) {
        return Some(Origin::Common);
    }
    if context_word(text, org_words).is_some() {
        return Some(Origin::Organisation);
    }
    let parts = user_parts(user);
    if context_word(text, &parts).is_some() {
        return Some(Origin::Username);
    }
    None
}

#[cfg(test)]
mod tests;
