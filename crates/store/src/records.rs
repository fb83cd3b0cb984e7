//! The records the store keeps, and its caps.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A ban of a network: an address is a `/32` or `/128`.
///
/// Stored under the normalised network ([`IpNet::trunc`]): `203.0.113.7/24` and
/// `203.0.113.0/24` are the same ban, and the store gives it back as the latter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The banned network.
    pub net: IpNet,
    /// When the ban began (unix seconds, wall clock).
    pub since: i64,
    /// When it ends (unix seconds, wall clock); [`crate::Store::expire_bans`] removes it
    /// once `until <= now`.
    pub until: i64,
    /// Why, for people (e.g. "password spray: 17 accounts in 4 min").
    pub reason: String,
    /// The kind of attack (`password_spray`, `brute_force`, …), when an engine finding
    /// caused it.
    pub kind: Option<String>,
    /// Whether an administrator placed it.
    pub manual: bool,
    /// This network's offence count including this ban, filled in by the caller from
    /// [`crate::Store::offence`] (the store does not rewrite it).
    pub offences: u32,
}

/// A network's offence history, kept for escalation after its bans are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offence {
    /// How many times the network was newly banned.
    pub count: u32,
    /// When it was last newly banned (the latest ban's `since`).
    pub last: i64,
}

/// A locked account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The canonical account name (at most [`crate::MAX_ACCOUNT_LEN`] bytes).
    pub account: String,
    /// When the lock began (unix seconds, wall clock).
    pub since: i64,
    /// When it ends (unix seconds, wall clock).
    pub until: i64,
    /// Why, for people.
    pub reason: String,
    /// Whether an administrator placed it.
    pub manual: bool,
}

/// The engine's state and the file positions of exactly the lines it has consumed,
/// saved and loaded together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The engine's serialised state; opaque to the store.
    pub engine: Vec<u8>,
    /// The file tailer's positions, encoded by `portcullis_sources::checkpoint::encode`;
    /// opaque to the store.
    pub positions: Vec<u8>,
    /// The engine's watermark: event time, unix seconds.
    pub watermark: i64,
    /// When it was saved: wall clock, unix seconds.
    pub saved_at: i64,
}

/// How many entries each table holds, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    /// Current bans.
    pub bans: u64,
    /// Networks with an offence history.
    pub offences: u64,
    /// Current account locks.
    pub locks: u64,
    /// Run-time allowlist entries.
    pub allowlist: u64,
    /// Accounts with familiar sources.
    pub familiar_accounts: u64,
    /// Familiar sources, over all accounts.
    pub familiar_sources: u64,
    /// Bytes of the saved snapshot (engine and positions), 0 when there is none.
    pub snapshot_bytes: u64,
}

/// Caps on the tables, given at open. Attackers choose the networks and account names
/// that reach the store; they must not choose its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most current bans; a new ban beyond it is refused with [`crate::StoreError::Full`].
    pub max_bans: u64,
    /// Most current locks; a new lock beyond it is refused.
    pub max_locks: u64,
    /// Most networks with an offence history; beyond it, the network whose last offence
    /// is oldest is forgotten.
    pub max_offences: u64,
    /// Most accounts with familiar sources; beyond it, the account seen least recently
    /// is forgotten.
    pub max_familiar_accounts: u64,
    /// Most run-time allowlist entries; a new entry beyond it is refused.
    pub max_allowlist: u64,
    /// Most memory redb's page cache may hold, bytes (pages read, and pages written
    /// but not yet flushed). redb's own default, 1 GiB, fills with the pages of large
    /// engine snapshots and stays resident; the tables are read little (bans and
    /// locks are loaded once at start), so a small cache costs nothing.
    pub cache_bytes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_bans: 1_000_000,
            max_locks: 1_000_000,
            max_offences: 1_000_000,
            max_familiar_accounts: 1_000_000,
            max_allowlist: 100_000,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Lockdown mode, as stored: only familiar places may log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockdown {
    /// When it was switched on (Unix seconds).
    pub since: i64,
    /// When it ends by itself; `None` lasts until switched off.
    pub until: Option<i64>,
    /// Switched on by a detected campaign rather than an operator.
    pub automatic: bool,
}
