//! The systemd journal, read through `journalctl --follow --output=json`.
//!
//! `journalctl` runs as a child process; each line of its standard output (one JSON
//! record, which `portcullis-parse`'s envelope reads: `MESSAGE`, `__REALTIME_TIMESTAMP`,
//! `_HOSTNAME`, `SYSLOG_IDENTIFIER`, `_PID`) becomes a [`Line`]. If it exits, it is
//! started again after a backoff that doubles up to a maximum, and resumes after the
//! last record passed on (`--after-cursor`, from the record's `__CURSOR`), so a restart
//! neither repeats nor skips records. On shutdown the child is killed and reaped.
//! Its standard error is the daemon's.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStdout, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{Line, Source};

/// The journal source's options.
#[derive(Debug, Clone)]
pub struct JournaldConfig {
    /// The program to run (default `journalctl`).
    pub program: PathBuf,
    /// Its arguments (default `--follow --output=json`); add `--unit=ssh` or
    /// `--since=…` here.
    pub args: Vec<String>,
    /// Whether the first start skips the records already in the journal
    /// (`--lines=0`, the default) rather than letting `journalctl` choose.
    pub start_at_end: bool,
    /// Longest record passed on (default 64 KiB); longer ones are skipped and counted.
    pub max_line: usize,
    /// The first wait before a restart (default 1 s).
    pub backoff_min: Duration,
    /// The longest wait before a restart (default 1 min).
    pub backoff_max: Duration,
}

impl Default for JournaldConfig {
    fn default() -> Self {
        Self {
            program: "journalctl".into(),
            args: vec!["--follow".into(), "--output=json".into()],
            start_at_end: true,
            max_line: 64 * 1024,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// What the journal source did, as counters the daemon can export.
#[derive(Debug, Default)]
pub struct JournaldCounters {
    /// Records passed on.
    pub lines: AtomicU64,
    /// Times `journalctl` was started.
    pub starts: AtomicU64,
    /// Times it could not be started at all (missing program, permissions).
    pub start_errors: AtomicU64,
    /// Records skipped for exceeding `max_line`.
    pub oversized: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The running journal source.
#[derive(Debug)]
pub struct JournaldSource {
    counters: Arc<JournaldCounters>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl JournaldSource {
    /// Starts `journalctl` and passes its records to `tx`. Must be called within a
    /// tokio runtime. Runs until [`Self::shutdown`] or until `tx` closes.
    pub fn start(config: JournaldConfig, tx: mpsc::Sender<Line>) -> Self {
        let counters = Arc::new(JournaldCounters::default());
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(run(config, tx, Arc::clone(&counters), stop));
        Self {
            counters,
            shutdown,
            task,
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<JournaldCounters> {
        &self.counters
    }

    /// Kills `journalctl` and waits until it is gone.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// How one run of the child ended.
enum End {
    /// Its output ended (it exited or closed stdout).
    Exited,
    /// Shutdown, or nobody receives any more.
    Stop,
}

async fn run(
    config: JournaldConfig,
    tx: mpsc::Sender<Line>,
    counters: Arc<JournaldCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut cursor: Option<String> = None;
    let mut backoff = config.backoff_min;
    let mut first = true;
    loop {
        let mut cmd = Command::new(&config.program);
        cmd.args(&config.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        match &cursor {
            Some(c) => {
                cmd.arg(format!("--after-cursor={c}"));
            }
            None if first && config.start_at_end => {
                cmd.arg("--lines=0");
            }
            None => {}
        }
        first = false;
        let mut passed_on = false;
        match cmd.spawn() {
            Err(_) => bump(&counters.start_errors),
            Ok(mut child) => {
                bump(&counters.starts);
                let end = match child.stdout.take() {
                    Some(out) => {
                        let before = counters.lines.load(Ordering::Relaxed);
                        let end = read(out, &config, &tx, &counters, &mut cursor, &mut stop).await;
                        passed_on = counters.lines.load(Ordering::Relaxed) > before;
                        end
                    }
                    None => End::Exited,
                };
                // Ends it if it still runs (stdout closed early, or shutdown), and reaps it.
                let _ = child.kill().await;
                if matches!(end, End::Stop) {
                    return;
                }
            }
        }
        if passed_on {
            backoff = config.backoff_min;
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

async fn read(
    out: ChildStdout,
    config: &JournaldConfig,
    tx: &mpsc::Sender<Line>,
    counters: &JournaldCounters,
    cursor: &mut Option<String>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut out = BufReader::with_capacity(64 * 1024, out);
    let mut line = Vec::new();
    let mut oversized = false;
    loop {
        let buf = tokio::select! {
            _ = stop.changed() => return End::Stop,
            r = out.fill_buf() => match r {
                Ok([]) | Err(_) => return End::Exited,
                Ok(buf) => buf,
            },
        };
        let (take, complete) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if !oversized && line.len() + take <= config.max_line {
            line.extend_from_slice(&buf[..take]);
        } else if !oversized {
            oversized = true;
            bump(&counters.oversized);
            line.clear();
        }
        out.consume(take + usize::from(complete));
        if !complete {
            continue;
        }
        if std::mem::take(&mut oversized) || line.is_empty() {
            line.clear();
            continue;
        }
        let bytes = std::mem::take(&mut line);
        let next_cursor = record_cursor(&bytes);
        let record = Line {
            bytes,
            source: Source::Journald,
            offset: None,
        };
        tokio::select! {
            _ = stop.changed() => return End::Stop,
            r = tx.send(record) => if r.is_err() { return End::Stop },
        }
        bump(&counters.lines);
        if next_cursor.is_some() {
            *cursor = next_cursor;
        }
    }
}

/// The record's `__CURSOR`, where `journalctl --after-cursor` resumes.
fn record_cursor(record: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Cursor {
        #[serde(rename = "__CURSOR")]
        cursor: Option<String>,
    }
    serde_json::from_slice::<Cursor>(record).ok()?.cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_read_from_a_record_and_junk_has_none() {
        assert_eq!(
            record_cursor(br#"{"__CURSOR":"s=1;i=2","MESSAGE":"x"}"#).as_deref(),
            Some("s=1;i=2")
        );
        assert_eq!(record_cursor(b"not json"), None);
        assert_eq!(record_cursor(br#"{"MESSAGE":"x"}"#), None);
    }
}
