//! The store writer: the engine's decisions and snapshots, written on a thread of
//! their own, in the order the engine made them.
//!
//! Each ban or lock is a durable store commit (two syncs, a few milliseconds), and an
//! engine snapshot can be a hundred megabytes. Done on the engine thread, the thousand
//! bans of an attack's first minute or a snapshot stopped the engine for seconds; its
//! queues filled and syslog datagrams were dropped. The engine now hands them over here
//! and goes on reading.
//!
//! Order: one queue carries both, so the decisions the engine made before a snapshot
//! are in the store before that snapshot is. After a crash, the restored engine has
//! judged no source whose ban is missing. Lifting the bans and locks that ran out (once
//! a second) goes the same way: the engine thread never touches the store, nor waits
//! for the decisions' lock.
//!
//! Memory: at most one snapshot is queued or being written (one due meanwhile waits for
//! the next chance); decisions beyond [`QUEUE`] batches are dropped and counted (a
//! judged source that fails again is banned then, as a repeat offender).

use std::net::IpAddr;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ipnet::IpNet;
use jiff::Timestamp;
use portcullis_core::engine::{Finding, Kind};
use portcullis_store::{Snapshot, Store};

use crate::daemon::Shared;

/// Batches of decisions that may wait (one per engine batch of up to 4,096 events).
pub const QUEUE: usize = 1024;

enum Job {
    Decide {
        findings: Vec<Finding>,
        /// Judged sources that failed again: banned again if their ban ran out.
        repeaters: Vec<(IpAddr, Kind)>,
    },
    /// Lift the bans and locks that ran out by then (Unix seconds).
    Expire(i64),
    Snapshot {
        snapshot: Snapshot,
        /// Successful logins' (account, network, time), written with it.
        familiar: Vec<(String, IpNet, i64)>,
        /// How long the engine took to serialise it.
        serialised: Duration,
    },
}

/// The writer thread and its queue.
pub struct StoreWriter {
    tx: SyncSender<Job>,
    /// A snapshot is queued or being written.
    busy: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl StoreWriter {
    /// Starts the thread.
    pub fn spawn(shared: Arc<Shared>, store: Arc<Store>) -> Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let busy = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&busy);
        let thread = std::thread::Builder::new()
            .name("portcullis-store".into())
            .spawn(move || write(rx, &shared, &store, &flag))
            .context("cannot start the store writer thread")?;
        Ok(Self { tx, busy, thread })
    }

    /// Queues decisions to make; false (and nothing queued) if the queue is full.
    pub fn decide(&self, findings: Vec<Finding>, repeaters: Vec<(IpAddr, Kind)>) -> bool {
        match self.tx.try_send(Job::Decide {
            findings,
            repeaters,
        }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues the lifting of bans and locks that ran out by `now`; nothing if the queue
    /// is full (the next call does it).
    pub fn expire(&self, now: i64) {
        let _ = self.tx.try_send(Job::Expire(now));
    }

    /// Whether a snapshot is queued or being written (another is not taken meanwhile).
    pub fn snapshot_pending(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Queues a snapshot; false if one is pending or the queue is full.
    pub fn snapshot(
        &self,
        snapshot: Snapshot,
        familiar: Vec<(String, IpNet, i64)>,
        serialised: Duration,
    ) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        let job = Job::Snapshot {
            snapshot,
            familiar,
            serialised,
        };
        if self.tx.try_send(job).is_err() {
            self.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Queues the last snapshot (waiting for room) and waits until everything queued
    /// has been written.
    pub fn finish(
        self,
        snapshot: Snapshot,
        familiar: Vec<(String, IpNet, i64)>,
        serialised: Duration,
    ) {
        let _ = self.tx.send(Job::Snapshot {
            snapshot,
            familiar,
            serialised,
        });
        drop(self.tx);
        if self.thread.join().is_err() {
            eprintln!("portcullis: the store writer thread panicked");
        }
    }
}

fn write(rx: Receiver<Job>, shared: &Shared, store: &Store, busy: &AtomicBool) {
    for job in rx {
        match job {
            Job::Decide {
                findings,
                repeaters,
            } => decide(shared, &findings, repeaters),
            Job::Expire(now) => expire(shared, now),
            Job::Snapshot {
                snapshot,
                familiar,
                serialised,
            } => {
                save(shared, store, &snapshot, &familiar, serialised);
                busy.store(false, Ordering::Release);
            }
        }
    }
}

/// Each decision takes the lock on its own, so the admin API waits for one store
/// commit at most, not for a whole burst.
fn decide(shared: &Shared, findings: &[Finding], repeaters: Vec<(IpAddr, Kind)>) {
    let now = Timestamp::now().as_second();
    let lock = || shared.decisions.lock().unwrap_or_else(|p| p.into_inner());
    for f in findings {
        if let Finding::Campaign {
            kind: Kind::PasswordSpray,
            distributed: true,
            ..
        } = f
            && let Some(l) = shared.policy.campaign_found(&shared.store, now)
        {
            eprintln!(
                "portcullis: lockdown on: a distributed password spray was found; only familiar places may log in until {}",
                l.until
                    .and_then(|u| Timestamp::from_second(u).ok())
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
        }
        let mut d = lock();
        if let Err(e) = d.on_finding(f, now) {
            eprintln!("portcullis: cannot record a decision: {e}");
        }
        let effects = d.take_effects();
        drop(d);
        shared.dispatch(effects);
    }
    for (a, kind) in repeaters {
        let mut d = lock();
        if let Err(e) = d.repeat_offender(a, kind, now) {
            eprintln!("portcullis: cannot record a decision: {e}");
        }
        let effects = d.take_effects();
        drop(d);
        shared.dispatch(effects);
    }
}

fn expire(shared: &Shared, now: i64) {
    let mut d = shared.decisions.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = d.expire(now) {
        eprintln!("portcullis: cannot expire bans: {e}");
    }
    let effects = d.take_effects();
    drop(d);
    shared.dispatch(effects);
}

/// Networks remembered per account in the store (most recent kept).
const FAMILIAR_PER_ACCOUNT: usize = 16;

fn save(
    shared: &Shared,
    store: &Store,
    snap: &Snapshot,
    familiar: &[(String, IpNet, i64)],
    serialised: Duration,
) {
    let started = Instant::now();
    let m = &shared.metrics;
    let saved = store.write(|t| {
        t.save_snapshot(snap)?;
        t.put_familiar_all(
            familiar.iter().map(|(a, net, at)| (a.as_str(), net, *at)),
            FAMILIAR_PER_ACCOUNT,
        )
    });
    match saved {
        Ok(()) => {
            m.snapshots.fetch_add(1, Ordering::Relaxed);
            m.snapshot_bytes
                .store(snap.engine.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            m.snapshot_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("portcullis: cannot save the engine snapshot: {e}");
        }
    }
    let took = started.elapsed() + serialised;
    if took > Duration::from_secs(1) {
        eprintln!(
            "portcullis: engine snapshot of {} bytes took {took:.1?} (the engine paused {serialised:.1?} to serialise it)",
            snap.engine.len()
        );
    }
}
