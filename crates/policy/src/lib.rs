//! Portcullis' login policy: before a password is checked, should this login be
//! allowed, slowed down (tarpit) or refused? Mail servers (Dovecot's auth policy),
//! Weakforced clients and applications ask; the daemon's policy listener answers from
//! the [`Policy`] here.
//!
//! What it decides, in this order (docs/policy.md):
//!
//! 1. an allowlisted source is treated as a familiar place;
//! 2. a banned address or network is refused (`banned`);
//! 3. an account an operator (or a compromise) locked is refused (`account_locked`);
//! 4. in **lockdown**, only familiar places and allowlisted networks may log in
//!    (`lockdown`);
//! 5. **smart lockout**: each account has two failure counters, one for its familiar
//!    places (networks and devices it logged in from within `familiar_secs`) and one
//!    for everywhere else. Reaching a counter's threshold locks the account *for that
//!    kind of place only*, for `lockout_secs × lockout_escalation^n`, so an attacker
//!    can never lock the real user out from the user's own places. The same wrong
//!    password again (Dovecot's `pwhash`, or any fingerprint) counts once;
//! 6. unfamiliar attempts from a source that failed on `source_accounts` distinct
//!    accounts are refused (`spraying`); with a password fingerprint that failed on
//!    `fingerprint_accounts` distinct accounts, refused too (`sprayed_password`);
//! 7. a source with `tarpit_after` counted failures is slowed down: `tarpit_secs`
//!    doubling with each further failure, at most `tarpit_max_secs`.
//!
//! What it is for: answering in microseconds from memory, from many threads, with
//! bounded memory whatever attackers send: per account, source and fingerprint one
//! compact entry (hash keys, small counters, `u32` seconds) in capped [`table`]s
//! (see [`Policy::bytes_per_entry`]).
//!
//! What it is not for: I/O or the clock (every call takes `now`, Unix seconds), the
//! HTTP protocols (the daemon's `policy` module), storing bans, locks or lockdown
//! (the daemon keeps them in its store and tells the policy through the `set_*`
//! methods).
#![deny(missing_docs)]

pub mod table;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{RwLock, RwLockReadGuard, TryLockError};

use ipnet::IpNet;
use table::{Table, Touched, Wait};

/// Every threshold of the policy, with its default (docs/configuration.md, `[policy]`).
///
/// All but the table sizes and the familiar networks' prefix lengths can change while
/// the policy runs ([`Policy::set_rules`]): those two shape the tables and their keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Counted failures from unfamiliar places before the account is locked for them
    /// (Entra's smart lockout starts at 10).
    pub lockout_threshold: u16,
    /// Counted failures from the account's familiar places before it is locked for
    /// those too (far below NIST SP 800-63B's cap of 100 consecutive failures).
    pub familiar_threshold: u16,
    /// The first lockout, seconds (Entra: 60).
    pub lockout_secs: u32,
    /// Each further lockout lasts this many times the one before.
    pub lockout_escalation: f64,
    /// The longest lockout, seconds.
    pub lockout_max_secs: u32,
    /// Failure counters and lockout escalation are forgotten after this long without
    /// a failure, seconds.
    pub lockout_reset_secs: u32,
    /// A place stays familiar this long after the account's last success there.
    pub familiar_secs: u32,
    /// The network of a familiar IPv4 address.
    pub prefix_v4: u8,
    /// The network of a familiar IPv6 address.
    pub prefix_v6: u8,
    /// Counted failures from one source before its attempts are slowed down (0: never).
    pub tarpit_after: u16,
    /// The first delay, seconds.
    pub tarpit_secs: u32,
    /// The longest delay, seconds.
    pub tarpit_max_secs: u32,
    /// Distinct accounts one source failed on before its unfamiliar attempts are
    /// refused (0: never).
    pub source_accounts: u16,
    /// How long a source's failures count, seconds.
    pub source_window_secs: u32,
    /// Distinct accounts one password fingerprint failed on before it is taken for a
    /// spray and refused on unfamiliar attempts (0: never).
    pub fingerprint_accounts: u16,
    /// How long a fingerprint's failures count, seconds.
    pub fingerprint_window_secs: u32,
    /// Accounts tracked at most.
    pub max_accounts: usize,
    /// Sources tracked at most.
    pub max_sources: usize,
    /// Password fingerprints tracked at most.
    pub max_fingerprints: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            lockout_threshold: 10,
            familiar_threshold: 20,
            lockout_secs: 60,
            lockout_escalation: 2.0,
            lockout_max_secs: 3600,
            lockout_reset_secs: 86_400,
            familiar_secs: 90 * 86_400,
            prefix_v4: 24,
            prefix_v6: 64,
            tarpit_after: 3,
            tarpit_secs: 1,
            tarpit_max_secs: 10,
            source_accounts: 10,
            source_window_secs: 3600,
            fingerprint_accounts: 5,
            fingerprint_window_secs: 3600,
            max_accounts: 1_000_000,
            max_sources: 1_000_000,
            max_fingerprints: 100_000,
        }
    }
}

/// One login attempt, as a client describes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempt<'a> {
    /// The canonical account name.
    pub account: &'a str,
    /// The client's address.
    pub source: Option<IpAddr>,
    /// A device identifier (Dovecot's `device_id`, an application's device cookie).
    pub device: Option<&'a str>,
    /// What tells one guess from another for this account: Dovecot's `pwhash`, or any
    /// per-account password fingerprint.
    pub password: Option<&'a str>,
    /// An organisation-wide fingerprint of the password alone (no account in it): the
    /// same one failing on many accounts is a spray.
    pub fingerprint: Option<&'a str>,
}

/// Why a login is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The address or its network is banned.
    Banned,
    /// The account is locked (by an operator, or after a compromise).
    AccountLocked,
    /// Lockdown: only familiar places may log in.
    Lockdown,
    /// Smart lockout: too many failures from this kind of place.
    LockedOut,
    /// The source failed on many accounts.
    Spraying,
    /// The password failed on many accounts.
    SprayedPassword,
    /// No decision in time, and the caller's fallback is to refuse.
    Unavailable,
}

impl Reason {
    /// All reasons, in metric order.
    pub const ALL: [Reason; 7] = [
        Reason::Banned,
        Reason::AccountLocked,
        Reason::Lockdown,
        Reason::LockedOut,
        Reason::Spraying,
        Reason::SprayedPassword,
        Reason::Unavailable,
    ];

    /// The name in metrics and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Banned => "banned",
            Reason::AccountLocked => "account_locked",
            Reason::Lockdown => "lockdown",
            Reason::LockedOut => "locked_out",
            Reason::Spraying => "spraying",
            Reason::SprayedPassword => "sprayed_password",
            Reason::Unavailable => "unavailable",
        }
    }

    /// What the user is told (Dovecot passes it on as the failure reason).
    pub fn message(self) -> &'static str {
        match self {
            Reason::Banned => "Access from your network is blocked.",
            Reason::AccountLocked => "This account is locked. Contact your administrator.",
            Reason::Lockdown => {
                "Remote access is restricted during an attack: log in from a place you have used before, or contact your administrator."
            }
            Reason::LockedOut => "Too many failed logins: try again later.",
            Reason::Spraying | Reason::SprayedPassword => "Login refused.",
            Reason::Unavailable => "Login is unavailable for a moment: try again shortly.",
        }
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Go ahead after this many seconds.
    Tarpit(u32),
    /// Refuse.
    Reject(Reason),
}

/// What a report said happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right.
    Success,
    /// A wrong password (or an unknown account): a guess.
    Failure,
    /// A failure that says nothing about the password (refused by the policy itself,
    /// an internal error, an expired or disabled account): not counted.
    Ignored,
}

/// A failure counter of one account for one kind of place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    fails: u16,
    /// Lockouts so far (escalation).
    level: u8,
    last: u32,
    until: u32,
}

/// A place an account logged in from: the hash of a network or a device, and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Place {
    key: u32,
    seen: u32,
}

/// Places kept per account (the most recent).
const PLACES: usize = 6;
/// Recent wrong passwords kept per account.
const RECENT: usize = 4;

/// What the policy keeps per account.
#[derive(Debug, Clone, Default)]
struct Account {
    places: [Place; PLACES],
    recent: [u32; RECENT],
    unfamiliar: Counter,
    familiar: Counter,
}

impl Touched for Account {
    fn touched(&self) -> u32 {
        let seen = self.places.iter().map(|p| p.seen).max().unwrap_or(0);
        seen.max(self.unfamiliar.last).max(self.familiar.last)
    }
}

/// What the policy keeps per source address.
#[derive(Debug, Clone, Default)]
struct Source {
    fails: u16,
    accounts: u16,
    first: u32,
    last: u32,
    recent: [u32; RECENT],
}

impl Touched for Source {
    fn touched(&self) -> u32 {
        self.last
    }
}

/// What the policy keeps per organisation-wide password fingerprint.
#[derive(Debug, Clone, Default)]
struct Print {
    accounts: u16,
    first: u32,
    last: u32,
    recent: [u32; RECENT],
}

impl Touched for Print {
    fn touched(&self) -> u32 {
        self.last
    }
}

/// Adds `x` to a small ring of recent values; `true` if it was new.
fn remember(ring: &mut [u32; RECENT], x: u32) -> bool {
    if ring.contains(&x) {
        return false;
    }
    ring.rotate_right(1);
    ring[0] = x;
    true
}

/// Bans, the allowlist and locks as the daemon holds them, for lookups.
#[derive(Debug)]
struct Gate {
    bans: HashMap<IpNet, u32>,
    /// Bans per prefix length and family, kept in step with `bans`.
    count_v4: Vec<u32>,
    count_v6: Vec<u32>,
    /// Prefix lengths with at least one ban, per family, so a lookup tries only those.
    lens_v4: Vec<u8>,
    lens_v6: Vec<u8>,
    allow: Vec<IpNet>,
    locks: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The thresholds in force: read with the gate, so a change applies to whole
    /// decisions, never half of one.
    rules: Rules,
}

impl Gate {
    /// Adds or replaces one ban, in O(1) plus the prefix lengths.
    fn insert(&mut self, net: IpNet, until: u32) {
        if self.bans.insert(net, until).is_none() {
            self.count(&net, true);
        }
    }

    fn remove(&mut self, net: &IpNet) {
        if self.bans.remove(net).is_some() {
            self.count(net, false);
        }
    }

    fn count(&mut self, net: &IpNet, add: bool) {
        let (counts, lens, max) = match net {
            IpNet::V4(_) => (&mut self.count_v4, &mut self.lens_v4, 33),
            IpNet::V6(_) => (&mut self.count_v6, &mut self.lens_v6, 129),
        };
        counts.resize(max, 0);
        let c = &mut counts[usize::from(net.prefix_len())];
        *c = if add { *c + 1 } else { c.saturating_sub(1) };
        *lens = (0..max as u8)
            .filter(|&l| counts[usize::from(l)] > 0)
            .collect();
    }

    fn clear(&mut self) {
        self.bans.clear();
        self.count_v4.clear();
        self.count_v6.clear();
        self.lens_v4.clear();
        self.lens_v6.clear();
    }

    fn banned(&self, a: IpAddr, now: u32) -> bool {
        let lens = if a.is_ipv4() {
            &self.lens_v4
        } else {
            &self.lens_v6
        };
        lens.iter().any(|&len| {
            IpNet::new(a, len)
                .ok()
                .and_then(|n| self.bans.get(&n.trunc()))
                .is_some_and(|&until| until > now)
        })
    }

    fn allowed(&self, a: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(&a))
    }
}

/// The policy: its tables and the gate. Shared by reference between threads.
pub struct Policy {
    /// The rules it was made with: their sizes and prefix lengths hold for its life.
    fixed: Rules,
    hasher: foldhash::fast::RandomState,
    accounts: Table<Account>,
    sources: Table<Source>,
    prints: Table<Print>,
    gate: RwLock<Gate>,
    /// Lockdown ends at this second (0: off; `u32::MAX`: until switched off).
    lockdown_until: AtomicU32,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.rules())
            .finish_non_exhaustive()
    }
}

/// Table sizes and memory, for metrics and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Accounts tracked.
    pub accounts: usize,
    /// Sources tracked.
    pub sources: usize,
    /// Fingerprints tracked.
    pub fingerprints: usize,
    /// Entries forgotten to stay within the caps.
    pub evicted: u64,
    /// Bytes of the three tables' slots.
    pub bytes: usize,
}

impl Policy {
    /// A policy with these rules and nothing known yet.
    pub fn new(rules: Rules) -> Self {
        Self {
            accounts: Table::new(rules.max_accounts),
            sources: Table::new(rules.max_sources),
            prints: Table::new(rules.max_fingerprints),
            hasher: foldhash::fast::RandomState::default(),
            gate: RwLock::new(Gate {
                bans: HashMap::new(),
                count_v4: Vec::new(),
                count_v6: Vec::new(),
                lens_v4: Vec::new(),
                lens_v6: Vec::new(),
                allow: Vec::new(),
                locks: HashMap::default(),
                rules,
            }),
            lockdown_until: AtomicU32::new(0),
            fixed: rules,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Rules {
        self.gate(Wait::Block).map_or(self.fixed, |g| g.rules)
    }

    /// Takes new thresholds at once, keeping everything learnt. The table sizes and
    /// the prefix lengths stay as they were made (they shape the tables and their
    /// keys); returns `false` when `rules` asked to change them.
    pub fn set_rules(&self, rules: Rules) -> bool {
        let fixed = self.fixed;
        let kept = Rules {
            prefix_v4: fixed.prefix_v4,
            prefix_v6: fixed.prefix_v6,
            max_accounts: fixed.max_accounts,
            max_sources: fixed.max_sources,
            max_fingerprints: fixed.max_fingerprints,
            ..rules
        };
        self.gate_mut().rules = kept;
        kept == rules
    }

    fn hash(&self, x: impl Hash) -> u64 {
        self.hasher.hash_one(x)
    }

    fn account_key(&self, account: &str) -> u64 {
        self.hash((0u8, account))
    }

    fn source_key(&self, a: IpAddr) -> u64 {
        self.hash((1u8, a))
    }

    /// The place keys of an attempt: its source's network and its device.
    fn places(&self, a: &Attempt<'_>) -> [Option<u32>; 2] {
        let net = a.source.map(|s| self.net_key(&self.network(s)));
        let device = a
            .device
            .filter(|d| !d.is_empty())
            .map(|d| self.hash((3u8, d)) as u32);
        [net, device]
    }

    fn network(&self, a: IpAddr) -> IpNet {
        let len = if a.is_ipv4() {
            self.fixed.prefix_v4
        } else {
            self.fixed.prefix_v6
        };
        IpNet::new(a, len).map_or_else(|_| IpNet::from(a), |n| n.trunc())
    }

    fn net_key(&self, n: &IpNet) -> u32 {
        self.hash((2u8, n.trunc())) as u32
    }

    fn gate(&self, wait: Wait) -> Option<RwLockReadGuard<'_, Gate>> {
        match wait {
            Wait::Block => Some(self.gate.read().unwrap_or_else(|p| p.into_inner())),
            Wait::Try => match self.gate.try_read() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            },
        }
    }

    fn gate_mut(&self) -> std::sync::RwLockWriteGuard<'_, Gate> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides about an attempt at `now` (waits for busy tables).
    pub fn decide(&self, a: &Attempt<'_>, now: u32) -> Decision {
        self.decide_with(a, now, Wait::Block)
            .unwrap_or(Decision::Allow)
    }

    /// [`Policy::decide`] without waiting: `None` when a table is busy, so that the
    /// caller can yield and keep to its time budget.
    pub fn try_decide(&self, a: &Attempt<'_>, now: u32) -> Option<Decision> {
        self.decide_with(a, now, Wait::Try)
    }

    fn decide_with(&self, a: &Attempt<'_>, now: u32, wait: Wait) -> Option<Decision> {
        let key = self.account_key(a.account);
        let (allowlisted, r) = {
            let g = self.gate(wait)?;
            let allowlisted = a.source.is_some_and(|s| g.allowed(s));
            if !allowlisted && a.source.is_some_and(|s| g.banned(s, now)) {
                return Some(Decision::Reject(Reason::Banned));
            }
            if g.locks.get(&key).is_some_and(|&u| u > now) {
                return Some(Decision::Reject(Reason::AccountLocked));
            }
            (allowlisted, g.rules)
        };
        let places = self.places(a);
        let familiar_secs = r.familiar_secs;
        let (familiar, counter) = self.accounts.read(key, wait, |e| match e {
            None => (false, Counter::default()),
            Some(e) => {
                let f = is_familiar(e, &places, now, familiar_secs);
                (f, if f { e.familiar } else { e.unfamiliar })
            }
        })?;
        let familiar = familiar || allowlisted;
        if !familiar && self.lockdown(now) {
            return Some(Decision::Reject(Reason::Lockdown));
        }
        if counter.until > now {
            return Some(Decision::Reject(Reason::LockedOut));
        }
        if familiar {
            return Some(Decision::Allow);
        }
        if let Some(fp) = a.fingerprint {
            let sprayed = self.prints.read(self.hash((4u8, fp)), wait, |p| {
                p.is_some_and(|p| {
                    r.fingerprint_accounts > 0
                        && p.accounts >= r.fingerprint_accounts
                        && now.saturating_sub(p.first) < r.fingerprint_window_secs
                })
            })?;
            if sprayed {
                return Some(Decision::Reject(Reason::SprayedPassword));
            }
        }
        if let Some(s) = a.source {
            let d = self.sources.read(self.source_key(s), wait, |e| {
                let Some(e) = e.filter(|e| now.saturating_sub(e.first) < r.source_window_secs)
                else {
                    return Decision::Allow;
                };
                if r.source_accounts > 0 && e.accounts >= r.source_accounts {
                    Decision::Reject(Reason::Spraying)
                } else if r.tarpit_after > 0 && e.fails >= r.tarpit_after {
                    let extra = u32::from(e.fails - r.tarpit_after).min(16);
                    Decision::Tarpit(
                        r.tarpit_secs
                            .saturating_mul(1 << extra)
                            .min(r.tarpit_max_secs)
                            .max(1),
                    )
                } else {
                    Decision::Allow
                }
            })?;
            return Some(d);
        }
        Some(Decision::Allow)
    }

    /// Learns from the outcome of an attempt at `now` (waits for busy tables).
    pub fn report(&self, a: &Attempt<'_>, result: Outcome, now: u32) {
        let _ = self.report_with(a, result, now, Wait::Block);
    }

    /// [`Policy::report`] without waiting for the account's table: `false` when it was
    /// busy and nothing was learnt.
    pub fn try_report(&self, a: &Attempt<'_>, result: Outcome, now: u32) -> bool {
        self.report_with(a, result, now, Wait::Try).is_some()
    }

    fn report_with(&self, a: &Attempt<'_>, result: Outcome, now: u32, wait: Wait) -> Option<()> {
        if result == Outcome::Ignored || a.account.is_empty() {
            return Some(());
        }
        let key = self.account_key(a.account);
        let places = self.places(a);
        let (allowlisted, r) = {
            let g = self.gate(wait)?;
            (a.source.is_some_and(|s| g.allowed(s)), g.rules)
        };
        let stale = now.saturating_sub(r.lockout_reset_secs.max(r.familiar_secs));
        if result == Outcome::Success {
            // A source caught spraying does not make itself familiar by guessing right.
            let suspect = match a.source {
                Some(s) => self.sources.read(self.source_key(s), wait, |e| {
                    e.is_some_and(|e| {
                        r.source_accounts > 0
                            && e.accounts >= r.source_accounts.div_ceil(2).max(2)
                            && now.saturating_sub(e.first) < r.source_window_secs
                    })
                })?,
                None => false,
            };
            self.accounts
                .update(key, wait, stale, Account::default, |e| {
                    let familiar = allowlisted || is_familiar(e, &places, now, r.familiar_secs);
                    if familiar {
                        e.familiar.fails = 0;
                    } else {
                        e.unfamiliar.fails = 0;
                    }
                    if !suspect {
                        for k in places.into_iter().flatten() {
                            learn(&mut e.places, k, now);
                        }
                    }
                })?;
            return Some(());
        }
        // A failure: a new guess unless the same password failed here recently.
        let pw = a.password.map(|p| self.hash((5u8, p)) as u32);
        let (familiar, new_guess) =
            self.accounts
                .update(key, wait, stale, Account::default, |e| {
                    let familiar = allowlisted || is_familiar(e, &places, now, r.familiar_secs);
                    let new_guess = pw.is_none_or(|p| remember(&mut e.recent, p));
                    if new_guess {
                        let (c, threshold) = if familiar {
                            (&mut e.familiar, r.familiar_threshold)
                        } else {
                            (&mut e.unfamiliar, r.lockout_threshold)
                        };
                        if now.saturating_sub(c.last) > r.lockout_reset_secs {
                            *c = Counter::default();
                        }
                        c.fails = c.fails.saturating_add(1);
                        c.last = now;
                        if threshold > 0 && c.fails >= threshold {
                            let secs = f64::from(r.lockout_secs)
                                * r.lockout_escalation.powi(i32::from(c.level));
                            let secs = secs.min(f64::from(r.lockout_max_secs)).max(1.0) as u32;
                            c.until = now.saturating_add(secs);
                            c.level = c.level.saturating_add(1);
                            c.fails = 0;
                        }
                    }
                    (familiar, new_guess)
                })?;
        if familiar || !new_guess {
            return Some(());
        }
        let account = key as u32;
        if let Some(s) = a.source {
            let window = r.source_window_secs;
            self.sources.update(
                self.source_key(s),
                wait,
                now.saturating_sub(window),
                Source::default,
                |e| {
                    if now.saturating_sub(e.first) >= window {
                        *e = Source {
                            first: now,
                            ..Source::default()
                        };
                    }
                    e.fails = e.fails.saturating_add(1);
                    e.last = now;
                    if remember(&mut e.recent, account) {
                        e.accounts = e.accounts.saturating_add(1);
                    }
                },
            )?;
        }
        if let Some(fp) = a.fingerprint {
            let window = r.fingerprint_window_secs;
            self.prints.update(
                self.hash((4u8, fp)),
                wait,
                now.saturating_sub(window),
                Print::default,
                |p| {
                    if now.saturating_sub(p.first) >= window {
                        *p = Print {
                            first: now,
                            ..Print::default()
                        };
                    }
                    p.last = now;
                    if remember(&mut p.recent, account) {
                        p.accounts = p.accounts.saturating_add(1);
                    }
                },
            )?;
        }
        Some(())
    }

    /// Records that `account` logged in from `network` at `at` (from the logs, or the
    /// store at start): that network becomes one of its familiar places.
    pub fn learn_network(&self, account: &str, network: &IpNet, at: u32) {
        let key = self.account_key(account);
        // Networks recorded at another prefix length count at the policy's own.
        let net = if network.prefix_len() >= self.network(network.addr()).prefix_len() {
            self.network(network.addr())
        } else {
            *network
        };
        let k = self.net_key(&net);
        let stale = at.saturating_sub(self.rules().familiar_secs);
        self.accounts
            .update(key, Wait::Block, stale, Account::default, |e| {
                learn(&mut e.places, k, at)
            });
    }

    /// Forgets an account's failures and lockouts (an operator's reset).
    pub fn reset_account(&self, account: &str) {
        let key = self.account_key(account);
        self.accounts.update_existing(key, Wait::Block, |e| {
            if let Some(e) = e {
                e.familiar = Counter::default();
                e.unfamiliar = Counter::default();
                e.recent = [0; RECENT];
            }
        });
    }

    /// Forgets a source's failures.
    pub fn reset_source(&self, a: IpAddr) {
        self.sources.remove(self.source_key(a));
    }

    /// What the policy knows of an account and a source, for operators.
    pub fn stats(&self, account: Option<&str>, source: Option<IpAddr>, now: u32) -> Stats {
        let mut s = Stats::default();
        let familiar_secs = self.rules().familiar_secs;
        if let Some(acc) = account {
            self.accounts.read(self.account_key(acc), Wait::Block, |e| {
                if let Some(e) = e {
                    s.account_failures = u32::from(e.unfamiliar.fails);
                    s.familiar_failures = u32::from(e.familiar.fails);
                    s.locked_out_until = (e.unfamiliar.until > now).then_some(e.unfamiliar.until);
                    s.familiar_places = e
                        .places
                        .iter()
                        .filter(|p| p.key != 0 && now.saturating_sub(p.seen) < familiar_secs)
                        .count() as u32;
                }
            });
        }
        if let Some(a) = source {
            self.sources.read(self.source_key(a), Wait::Block, |e| {
                if let Some(e) = e {
                    s.source_failures = u32::from(e.fails);
                    s.source_accounts = u32::from(e.accounts);
                }
            });
        }
        s
    }

    /// Replaces the bans: (network, until).
    pub fn set_bans(&self, bans: impl IntoIterator<Item = (IpNet, i64)>) {
        let mut g = self.gate_mut();
        g.clear();
        for (n, u) in bans {
            g.insert(n.trunc(), clamp(u));
        }
    }

    /// Adds or extends one ban.
    pub fn ban(&self, net: IpNet, until: i64) {
        self.gate_mut().insert(net.trunc(), clamp(until));
    }

    /// Lifts one ban.
    pub fn unban(&self, net: &IpNet) {
        self.gate_mut().remove(&net.trunc());
    }

    /// Replaces the allowlist.
    pub fn set_allowlist(&self, nets: impl IntoIterator<Item = IpNet>) {
        self.gate_mut().allow = nets.into_iter().map(|n| n.trunc()).collect();
    }

    /// Locks an account until `until`.
    pub fn lock(&self, account: &str, until: i64) {
        let k = self.account_key(account);
        self.gate_mut().locks.insert(k, clamp(until));
    }

    /// Unlocks an account.
    pub fn unlock(&self, account: &str) {
        let k = self.account_key(account);
        self.gate_mut().locks.remove(&k);
    }

    /// Switches lockdown on until `until` (`None`: until switched off), or off
    /// (`Some(0)`).
    pub fn set_lockdown(&self, until: Option<i64>) {
        let v = until.map_or(u32::MAX, clamp);
        self.lockdown_until.store(v, Ordering::Relaxed);
    }

    /// When lockdown ends: `None` when it is off at `now`, `Some(None)` when it lasts
    /// until switched off.
    pub fn lockdown_until(&self, now: u32) -> Option<Option<u32>> {
        match self.lockdown_until.load(Ordering::Relaxed) {
            u32::MAX => Some(None),
            u if u > now => Some(Some(u)),
            _ => None,
        }
    }

    fn lockdown(&self, now: u32) -> bool {
        self.lockdown_until(now).is_some()
    }

    /// Holds every decision until the guard is dropped: `try_decide` answers `None`
    /// meanwhile. For tests of callers' fail-safe paths.
    #[doc(hidden)]
    pub fn pause(&self) -> impl Drop + '_ {
        self.gate_mut()
    }

    /// Table sizes.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            accounts: self.accounts.len(),
            sources: self.sources.len(),
            fingerprints: self.prints.len(),
            evicted: self.accounts.evicted() + self.sources.evicted() + self.prints.evicted(),
            bytes: self.accounts.bytes() + self.sources.bytes() + self.prints.bytes(),
        }
    }

    /// Bytes one tracked account, source and fingerprint take in their tables' slots
    /// (entry and key, before the tables' spare capacity).
    pub fn bytes_per_entry() -> [usize; 3] {
        [
            std::mem::size_of::<(u64, Account)>() + 1,
            std::mem::size_of::<(u64, Source)>() + 1,
            std::mem::size_of::<(u64, Print)>() + 1,
        ]
    }
}

/// What [`Policy::stats`] tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Counted failures of the account from unfamiliar places.
    pub account_failures: u32,
    /// Counted failures from its familiar places.
    pub familiar_failures: u32,
    /// Locked out for unfamiliar places until.
    pub locked_out_until: Option<u32>,
    /// Familiar places known.
    pub familiar_places: u32,
    /// Counted failures of the source in its window.
    pub source_failures: u32,
    /// Distinct accounts it failed on.
    pub source_accounts: u32,
}

fn clamp(t: i64) -> u32 {
    t.clamp(0, i64::from(u32::MAX - 1)) as u32
}

fn is_familiar(e: &Account, places: &[Option<u32>; 2], now: u32, secs: u32) -> bool {
    places.iter().flatten().any(|k| {
        e.places
            .iter()
            .any(|p| p.key == *k && p.seen != 0 && now.saturating_sub(p.seen) < secs)
    })
}

/// Remembers a place, replacing the one seen longest ago.
fn learn(places: &mut [Place; PLACES], key: u32, now: u32) {
    if let Some(p) = places.iter_mut().find(|p| p.key == key) {
        p.seen = p.seen.max(now);
        return;
    }
    if let Some(oldest) = places.iter_mut().min_by_key(|p| p.seen) {
        *oldest = Place { key, seen: now };
    }
}

#[cfg(test)]
mod tests;
