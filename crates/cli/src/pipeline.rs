//! Reading logs into events, on two threads: one reads and prefilters, the caller's
//! parses. Shared by `events` and `analyze`.

use std::io::Read;
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use portcullis_core::Event;
use portcullis_parse::envelope::EnvelopeConfig;
use portcullis_parse::format::{self, InputFormat};
use portcullis_parse::{
    Candidates, LineReader, LogParser, ParseConfig, Prefilter, RecordSplitter, Rules, Stats,
    YearRule,
};

use crate::input;
use crate::options::{DocumentOptions, ReadOptions};

/// Reads `files` in order and hands each batch of events to `on_batch`, which returns
/// false to stop early. Returns the counts of what was read.
pub fn read_and_parse(
    files: &[String],
    read: &ReadOptions,
    quiet: bool,
    mut on_batch: impl FnMut(Vec<Event>) -> bool,
) -> Result<Stats> {
    let time_zone = read.time_zone()?;
    let accounts = read.account_rules()?;
    let documents = read.documents()?;
    let forced = documents.format;
    let rules = read.parse_rules()?;
    std::thread::scope(|scope| {
        let (feed_tx, feed_rx) = feed(8);
        let progress = input::progress(files, quiet);
        let prefilter = prefilter(rules.as_ref());
        scope.spawn(move || {
            read_files(files, read.max_line, forced, &progress, prefilter, &feed_tx);
            progress.finish_and_clear();
        });
        let parse = Parsing {
            year: read.year,
            time_zone: &time_zone,
            accounts: &accounts,
            rules: rules.as_ref(),
            documents: &documents,
        };
        parse_feed(&parse, feed_rx, &mut on_batch)
    })
}

/// What the reading thread hands the parsing thread.
pub(crate) enum Feed {
    /// A new file begins.
    Start {
        name: String,
        modified: jiff::Timestamp,
        /// The reader the file needs (detected or forced).
        format: InputFormat,
    },
    /// Lines worth parsing, with the counts of all lines read.
    Lines(Candidates),
    /// The file ended; lines the reader skipped for length.
    End { oversized: u64 },
    /// The file could not be opened or read.
    Failed(anyhow::Error),
}

/// Candidate bytes gathered before a batch is handed on.
const BATCH_BYTES: usize = 256 * 1024;

/// The reading thread's end of a feed. Batches come back from the parsing thread once
/// read, memory and all: a new batch grown from empty for every 256 KiB touched fresh
/// pages each time (a tenth of `events`' time went to the kernel zeroing them).
pub(crate) struct FeedTx {
    tx: mpsc::SyncSender<Feed>,
    spent: mpsc::Receiver<Candidates>,
}

/// The parsing thread's end of a feed.
pub(crate) struct FeedRx {
    rx: mpsc::Receiver<Feed>,
    spent: mpsc::SyncSender<Candidates>,
}

/// A feed holding at most `bound` messages, and as many spent batches on their way back.
pub(crate) fn feed(bound: usize) -> (FeedTx, FeedRx) {
    let (tx, rx) = mpsc::sync_channel(bound);
    let (spent_tx, spent) = mpsc::sync_channel(bound);
    (
        FeedTx { tx, spent },
        FeedRx {
            rx,
            spent: spent_tx,
        },
    )
}

impl FeedRx {
    /// Returns a batch once read, emptied, for the reader to fill again. The reader may
    /// have stopped, or have batches enough: then it is dropped.
    fn give_back(&self, mut picked: Candidates) {
        picked.clear();
        let _ = self.spent.try_send(picked);
    }
}

impl FeedTx {
    /// Hands `f` to the parsing thread; an error when it has gone.
    pub(crate) fn send(&self, f: Feed) -> Result<(), mpsc::SendError<Feed>> {
        self.tx.send(f)
    }

    /// An empty batch: one the parsing thread is done with, or a new one.
    fn batch(&self) -> Candidates {
        self.spent.try_recv().unwrap_or_default()
    }
}

/// Reads and prefilters every file in order. Stops when the parser has gone.
fn read_files(
    files: &[String],
    max_line: usize,
    forced: InputFormat,
    progress: &indicatif::ProgressBar,
    mut prefilter: Prefilter,
    tx: &FeedTx,
) {
    for name in files {
        if !read_file(name, max_line, forced, progress, &mut prefilter, tx) {
            return;
        }
    }
}

/// Reads and prefilters one file, from `Start` to `End`. False when the file failed or
/// the parser has gone: nothing more should be sent.
pub(crate) fn read_file(
    name: &str,
    max_line: usize,
    forced: InputFormat,
    progress: &indicatif::ProgressBar,
    prefilter: &mut Prefilter,
    tx: &FeedTx,
) -> bool {
    let input = match input::open(name, progress) {
        Ok(i) => i,
        Err(e) => {
            let _ = tx.send(Feed::Failed(e));
            return false;
        }
    };
    let seekable = input.seekable;
    let mut raw = input.reader;
    let (format, head) = match sniff(&mut raw, forced) {
        Ok(found) => found,
        Err(e) => {
            let _ = tx.send(Feed::Failed(
                anyhow::Error::new(e).context(format!("cannot read {name}")),
            ));
            return false;
        }
    };
    let stream: Box<dyn Read> = Box::new(std::io::Cursor::new(head).chain(raw));
    if tx
        .send(Feed::Start {
            name: name.to_owned(),
            modified: input.modified,
            format,
        })
        .is_err()
    {
        return false;
    }
    if format == InputFormat::Evtx {
        return read_evtx(name, seekable, stream, progress, tx);
    }
    if format.is_json() {
        return read_records(name, stream, tx);
    }
    let all_lines = format == InputFormat::W3c;
    let mut reader = LineReader::with_max_line(stream, max_line);
    let mut batch = tx.batch();
    loop {
        match reader.next_block() {
            Ok(Some(block)) => {
                if all_lines {
                    prefilter.take_all(&block, max_line, &mut batch);
                } else {
                    prefilter.scan(&block, max_line, &mut batch);
                }
                if batch.bytes_held() >= BATCH_BYTES
                    && tx
                        .send(Feed::Lines(std::mem::replace(&mut batch, tx.batch())))
                        .is_err()
                {
                    return false;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Feed::Failed(
                    anyhow::Error::new(e).context(format!("cannot read {name}")),
                ));
                return false;
            }
        }
    }
    tx.send(Feed::Lines(batch)).is_ok()
        && tx
            .send(Feed::End {
                oversized: reader.oversized(),
            })
            .is_ok()
}

/// The first bytes of a stream (up to its first line, at most
/// [`format::DETECT_BYTES`]) and the format they show, unless one is forced.
fn sniff(raw: &mut dyn Read, forced: InputFormat) -> std::io::Result<(InputFormat, Vec<u8>)> {
    if forced != InputFormat::Auto {
        return Ok((forced, Vec::new()));
    }
    let mut head = vec![0u8; format::DETECT_BYTES];
    let mut got = 0;
    while got < head.len() {
        let n = match raw.read(&mut head[got..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let seen = &head[..got + n];
        got += n;
        let content = seen.iter().position(|b| !b.is_ascii_whitespace());
        if content.is_some_and(|c| memchr_newline(&seen[c..]))
            || seen.starts_with(format::EVTX_MAGIC)
        {
            break;
        }
    }
    head.truncate(got);
    Ok((format::detect(&head), head))
}

fn memchr_newline(bytes: &[u8]) -> bool {
    bytes.contains(&b'\n')
}

/// The most bytes an `.evtx` file that is compressed or read from standard input may
/// have once decompressed: the reader needs to seek, so such a file is held in memory.
/// Windows' own cap on a log file is 4 GiB, its default for the Security log 20 MiB.
pub(crate) const MAX_EVTX_IN_MEMORY: u64 = 1 << 30;

/// Reads an `.evtx` file's login records and hands them on. A plain file is read where
/// it lies; a compressed one or standard input is read into memory first, up to
/// [`MAX_EVTX_IN_MEMORY`].
fn read_evtx(
    name: &str,
    seekable: bool,
    stream: Box<dyn Read>,
    progress: &indicatif::ProgressBar,
    tx: &FeedTx,
) -> bool {
    let send = |batch| tx.send(Feed::Lines(batch)).is_ok();
    let read = if seekable {
        drop(stream);
        std::fs::File::open(name)
            .with_context(|| format!("cannot open {name}"))
            .and_then(|file| {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let read = portcullis_parse::eventlog::read(file, BATCH_BYTES, send);
                progress.inc(len);
                read.with_context(|| format!("cannot read {name}"))
            })
    } else {
        in_memory(stream, MAX_EVTX_IN_MEMORY)
            .with_context(|| format!("cannot read {name}"))
            .and_then(|bytes| {
                portcullis_parse::eventlog::read(std::io::Cursor::new(bytes), BATCH_BYTES, send)
                    .with_context(|| format!("cannot read {name}"))
            })
    };
    match read {
        Ok(true) => tx.send(Feed::End { oversized: 0 }).is_ok(),
        Ok(false) => false,
        Err(e) => {
            let _ = tx.send(Feed::Failed(e));
            false
        }
    }
}

/// All of `stream`, or an error naming the cap if it holds more than `cap` bytes.
fn in_memory(stream: impl Read, cap: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    stream.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        anyhow::bail!(
            "an .evtx file read from a compressed file or standard input is held in memory, and this one is over {} MiB once decompressed; decompress it to a file first",
            cap >> 20
        );
    }
    Ok(bytes)
}

/// Reads a JSON document as records, in chunks, and hands them on.
fn read_records(name: &str, mut stream: Box<dyn Read>, tx: &FeedTx) -> bool {
    let mut splitter = RecordSplitter::default();
    let mut batch = tx.batch();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                splitter.push(&chunk[..n], &mut batch);
                if batch.bytes_held() >= BATCH_BYTES
                    && tx
                        .send(Feed::Lines(std::mem::replace(&mut batch, tx.batch())))
                        .is_err()
                {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Feed::Failed(
                    anyhow::Error::new(e).context(format!("cannot read {name}")),
                ));
                return false;
            }
        }
    }
    splitter.finish(&mut batch);
    tx.send(Feed::Lines(batch)).is_ok() && tx.send(Feed::End { oversized: 0 }).is_ok()
}

/// The prefilter for the built-in parsers and, if any, the custom rules.
pub(crate) fn prefilter(rules: Option<&Arc<Rules>>) -> Prefilter {
    match rules {
        Some(r) => Prefilter::with_rules(r.clone()),
        None => Prefilter::new(),
    }
}

/// How the parsing thread reads lines.
pub(crate) struct Parsing<'a> {
    pub year: Option<i16>,
    pub time_zone: &'a jiff::tz::TimeZone,
    pub accounts: &'a portcullis_core::AccountRules,
    pub rules: Option<&'a Arc<Rules>>,
    pub documents: &'a DocumentOptions,
}

/// Parses what the reader feeds, one parser per file, handing event batches on. Stops
/// early, with the counts so far, when `on_batch` says so.
pub(crate) fn parse_feed(
    parse: &Parsing<'_>,
    feed: FeedRx,
    on_batch: &mut impl FnMut(Vec<Event>) -> bool,
) -> Result<Stats> {
    let mut total = Stats::default();
    let mut current: Option<(LogParser, Arc<str>)> = None;
    let mut events = Vec::new();
    for msg in feed.rx.iter() {
        match msg {
            Feed::Start {
                name,
                modified,
                format,
            } => {
                let year = match parse.year {
                    Some(y) => YearRule::Fixed(y),
                    None => YearRule::Reference(modified),
                };
                let config = ParseConfig {
                    envelope: EnvelopeConfig {
                        time_zone: parse.time_zone.clone(),
                        year,
                    },
                    accounts: parse.accounts.clone(),
                    rules: parse.rules.cloned(),
                    format,
                    trusted_proxies: parse.documents.trusted_proxies.clone(),
                    json_formats: Arc::clone(&parse.documents.json_formats),
                };
                current = Some((LogParser::new(config), Arc::from(name.as_str())));
            }
            Feed::Lines(picked) => {
                if let Some((parser, file)) = current.as_mut() {
                    parser.push_candidates(&picked, Some(file), &mut events);
                }
                feed.give_back(picked);
            }
            Feed::End { oversized } => {
                if let Some((mut parser, _)) = current.take() {
                    parser.finish(&mut events);
                    parser.count_oversized(oversized);
                    total.add(parser.stats());
                }
            }
            Feed::Failed(e) => return Err(e),
        }
        if !events.is_empty() && !on_batch(std::mem::take(&mut events)) {
            return Ok(total);
        }
    }
    Ok(total)
}

pub fn summary(files: usize, s: &Stats, max_line: usize) -> String {
    let mut text = format!(
        "portcullis: {files} file{}, {} lines: {} events ({} attempts); {} auth-looking lines not understood",
        if files == 1 { "" } else { "s" },
        s.lines,
        s.events,
        s.attempts,
        s.unparsed_auth_lines
    );
    for (n, what) in [
        (
            s.malformed_records,
            "malformed records (W3C lines or JSON records that could not be read)".to_owned(),
        ),
        (
            s.non_utf8_lines,
            "lines not valid UTF-8 (read with replacement characters)".to_owned(),
        ),
        (s.nul_lines, "lines with NUL bytes".to_owned()),
        (
            s.oversized_lines,
            format!("lines over {max_line} bytes skipped"),
        ),
    ] {
        if n > 0 {
            text.push_str(&format!("; {n} {what}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_come_back_to_the_reader_empty_with_their_memory() {
        let (tx, rx) = feed(2);
        let mut batch = tx.batch();
        let mut splitter = RecordSplitter::default();
        let record = br#"{"type":"LOGIN","realmId":"r","time":1}"#.repeat(1000);
        splitter.push(&record, &mut batch);
        splitter.finish(&mut batch);
        let filled = batch.bytes_held();
        assert!(filled > 30_000, "{filled}");
        tx.send(Feed::Lines(batch)).unwrap();
        let Ok(Feed::Lines(picked)) = rx.rx.recv() else {
            panic!("a batch")
        };
        rx.give_back(picked);
        let again = tx.batch();
        assert!(again.is_empty() && again.bytes_held() == 0);
        assert!(
            again.capacity() >= filled,
            "{} < {filled}",
            again.capacity()
        );
        assert_eq!(again.stats, Stats::default());
        // With none back, a new one.
        assert_eq!(tx.batch().capacity(), 0);
    }

    #[test]
    fn evtx_in_memory_is_capped() {
        assert_eq!(in_memory(&b"ElfFile\0abc"[..], 11).unwrap().len(), 11);
        let e = in_memory(&b"ElfFile\0abcd"[..], 11)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over 0 MiB once decompressed"), "{e}");
        let e = in_memory(std::io::repeat(0), 3 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over 3 MiB"), "{e}");
    }
}
