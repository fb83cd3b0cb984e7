//! The file tailer against a model: random appends (sometimes ending in a partial
//! line), rename rotations, copy-truncate rotations, polls (some interrupted by a
//! closing consumer) and restarts from the checkpoint file. Whatever the sequence, the
//! lines handed on must be exactly the complete lines written: none lost, none twice,
//! and in order within each file.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_sources::file::{Closed, FileConfig, ReadOutcome, StartAt, Tailer};
use proptest::prelude::*;

const STREAMS: usize = 2;

#[derive(Debug, Clone)]
enum Step {
    /// Appends `lines` complete lines of these lengths to a stream, then perhaps the
    /// first part of the next line.
    Append {
        stream: usize,
        lengths: Vec<usize>,
        partial: Option<usize>,
    },
    /// One scan and read.
    Poll,
    /// A read whose consumer closes after accepting `accept` lines.
    InterruptedPoll { accept: usize },
    /// `x.log` → `x.log.N`; the next append creates a new `x.log`.
    Rename { stream: usize },
    /// `x.log` copied to `x.log.N`, then truncated to nothing.
    CopyTruncate { stream: usize },
    /// Checkpoint, drop the tailer, start a new one from the checkpoint file.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..STREAMS, prop::collection::vec(0usize..60, 0..5), prop::option::of(1usize..30))
            .prop_map(|(stream, lengths, partial)| Step::Append { stream, lengths, partial }),
        3 => Just(Step::Poll),
        1 => (0usize..4).prop_map(|accept| Step::InterruptedPoll { accept }),
        1 => (0..STREAMS).prop_map(|stream| Step::Rename { stream }),
        1 => (0..STREAMS).prop_map(|stream| Step::CopyTruncate { stream }),
        1 => Just(Step::Restart),
    ]
}

/// What the writer has done to one stream.
#[derive(Debug, Default)]
struct Stream {
    /// The file generation being written; it changes at each rotation.
    generation: u32,
    /// Lines written so far.
    written: u32,
    /// The tail of a partially written line: the rest to write before anything else.
    pending: Option<String>,
}

struct World {
    dir: PathBuf,
    streams: Vec<Stream>,
    rotated: u32,
    /// Every complete line written, by stream.
    expected: Vec<Vec<String>>,
    /// Every line handed on.
    got: Vec<String>,
}

impl World {
    fn path(&self, stream: usize) -> PathBuf {
        self.dir.join(format!("s{stream}.log"))
    }

    fn write(&self, stream: usize, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(stream))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// The text of a new line: unique, with its stream, generation and number, padded.
    fn next_line(&mut self, stream: usize, len: usize) -> String {
        let s = &mut self.streams[stream];
        let line = format!(
            "s{stream} g{} n{:05} {}",
            s.generation,
            s.written,
            "x".repeat(len)
        );
        s.written += 1;
        self.expected[stream].push(line.clone());
        line
    }

    /// Writers finish their line before a rotation.
    fn finish_partial(&mut self, stream: usize) {
        if let Some(rest) = self.streams[stream].pending.take() {
            self.write(stream, &format!("{rest}\n"));
        }
    }

    fn rotated_name(&mut self, stream: usize) -> PathBuf {
        self.rotated += 1;
        self.dir.join(format!("s{stream}.log.{}", self.rotated))
    }
}

fn config(dir: &Path, fingerprint_bytes: u32, budget: usize) -> FileConfig {
    FileConfig {
        include: vec![format!("{}/*.log*", dir.display())],
        checkpoint: Some(dir.join("checkpoint.json")),
        start_at: StartAt::Beginning,
        fingerprint_bytes,
        max_line: 1000,
        max_read_per_poll: budget,
        ..FileConfig::default()
    }
}

fn poll(t: &mut Tailer, got: &mut Vec<String>, accept: Option<usize>) -> ReadOutcome {
    let mut left = accept;
    let r = t.poll_once(&mut |line| {
        if let Some(n) = &mut left {
            if *n == 0 {
                return Err(Closed);
            }
            *n -= 1;
        }
        got.push(String::from_utf8(line.bytes).unwrap());
        Ok(())
    });
    r.unwrap_or(ReadOutcome::More)
}

fn run(steps: &[Step], fingerprint_bytes: u32, budget: usize) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let mut w = World {
        dir: dir.clone(),
        streams: (0..STREAMS).map(|_| Stream::default()).collect(),
        rotated: 0,
        expected: vec![Vec::new(); STREAMS],
        got: Vec::new(),
    };
    let mut t = Tailer::new(config(&dir, fingerprint_bytes, budget)).unwrap();
    for step in steps {
        match step {
            Step::Append {
                stream,
                lengths,
                partial,
            } => {
                let mut text = String::new();
                if let Some(rest) = w.streams[*stream].pending.take() {
                    text.push_str(&rest);
                    text.push('\n');
                }
                for &len in lengths {
                    let line = w.next_line(*stream, len);
                    text.push_str(&line);
                    text.push('\n');
                }
                if let Some(cut) = partial {
                    let line = w.next_line(*stream, 20);
                    let (head, tail) = line.split_at((*cut).min(line.len() - 1));
                    text.push_str(head);
                    w.streams[*stream].pending = Some(tail.to_owned());
                }
                w.write(*stream, &text);
            }
            Step::Poll => {
                poll(&mut t, &mut w.got, None);
            }
            Step::InterruptedPoll { accept } => {
                poll(&mut t, &mut w.got, Some(*accept));
            }
            Step::Rename { stream } => {
                w.finish_partial(*stream);
                let to = w.rotated_name(*stream);
                if w.path(*stream).exists() {
                    fs::rename(w.path(*stream), to).unwrap();
                }
                w.streams[*stream].generation += 1;
            }
            Step::CopyTruncate { stream } => {
                w.finish_partial(*stream);
                let to = w.rotated_name(*stream);
                if w.path(*stream).exists() {
                    fs::copy(w.path(*stream), to).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(w.path(*stream))
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                w.streams[*stream].generation += 1;
            }
            Step::Restart => {
                t.checkpoint().unwrap();
                drop(t);
                t = Tailer::new(config(&dir, fingerprint_bytes, budget)).unwrap();
            }
        }
    }
    for s in 0..STREAMS {
        w.finish_partial(s);
    }
    // Drain: bounded, ends as soon as a poll is idle and hands on nothing new.
    for _ in 0..10_000 {
        let before = w.got.len();
        if poll(&mut t, &mut w.got, None) == ReadOutcome::Idle && w.got.len() == before {
            break;
        }
    }
    // Exactly the lines written, each once.
    let mut by_stream: Vec<Vec<String>> = vec![Vec::new(); STREAMS];
    for line in &w.got {
        let s: usize = line[1..line.find(' ').unwrap()].parse().unwrap();
        by_stream[s].push(line.clone());
    }
    for (s, (got, want)) in by_stream.iter().zip(&w.expected).enumerate() {
        let mut got = got.clone();
        got.sort();
        let mut want = want.clone();
        want.sort();
        prop_assert_eq!(got, want, "stream {}", s);
    }
    // In order within each file (stream and generation).
    let mut last: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in &w.got {
        let mut parts = line.split(' ');
        let key = (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        );
        let n = parts.next().unwrap().to_owned();
        if let Some(prev) = last.insert(key.clone(), n.clone()) {
            prop_assert!(prev < n, "{:?}: {} after {}", key, n, prev);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lines_handed_on_are_exactly_the_lines_written(
        steps in prop::collection::vec(step(), 1..40),
        fingerprint_bytes in prop_oneof![Just(8u32), Just(40), Just(256)],
        budget in prop_oneof![Just(64usize), Just(1 << 20)],
    ) {
        run(&steps, fingerprint_bytes, budget)?;
    }
}
