//! Decisions: from the engine's findings to bans and locks, within the operator's rules.
//!
//! - **Bans** are per network: an address is a /32 or /128. Each new ban of a network
//!   lasts `bans.duration × bans.escalation^(n−1)` for its n-th offence, never longer
//!   than `bans.max_duration`. Offences are remembered in the store after bans end.
//! - **Networks**: once `bans.prefix_members` addresses of one /24 (IPv4) or /64 (IPv6)
//!   are banned, the whole network is; the engine's verdict on a rotating IPv6 /64 bans
//!   that /64 at once.
//! - **Allowlist**: a network in the allowlist (configuration plus what the admin API
//!   added) is never banned, nor is any network that contains an allowlisted one.
//! - **Locks**: an account an attacker logged in to is locked (when `locks.compromised`).
//!
//! Every change is written to the store before it is acted on, so a crash loses no ban;
//! what to do about it (firewall, webhooks, programs) goes out as an [`Effect`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::engine::{Finding, Kind};
use portcullis_store::{Ban, Lock, Store, StoreError};

use crate::config::{BanConfig, LockConfig};
use crate::metrics::Metrics;

/// Something the actions must carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new ban, or a longer one.
    Ban(Ban),
    /// A ban lifted before its time (by an operator); expired bans leave the firewall
    /// by themselves.
    Unban(Ban),
    /// A ban that ran out (for notifications only).
    Expired(Ban),
    /// An account locked.
    Lock(Lock),
    /// An account unlocked.
    Unlock(Lock),
}

/// What [`Decisions::ban`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum BanOutcome {
    /// Banned, for this long.
    Banned(Ban),
    /// Already banned (the network, or one containing it).
    AlreadyBanned,
    /// Allowlisted: not banned.
    Allowlisted,
    /// `bans.max_bans` reached.
    Full,
}

/// The bans, locks and allowlist, as in the store, and the rules.
#[derive(Debug)]
pub struct Decisions {
    bans_cfg: BanConfig,
    locks_cfg: LockConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    bans: HashMap<IpNet, Ban>,
    locks: HashMap<String, Lock>,
    /// From the configuration, then from the store.
    allow_cfg: Vec<IpNet>,
    allow_stored: Vec<(IpNet, String)>,
    /// Banned single addresses per network, for network bans.
    members: HashMap<IpNet, Vec<IpAddr>>,
    effects: Vec<Effect>,
}

/// The network of `len` bits containing `a`.
pub fn network_of(a: IpAddr, len: u8) -> IpNet {
    IpNet::new(a, len)
        .unwrap_or_else(|_| IpNet::from(a))
        .trunc()
}

/// A single address as a network.
pub fn host(a: IpAddr) -> IpNet {
    IpNet::from(a)
}

impl Decisions {
    /// Loads what the store holds.
    pub fn load(
        bans_cfg: BanConfig,
        locks_cfg: LockConfig,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let mut d = Self {
            allow_cfg: bans_cfg.allowlist.iter().map(IpNet::trunc).collect(),
            bans_cfg,
            locks_cfg,
            bans: HashMap::new(),
            locks: HashMap::new(),
            allow_stored: store.allowlist()?,
            members: HashMap::new(),
            effects: Vec::new(),
            store,
            metrics,
        };
        for b in d.store.bans()? {
            d.note_member(&b.net);
            d.bans.insert(b.net, b);
        }
        for l in d.store.locks()? {
            d.locks.insert(l.account.clone(), l);
        }
        d.gauges();
        Ok(d)
    }

    /// Takes new rules (a reload); bans already made keep their times.
    pub fn reconfigure(&mut self, bans_cfg: BanConfig, locks_cfg: LockConfig) {
        self.allow_cfg = bans_cfg.allowlist.iter().map(IpNet::trunc).collect();
        self.bans_cfg = bans_cfg;
        self.locks_cfg = locks_cfg;
    }

    /// How long a first ban lasts (`bans.duration`), and an operator's ban by default.
    pub fn ban_duration(&self) -> Duration {
        self.bans_cfg.duration
    }

    /// How long a lock lasts (`locks.duration`), and an operator's lock by default.
    pub fn lock_duration(&self) -> Duration {
        self.locks_cfg.duration
    }

    fn gauges(&self) {
        self.metrics
            .bans_active
            .store(self.bans.len() as u64, Ordering::Relaxed);
        self.metrics
            .locks_active
            .store(self.locks.len() as u64, Ordering::Relaxed);
    }

    fn note_member(&mut self, net: &IpNet) {
        if net.prefix_len() != net.max_prefix_len() {
            return;
        }
        let a = net.addr();
        let len = self.prefix_len(a);
        let members = self.members.entry(network_of(a, len)).or_default();
        if !members.contains(&a) && members.len() < 4096 {
            members.push(a);
        }
    }

    fn prefix_len(&self, a: IpAddr) -> u8 {
        if a.is_ipv4() {
            self.bans_cfg.prefix_v4
        } else {
            self.bans_cfg.prefix_v6
        }
    }

    /// Whether `net` may not be banned: it is allowlisted, or contains or lies within
    /// an allowlisted network.
    pub fn allowlisted(&self, net: &IpNet) -> bool {
        self.allow_cfg
            .iter()
            .chain(self.allow_stored.iter().map(|(n, _)| n))
            .any(|a| a.contains(net) || net.contains(a))
    }

    /// The ban covering `a`, if any (its own, or its network's).
    pub fn ban_of(&self, a: IpAddr) -> Option<&Ban> {
        self.bans.get(&host(a)).or_else(|| {
            let len = self.prefix_len(a);
            self.bans.get(&network_of(a, len))
        })
    }

    /// Bans `net` (normalised) now, unless allowlisted or already banned.
    pub fn ban(
        &mut self,
        net: IpNet,
        reason: &str,
        kind: Option<Kind>,
        manual: Option<Duration>,
        now: i64,
    ) -> Result<BanOutcome, StoreError> {
        let net = net.trunc();
        if self.allowlisted(&net) {
            self.metrics
                .bans_allowlisted
                .fetch_add(1, Ordering::Relaxed);
            return Ok(BanOutcome::Allowlisted);
        }
        // A ban of this network that ran out before the once-a-second expiry removed
        // it ends here: otherwise the store would take the new ban for a refresh of
        // the old one and not count the offence, and escalation would stall.
        if self.bans.get(&net).is_some_and(|b| b.until <= now) {
            self.end(net)?;
        }
        let covered = self.bans.get(&net).or_else(|| {
            (net.prefix_len() == net.max_prefix_len())
                .then(|| self.ban_of(net.addr()))
                .flatten()
        });
        if manual.is_none() && covered.is_some_and(|b| b.until > now) {
            return Ok(BanOutcome::AlreadyBanned);
        }
        if !self.bans.contains_key(&net) && self.bans.len() >= self.bans_cfg.max_bans {
            self.metrics.bans_refused.fetch_add(1, Ordering::Relaxed);
            return Ok(BanOutcome::Full);
        }
        // An operator's ban replacing one in force is not a new offence (the store
        // does not count it either).
        let offences = match self.bans.get(&net).filter(|b| b.until > now) {
            Some(held) => held.offences,
            None => self.store.offence(&net)?.map_or(0, |o| o.count) + 1,
        };
        let secs = match manual {
            Some(d) => d.as_secs(),
            None => {
                let base = self.bans_cfg.duration.as_secs_f64();
                let factor = self
                    .bans_cfg
                    .escalation
                    .powi(i32::try_from(offences - 1).unwrap_or(i32::MAX));
                (base * factor).min(self.bans_cfg.max_duration.as_secs_f64()) as u64
            }
        }
        .max(1);
        let ban = Ban {
            net,
            since: now,
            until: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
            reason: reason.to_owned(),
            kind: kind.map(|k| k.as_str().to_owned()),
            manual: manual.is_some(),
            offences,
        };
        match self.store.put_ban(&ban) {
            Ok(()) => {}
            // The store's own cap (fixed when it was opened) is below bans.max_bans:
            // the same refusal, not a failure of the store.
            Err(StoreError::Full { .. }) => {
                self.metrics.bans_refused.fetch_add(1, Ordering::Relaxed);
                return Ok(BanOutcome::Full);
            }
            Err(e) => {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.metrics.bans.fetch_add(1, Ordering::Relaxed);
        self.bans.insert(net, ban.clone());
        self.effects.push(Effect::Ban(ban.clone()));
        self.note_member(&net);
        self.gauges();
        if !ban.manual {
            self.ban_network_if_many(net, now)?;
        }
        Ok(BanOutcome::Banned(ban))
    }

    /// Once enough addresses of one network are banned, the network is.
    fn ban_network_if_many(&mut self, net: IpNet, now: i64) -> Result<(), StoreError> {
        let need = self.bans_cfg.prefix_members;
        if need == 0 || net.prefix_len() != net.max_prefix_len() {
            return Ok(());
        }
        let a = net.addr();
        let network = network_of(a, self.prefix_len(a));
        let n = self.members.get(&network).map_or(0, Vec::len);
        if n >= need && self.bans.get(&network).is_none_or(|b| b.until <= now) {
            let reason = format!("{n} addresses of {network} banned");
            self.ban(network, &reason, None, None, now)?;
        }
        Ok(())
    }

    /// Lifts a ban. `None` if there was none.
    pub fn unban(&mut self, net: IpNet) -> Result<Option<Ban>, StoreError> {
        let net = net.trunc();
        let removed = self.store.remove_ban(&net)?;
        let held = self.bans.remove(&net);
        let ban = held.or(removed);
        if let Some(b) = &ban {
            self.forget_member(&b.net);
            self.metrics.unbans.fetch_add(1, Ordering::Relaxed);
            self.effects.push(Effect::Unban(b.clone()));
        }
        self.gauges();
        Ok(ban)
    }

    fn forget_member(&mut self, net: &IpNet) {
        if net.prefix_len() == net.max_prefix_len() {
            let a = net.addr();
            let network = network_of(a, self.prefix_len(a));
            if let Some(m) = self.members.get_mut(&network) {
                m.retain(|x| *x != a);
                if m.is_empty() {
                    self.members.remove(&network);
                }
            }
        }
    }

    /// Locks `account` until `now + locks.duration` (or `duration`).
    pub fn lock(
        &mut self,
        account: &str,
        reason: &str,
        duration: Option<Duration>,
        now: i64,
    ) -> Result<Option<Lock>, StoreError> {
        if self.locks.get(account).is_some_and(|l| l.until > now) && duration.is_none() {
            return Ok(None);
        }
        let secs = duration.unwrap_or(self.locks_cfg.duration).as_secs().max(1);
        let lock = Lock {
            account: account.to_owned(),
            since: now,
            until: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
            reason: reason.to_owned(),
            manual: duration.is_some(),
        };
        self.store.put_lock(&lock)?;
        self.locks.insert(lock.account.clone(), lock.clone());
        self.metrics.locks.fetch_add(1, Ordering::Relaxed);
        self.effects.push(Effect::Lock(lock.clone()));
        self.gauges();
        Ok(Some(lock))
    }

    /// Unlocks `account`. `None` if it was not locked.
    pub fn unlock(&mut self, account: &str) -> Result<Option<Lock>, StoreError> {
        let removed = self.store.remove_lock(account)?;
        let lock = self.locks.remove(account).or(removed);
        if let Some(l) = &lock {
            self.metrics.unlocks.fetch_add(1, Ordering::Relaxed);
            self.effects.push(Effect::Unlock(l.clone()));
        }
        self.gauges();
        Ok(lock)
    }

    /// Acts on one finding of the engine, at wall-clock `now`.
    pub fn on_finding(&mut self, f: &Finding, now: i64) -> Result<(), StoreError> {
        let m = &self.metrics.findings;
        match f {
            Finding::Attacker {
                source,
                kind,
                evidence,
                ..
            } => {
                m[0].fetch_add(1, Ordering::Relaxed);
                let reason = format!("{}: {evidence}", kind.as_str());
                self.ban(host(*source), &reason, Some(*kind), None, now)?;
            }
            Finding::AttackerPrefix {
                network,
                len,
                kind,
                evidence,
                ..
            } => {
                m[1].fetch_add(1, Ordering::Relaxed);
                let reason = format!("{}: {evidence}", kind.as_str());
                self.ban(network_of(*network, *len), &reason, Some(*kind), None, now)?;
            }
            Finding::Compromised {
                account,
                source,
                kind,
                ..
            } => {
                m[2].fetch_add(1, Ordering::Relaxed);
                if self.locks_cfg.compromised {
                    let reason = format!("logged in from {source} ({})", kind.as_str());
                    self.lock(account, &reason, None, now)?;
                }
            }
            Finding::Campaign { .. } => {
                m[3].fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// A source the engine judged long ago failed again: if its ban ran out, it is
    /// banned again, for longer.
    pub fn repeat_offender(&mut self, a: IpAddr, kind: Kind, now: i64) -> Result<(), StoreError> {
        if self.ban_of(a).is_some_and(|b| b.until > now) {
            return Ok(());
        }
        let reason = format!("{}: attacking again after its ban", kind.as_str());
        self.ban(host(a), &reason, Some(kind), None, now)?;
        Ok(())
    }

    /// Ends a ban that ran out (it leaves the firewall by itself).
    fn end(&mut self, net: IpNet) -> Result<(), StoreError> {
        let removed = self.store.remove_ban(&net)?;
        if let Some(b) = self.bans.remove(&net).or(removed) {
            self.forget_member(&b.net);
            self.metrics.unbans.fetch_add(1, Ordering::Relaxed);
            self.effects.push(Effect::Expired(b));
        }
        Ok(())
    }

    /// Removes what has run out by `now`.
    pub fn expire(&mut self, now: i64) -> Result<(), StoreError> {
        // Most seconds nothing ends: no store transaction then.
        let due = self.bans.values().any(|b| b.until <= now)
            || self.locks.values().any(|l| l.until <= now);
        if !due {
            return Ok(());
        }
        for b in self.store.expire_bans(now)? {
            self.bans.remove(&b.net);
            self.forget_member(&b.net);
            self.metrics.unbans.fetch_add(1, Ordering::Relaxed);
            self.effects.push(Effect::Expired(b));
        }
        self.bans.retain(|_, b| b.until > now);
        for l in self.store.expire_locks(now)? {
            self.locks.remove(&l.account);
            self.metrics.unlocks.fetch_add(1, Ordering::Relaxed);
            self.effects.push(Effect::Unlock(l));
        }
        self.locks.retain(|_, l| l.until > now);
        self.gauges();
        Ok(())
    }

    /// Adds a network to the allowlist (stored), and lifts bans it covers.
    pub fn allow(&mut self, net: IpNet, note: &str) -> Result<bool, StoreError> {
        let net = net.trunc();
        let added = self.store.allow_add(&net, note)?;
        if added {
            self.allow_stored.push((net, note.to_owned()));
        }
        let covered: Vec<IpNet> = self
            .bans
            .keys()
            .filter(|b| net.contains(*b) || b.contains(&net))
            .copied()
            .collect();
        for b in covered {
            self.unban(b)?;
        }
        Ok(added)
    }

    /// Removes a network the admin API added to the allowlist.
    pub fn disallow(&mut self, net: IpNet) -> Result<bool, StoreError> {
        let net = net.trunc();
        self.allow_stored.retain(|(n, _)| *n != net);
        self.store.allow_remove(&net)
    }

    /// The allowlist: (network, where it comes from or its note).
    pub fn allowlist(&self) -> Vec<(IpNet, String)> {
        self.allow_cfg
            .iter()
            .map(|n| (*n, "configuration".to_owned()))
            .chain(self.allow_stored.iter().cloned())
            .collect()
    }

    /// Bans in force, newest first.
    pub fn bans(&self) -> Vec<Ban> {
        let mut v: Vec<Ban> = self.bans.values().cloned().collect();
        v.sort_by(|a, b| b.since.cmp(&a.since).then(a.net.cmp(&b.net)));
        v
    }

    /// Locks in force, newest first.
    pub fn locks(&self) -> Vec<Lock> {
        let mut v: Vec<Lock> = self.locks.values().cloned().collect();
        v.sort_by(|a, b| b.since.cmp(&a.since).then(a.account.cmp(&b.account)));
        v
    }

    /// Hands over what the actions must do.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}

#[cfg(test)]
mod tests;
