//! One write transaction: every change the store makes goes through [`Txn`].

use ipnet::IpNet;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::tables::{
    self, ALLOWLIST, Allowed, BAN_EXPIRY, BANS, FAMILIAR, FAMILIAR_ACCOUNTS, FAMILIAR_AGE,
    LOCK_EXPIRY, LOCKS, OFFENCE_AGE, OFFENCES, SNAPSHOT, SNAPSHOT_ENGINE, SNAPSHOT_POSITIONS,
    SNAPSHOT_TIMES, SnapshotTimes, net_key,
};
use crate::tables::{LOCKDOWN_AUTOMATIC, LOCKDOWN_SINCE, LOCKDOWN_UNTIL};
use crate::{Ban, Lock, Lockdown, MAX_ACCOUNT_LEN, Offence, Snapshot, StoreError, StoreLimits};

/// Changes made in one write transaction, given to the closure of
/// [`crate::Store::write`]. They are committed together when the closure returns `Ok`,
/// and none of them is when it returns `Err`.
///
/// A method that fails with [`StoreError::Full`] or [`StoreError::Invalid`] has changed
/// nothing, so the closure may carry on with the transaction after it.
pub struct Txn<'a> {
    tx: &'a WriteTransaction,
    limits: &'a StoreLimits,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(tx: &'a WriteTransaction, limits: &'a StoreLimits) -> Self {
        Self { tx, limits }
    }

    /// The current ban of this network (normalised), as this transaction sees it.
    pub fn ban(&self, net: &IpNet) -> Result<Option<Ban>, StoreError> {
        let bans = self.tx.open_table(BANS)?;
        tables::get_record(&bans, "bans", net_key(net).as_bytes())
    }

    /// This network's offence history, as this transaction sees it.
    pub fn offence(&self, net: &IpNet) -> Result<Option<Offence>, StoreError> {
        let offences = self.tx.open_table(OFFENCES)?;
        tables::get_record(&offences, "offences", net_key(net).as_bytes())
    }

    /// Bans a network, or refreshes its current ban (replacing the record).
    ///
    /// A *new* ban (the network had no current ban) counts an offence: the network's
    /// offence count goes up by one and its `last` becomes the ban's `since`. A
    /// refreshed ban does not count again. A new ban beyond `max_bans` is refused with
    /// [`StoreError::Full`]; refreshing is always allowed.
    pub fn put_ban(&mut self, ban: &Ban) -> Result<(), StoreError> {
        let key = net_key(&ban.net);
        let record = Ban {
            net: ban.net.trunc(),
            ..ban.clone()
        };
        let value = tables::encode(&record)?;
        let mut bans = self.tx.open_table(BANS)?;
        let mut expiry = self.tx.open_table(BAN_EXPIRY)?;
        let old: Option<Ban> = tables::get_record(&bans, "bans", key.as_bytes())?;
        match &old {
            Some(old) => {
                expiry.remove((old.until, key.as_bytes()))?;
            }
            None if bans.len()? >= self.limits.max_bans => {
                return Err(StoreError::Full {
                    table: "bans",
                    cap: self.limits.max_bans,
                });
            }
            None => {}
        }
        bans.insert(key.as_bytes(), value.as_slice())?;
        expiry.insert((record.until, key.as_bytes()), ())?;
        drop((bans, expiry));
        if old.is_none() {
            self.count_offence(key.as_bytes(), record.since)?;
        }
        Ok(())
    }

    /// Counts a new offence of the network with this key, evicting the network whose
    /// last offence is oldest when the table is full.
    fn count_offence(&mut self, key: &[u8], at: i64) -> Result<(), StoreError> {
        let cap = self.limits.max_offences;
        if cap == 0 {
            return Ok(());
        }
        let mut offences = self.tx.open_table(OFFENCES)?;
        let mut age = self.tx.open_table(OFFENCE_AGE)?;
        let old: Option<Offence> = tables::get_record(&offences, "offences", key)?;
        let new = match old {
            Some(old) => {
                age.remove((old.last, key))?;
                Offence {
                    count: old.count.saturating_add(1),
                    last: old.last.max(at),
                }
            }
            None => {
                while offences.len()? >= cap {
                    let Some(oldest) = pop_oldest(&mut age)? else {
                        break;
                    };
                    offences.remove(oldest.as_slice())?;
                }
                Offence { count: 1, last: at }
            }
        };
        offences.insert(key, tables::encode(&new)?.as_slice())?;
        age.insert((new.last, key), ())?;
        Ok(())
    }

    /// Lifts the ban of this network (normalised); its offence history stays.
    pub fn remove_ban(&mut self, net: &IpNet) -> Result<Option<Ban>, StoreError> {
        let key = net_key(net);
        let mut bans = self.tx.open_table(BANS)?;
        let Some(value) = bans.remove(key.as_bytes())? else {
            return Ok(None);
        };
        let ban: Ban = tables::decode("bans", key.as_bytes(), value.value())?;
        drop(value);
        self.tx
            .open_table(BAN_EXPIRY)?
            .remove((ban.until, key.as_bytes()))?;
        Ok(Some(ban))
    }

    /// Removes and returns the bans with `until <= now`, soonest first.
    pub fn expire_bans(&mut self, now: i64) -> Result<Vec<Ban>, StoreError> {
        self.expire(BANS, BAN_EXPIRY, "bans", now)
    }

    /// The current lock of this account, as this transaction sees it.
    pub fn lock(&self, account: &str) -> Result<Option<Lock>, StoreError> {
        let locks = self.tx.open_table(LOCKS)?;
        tables::get_record(&locks, "locks", account.as_bytes())
    }

    /// Locks an account, or refreshes its current lock. A new lock beyond `max_locks`
    /// is refused with [`StoreError::Full`].
    pub fn put_lock(&mut self, lock: &Lock) -> Result<(), StoreError> {
        check_account(&lock.account)?;
        let key = lock.account.as_bytes();
        let value = tables::encode(lock)?;
        let mut locks = self.tx.open_table(LOCKS)?;
        let mut expiry = self.tx.open_table(LOCK_EXPIRY)?;
        let old: Option<Lock> = tables::get_record(&locks, "locks", key)?;
        match &old {
            Some(old) => {
                expiry.remove((old.until, key))?;
            }
            None if locks.len()? >= self.limits.max_locks => {
                return Err(StoreError::Full {
                    table: "locks",
                    cap: self.limits.max_locks,
                });
            }
            None => {}
        }
        locks.insert(key, value.as_slice())?;
        expiry.insert((lock.until, key), ())?;
        Ok(())
    }

    /// Lifts the lock of this account.
    pub fn remove_lock(&mut self, account: &str) -> Result<Option<Lock>, StoreError> {
        let key = account.as_bytes();
        let mut locks = self.tx.open_table(LOCKS)?;
        let Some(value) = locks.remove(key)? else {
            return Ok(None);
        };
        let lock: Lock = tables::decode("locks", key, value.value())?;
        drop(value);
        self.tx.open_table(LOCK_EXPIRY)?.remove((lock.until, key))?;
        Ok(Some(lock))
    }

    /// Removes and returns the locks with `until <= now`, soonest first.
    pub fn expire_locks(&mut self, now: i64) -> Result<Vec<Lock>, StoreError> {
        self.expire(LOCKS, LOCK_EXPIRY, "locks", now)
    }

    fn expire<T: serde::de::DeserializeOwned>(
        &mut self,
        records: redb::TableDefinition<&[u8], &[u8]>,
        index: redb::TableDefinition<(i64, &[u8]), ()>,
        name: &'static str,
        now: i64,
    ) -> Result<Vec<T>, StoreError> {
        let mut index = self.tx.open_table(index)?;
        let mut records = self.tx.open_table(records)?;
        let mut out = Vec::new();
        for (at, key) in tables::due(&index, now)? {
            index.remove((at, key.as_slice()))?;
            if let Some(value) = records.remove(key.as_slice())? {
                out.push(tables::decode(name, &key, value.value())?);
            }
        }
        Ok(out)
    }

    /// Adds a network (normalised) to the run-time allowlist; `true` if it was not there.
    /// An entry already there keeps its place and takes the new note. A new entry beyond
    /// `max_allowlist` is refused with [`StoreError::Full`].
    pub fn allow_add(&mut self, net: &IpNet, note: &str) -> Result<bool, StoreError> {
        let key = net_key(net);
        let value = tables::encode(&Allowed {
            net: net.trunc(),
            note: note.to_owned(),
        })?;
        let mut allow = self.tx.open_table(ALLOWLIST)?;
        let new = allow.get(key.as_bytes())?.is_none();
        if new && allow.len()? >= self.limits.max_allowlist {
            return Err(StoreError::Full {
                table: "allowlist",
                cap: self.limits.max_allowlist,
            });
        }
        allow.insert(key.as_bytes(), value.as_slice())?;
        Ok(new)
    }

    /// Removes a network (normalised) from the run-time allowlist; `true` if it was there.
    pub fn allow_remove(&mut self, net: &IpNet) -> Result<bool, StoreError> {
        let key = net_key(net);
        let mut allow = self.tx.open_table(ALLOWLIST)?;
        Ok(allow.remove(key.as_bytes())?.is_some())
    }

    /// Notes that `account` logged in from `net` (normalised) at `at`. The account keeps
    /// its `max_per_account` most recently seen networks (at least one); when
    /// `max_familiar_accounts` accounts are known, the one seen least recently is
    /// forgotten to make room for a new one.
    pub fn put_familiar(
        &mut self,
        account: &str,
        net: &IpNet,
        at: i64,
        max_per_account: usize,
    ) -> Result<(), StoreError> {
        self.put_familiar_all([(account, net, at)], max_per_account)
    }

    /// [`Txn::put_familiar`] for many logins, opening the tables once (a snapshot
    /// writes every login seen since the last one). Stops at the first error.
    pub fn put_familiar_all<'l>(
        &mut self,
        logins: impl IntoIterator<Item = (&'l str, &'l IpNet, i64)>,
        max_per_account: usize,
    ) -> Result<(), StoreError> {
        let cap = self.limits.max_familiar_accounts;
        if cap == 0 {
            for (account, _, _) in logins {
                check_account(account)?;
            }
            return Ok(());
        }
        let mut accounts = self.tx.open_table(FAMILIAR_ACCOUNTS)?;
        let mut age = self.tx.open_table(FAMILIAR_AGE)?;
        let mut familiar = self.tx.open_table(FAMILIAR)?;
        let mut count = accounts.len()?;
        for (account, net, at) in logins {
            check_account(account)?;
            let acct = account.as_bytes();
            let key = net_key(net);
            let last = accounts.get(acct)?.map(|v| v.value());
            match last {
                Some(last) => {
                    age.remove((last, acct))?;
                }
                None => {
                    while count >= cap {
                        let Some(oldest) = pop_oldest(&mut age)? else {
                            break;
                        };
                        if accounts.remove(oldest.as_slice())?.is_some() {
                            count -= 1;
                        }
                        for (net, _) in tables::familiar_of(&familiar, &oldest)? {
                            familiar.remove((oldest.as_slice(), net.as_slice()))?;
                        }
                    }
                }
            }
            let seen = familiar
                .get((acct, key.as_bytes()))?
                .map_or(at, |v| v.value().max(at));
            familiar.insert((acct, key.as_bytes()), seen)?;
            let mut known = tables::familiar_of(&familiar, acct)?;
            let keep = max_per_account.max(1);
            if known.len() > keep {
                // Oldest first; among equals, the network key decides, so that the
                // outcome does not depend on insertion order.
                known.sort_by(|(na, a), (nb, b)| a.cmp(b).then_with(|| na.cmp(nb)));
                for (net, _) in &known[..known.len() - keep] {
                    familiar.remove((acct, net.as_slice()))?;
                }
            }
            let last_seen = last.map_or(at, |l| l.max(at));
            if accounts.insert(acct, last_seen)?.is_none() {
                count += 1;
            }
            age.insert((last_seen, acct), ())?;
        }
        Ok(())
    }

    /// Records the lockdown state (`None`: off).
    pub fn set_lockdown(&mut self, lockdown: Option<&Lockdown>) -> Result<(), StoreError> {
        let mut meta = self.tx.open_table(tables::META)?;
        match lockdown {
            None => {
                for k in [LOCKDOWN_SINCE, LOCKDOWN_UNTIL, LOCKDOWN_AUTOMATIC] {
                    meta.remove(k)?;
                }
            }
            Some(l) => {
                meta.insert(LOCKDOWN_SINCE, l.since.max(0) as u64)?;
                meta.insert(
                    LOCKDOWN_UNTIL,
                    l.until.map_or(u64::MAX, |u| u.max(0) as u64),
                )?;
                meta.insert(LOCKDOWN_AUTOMATIC, u64::from(l.automatic))?;
            }
        }
        Ok(())
    }

    /// Replaces the snapshot: the engine's state and the file positions together.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StoreError> {
        let times = tables::encode(&SnapshotTimes {
            watermark: snap.watermark,
            saved_at: snap.saved_at,
        })?;
        let mut table = self.tx.open_table(SNAPSHOT)?;
        table.insert(SNAPSHOT_ENGINE, snap.engine.as_slice())?;
        table.insert(SNAPSHOT_POSITIONS, snap.positions.as_slice())?;
        table.insert(SNAPSHOT_TIMES, times.as_slice())?;
        Ok(())
    }
}

/// Removes the oldest entry of a time index and returns its name.
fn pop_oldest(
    index: &mut redb::Table<'_, (i64, &'static [u8]), ()>,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(index.pop_first()?.map(|(key, _)| key.value().1.to_vec()))
}

fn check_account(account: &str) -> Result<(), StoreError> {
    if account.len() > MAX_ACCOUNT_LEN {
        return Err(StoreError::Invalid(format!(
            "account name of {} bytes (at most {MAX_ACCOUNT_LEN})",
            account.len()
        )));
    }
    Ok(())
}
