//! Replaying many logs as one stream in time order, in bounded memory.
//!
//! `analyze` feeds the engine in event time. Each log is nearly in time order already
//! (syslog writes lines as they happen) but not exactly: an attempt spread over several
//! lines (an sshd connection, a Dovecot session) is emitted when its last line arrives,
//! stamped with the time of its first, and a relay's clock may lag. And the files of one
//! incident interleave: `mail.log.2.gz`, `mail.log.1`, `auth.log` cover the same hours.
//!
//! So every file gets its own reading thread and parsing thread, and a [`Reorder`]
//! buffer that holds its events until the file's clock has moved a window past them;
//! a k-way merge across the files then hands the caller one stream. Memory is bounded
//! by the buffers' caps and the channels' depth whatever the size of the input: a file
//! that runs ahead of the others waits on its channel.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::mpsc;

use anyhow::{Context, Result};
use portcullis_core::Event;
use portcullis_parse::Stats;

use crate::input;
use crate::options::ReadOptions;
use crate::pipeline;

/// How far events may be out of order within one file, and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events are held until their file's clock is this far past them (seconds). Ten
    /// minutes covers the longest a parser holds an attempt back (Dovecot's
    /// correlation expiry; sshd's login grace time is two).
    pub window_secs: i64,
    /// Events held across all files' buffers at most; each file gets an equal share
    /// (at least [`MIN_PER_FILE`]). When a buffer is full its oldest event goes early.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            window_secs: 600,
            max_buffered: 262_144,
        }
    }
}

/// The smallest reorder buffer a file gets, however many files there are.
pub const MIN_PER_FILE: usize = 4096;
/// Events handed from a file's parser to the merge at a time.
const BATCH_EVENTS: usize = 4096;
/// Batches that may wait between a file's parser and the merge.
const CHANNEL_BATCHES: usize = 2;

/// What the merge counted besides the parsers' own counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct MergeStats {
    /// Events that reached the caller after a later one of the same file: their delay
    /// exceeded the window, or a full buffer let newer events go first.
    pub late: u64,
}

/// Parses `files` concurrently and calls `on_event` with every event in time order
/// (events without a time first, as they come). Returns the parsers' counts.
pub fn in_time_order(
    files: &[String],
    read: &ReadOptions,
    quiet: bool,
    limits: Limits,
    mut on_event: impl FnMut(Event),
) -> Result<(Stats, MergeStats)> {
    let time_zone = read.time_zone()?;
    let accounts = read.account_rules()?;
    let documents = read.documents()?;
    let documents = &documents;
    let rules = read.parse_rules()?;
    // Every file is read at once: one that cannot be opened must stop the run before
    // the others are read to their end.
    for name in files.iter().filter(|n| n.as_str() != "-") {
        let meta = std::fs::metadata(name).with_context(|| format!("cannot open {name}"))?;
        if meta.is_dir() {
            anyhow::bail!("{name} is a directory");
        }
    }
    let per_file = (limits.max_buffered / files.len().max(1)).max(MIN_PER_FILE);
    let progress = input::progress(files, quiet);
    let result = std::thread::scope(|scope| {
        let mut streams = Vec::with_capacity(files.len());
        let mut parsers = Vec::with_capacity(files.len());
        for name in files {
            let (feed_tx, feed_rx) = pipeline::feed(4);
            let (event_tx, event_rx) = mpsc::sync_channel::<Vec<Event>>(CHANNEL_BATCHES);
            let progress = progress.clone();
            let mut prefilter = pipeline::prefilter(rules.as_ref());
            scope.spawn(move || {
                pipeline::read_file(
                    name,
                    read.max_line,
                    documents.format,
                    &progress,
                    &mut prefilter,
                    &feed_tx,
                );
            });
            let (time_zone, accounts, rules) = (time_zone.clone(), accounts.clone(), rules.clone());
            parsers.push(scope.spawn(move || {
                let mut reorder = Reorder::new(limits.window_secs, per_file);
                let mut out = Vec::with_capacity(BATCH_EVENTS);
                let parse = pipeline::Parsing {
                    year: read.year,
                    time_zone: &time_zone,
                    accounts: &accounts,
                    rules: rules.as_ref(),
                    documents,
                };
                let stats = pipeline::parse_feed(&parse, feed_rx, &mut |b| {
                    for e in b {
                        reorder.push(e, &mut out);
                    }
                    out.len() < BATCH_EVENTS || event_tx.send(std::mem::take(&mut out)).is_ok()
                })?;
                reorder.flush(&mut out);
                // The merge reads every stream to its end; a failed send has no one to tell.
                let _ = event_tx.send(out);
                Ok::<_, anyhow::Error>((stats, reorder.late))
            }));
            streams.push(Stream::new(event_rx));
        }
        merge(&mut streams, &mut on_event);
        drop(streams);
        let mut total = Stats::default();
        let mut merged = MergeStats::default();
        for handle in parsers {
            let (stats, late) = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a parsing thread failed"))??;
            total.add(&stats);
            merged.late += late;
        }
        Ok((total, merged))
    });
    progress.finish_and_clear();
    result
}

/// The sort key: nanoseconds since the epoch; events without a time sort first.
fn key(e: &Event) -> i128 {
    e.time.map_or(i128::MIN, |t| t.instant.as_nanosecond())
}

/// One file's events as the merge sees them: the batch being drained and its channel.
struct Stream {
    rx: mpsc::Receiver<Vec<Event>>,
    batch: std::vec::IntoIter<Event>,
}

impl Stream {
    fn new(rx: mpsc::Receiver<Vec<Event>>) -> Self {
        Self {
            rx,
            batch: Vec::new().into_iter(),
        }
    }

    /// The next event, waiting for the parser if need be; None once the file is done.
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.batch.next() {
                return Some(e);
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// Merges the streams by key. Each stream is in order but for its late events, which
/// come out where their stream has them.
fn merge(streams: &mut [Stream], on_event: &mut impl FnMut(Event)) {
    let mut heads: Vec<Option<Event>> = streams.iter_mut().map(Stream::next).collect();
    let mut heap: BinaryHeap<Reverse<(i128, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|e| Reverse((key(e), i))))
        .collect();
    while let Some(Reverse((_, i))) = heap.pop() {
        // Drain this stream while it stays ahead of every other one.
        let bound = heap.peek().map_or(i128::MAX, |Reverse((k, _))| *k);
        while let Some(e) = heads[i].take() {
            on_event(e);
            heads[i] = streams[i].next();
            match &heads[i] {
                Some(next) if key(next) > bound => {
                    heap.push(Reverse((key(next), i)));
                    break;
                }
                _ => {}
            }
        }
    }
}

/// Holds one file's events until they are a window old in that file's clock, so that
/// they leave in time order; bounded by a cap, past which the oldest leave early.
pub struct Reorder {
    queue: VecDeque<(i128, Event)>,
    window: i128,
    cap: usize,
    newest: i128,
    released: i128,
    /// Events released after a later one.
    pub late: u64,
}

impl Reorder {
    /// A buffer holding events for `window_secs` of event time, at most `cap` of them.
    pub fn new(window_secs: i64, cap: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            window: i128::from(window_secs.max(0)) * 1_000_000_000,
            cap: cap.max(1),
            newest: i128::MIN,
            released: i128::MIN,
            late: 0,
        }
    }

    /// Takes an event; appends to `out` every event that is now due.
    pub fn push(&mut self, e: Event, out: &mut Vec<Event>) {
        let k = key(&e);
        if e.time.is_none() {
            out.push(e);
            return;
        }
        if k < self.released {
            // Its place has gone already: out of order, but never lost.
            self.late += 1;
            out.push(e);
            return;
        }
        match self.queue.back() {
            Some((last, _)) if k < *last => {
                let at = self.queue.partition_point(|(q, _)| *q <= k);
                self.queue.insert(at, (k, e));
            }
            _ => self.queue.push_back((k, e)),
        }
        self.newest = self.newest.max(k);
        let due = self.newest.saturating_sub(self.window);
        while let Some((front, _)) = self.queue.front() {
            if *front > due && self.queue.len() <= self.cap {
                break;
            }
            if let Some((k, e)) = self.queue.pop_front() {
                self.released = self.released.max(k);
                out.push(e);
            }
        }
    }

    /// Appends every event still held, in order.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        for (k, e) in self.queue.drain(..) {
            self.released = self.released.max(k);
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::event::{EventTime, Outcome, Service};

    fn at(secs: i64) -> Event {
        let mut e = Event::new(Service::Sshd, Outcome::Success);
        e.time = Some(EventTime::utc(
            jiff::Timestamp::from_second(secs).expect("valid"),
        ));
        e
    }

    fn secs(events: &[Event]) -> Vec<i64> {
        events
            .iter()
            .map(|e| e.time.map_or(-1, |t| t.instant.as_second()))
            .collect()
    }

    #[test]
    fn reorder_sorts_within_the_window() {
        let mut r = Reorder::new(60, 1000);
        let mut out = Vec::new();
        for s in [100, 130, 110, 170, 120, 240] {
            r.push(at(s), &mut out);
        }
        // At 240 everything up to 180 is due; 240 waits.
        assert_eq!(secs(&out), [100, 110, 120, 130, 170]);
        r.push(at(400), &mut out);
        assert_eq!(secs(&out), [100, 110, 120, 130, 170, 240]);
        r.flush(&mut out);
        assert_eq!(secs(&out), [100, 110, 120, 130, 170, 240, 400]);
        assert_eq!(r.late, 0);
    }

    #[test]
    fn an_event_later_than_the_window_is_counted_and_kept() {
        let mut r = Reorder::new(60, 1000);
        let mut out = Vec::new();
        for s in [100, 200, 300, 150] {
            r.push(at(s), &mut out);
        }
        r.flush(&mut out);
        assert_eq!(secs(&out), [100, 200, 150, 300]);
        assert_eq!(r.late, 1);
    }

    #[test]
    fn a_full_buffer_releases_its_oldest() {
        let mut r = Reorder::new(3600, 3);
        let mut out = Vec::new();
        for s in [10, 11, 12, 13, 14] {
            r.push(at(s), &mut out);
        }
        assert_eq!(secs(&out), [10, 11]);
        assert_eq!(r.queue.len(), 3);
    }

    #[test]
    fn events_without_time_pass_at_once() {
        let mut r = Reorder::new(60, 10);
        let mut out = Vec::new();
        r.push(at(10), &mut out);
        r.push(Event::new(Service::Sshd, Outcome::Success), &mut out);
        assert_eq!(secs(&out), [-1]);
    }

    #[test]
    fn merge_interleaves_streams_by_time() {
        let mut streams = Vec::new();
        let mut senders = Vec::new();
        for times in [vec![vec![1, 4], vec![9]], vec![vec![2, 3, 10]], vec![]] {
            let (tx, rx) = mpsc::sync_channel(4);
            for batch in times {
                tx.send(batch.into_iter().map(at).collect()).expect("open");
            }
            senders.push(tx);
            streams.push(Stream::new(rx));
        }
        drop(senders);
        let mut got = Vec::new();
        merge(&mut streams, &mut |e| got.push(e));
        assert_eq!(secs(&got), [1, 2, 3, 4, 9, 10]);
    }
}
