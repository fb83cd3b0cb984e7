//! `portcullis events`: normalised login events as JSON lines or CSV.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use portcullis_core::Event;
use portcullis_core::json::JsonWriter;
use portcullis_parse::Stats;

use crate::options::ReadOptions;
use crate::pipeline;

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

const CSV_COLUMNS: [&str; 17] = [
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
    "second_factor",
    "attempts",
    "session",
    "host",
    "file",
    "line",
    "offset",
];

pub fn run(args: &EventsArgs) -> Result<ExitCode> {
    let format = args.format;
    // Three threads with short bounded queues between them: one reads and prefilters,
    // one parses (this one), one serialises and writes.
    let (total, flow) = std::thread::scope(|scope| -> Result<(Stats, Flow)> {
        let (out_tx, out_rx) = mpsc::sync_channel::<Vec<Event>>(8);
        let writer = scope.spawn(move || -> Result<Flow> {
            let mut sink = Sink::new(format, io::stdout().lock())?;
            for mut batch in out_rx {
                if sink.write_all(&mut batch)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            sink.flush()
        });
        let parsed = pipeline::read_and_parse(&args.files, &args.read, args.quiet, |batch| {
            out_tx.send(batch).is_ok()
        });
        drop(out_tx);
        let flow = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the output thread failed"))??;
        Ok((parsed?, flow))
    })?;
    if flow == Flow::Go && !args.quiet {
        eprintln!(
            "{}",
            pipeline::summary(args.files.len(), &total, args.read.max_line)
        );
    }
    Ok(ExitCode::SUCCESS)
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
pub fn cell(text: &str) -> String {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn csv_row(e: &Event) -> [String; 17] {
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
        opt(e.second_factor.map(|f| f.to_string())),
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
