//! Engine snapshots: the whole state as bytes, so that a restarted daemon carries on
//! where it stopped (baselines learned, campaigns open, accounts' familiar places,
//! failures still in their typo window).
//!
//! Format: the magic `PCES`, a little-endian `u32` version, then the state in
//! `postcard` (compact, not self-describing: the field order below *is* the format, so
//! any change to the state's types must bump [`VERSION`]). The configuration is not
//! stored: a restored engine takes the one it is given, so a reload can change
//! thresholds.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

use foldhash::HashMap;
use foldhash::fast::FixedState;
use jiff::tz::Offset;
use serde::{Deserialize, Serialize};

use super::site::SiteWatch;
use super::state::{AccountState, Pending, PendingKey, PrefixState, SourceState};
use super::{Campaign, Engine, EngineConfig, EngineStats};

const MAGIC: &[u8; 4] = b"PCES";
/// The snapshot format's version.
pub const VERSION: u32 = 2;

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not an engine snapshot.
    NotASnapshot,
    /// A snapshot of another version of the format.
    Version(u32),
    /// Damaged or truncated.
    Corrupt(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotASnapshot => write!(f, "not an engine snapshot"),
            SnapshotError::Version(v) => write!(
                f,
                "engine snapshot format {v}, this version reads {VERSION}: it will start afresh"
            ),
            SnapshotError::Corrupt(why) => write!(f, "engine snapshot damaged: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// The state, borrowed for writing. Field order must match [`Owned`].
#[derive(Serialize)]
struct Borrowed<'a> {
    seed: u64,
    sources: &'a HashMap<IpAddr, SourceState>,
    prefixes: &'a HashMap<u64, PrefixState>,
    accounts: &'a HashMap<u64, AccountState>,
    pending: &'a VecDeque<Pending>,
    pending_keys: &'a HashMap<(IpAddr, u64), PendingKey>,
    campaigns: &'a [Campaign],
    site: &'a SiteWatch,
    now: i64,
    first: Option<i64>,
    offset_secs: i32,
    stats: EngineStats,
}

/// The state, owned for reading. Field order must match [`Borrowed`].
#[derive(Deserialize)]
struct Owned {
    seed: u64,
    sources: HashMap<IpAddr, SourceState>,
    prefixes: HashMap<u64, PrefixState>,
    accounts: HashMap<u64, AccountState>,
    pending: VecDeque<Pending>,
    pending_keys: HashMap<(IpAddr, u64), PendingKey>,
    campaigns: Vec<Campaign>,
    site: SiteWatch,
    now: i64,
    first: Option<i64>,
    offset_secs: i32,
    stats: EngineStats,
}

impl Engine {
    /// The engine's whole state as bytes (see the module docs for the format). Findings
    /// not yet taken are not included.
    pub fn snapshot(&self) -> Vec<u8> {
        let state = Borrowed {
            seed: self.seed,
            sources: &self.sources,
            prefixes: &self.prefixes,
            accounts: &self.accounts,
            pending: &self.pending,
            pending_keys: &self.pending_keys,
            campaigns: &self.campaigns,
            site: &self.site,
            now: self.now,
            first: self.first,
            offset_secs: self.offset.seconds(),
            stats: self.stats,
        };
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        // Serialising plain data into a Vec cannot fail.
        postcard::to_io(&state, &mut out).expect("engine state serialises");
        out
    }

    /// An engine with `config` and the state of `bytes` (from [`Engine::snapshot`]).
    /// Whether findings are collected is not part of the state: call
    /// [`Engine::enable_findings`] again.
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let (magic, rest) = bytes
            .split_at_checked(4)
            .ok_or(SnapshotError::NotASnapshot)?;
        if magic != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let (version, body) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| SnapshotError::Corrupt("truncated header".into()))?;
        let version = u32::from_le_bytes(*version);
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        let (s, extra): (Owned, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        if !extra.is_empty() {
            return Err(SnapshotError::Corrupt(format!(
                "{} bytes after the end",
                extra.len()
            )));
        }
        let offset = Offset::from_seconds(s.offset_secs)
            .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
        let mut e = Engine::new(config);
        // Thresholds come from the configuration, not the snapshot.
        let (fast, slow) = (e.site.fast.clone(), e.site.slow.clone());
        e.seed = s.seed;
        e.hasher = FixedState::with_seed(s.seed);
        e.sources = s.sources;
        e.prefixes = s.prefixes;
        e.accounts = s.accounts;
        e.pending = s.pending;
        e.pending_keys = s.pending_keys;
        e.campaigns = s.campaigns;
        e.site = s.site;
        e.site.fast.retune(&fast);
        e.site.slow.retune(&slow);
        e.now = s.now;
        e.first = s.first;
        e.offset = offset;
        e.stats = s.stats;
        e.check_indices()?;
        Ok(e)
    }

    /// Every campaign number held in the state points at a campaign: a damaged snapshot
    /// must fail here, not panic later.
    fn check_indices(&self) -> Result<(), SnapshotError> {
        let n = self.campaigns.len();
        let bad = self
            .sources
            .values()
            .filter_map(|s| s.verdict.as_ref())
            .chain(self.prefixes.values().filter_map(|p| p.verdict.as_ref()))
            .any(|v| v.campaign >= n)
            || self
                .accounts
                .values()
                .any(|a| a.targeted.is_some_and(|c| c >= n))
            || self.site.campaign.is_some_and(|c| c >= n);
        if bad {
            Err(SnapshotError::Corrupt("campaign out of range".into()))
        } else {
            Ok(())
        }
    }
}
