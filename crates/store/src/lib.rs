//! Portcullis' embedded state: what the daemon (`portcullis run`) must not forget
//! across a restart or a crash.
//!
//! What is stored, in one [redb](https://docs.rs/redb) file:
//!
//! - **bans** of networks (an address is a `/32` or `/128`), keyed by the normalised
//!   network, with an index by expiry time;
//! - **offence history**: how often each network was newly banned and when last, kept
//!   after its bans are lifted, so that repeat offenders get longer bans;
//! - **account locks**, with an index by expiry time;
//! - the **run-time allowlist** (entries the admin API added; the configuration file's
//!   allowlist is read from the file and never stored);
//! - each account's **familiar sources**, the networks it recently logged in from, for
//!   the policy server;
//! - the **engine snapshot** together with the file tailer's **positions** of exactly
//!   the lines the engine has consumed, written in one transaction, so that after a
//!   crash the daemon resumes with no log line read twice or missed.
//!
//! Durability: every change is one redb write transaction committed with
//! `Durability::Immediate`: when a method returns `Ok`, the change is on disk (synced)
//! and survives `kill -9` and power loss, as far as the disk honours its syncs. A
//! commit with `Durability::None` would live in this process's memory until a later
//! durable commit, and `kill -9` would take it away: a ban that the firewall already
//! enforces would be forgotten. Writes are few (a ban, a lock, a snapshot every few
//! seconds), so a sync per commit is cheap (a few milliseconds); [`Store::write`] puts
//! several changes in one commit. Commits are two-phase (two syncs), which redb
//! recommends when, as here, an attacker chooses part of the data written (account
//! names, networks).
//!
//! Damage: the whole file is verified (page checksums) on every open, so a damaged file
//! is an error, never a crash of the daemon; after a crash redb repairs the file to its
//! last commit during that open. It costs one read of the file at start (about 0.1 s
//! for 200,000 bans).
//!
//! Schema: the `meta` table holds the schema version, [`SCHEMA_VERSION`] (1). A new
//! file becomes a version-1 store; a file with another version, another program's
//! tables, or that is not a redb file at all is refused with an error naming it. Keys
//! are the text of networks and account names; records are JSON, readable in a dump;
//! the snapshot's engine state and positions are opaque bytes.
//!
//! Bounds: every table has a cap ([`StoreLimits`]): new bans, locks and allowlist
//! entries beyond theirs are refused ([`StoreError::Full`]); the oldest offence history
//! and the least recently seen accounts' familiar sources are forgotten to make room.
//! Account names longer than [`MAX_ACCOUNT_LEN`] are refused.
//!
//! What it is not for: sharing state between several nodes (the file is locked by the
//! one process that opens it; several nodes will use a Redis/Valkey backend behind the
//! same API), history or reporting (expired bans and locks are gone), interpreting the
//! snapshot (the engine and the sources encode their own parts).
//!
//! # Layout
//!
//! - [`Store`] (this file): opening the file, the single-change methods, and reads.
//! - [`Txn`] (`txn.rs`): one write transaction; every change is made here, and the
//!   single-change methods are one-change transactions.
//! - `tables.rs`: the tables, their keys, the record codec and the schema check.
//! - `records.rs`: [`Ban`], [`Offence`], [`Lock`], [`Snapshot`], [`Sizes`],
//!   [`StoreLimits`].
//! - `error.rs`: [`StoreError`].
#![deny(missing_docs)]

mod error;
mod records;
mod tables;
mod txn;

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata};

pub use error::StoreError;
pub use records::{Ban, Lock, Lockdown, Offence, Sizes, Snapshot, StoreLimits};
pub use tables::SCHEMA_VERSION;
pub use txn::Txn;

use tables::{
    ALLOWLIST, Allowed, BANS, FAMILIAR, FAMILIAR_ACCOUNTS, LOCKS, OFFENCES, SNAPSHOT,
    SNAPSHOT_ENGINE, SNAPSHOT_POSITIONS, SNAPSHOT_TIMES, SnapshotTimes, net_key,
};

/// Longest account name stored, in bytes. Account names come from logs, where an
/// attacker chooses them.
pub const MAX_ACCOUNT_LEN: usize = 1024;

/// The daemon's state file, open. See the crate documentation.
///
/// Methods take `&self` and may be called from several threads; write transactions
/// run one at a time.
pub struct Store {
    db: Database,
    limits: StoreLimits,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path` with the default [`StoreLimits`], creating the file
    /// and its tables if it does not exist (or is empty).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, StoreLimits::default())
    }

    /// Opens the store at `path` with these caps, creating it if needed.
    pub fn open_with(path: &Path, limits: StoreLimits) -> Result<Store, StoreError> {
        let open_error = |detail: String| StoreError::Open {
            path: path.to_owned(),
            detail,
        };
        // Without the check, redb trusts a cleanly closed file and may panic on damage.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(limits.cache_bytes)
            .create(path)
            .map_err(|e| {
                open_error(match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => {
                        "already open in another process (is another portcullis running?)".into()
                    }
                    e => format!("not a readable store: {e}"),
                })
            })?;
        let schema_error = |detail: String| StoreError::Schema {
            path: path.to_owned(),
            detail,
        };
        let store = Store {
            db,
            limits,
            path: path.to_owned(),
        };
        let tx = store.begin_write().map_err(|e| open_error(e.to_string()))?;
        tables::prepare(&tx).map_err(schema_error)?;
        tx.commit().map_err(|e| open_error(e.to_string()))?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The caps it was opened with.
    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        tx.set_two_phase_commit(true);
        Ok(tx)
    }

    /// Runs `f` on one write transaction and commits it if `f` returns `Ok`: all of its
    /// changes are durable together when this returns `Ok`, and none is made when `f`
    /// (or the commit) fails.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), portcullis_store::StoreError> {
    /// # let store = portcullis_store::Store::open(std::path::Path::new("state.redb"))?;
    /// # let (ban, snapshot): (portcullis_store::Ban, portcullis_store::Snapshot) = todo!();
    /// store.write(|txn| {
    ///     txn.put_ban(&ban)?;
    ///     txn.save_snapshot(&snapshot)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.begin_write()?;
        match f(&mut Txn::new(&tx, &self.limits)) {
            Ok(out) => {
                tx.commit()?;
                Ok(out)
            }
            Err(e) => {
                // Nothing of it is kept; an error from the abort itself adds nothing.
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// Bans a network or refreshes its ban; see [`Txn::put_ban`] for offence counting
    /// and the cap.
    pub fn put_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        self.write(|t| t.put_ban(ban))
    }

    /// Lifts a network's ban; its offence history stays.
    pub fn remove_ban(&self, net: &IpNet) -> Result<Option<Ban>, StoreError> {
        self.write(|t| t.remove_ban(net))
    }

    /// Removes and returns the bans with `until <= now`, soonest first.
    pub fn expire_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError> {
        self.write(|t| t.expire_bans(now))
    }

    /// Locks an account or refreshes its lock; see [`Txn::put_lock`].
    pub fn put_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        self.write(|t| t.put_lock(lock))
    }

    /// Lifts an account's lock.
    pub fn remove_lock(&self, account: &str) -> Result<Option<Lock>, StoreError> {
        self.write(|t| t.remove_lock(account))
    }

    /// Removes and returns the locks with `until <= now`, soonest first.
    pub fn expire_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError> {
        self.write(|t| t.expire_locks(now))
    }

    /// Adds a network to the run-time allowlist; see [`Txn::allow_add`].
    pub fn allow_add(&self, net: &IpNet, note: &str) -> Result<bool, StoreError> {
        self.write(|t| t.allow_add(net, note))
    }

    /// Removes a network from the run-time allowlist; `true` if it was there.
    pub fn allow_remove(&self, net: &IpNet) -> Result<bool, StoreError> {
        self.write(|t| t.allow_remove(net))
    }

    /// Notes a login of `account` from `net`; see [`Txn::put_familiar`].
    pub fn put_familiar(
        &self,
        account: &str,
        net: &IpNet,
        at: i64,
        max_per_account: usize,
    ) -> Result<(), StoreError> {
        self.write(|t| t.put_familiar(account, net, at, max_per_account))
    }

    /// Replaces the snapshot (engine state and file positions) in one commit.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<(), StoreError> {
        self.write(|t| t.save_snapshot(snap))
    }

    /// The current bans, in the order of their networks' text.
    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        let tx = self.db.begin_read()?;
        tables::all_records(&tx.open_table(BANS)?, "bans")
    }

    /// A network's offence history: how often it was newly banned, and when last.
    pub fn offence(&self, net: &IpNet) -> Result<Option<Offence>, StoreError> {
        let tx = self.db.begin_read()?;
        tables::get_record(
            &tx.open_table(OFFENCES)?,
            "offences",
            net_key(net).as_bytes(),
        )
    }

    /// The current account locks, in the order of their names.
    pub fn locks(&self) -> Result<Vec<Lock>, StoreError> {
        let tx = self.db.begin_read()?;
        tables::all_records(&tx.open_table(LOCKS)?, "locks")
    }

    /// The run-time allowlist: normalised networks and their notes.
    pub fn allowlist(&self) -> Result<Vec<(IpNet, String)>, StoreError> {
        let tx = self.db.begin_read()?;
        let entries: Vec<Allowed> = tables::all_records(&tx.open_table(ALLOWLIST)?, "allowlist")?;
        Ok(entries.into_iter().map(|a| (a.net, a.note)).collect())
    }

    /// An account's familiar sources with when each was last seen, most recent first.
    pub fn familiar(&self, account: &str) -> Result<Vec<(IpNet, i64)>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FAMILIAR)?;
        let mut out = tables::familiar_of(&table, account.as_bytes())?
            .into_iter()
            .map(|(net, at)| Ok((tables::parse_net("familiar", &net)?, at)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Records the lockdown state (`None`: off).
    pub fn set_lockdown(&self, lockdown: Option<&Lockdown>) -> Result<(), StoreError> {
        self.write(|t| t.set_lockdown(lockdown))
    }

    /// The lockdown state, `None` when off.
    pub fn lockdown(&self) -> Result<Option<Lockdown>, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(tables::META)?;
        let get =
            |k: &[u8]| -> Result<Option<u64>, StoreError> { Ok(meta.get(k)?.map(|v| v.value())) };
        let (Some(since), Some(until)) =
            (get(tables::LOCKDOWN_SINCE)?, get(tables::LOCKDOWN_UNTIL)?)
        else {
            return Ok(None);
        };
        Ok(Some(Lockdown {
            since: since.min(i64::MAX as u64) as i64,
            until: (until != u64::MAX).then(|| until.min(i64::MAX as u64) as i64),
            automatic: get(tables::LOCKDOWN_AUTOMATIC)? == Some(1),
        }))
    }

    /// Every account's familiar sources: (account, network, last seen), at most
    /// `limit` of them, for the policy server at start.
    pub fn all_familiar(&self, limit: usize) -> Result<Vec<(String, IpNet, i64)>, StoreError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FAMILIAR)?;
        let mut out = Vec::new();
        for row in table.iter()?.take(limit) {
            let (k, v) = row?;
            let (account, net) = k.value();
            let Ok(account) = std::str::from_utf8(account) else {
                continue;
            };
            let Ok(net) = tables::parse_net("familiar", net) else {
                continue;
            };
            out.push((account.to_owned(), net, v.value()));
        }
        Ok(out)
    }

    /// The last saved snapshot, or `None` if none was ever saved.
    pub fn load_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SNAPSHOT)?;
        let Some(times) = tables::get_record::<SnapshotTimes>(&table, "snapshot", SNAPSHOT_TIMES)?
        else {
            return Ok(None);
        };
        let blob = |key: &'static [u8]| -> Result<Vec<u8>, StoreError> {
            match table.get(key)? {
                Some(v) => Ok(v.value().to_vec()),
                None => Err(tables::corrupt("snapshot", key, "missing".into())),
            }
        };
        Ok(Some(Snapshot {
            engine: blob(SNAPSHOT_ENGINE)?,
            positions: blob(SNAPSHOT_POSITIONS)?,
            watermark: times.watermark,
            saved_at: times.saved_at,
        }))
    }

    /// How many entries each table holds.
    pub fn sizes(&self) -> Result<Sizes, StoreError> {
        let tx = self.db.begin_read()?;
        let snapshot = tx.open_table(SNAPSHOT)?;
        let mut snapshot_bytes = 0;
        for key in [SNAPSHOT_ENGINE, SNAPSHOT_POSITIONS] {
            if let Some(v) = snapshot.get(key)? {
                snapshot_bytes += v.value().len() as u64;
            }
        }
        Ok(Sizes {
            bans: tx.open_table(BANS)?.len()?,
            offences: tx.open_table(OFFENCES)?.len()?,
            locks: tx.open_table(LOCKS)?.len()?,
            allowlist: tx.open_table(ALLOWLIST)?.len()?,
            familiar_accounts: tx.open_table(FAMILIAR_ACCOUNTS)?.len()?,
            familiar_sources: tx.open_table(FAMILIAR)?.len()?,
            snapshot_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_store_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Store>();
        shared::<super::StoreError>();
    }
}
