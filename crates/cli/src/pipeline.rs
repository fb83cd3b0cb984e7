//! Reading logs into events, on two threads: one reads and prefilters, the caller's
//! parses. Shared by `events` and `analyze`.

use std::sync::{Arc, mpsc};

use anyhow::Result;
use portcullis_core::Event;
use portcullis_parse::envelope::EnvelopeConfig;
use portcullis_parse::{
    Candidates, LineReader, LogParser, ParseConfig, Prefilter, Rules, Stats, YearRule,
};

use crate::input;
use crate::options::ReadOptions;

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
    let rules = read.parse_rules()?;
    std::thread::scope(|scope| {
        let (feed_tx, feed_rx) = mpsc::sync_channel::<Feed>(8);
        let progress = input::progress(files, quiet);
        let prefilter = prefilter(rules.as_ref());
        scope.spawn(move || {
            read_files(files, read.max_line, &progress, prefilter, &feed_tx);
            progress.finish_and_clear();
        });
        let parse = Parsing {
            year: read.year,
            time_zone: &time_zone,
            accounts: &accounts,
            rules: rules.as_ref(),
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

/// Reads and prefilters every file in order. Stops when the parser has gone.
fn read_files(
    files: &[String],
    max_line: usize,
    progress: &indicatif::ProgressBar,
    mut prefilter: Prefilter,
    tx: &mpsc::SyncSender<Feed>,
) {
    for name in files {
        if !read_file(name, max_line, progress, &mut prefilter, tx) {
            return;
        }
    }
}

/// Reads and prefilters one file, from `Start` to `End`. False when the file failed or
/// the parser has gone: nothing more should be sent.
pub(crate) fn read_file(
    name: &str,
    max_line: usize,
    progress: &indicatif::ProgressBar,
    prefilter: &mut Prefilter,
    tx: &mpsc::SyncSender<Feed>,
) -> bool {
    let input = match input::open(name, progress) {
        Ok(i) => i,
        Err(e) => {
            let _ = tx.send(Feed::Failed(e));
            return false;
        }
    };
    if tx
        .send(Feed::Start {
            name: name.to_owned(),
            modified: input.modified,
        })
        .is_err()
    {
        return false;
    }
    let mut reader = LineReader::with_max_line(input.reader, max_line);
    let mut batch = Candidates::default();
    loop {
        match reader.next_block() {
            Ok(Some(block)) => {
                prefilter.scan(&block, max_line, &mut batch);
                if batch.bytes_held() >= BATCH_BYTES
                    && tx.send(Feed::Lines(std::mem::take(&mut batch))).is_err()
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
}

/// Parses what the reader feeds, one parser per file, handing event batches on. Stops
/// early, with the counts so far, when `on_batch` says so.
pub(crate) fn parse_feed(
    parse: &Parsing<'_>,
    feed: mpsc::Receiver<Feed>,
    on_batch: &mut impl FnMut(Vec<Event>) -> bool,
) -> Result<Stats> {
    let mut total = Stats::default();
    let mut current: Option<(LogParser, Arc<str>)> = None;
    let mut events = Vec::new();
    for msg in feed {
        match msg {
            Feed::Start { name, modified } => {
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
                };
                current = Some((LogParser::new(config), Arc::from(name.as_str())));
            }
            Feed::Lines(picked) => {
                if let Some((parser, file)) = current.as_mut() {
                    parser.push_candidates(&picked, Some(file), &mut events);
                }
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
