//! The file tailer: follows log files named by glob patterns through rotation, and
//! checkpoints how far it read.
//!
//! [`Tailer`] is deterministic and does nothing on its own: [`Tailer::scan`] looks for
//! files, [`Tailer::read`] reads what they gained, [`Tailer::checkpoint`] writes the
//! checkpoint file. Tests drive it step by step; [`spawn`] runs it on its own thread,
//! scanning and polling at the configured intervals. [`spawn_tailed`] runs the same
//! loop and also sends the positions down the channel after the lines they cover
//! ([`Tailed`]), for a consumer that saves them with its own state and resumes from
//! them ([`FileConfig::resume`]).
//!
//! Identity. A file is known by the [`Fingerprint`] of its first `fingerprint_bytes`
//! (a shorter file by all of its bytes, the fingerprint growing with it), and while it
//! is open by its device and inode too:
//!
//! - *Rename rotation* (`mail.log` → `mail.log.1`, new `mail.log`): the old inode stays
//!   open and is read to its end before newer files (files are read in the order they
//!   were found); it is closed once it is no longer matched by a pattern and has no
//!   more to read. The new file is new content and is read from its start.
//! - *Copy-truncate rotation* (`mail.log` copied to `mail.log.1`, then truncated): the
//!   truncation is seen as a size below the read offset, or a changed fingerprint; the
//!   new content is read from offset 0. The old content's position is remembered by its
//!   fingerprint, so if the copy is matched by a pattern, the lines the tailer had not
//!   yet read are read from the copy (and the copy is otherwise not read twice).
//! - Files whose name ends in `.gz` are rotated history and are ignored.
//!
//! Only complete lines (ending in `\n`) are handed on; a partial last line waits for its
//! newline. A line longer than `max_line` is skipped (counted), never buffered whole.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::checkpoint::{self, CheckpointError, Fingerprint, Position, Record};
use crate::{Line, Source};

mod thread;

pub use thread::{FileSource, Tailed, spawn, spawn_tailed};

/// Where files found at the first start-up (no checkpoint file yet) begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// After their last complete line: only what is written from now on.
    #[default]
    End,
    /// At their first byte: their whole content.
    Beginning,
}

/// The file tailer's options.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// Glob patterns (the `glob` crate's syntax) naming the files to follow.
    pub include: Vec<String>,
    /// The checkpoint file; `None` keeps positions in memory only (or in the consumer's
    /// hands, with [`spawn_tailed`]).
    pub checkpoint: Option<PathBuf>,
    /// Positions to start from, kept by the caller (the daemon's store holds the last
    /// [`Tailed::Positions`] it committed). Used instead of loading the checkpoint file,
    /// and otherwise just like it: `Some` means this is not a first start, even if it
    /// is empty. `None` is a first start unless the checkpoint file exists.
    pub resume: Option<Vec<Record>>,
    /// Where files found at the very first start begin. With a checkpoint file, files
    /// not in it appeared while the tailer was down and are read from their start.
    pub start_at: StartAt,
    /// How many leading bytes identify a file (default 256).
    pub fingerprint_bytes: u32,
    /// Longest line handed on (default 64 KiB); longer ones are skipped and counted.
    pub max_line: usize,
    /// How often the patterns are expanded again (default 5 s).
    pub glob_interval: Duration,
    /// How often open files are checked for growth (default 250 ms).
    pub poll_interval: Duration,
    /// How often the checkpoint file is written (default 5 s; also after the first poll,
    /// and on stop).
    pub checkpoint_interval: Duration,
    /// Most bytes read in one [`Tailer::read`] (default 4 MiB), so that a stop or a
    /// checkpoint is never far away while catching up on a large file.
    pub max_read_per_poll: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            checkpoint: None,
            resume: None,
            start_at: StartAt::End,
            fingerprint_bytes: 256,
            max_line: 64 * 1024,
            glob_interval: Duration::from_secs(5),
            poll_interval: Duration::from_millis(250),
            checkpoint_interval: Duration::from_secs(5),
            max_read_per_poll: 4 << 20,
        }
    }
}

/// What the tailer did, as counters the daemon can export.
#[derive(Debug, Default)]
pub struct FileCounters {
    /// Lines handed on.
    pub lines: AtomicU64,
    /// Bytes of those lines (without newlines).
    pub bytes: AtomicU64,
    /// Files found (distinct inodes opened).
    pub files: AtomicU64,
    /// Rename rotations seen (a followed path now names another file, or none).
    pub rotations: AtomicU64,
    /// Truncations seen (copy-truncate rotation, or a file rewritten in place).
    pub truncations: AtomicU64,
    /// Lines skipped for exceeding `max_line`.
    pub oversized_lines: AtomicU64,
    /// Files found whose content is a copy of a file already followed (not read twice).
    pub duplicates: AtomicU64,
    /// I/O errors while scanning or reading (the file is retried at the next poll).
    pub io_errors: AtomicU64,
    /// Checkpoint writes that failed.
    pub checkpoint_errors: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Why the tailer could not start or stopped.
#[derive(Debug)]
pub enum FileError {
    /// A pattern is not a valid glob.
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why not.
        error: glob::PatternError,
    },
    /// The checkpoint file could not be read or written.
    Checkpoint(CheckpointError),
    /// The tailer's thread could not be started.
    Spawn(io::Error),
    /// The tailer's thread panicked.
    Panicked,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern { pattern, error } => write!(f, "file pattern {pattern:?}: {error}"),
            Self::Checkpoint(e) => e.fmt(f),
            Self::Spawn(e) => write!(f, "cannot start the file tailer: {e}"),
            Self::Panicked => f.write_str("the file tailer stopped unexpectedly"),
        }
    }
}

impl std::error::Error for FileError {}

impl From<CheckpointError> for FileError {
    fn from(e: CheckpointError) -> Self {
        Self::Checkpoint(e)
    }
}

/// Returned by the line consumer passed to [`Tailer::read`] when no more lines are
/// wanted (the channel closed, or the tailer is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Whether [`Tailer::read`] read everything there was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Every open file was read to its last complete line.
    Idle,
    /// The per-poll byte budget ran out; call again soon.
    More,
}

/// Whether an open file's lines are handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Active,
    /// A copy of content another entry is reading: watched, not read.
    Duplicate,
}

/// One open file.
#[derive(Debug)]
struct Entry {
    file: File,
    dev_ino: (u64, u64),
    /// The path it was first found under: the stream its lines belong to.
    source: Arc<Path>,
    /// The path it was last seen under.
    path: PathBuf,
    fingerprint: Fingerprint,
    position: Position,
    role: Role,
    /// Size at the last check, to re-check the fingerprint only when it changes.
    last_size: u64,
    /// No pattern matched it at the last scan: read it to its end, then close it.
    gone: bool,
    /// Its first path has been seen naming another file (counted once).
    rotated: bool,
}

/// Most remembered positions of content no open file holds (truncated-away content,
/// closed files, checkpoint records not yet matched).
const MAX_RETIRED: usize = 4096;

/// The deterministic file tailer. See the module documentation.
#[derive(Debug)]
pub struct Tailer {
    config: FileConfig,
    patterns: Vec<glob::Pattern>,
    entries: Vec<Entry>,
    /// Positions by content, oldest first.
    retired: Vec<(Fingerprint, Position)>,
    /// Whether the next scan is the first of a run without a checkpoint file.
    fresh_start: bool,
    rescan: bool,
    counters: Arc<FileCounters>,
    buf: Vec<u8>,
}

impl Tailer {
    /// A tailer starting from `config.resume`, or else from the checkpoint file if
    /// there is one. Finds no files yet.
    pub fn new(mut config: FileConfig) -> Result<Self, FileError> {
        let patterns = config
            .include
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|error| FileError::Pattern {
                    pattern: p.clone(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let records = match (config.resume.take(), &config.checkpoint) {
            (Some(records), _) => Some(records),
            (None, Some(path)) => checkpoint::load(path)?,
            (None, None) => None,
        };
        let fresh_start = records.is_none();
        let mut retired: Vec<_> = records
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.fingerprint, r.position))
            .collect();
        if retired.len() > MAX_RETIRED {
            retired.drain(..retired.len() - MAX_RETIRED);
        }
        let config = FileConfig {
            fingerprint_bytes: config.fingerprint_bytes.max(1),
            max_line: config.max_line.max(1),
            max_read_per_poll: config.max_read_per_poll.max(1),
            ..config
        };
        Ok(Self {
            patterns,
            entries: Vec::new(),
            retired,
            fresh_start,
            rescan: false,
            counters: Arc::default(),
            buf: Vec::new(),
            config,
        })
    }

    /// The counters, shared: they stay readable while the tailer runs on its thread.
    pub fn counters(&self) -> Arc<FileCounters> {
        Arc::clone(&self.counters)
    }

    /// Scans, then reads: one step of the polling loop.
    pub fn poll_once(
        &mut self,
        emit: &mut dyn FnMut(Line) -> Result<(), Closed>,
    ) -> Result<ReadOutcome, Closed> {
        self.scan();
        self.read(emit)
    }

    /// Expands the patterns: opens files not seen before, notes which open files are
    /// no longer matched, and counts rename rotations.
    pub fn scan(&mut self) {
        self.rescan = false;
        let mut found: Vec<(PathBuf, fs::Metadata)> = Vec::new();
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        for pattern in &self.patterns {
            let Ok(paths) = glob::glob(pattern.as_str()) else {
                continue;
            };
            for path in paths.flatten() {
                if path.extension().is_some_and(|e| e == "gz") {
                    continue;
                }
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                    found.push((path, meta));
                }
            }
        }
        let by_path: HashMap<&Path, (u64, u64)> = found
            .iter()
            .map(|(p, m)| (p.as_path(), (m.dev(), m.ino())))
            .collect();
        for e in &mut self.entries {
            e.gone = !seen.contains(&e.dev_ino);
            if !e.rotated && by_path.get(&*e.source) != Some(&e.dev_ino) {
                e.rotated = true;
                bump(&self.counters.rotations, 1);
            }
            if let Some((p, _)) = found.iter().find(|(_, m)| (m.dev(), m.ino()) == e.dev_ino) {
                e.path.clone_from(p);
            }
        }
        // Older files first, so that a rotated file's last lines come before its
        // successor's first ones.
        found.retain(|(_, m)| {
            m.len() > 0 && !self.entries.iter().any(|e| e.dev_ino == (m.dev(), m.ino()))
        });
        found.sort_by_key(|(p, m)| (m.mtime(), m.mtime_nsec(), p.clone()));
        let fresh = std::mem::replace(&mut self.fresh_start, false);
        for (path, meta) in found {
            if let Err(_e) = self.open(path, &meta, fresh) {
                bump(&self.counters.io_errors, 1);
            }
        }
    }

    fn open(&mut self, path: PathBuf, meta: &fs::Metadata, fresh: bool) -> io::Result<()> {
        let file = File::open(&path)?;
        let now = file.metadata()?;
        if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
            // Replaced between the scan and the open: the next scan sees the new one.
            return Ok(());
        }
        let size = now.len();
        let fingerprint = self.head(&file, size)?;
        let (role, position) = if self.copy_of_active(&file, fingerprint)? {
            bump(&self.counters.duplicates, 1);
            (Role::Duplicate, Position::default())
        } else if let Some(p) = self.claim_retired(&file, size)? {
            (Role::Active, p)
        } else if fresh && self.config.start_at == StartAt::End {
            (Role::Active, self.end_position(&file, size)?)
        } else {
            (Role::Active, Position::default())
        };
        bump(&self.counters.files, 1);
        let source: Arc<Path> = Arc::from(path.as_path());
        self.entries.push(Entry {
            file,
            dev_ino: (now.dev(), now.ino()),
            source,
            path,
            fingerprint,
            position,
            role,
            last_size: size,
            gone: false,
            rotated: false,
        });
        Ok(())
    }

    /// The fingerprint of a file of this size.
    fn head(&self, file: &File, size: u64) -> io::Result<Fingerprint> {
        let len = u32::try_from(size.min(u64::from(self.config.fingerprint_bytes)))
            .unwrap_or(self.config.fingerprint_bytes);
        Ok(Fingerprint::read(file, len)?.unwrap_or(Fingerprint::of(b"")))
    }

    /// Whether `file` (with fingerprint `fp`) holds the same content as an active open
    /// file: either one's fingerprint is a prefix of the other.
    fn copy_of_active(&self, file: &File, fp: Fingerprint) -> io::Result<bool> {
        for e in &self.entries {
            if e.role != Role::Active || e.fingerprint.len == 0 {
                continue;
            }
            let same = if e.fingerprint.len <= fp.len {
                e.fingerprint.matches(file)?
            } else {
                fp.matches(&e.file)?
            };
            if same {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes the remembered position whose fingerprint `file` starts with (the longest).
    fn claim_retired(&mut self, file: &File, size: u64) -> io::Result<Option<Position>> {
        let mut best: Option<usize> = None;
        for (i, (fp, _)) in self.retired.iter().enumerate() {
            if fp.len == 0 || u64::from(fp.len) > size {
                continue;
            }
            if best.is_some_and(|b| self.retired[b].0.len >= fp.len) {
                continue;
            }
            if fp.matches(file)? {
                best = Some(i);
            }
        }
        Ok(best.map(|i| self.retired.remove(i).1))
    }

    fn retire(&mut self, fp: Fingerprint, position: Position) {
        if fp.len == 0 || position == Position::default() {
            return;
        }
        self.retired.retain(|(f, _)| *f != fp);
        if self.retired.len() >= MAX_RETIRED {
            self.retired.remove(0);
        }
        self.retired.push((fp, position));
    }

    /// Just after the last complete line of a file of this size.
    fn end_position(&self, file: &File, size: u64) -> io::Result<Position> {
        let back = size.min(self.config.max_line as u64 + 1);
        let mut tail = vec![0; back as usize];
        let n = read_full_at(file, &mut tail, size - back)?;
        tail.truncate(n);
        Ok(match memchr::memrchr(b'\n', &tail) {
            Some(i) => Position {
                offset: size - back + i as u64 + 1,
                skipping: false,
            },
            None if size == 0 => Position::default(),
            // The last line is already too long to hand on: skip to its end.
            None => Position {
                offset: size,
                skipping: true,
            },
        })
    }

    /// Reads what the open files gained and hands on their complete lines, oldest file
    /// first, up to `max_read_per_poll` bytes. Positions advance line by line, only
    /// past lines `emit` accepted, so a [`Closed`] loses nothing.
    pub fn read(
        &mut self,
        emit: &mut dyn FnMut(Line) -> Result<(), Closed>,
    ) -> Result<ReadOutcome, Closed> {
        self.check_truncations();
        if self.rescan {
            // A truncation may have a copy beside it that holds its unread lines.
            self.scan();
        }
        self.resolve_duplicates();
        let mut budget = self.config.max_read_per_poll;
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].role == Role::Duplicate {
                if self.entries[i].gone {
                    self.entries.remove(i);
                } else {
                    i += 1;
                }
                continue;
            }
            let at_end = match self.read_entry(i, &mut budget, emit) {
                Ok(at_end) => at_end,
                Err(ReadError::Closed) => return Err(Closed),
                Err(ReadError::Io) => {
                    bump(&self.counters.io_errors, 1);
                    false
                }
            };
            if budget == 0 {
                return Ok(ReadOutcome::More);
            }
            if at_end && self.entries[i].gone {
                let e = self.entries.remove(i);
                self.retire(e.fingerprint, e.position);
            } else {
                i += 1;
            }
        }
        Ok(ReadOutcome::Idle)
    }

    /// Finds files that shrank or whose first bytes changed: their old content's
    /// position is remembered (a copy may hold it) and they are read from 0.
    fn check_truncations(&mut self) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let Ok(meta) = e.file.metadata() else {
                bump(&self.counters.io_errors, 1);
                continue;
            };
            let size = meta.len();
            if size == e.last_size {
                continue;
            }
            let replaced = size < e.position.offset
                || (e.fingerprint.len > 0 && !e.fingerprint.matches(&e.file).unwrap_or(false));
            let Ok(head) = self.head(&e.file, size) else {
                bump(&self.counters.io_errors, 1);
                continue;
            };
            let e = &mut self.entries[i];
            e.last_size = size;
            if replaced {
                let (old, position, role) = (e.fingerprint, e.position, e.role);
                e.fingerprint = head;
                e.position = Position::default();
                bump(&self.counters.truncations, 1);
                if role == Role::Active {
                    self.retire(old, position);
                }
                self.rescan = true;
            } else {
                e.fingerprint = head;
            }
        }
    }

    /// A duplicate whose original is gone (truncated or closed) takes over the
    /// original's remembered position, or starts from 0 if nothing remembers it.
    fn resolve_duplicates(&mut self) {
        for i in 0..self.entries.len() {
            if self.entries[i].role != Role::Duplicate {
                continue;
            }
            let e = &self.entries[i];
            let (size, fp) = (e.last_size, e.fingerprint);
            let Ok(file) = e.file.try_clone() else {
                bump(&self.counters.io_errors, 1);
                continue;
            };
            let position = match self.copy_of_active(&file, fp) {
                Ok(true) => continue,
                Ok(false) => self.claim_retired(&file, size),
                Err(e) => Err(e),
            };
            match position {
                Ok(p) => {
                    let e = &mut self.entries[i];
                    e.role = Role::Active;
                    e.position = p.unwrap_or_default();
                }
                Err(_) => bump(&self.counters.io_errors, 1),
            }
        }
    }

    /// Reads one entry; `Ok(true)` when it has nothing more to read now.
    fn read_entry(
        &mut self,
        i: usize,
        budget: &mut usize,
        emit: &mut dyn FnMut(Line) -> Result<(), Closed>,
    ) -> Result<bool, ReadError> {
        let max_line = self.config.max_line;
        let chunk = (max_line + 1).max(64 * 1024);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(chunk, 0);
        let result = (|| {
            // Bounded: each pass either advances the position or returns.
            loop {
                if *budget == 0 {
                    return Ok(false);
                }
                let e = &mut self.entries[i];
                let start = e.position.offset;
                let n = read_full_at(&e.file, &mut buf, start).map_err(|_| ReadError::Io)?;
                if n == 0 {
                    return Ok(true);
                }
                *budget = budget.saturating_sub(n);
                let data = &buf[..n];
                let mut at = 0;
                if e.position.skipping {
                    match memchr::memchr(b'\n', data) {
                        Some(nl) => {
                            at = nl + 1;
                            e.position = Position {
                                offset: start + at as u64,
                                skipping: false,
                            };
                        }
                        None => {
                            e.position.offset = start + n as u64;
                            continue;
                        }
                    }
                }
                while let Some(nl) = memchr::memchr(b'\n', &data[at..]) {
                    let line = &data[at..at + nl];
                    let offset = start + at as u64;
                    if line.len() > max_line {
                        bump(&self.counters.oversized_lines, 1);
                    } else if e.role == Role::Active {
                        emit(Line {
                            bytes: line.to_vec(),
                            source: Source::File(Arc::clone(&e.source)),
                            offset: Some(offset),
                        })
                        .map_err(|Closed| ReadError::Closed)?;
                        bump(&self.counters.lines, 1);
                        bump(&self.counters.bytes, line.len() as u64);
                    }
                    at += nl + 1;
                    e.position.offset = start + at as u64;
                }
                let rest = n - at;
                if rest > max_line {
                    // A line already longer than the cap: skip it to its newline.
                    bump(&self.counters.oversized_lines, 1);
                    e.position = Position {
                        offset: start + n as u64,
                        skipping: true,
                    };
                } else if n < buf.len() {
                    // The end of the file, with perhaps a partial line waiting.
                    return Ok(true);
                }
            }
        })();
        self.buf = buf;
        result
    }

    /// The positions to write to the checkpoint file.
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .retired
            .iter()
            .map(|&(fingerprint, position)| Record {
                fingerprint,
                position,
                path: None,
            })
            .collect();
        for e in &self.entries {
            if e.role == Role::Active && e.fingerprint.len > 0 {
                out.retain(|r| r.fingerprint != e.fingerprint);
                out.push(Record {
                    fingerprint: e.fingerprint,
                    position: e.position,
                    path: Some(e.path.clone()),
                });
            }
        }
        out
    }

    /// Writes the checkpoint file, if one is configured.
    pub fn checkpoint(&self) -> Result<(), FileError> {
        if let Some(path) = &self.config.checkpoint {
            checkpoint::store(path, &self.records()).inspect_err(|_| {
                bump(&self.counters.checkpoint_errors, 1);
            })?;
        }
        Ok(())
    }
}

enum ReadError {
    Closed,
    Io,
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
