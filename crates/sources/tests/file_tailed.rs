//! In-band positions: the tailer's thread sends `Tailed::Positions` after the lines they
//! cover, and a tailer resumed from the last positions a consumer received sends exactly
//! the lines after them. The consumer here behaves like the daemon: it commits its
//! state with each `Positions` it receives, and a crash loses what it received since.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_sources::checkpoint::Record;
use portcullis_sources::file::{self, FileConfig, StartAt, Tailed, Tailer};
use proptest::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

fn config(dir: &Path, resume: Option<Vec<Record>>) -> FileConfig {
    FileConfig {
        include: vec![format!("{}/mail.log*", dir.display())],
        resume,
        start_at: StartAt::Beginning,
        fingerprint_bytes: 16,
        max_line: 1000,
        glob_interval: Duration::from_millis(1),
        poll_interval: Duration::from_millis(1),
        ..FileConfig::default()
    }
}

/// Writes `mail.log`, rotating it by rename; remembers every line written.
struct Writer {
    dir: PathBuf,
    generation: u32,
    written: u32,
    expected: Vec<String>,
}

impl Writer {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            generation: 0,
            written: 0,
            expected: Vec::new(),
        }
    }

    fn append(&mut self, n: usize) {
        let mut text = String::new();
        for _ in 0..n {
            let line = format!("g{} n{:04} login failed", self.generation, self.written);
            self.written += 1;
            text.push_str(&line);
            text.push('\n');
            self.expected.push(line);
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mail.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// `mail.log` → `mail.log.G`; the next append starts a new `mail.log`.
    fn rotate(&mut self) {
        let from = self.dir.join("mail.log");
        if from.exists() {
            let to = self.dir.join(format!("mail.log.{}", self.generation));
            fs::rename(from, to).unwrap();
            self.generation += 1;
            self.written = 0;
        }
    }
}

/// The daemon's side: lines since the last `Positions` are pending; a `Positions`
/// commits them together with the positions.
#[derive(Default)]
struct Consumer {
    committed: Vec<String>,
    pending: Vec<String>,
    positions: Option<Vec<Record>>,
}

impl Consumer {
    fn take(&mut self, message: Tailed) {
        match message {
            Tailed::Line(line) => self.pending.push(String::from_utf8(line.bytes).unwrap()),
            Tailed::Positions(records) => {
                self.committed.append(&mut self.pending);
                self.positions = Some(records);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum End {
    /// After this many lines, drop the receiver and stop: what was received since the
    /// last positions is lost with the consumer's uncommitted state.
    Crash(usize),
    /// After this many lines, stop the source and receive until the channel closes.
    Stop(usize),
}

#[derive(Debug, Clone)]
struct Session {
    end: End,
    /// Written while the tailer runs, one batch whenever the consumer has every line
    /// written so far: (lines, whether the log is rotated by rename first). Each batch
    /// is read apart, so positions fall between them.
    batches: Vec<(usize, bool)>,
    capacity: usize,
    checkpoint_interval: Duration,
}

/// The next message. The timeout only ends a run whose tailer lost lines it should
/// still send; a passing run never waits for it.
fn recv(rt: &Runtime, rx: &mut mpsc::Receiver<Tailed>) -> Option<Tailed> {
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), rx.recv()).await })
        .expect("the tailer sent nothing for 10 s")
}

fn run_session(rt: &Runtime, w: &mut Writer, c: &mut Consumer, s: &Session) {
    let mut cfg = config(&w.dir, c.positions.clone());
    cfg.checkpoint_interval = s.checkpoint_interval;
    let (tx, mut rx) = mpsc::channel(s.capacity);
    let source = file::spawn_tailed(cfg, tx).unwrap();
    // What was not committed before is sent again: everything after `base`.
    let base = c.committed.len();
    let (End::Crash(k) | End::Stop(k)) = s.end;
    let mut batches = s.batches.iter();
    let mut received = 0;
    while received < k {
        if base + received == w.expected.len() {
            let Some(&(lines, rotate)) = batches.next() else {
                break;
            };
            if rotate {
                w.rotate();
            }
            w.append(lines);
            continue;
        }
        let message = recv(rt, &mut rx).expect("the channel closed early");
        received += usize::from(matches!(message, Tailed::Line(_)));
        c.take(message);
    }
    match s.end {
        End::Crash(_) => {
            drop(rx);
            source.stop().unwrap();
            c.pending.clear();
        }
        End::Stop(_) => stop_and_drain(rt, source, rx, c),
    }
}

/// Stops the source while receiving, as the daemon must, until the channel closes.
fn stop_and_drain(
    rt: &Runtime,
    source: file::FileSource,
    mut rx: mpsc::Receiver<Tailed>,
    c: &mut Consumer,
) {
    let stopper = std::thread::spawn(move || source.stop());
    while let Some(message) = recv(rt, &mut rx) {
        c.take(message);
    }
    stopper.join().unwrap().unwrap();
    assert!(
        c.pending.is_empty(),
        "lines after the last positions: {:?}",
        c.pending
    );
}

/// A last session that reads everything left, up to a last line written for it, then
/// the check: every line written was committed exactly once, in order within each file.
fn drain_and_check(rt: &Runtime, w: &mut Writer, c: &mut Consumer) -> Result<(), TestCaseError> {
    w.append(1);
    let last = w.expected.last().cloned();
    let (tx, mut rx) = mpsc::channel(16);
    let source = file::spawn_tailed(config(&w.dir, c.positions.clone()), tx).unwrap();
    while c.pending.last() != last.as_ref() {
        let message = recv(rt, &mut rx).expect("the channel closed early");
        c.take(message);
    }
    stop_and_drain(rt, source, rx, c);
    let mut got = c.committed.clone();
    got.sort();
    let mut want = w.expected.clone();
    want.sort();
    prop_assert_eq!(got, want);
    for g in 0..=w.generation {
        let tag = format!("g{g} ");
        let file: Vec<&String> = c.committed.iter().filter(|l| l.starts_with(&tag)).collect();
        prop_assert!(file.is_sorted(), "generation {} out of order", g);
    }
    Ok(())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn every_stop_point_resumes_at_the_next_unconsumed_line() {
    let rt = runtime();
    for k in 0..=24 {
        for crash in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = Writer::new(dir.path());
            let mut c = Consumer::default();
            // A backlog read at once, then batches read one by one.
            w.append(12);
            let session = Session {
                end: if crash { End::Crash(k) } else { End::Stop(k) },
                batches: vec![(3, false); 4],
                capacity: 1 + k % 4,
                checkpoint_interval: Duration::ZERO,
            };
            run_session(&rt, &mut w, &mut c, &session);
            // Rotated while the daemon was down, in every other case.
            if k % 2 == 1 {
                w.rotate();
            }
            w.append(6);
            drain_and_check(&rt, &mut w, &mut c).unwrap();
        }
    }
}

fn session() -> impl Strategy<Value = Session> {
    (
        any::<bool>(),
        0usize..30,
        prop::collection::vec((1usize..6, prop::bool::weighted(0.2)), 0..8),
        1usize..6,
        prop_oneof![
            2 => Just(Duration::ZERO),
            1 => Just(Duration::from_millis(1)),
            1 => Just(Duration::from_secs(3600)),
        ],
    )
        .prop_map(
            |(crash, k, batches, capacity, checkpoint_interval)| Session {
                end: if crash { End::Crash(k) } else { End::Stop(k) },
                batches,
                capacity,
                checkpoint_interval,
            },
        )
}

proptest! {
    // Few shrink steps: a failing run may wait for the receive timeout at each.
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 32, ..ProptestConfig::default() })]

    /// Sessions ending in crashes or stops at random points, with lines written and
    /// the log rotated while the tailer runs and while it is down.
    #[test]
    fn a_consumer_resumed_from_its_last_positions_gets_every_line_once(
        first in 0usize..30,
        sessions in prop::collection::vec(
            (session(), 0usize..10, any::<bool>()),
            1..5,
        ),
    ) {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(dir.path());
        let mut c = Consumer::default();
        w.append(first);
        for (s, append_after, rotate_after) in &sessions {
            run_session(&rt, &mut w, &mut c, s);
            if *rotate_after {
                w.rotate();
            }
            w.append(*append_after);
        }
        drain_and_check(&rt, &mut w, &mut c)?;
    }
}

#[test]
fn positions_come_after_the_lines_of_the_first_poll_and_on_stop_and_no_file_is_written() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path());
    w.append(20);
    let mut cfg = config(dir.path(), None);
    cfg.checkpoint_interval = Duration::from_secs(3600);
    let (tx, mut rx) = mpsc::channel(4);
    let source = file::spawn_tailed(cfg, tx).unwrap();
    let mut lines = Vec::new();
    while lines.len() < 20 {
        match recv(&rt, &mut rx) {
            Some(Tailed::Line(l)) => lines.push(String::from_utf8(l.bytes).unwrap()),
            other => panic!("{other:?} before the 20 lines"),
        }
    }
    assert_eq!(lines, w.expected);
    let len = fs::metadata(dir.path().join("mail.log")).unwrap().len();
    // The first poll read them all; its positions follow at once, long before the
    // interval, so that a consumer has some to save from the start.
    let Some(Tailed::Positions(first)) = recv(&rt, &mut rx) else {
        panic!("no positions after the first poll");
    };
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].position.offset, len);
    let stopper = std::thread::spawn(move || source.stop());
    let Some(Tailed::Positions(records)) = recv(&rt, &mut rx) else {
        panic!("no positions on stop");
    };
    assert!(recv(&rt, &mut rx).is_none());
    stopper.join().unwrap().unwrap();
    assert_eq!(records, first);
    // Only the log itself: without `checkpoint`, no checkpoint file.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// One poll of a tailer; the lines it hands on, as text.
fn poll(t: &mut Tailer) -> Vec<String> {
    let mut out = Vec::new();
    t.poll_once(&mut |l| {
        out.push(String::from_utf8(l.bytes).unwrap());
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn resume_is_a_checkpoint_given_by_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(dir.path());
    w.append(3);
    let end = |resume| FileConfig {
        start_at: StartAt::End,
        ..config(dir.path(), resume)
    };
    // No positions at all: a first start, which begins at the end.
    assert!(poll(&mut Tailer::new(end(None)).unwrap()).is_empty());
    // Empty positions: not a first start, so files not in them are read whole.
    assert_eq!(
        poll(&mut Tailer::new(end(Some(Vec::new()))).unwrap()),
        w.expected
    );

    // Positions after two lines, and a checkpoint file after all three: `resume` wins.
    let mut t = Tailer::new(config(dir.path(), None)).unwrap();
    let mut two = Vec::new();
    t.poll_once(&mut |l| {
        if two.len() == 2 {
            return Err(file::Closed);
        }
        two.push(l);
        Ok(())
    })
    .unwrap_err();
    let after_two = t.records();
    let checkpoint = dir.path().join("checkpoint.json");
    let mut t = Tailer::new(FileConfig {
        checkpoint: Some(checkpoint.clone()),
        ..config(dir.path(), None)
    })
    .unwrap();
    assert_eq!(poll(&mut t), w.expected);
    t.checkpoint().unwrap();
    w.append(1);
    let mut t = Tailer::new(FileConfig {
        checkpoint: Some(checkpoint),
        ..config(dir.path(), Some(after_two))
    })
    .unwrap();
    assert_eq!(poll(&mut t), w.expected[2..]);
}
