//! The bounded table that lets one Dovecot attempt count once.
//!
//! Dovecot's auth process logs each failed attempt (with the precise reason) and the
//! login process later logs the connection's total (`auth failed, 3 attempts`). The
//! auth-side events are emitted at once and remembered here, keyed by session id and by
//! (address, lower-cased user), so that the login line only adds the attempts nobody
//! counted yet. PAM's own `pam_unix` line is a third report of the same attempt and is
//! remembered the same way.
//!
//! Memory is bounded twice: a hard cap on entries (oldest evicted first) and an expiry
//! of ten minutes measured in event time (the log's clock, never the wall clock, so a
//! replay behaves like live reading).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Default cap on remembered auth-side attempts.
pub(crate) const DEFAULT_CAP: usize = 65_536;
/// Entries older than this (event time, seconds) behind the newest seen are dropped.
const EXPIRY_SECS: i64 = 600;

/// Who reported an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporter {
    /// Dovecot's auth process (`sql(...)`, `pam(...)`, 2.4 `auth(...)`).
    Dovecot,
    /// The PAM module itself (`pam_unix(dovecot:auth)`), which Dovecot's own `pam(...)`
    /// line may repeat.
    PamModule,
}

#[derive(Debug)]
struct Entry {
    /// Event time in seconds, when the line had one.
    time: Option<i64>,
    session: Option<Box<str>>,
    pair: (IpAddr, Box<str>),
    attempts: u32,
    reporter: Reporter,
}

/// Remembered auth-side attempts.
#[derive(Debug)]
pub(crate) struct Table {
    entries: HashMap<u64, Entry>,
    /// Insertion order, for eviction; may hold ids already removed (skipped lazily and
    /// compacted when it grows past twice the cap).
    order: VecDeque<u64>,
    by_session: HashMap<Box<str>, Vec<u64>>,
    by_pair: HashMap<(IpAddr, Box<str>), Vec<u64>>,
    next_id: u64,
    newest: Option<i64>,
    cap: usize,
}

impl Default for Table {
    fn default() -> Self {
        Self::with_cap(DEFAULT_CAP)
    }
}

/// What a lookup matches against.
pub(crate) struct Probe<'a> {
    pub session: Option<&'a str>,
    pub addr: Option<IpAddr>,
    /// Lower-cased user.
    pub user: Option<&'a str>,
    pub time: Option<i64>,
    /// Accept entries at most this many seconds before `time` (and a little after).
    pub window: i64,
}

/// Seconds an auth line may be logged after the line it is compared with (separate
/// processes write to the log, so order within a second or two is not guaranteed).
const LATE_SLACK: i64 = 5;

impl Table {
    pub(crate) fn with_cap(cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            by_session: HashMap::new(),
            by_pair: HashMap::new(),
            next_id: 0,
            newest: None,
            cap: cap.max(1),
        }
    }

    /// How many attempts are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::with_cap(self.cap);
    }

    /// Advances event time and drops what has expired.
    pub(crate) fn tick(&mut self, time: Option<i64>) {
        let Some(t) = time else { return };
        if self.newest.is_none_or(|n| t > n) {
            self.newest = Some(t);
        }
        let Some(newest) = self.newest else { return };
        while let Some(&id) = self.order.front() {
            match self.entries.get(&id) {
                None => {
                    self.order.pop_front();
                }
                Some(e) if e.time.is_some_and(|et| et < newest - EXPIRY_SECS) => {
                    self.remove(id);
                    self.order.pop_front();
                }
                Some(_) => break,
            }
        }
    }

    /// Remembers one auth-side report.
    pub(crate) fn insert(
        &mut self,
        time: Option<i64>,
        session: Option<&str>,
        addr: IpAddr,
        user_lower: &str,
        attempts: u32,
        reporter: Reporter,
    ) {
        self.tick(time);
        while self.entries.len() >= self.cap {
            match self.order.pop_front() {
                Some(id) => self.remove(id),
                None => break,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let session: Option<Box<str>> = session.map(Into::into);
        let pair: (IpAddr, Box<str>) = (addr, user_lower.into());
        if let Some(s) = &session {
            self.by_session.entry(s.clone()).or_default().push(id);
        }
        self.by_pair.entry(pair.clone()).or_default().push(id);
        self.entries.insert(
            id,
            Entry {
                time,
                session,
                pair,
                attempts,
                reporter,
            },
        );
        self.order.push_back(id);
        if self.order.len() > 2 * self.cap + 16 {
            let entries = &self.entries;
            self.order.retain(|id| entries.contains_key(id));
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(e) = self.entries.remove(&id) else {
            return;
        };
        if let Some(s) = &e.session {
            if let Some(ids) = self.by_session.get_mut(s) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    self.by_session.remove(s);
                }
            }
        }
        if let Some(ids) = self.by_pair.get_mut(&e.pair) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.by_pair.remove(&e.pair);
            }
        }
    }

    fn in_window(entry_time: Option<i64>, probe: &Probe<'_>) -> bool {
        match (entry_time, probe.time) {
            (Some(et), Some(t)) => et >= t - probe.window && et <= t + LATE_SLACK,
            // A line without a time cannot be placed; matching errs on the side of
            // counting once.
            _ => true,
        }
    }

    /// Removes the entries that stand for the same attempts as a login-process line and
    /// returns how many attempts they had already counted.
    pub(crate) fn take(&mut self, probe: &Probe<'_>) -> u32 {
        let mut ids: Vec<u64> = Vec::new();
        if let Some(s) = probe.session {
            if let Some(found) = self.by_session.get(s) {
                ids.extend(found.iter().copied());
            }
        }
        if ids.is_empty() {
            if let (Some(addr), Some(user)) = (probe.addr, probe.user) {
                if let Some(found) = self.by_pair.get(&(addr, Box::<str>::from(user))) {
                    for &id in found {
                        let Some(e) = self.entries.get(&id) else {
                            continue;
                        };
                        // An entry from another session is another connection.
                        let same_conn = match (&e.session, probe.session) {
                            (Some(es), Some(ps)) => &**es == ps,
                            _ => true,
                        };
                        if same_conn && Self::in_window(e.time, probe) {
                            ids.push(id);
                        }
                    }
                }
            }
        }
        let mut counted: u32 = 0;
        for id in ids {
            if let Some(e) = self.entries.get(&id) {
                counted = counted.saturating_add(e.attempts);
            }
            self.remove(id);
        }
        counted
    }

    /// Forgets a session (after a successful login nothing more will be reported on it).
    pub(crate) fn forget_session(&mut self, session: &str) {
        if let Some(ids) = self.by_session.get(session).cloned() {
            for id in ids {
                self.remove(id);
            }
        }
    }

    /// Finds a `pam_unix` report of the attempt Dovecot's `pam(...)` line is now
    /// reporting; if there is one, it becomes Dovecot's (takes the session) and the caller
    /// must not count the attempt again.
    pub(crate) fn claim_pam_module(&mut self, probe: &Probe<'_>) -> bool {
        let (Some(addr), Some(user)) = (probe.addr, probe.user) else {
            return false;
        };
        let key = (addr, Box::<str>::from(user));
        let Some(found) = self.by_pair.get(&key) else {
            return false;
        };
        let hit = found.iter().copied().find(|id| {
            self.entries.get(id).is_some_and(|e| {
                e.reporter == Reporter::PamModule && Self::in_window(e.time, probe)
            })
        });
        let Some(id) = hit else { return false };
        if let Some(e) = self.entries.get_mut(&id) {
            e.reporter = Reporter::Dovecot;
            if e.session.is_none() {
                if let Some(s) = probe.session {
                    e.session = Some(s.into());
                    self.by_session.entry(s.into()).or_default().push(id);
                }
            }
        }
        true
    }
}
