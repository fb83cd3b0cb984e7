//! The tailer's thread: the polling loop around a [`Tailer`], and what it sends on the
//! channel (lines only, or lines and the positions after them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Closed, FileConfig, FileCounters, FileError, ReadOutcome, Tailer};
use crate::Line;
use crate::checkpoint::Record;

/// The running tailer: its counters, and the way to stop it.
#[derive(Debug)]
pub struct FileSource {
    stop: Arc<AtomicBool>,
    wake: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<Result<(), FileError>>,
    counters: Arc<FileCounters>,
}

impl FileSource {
    /// The counters.
    pub fn counters(&self) -> &Arc<FileCounters> {
        &self.counters
    }

    /// Stops the tailer and waits for it: it finishes the line it is handing on (the
    /// consumer must keep receiving until the channel closes), sends its last
    /// [`Tailed::Positions`] (with [`spawn_tailed`]), writes the checkpoint file, and
    /// returns that write's result.
    pub fn stop(self) -> Result<(), FileError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(());
        self.thread.join().map_err(|_| FileError::Panicked)?
    }
}

/// What [`spawn_tailed`] sends: lines, and now and then the positions just after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tailed {
    /// A line, as [`spawn`] sends it.
    Line(Line),
    /// Where every followed file stands just after the lines sent before this message
    /// (and only them): a consumer that has handled every line it received so far can
    /// save these positions with its own state, and a tailer resumed from them
    /// ([`FileConfig::resume`]) sends exactly the lines that come after.
    Positions(Vec<Record>),
}

/// Where the polling thread's output goes: the two channel kinds.
trait Output: Send + 'static {
    fn line(&mut self, line: Line) -> Result<(), Closed>;
    /// At each checkpoint interval and on stop, after every line read so far.
    fn positions(&mut self, tailer: &Tailer) -> Result<(), Closed>;
}

impl Output for mpsc::Sender<Line> {
    fn line(&mut self, line: Line) -> Result<(), Closed> {
        self.blocking_send(line).map_err(|_| Closed)
    }

    fn positions(&mut self, _: &Tailer) -> Result<(), Closed> {
        Ok(())
    }
}

impl Output for mpsc::Sender<Tailed> {
    fn line(&mut self, line: Line) -> Result<(), Closed> {
        self.blocking_send(Tailed::Line(line)).map_err(|_| Closed)
    }

    fn positions(&mut self, tailer: &Tailer) -> Result<(), Closed> {
        self.blocking_send(Tailed::Positions(tailer.records()))
            .map_err(|_| Closed)
    }
}

/// Starts the tailer on its own thread, sending lines to `tx`.
///
/// When `tx` is full the tailer waits (`blocking_send`): the file is the buffer, so
/// back-pressure loses nothing. It stops when [`FileSource::stop`] is called or the
/// receiver is dropped, writing the checkpoint file either way. Must not be given a
/// channel whose receiver runs on the same thread.
pub fn spawn(config: FileConfig, tx: mpsc::Sender<Line>) -> Result<FileSource, FileError> {
    start(config, tx)
}

/// Starts the tailer like [`spawn`], with the positions in-band: after its first poll,
/// then at every `checkpoint_interval`, and on stop, it sends [`Tailed::Positions`]
/// after the lines read so far, so that when the consumer receives them they cover exactly the lines
/// it has consumed. This is how the daemon commits its engine state and the positions
/// of the lines in it together.
///
/// It writes no checkpoint file unless `config.checkpoint` is set; start it again from
/// the last positions the consumer saved with `config.resume`. A closed channel stops
/// it, as with [`spawn`].
pub fn spawn_tailed(config: FileConfig, tx: mpsc::Sender<Tailed>) -> Result<FileSource, FileError> {
    start(config, tx)
}

fn start(config: FileConfig, output: impl Output) -> Result<FileSource, FileError> {
    let tailer = Tailer::new(config)?;
    let counters = tailer.counters();
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, woken) = std::sync::mpsc::channel::<()>();
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("portcullis-file-tail".into())
        .spawn(move || run(tailer, output, &flag, &woken))
        .map_err(FileError::Spawn)?;
    Ok(FileSource {
        stop,
        wake,
        thread,
        counters,
    })
}

/// The polling loop: scan at `glob_interval`, read, checkpoint after the first read and
/// then at `checkpoint_interval`, wait `poll_interval` when idle; until stopped or closed.
fn run(
    mut tailer: Tailer,
    mut output: impl Output,
    stop: &AtomicBool,
    woken: &std::sync::mpsc::Receiver<()>,
) -> Result<(), FileError> {
    let cfg = tailer.config.clone();
    let mut next_scan = Instant::now();
    // The first positions right after the first poll: until a consumer has saved some,
    // its next start is a first start, and a file followed from its end would be picked
    // up at its new end, missing every line written in between.
    let mut next_checkpoint = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_scan {
            tailer.scan();
            next_scan = now + cfg.glob_interval;
        }
        let mut outcome = tailer.read(&mut |line| {
            if stop.load(Ordering::Relaxed) {
                return Err(Closed);
            }
            output.line(line)
        });
        if outcome.is_ok() && Instant::now() >= next_checkpoint {
            // A failed write is counted and retried at the next interval.
            let _ = tailer.checkpoint();
            if output.positions(&tailer).is_err() {
                outcome = Err(Closed);
            }
            next_checkpoint = Instant::now() + cfg.checkpoint_interval;
        }
        let wait = match outcome {
            Err(Closed) => break,
            Ok(ReadOutcome::More) => Duration::ZERO,
            Ok(ReadOutcome::Idle) => cfg.poll_interval,
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match woken.recv_timeout(wait) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    // After the last line handed on; a closed channel takes nothing more.
    let _ = output.positions(&tailer);
    tailer.checkpoint()
}
