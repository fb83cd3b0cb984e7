//! `portcullis events`: normalised login events as JSON lines or CSV.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use portcullis_core::Event;
use portcullis_core::json::JsonWriter;
use portcullis_parse::envelope::EnvelopeConfig;
use portcullis_parse::{
    Candidates, LineReader, LogParser, ParseConfig, Prefilter, Stats, YearRule,
};

use crate::input;
use crate::options::ReadOptions;

/// Print every login attempt found in the logs as one normalised event per line.
///
/// Reads Dovecot, Postfix and OpenSSH logs in any envelope (syslog, RFC 5424, ISO-8601,
/// TAI64N, journald JSON), plain or gzip-compressed, and prints the event contract
/// (see docs/events.md). A summary goes to stderr: lines read, events, and lines that
/// look like authentication but that no parser understood.
///
/// Examples:
///   portcullis events /var/log/mail.log
///   portcullis events --year 2017 --timezone Europe/London mail.log.1 mail.log.2.gz
///   journalctl -u ssh -o json | portcullis events -
///   portcullis events --format csv /var/log/auth.log > attempts.csv
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EventsArgs {
    /// Log files to read (`-` for standard input; `.gz` is recognised by content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,

    /// Do not print the summary on stderr.
    #[arg(long, short)]
    quiet: bool,

    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

const CSV_COLUMNS: [&str; 16] = [
    "time",
    "service",
    "protocol",
    "source",
    "source_name",
    "port",
    "user",
    "account",
    "outcome",
    "reason",
    "attempts",
    "session",
    "host",
    "file",
    "line",
    "offset",
];

pub fn run(args: &EventsArgs) -> Result<ExitCode> {
    let time_zone = args.read.time_zone()?;
    let accounts = args.read.account_rules()?;
    let format = args.format;
    // A pipeline of three threads with short bounded queues between them: one reads
    // and prefilters, one parses, one serialises and writes.
    let (total, flow) = std::thread::scope(|scope| -> Result<(Stats, Flow)> {
        let (feed_tx, feed_rx) = mpsc::sync_channel::<Feed>(8);
        let (out_tx, out_rx) = mpsc::sync_channel::<Vec<Event>>(8);
        let progress = input::progress(&args.files, args.quiet);
        scope.spawn(move || {
            read_files(&args.files, args.read.max_line, &progress, &feed_tx);
            progress.finish_and_clear();
        });
        let writer = scope.spawn(move || -> Result<Flow> {
            let mut sink = Sink::new(format, io::stdout().lock())?;
            for mut batch in out_rx {
                if sink.write_all(&mut batch)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            sink.flush()
        });
        let parsed = parse_feed(args, &time_zone, &accounts, feed_rx, &out_tx);
        drop(out_tx);
        let flow = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the output thread failed"))??;
        Ok((parsed?, flow))
    })?;
    if flow == Flow::Go && !args.quiet {
        eprintln!("{}", summary(args.files.len(), &total, args.read.max_line));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the reading thread hands the parsing thread.
enum Feed {
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
    tx: &mpsc::SyncSender<Feed>,
) {
    let mut prefilter = Prefilter::new();
    for name in files {
        let input = match input::open(name, progress) {
            Ok(i) => i,
            Err(e) => {
                let _ = tx.send(Feed::Failed(e));
                return;
            }
        };
        if tx
            .send(Feed::Start {
                name: name.clone(),
                modified: input.modified,
            })
            .is_err()
        {
            return;
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
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Feed::Failed(
                        anyhow::Error::new(e).context(format!("cannot read {name}")),
                    ));
                    return;
                }
            }
        }
        if tx.send(Feed::Lines(batch)).is_err()
            || tx
                .send(Feed::End {
                    oversized: reader.oversized(),
                })
                .is_err()
        {
            return;
        }
    }
}

/// Parses what the reader feeds, one parser per file, sending event batches to the
/// writer. Stops early, with the counts so far, when the writer has gone (its reader
/// closed the pipe).
fn parse_feed(
    args: &EventsArgs,
    time_zone: &jiff::tz::TimeZone,
    accounts: &portcullis_core::AccountRules,
    feed: mpsc::Receiver<Feed>,
    tx: &mpsc::SyncSender<Vec<Event>>,
) -> Result<Stats> {
    let mut total = Stats::default();
    let mut current: Option<(LogParser, Arc<str>)> = None;
    let mut events = Vec::new();
    for msg in feed {
        match msg {
            Feed::Start { name, modified } => {
                let year = match args.read.year {
                    Some(y) => YearRule::Fixed(y),
                    None => YearRule::Reference(modified),
                };
                let config = ParseConfig {
                    envelope: EnvelopeConfig {
                        time_zone: time_zone.clone(),
                        year,
                    },
                    accounts: accounts.clone(),
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
        if !events.is_empty() && tx.send(std::mem::take(&mut events)).is_err() {
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

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Go,
    /// The reader of our output went away (`| head`): stop quietly.
    Stop,
}

enum Sink<W: Write> {
    Json(io::BufWriter<W>, JsonWriter, Vec<u8>),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Sink<W> {
    fn new(format: Format, out: W) -> Result<Self> {
        Ok(match format {
            Format::Json => Sink::Json(
                io::BufWriter::with_capacity(256 * 1024, out),
                JsonWriter::new(),
                Vec::new(),
            ),
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .buffer_capacity(256 * 1024)
                    .from_writer(out);
                w.write_record(CSV_COLUMNS).context("cannot write output")?;
                Sink::Csv(Box::new(w))
            }
        })
    }

    fn write_all(&mut self, events: &mut Vec<Event>) -> Result<Flow> {
        let result = events.iter().try_for_each(|e| self.write(e));
        events.clear();
        io_flow(result)
    }

    fn write(&mut self, e: &Event) -> io::Result<()> {
        match self {
            Sink::Json(w, json, line) => {
                line.clear();
                json.write(e, line);
                line.push(b'\n');
                w.write_all(line)
            }
            Sink::Csv(w) => w.write_record(csv_row(e)).map_err(io::Error::other),
        }
    }

    fn flush(&mut self) -> Result<Flow> {
        io_flow(match self {
            Sink::Json(w, ..) => w.flush(),
            Sink::Csv(w) => w.flush(),
        })
    }
}

fn io_flow(result: io::Result<()>) -> Result<Flow> {
    match result {
        Ok(()) => Ok(Flow::Go),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(e) if e.get_ref().and_then(|i| i.downcast_ref::<csv::Error>()).is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::BrokenPipe)) => {
            Ok(Flow::Stop)
        }
        Err(e) => Err(e).context("cannot write output"),
    }
}

/// Attacker-chosen text must not become a spreadsheet formula when the CSV is opened in
/// a spreadsheet (OWASP "CSV injection"): cells starting with `= + - @` or a control
/// character get a leading `'`.
fn cell(text: &str) -> String {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn csv_row(e: &Event) -> [String; 16] {
    let opt = |o: Option<String>| o.unwrap_or_default();
    [
        opt(e.time.map(|t| t.to_string())),
        e.service.to_string(),
        opt(e.protocol.map(|p| p.to_string())),
        opt(e.source.map(|a| a.to_string())),
        opt(e.source_name.as_deref().map(cell)),
        opt(e.port.map(|p| p.to_string())),
        opt(e.user.as_deref().map(cell)),
        opt(e.account.as_deref().map(cell)),
        e.outcome.as_str().to_owned(),
        opt(e.outcome.reason().map(|r| r.to_string())),
        e.attempts.to_string(),
        opt(e.session.as_deref().map(cell)),
        opt(e.host.as_deref().map(cell)),
        opt(e.origin.file.as_deref().map(cell)),
        e.origin.line.to_string(),
        e.origin.offset.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("bob"), "bob");
    }
}
