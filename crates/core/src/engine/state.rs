//! What the engine remembers per source, prefix and account, kept small: attackers
//! choose the keys, so every table has a cap and every set inside an entry has one too.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::Kind;

/// A set of 32-bit hashes that stops growing at `CAP` (it then says "at least CAP").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SmallSet {
    items: Vec<u32>,
}

impl SmallSet {
    pub(crate) const CAP: usize = 32;

    /// Adds `h`; true if it was new (and there was room).
    pub(crate) fn insert(&mut self, h: u32) -> bool {
        if self.items.contains(&h) || self.items.len() >= Self::CAP {
            return false;
        }
        self.items.push(h);
        true
    }

    pub(crate) fn len(&self) -> u32 {
        self.items.len() as u32
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= Self::CAP
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.iter().copied()
    }
}

/// One source address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SourceState {
    pub first_seen: i64,
    pub last_seen: i64,
    pub failures: u32,
    pub successes: u32,
    /// Failures that were neither typos nor on accounts familiar with this source.
    pub suspicious: u32,
    /// Of those, on names that do not exist.
    pub unknown: u32,
    /// Of those, failures whose server logged the user (Postfix logs none for SASL).
    pub named: u32,
    pub first_suspicious: i64,
    pub last_suspicious: i64,
    /// Distinct accounts (and unknown names, high bit set) with suspicious failures.
    pub accounts: SmallSet,
    /// Suspicious failures in the current brute-force window, and its start.
    pub window_start: i64,
    pub window_count: u32,
    /// Of those, failures whose server logged the user.
    pub window_named: u32,
    /// Successes on accounts this source was not familiar to (account, time): an
    /// attacker's are the accounts it broke into.
    pub unfamiliar_wins: Vec<(Box<str>, i64)>,
    pub verdict: Option<Verdict>,
    /// Failures of this source still in their typo window.
    pub pending: u32,
    /// Set (to 1) at the end of input when this source's one account turned out to have
    /// been sprayed (`Engine::enrol_late`); a count, so that snapshots keep their format.
    pub sprayed_hits: u32,
    /// The services this source tried to log in through ([`crate::event::Service::bit`]s): the
    /// doors an attacker came through.
    pub services: u32,
}

/// Why and when a source was judged an attacker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub kind: Kind,
    pub at: i64,
    pub campaign: usize,
    pub evidence: String,
}

impl SourceState {
    pub(crate) fn failure_share(&self) -> f64 {
        let total = self.failures + self.successes;
        if total == 0 {
            0.0
        } else {
            f64::from(self.failures) / f64::from(total)
        }
    }

    pub(crate) fn unknown_names(&self) -> u32 {
        self.accounts
            .iter()
            .filter(|h| h & 0x8000_0000 != 0)
            .count() as u32
    }
}

/// One network prefix (/24, /64).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PrefixState {
    pub failures: u32,
    pub successes: u32,
    pub suspicious: u32,
    pub accounts: SmallSet,
    /// Distinct member addresses with suspicious failures (hashes).
    pub members: SmallSet,
    pub first_suspicious: i64,
    pub last_suspicious: i64,
    pub verdict: Option<Verdict>,
    /// The services its members tried to log in through ([`crate::event::Service::bit`]s).
    pub services: u32,
}

/// One account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AccountState {
    /// Prefixes it logged in from (most recent last).
    pub familiar: Vec<u64>,
    pub failures: u32,
    /// Distinct sources (hashes) with suspicious failures on it ...
    pub attackers: SmallSet,
    /// ... and those sources themselves (the same at most 32), for judging it.
    pub sources: Vec<IpAddr>,
    pub first_suspicious: i64,
    pub targeted: Option<usize>,
    /// Attacker count at the last targeted check.
    pub checked_at: u32,
    pub locked: bool,
    /// The name, once the account is worth reporting (locked, targeted).
    pub name: Option<Box<str>>,
}

impl AccountState {
    pub(crate) const FAMILIAR_CAP: usize = 8;

    pub(crate) fn is_familiar(&self, prefix: u64) -> bool {
        self.familiar.contains(&prefix)
    }

    pub(crate) fn learn(&mut self, prefix: u64) {
        if let Some(i) = self.familiar.iter().position(|p| *p == prefix) {
            self.familiar.remove(i);
        } else if self.familiar.len() >= Self::FAMILIAR_CAP {
            self.familiar.remove(0);
        }
        self.familiar.push(prefix);
    }
}

/// A failure waiting out the typo window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub time: i64,
    pub source: IpAddr,
    pub account: Option<Box<str>>,
    /// The account's hash (the engine's `hash64`), computed once.
    pub account_hash: u64,
    pub unknown: bool,
    pub familiar: bool,
    pub attempts: u32,
}

/// The failures waiting under one (source, account) key.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct PendingKey {
    pub count: u32,
    /// The last success of that account (or, under the no-user key, of any account)
    /// from that source; failures before it were typos.
    pub success_at: i64,
}
