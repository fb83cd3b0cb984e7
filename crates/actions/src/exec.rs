//! An operator's program, run for each [`Notice`]: a ticket system's client, a script
//! that pushes a ban to an edge router, a pager.
//!
//! The program is executed directly, never through a shell, with its arguments built
//! from a template: `{action}`, `{address}`, `{prefix}`, `{account}`, `{kind}`,
//! `{reason}`, `{duration}` (seconds) and `{time}` are replaced by the notice's fields
//! (a field the notice lacks by nothing), anywhere in an argument (`--ip={address}`);
//! `{{` and `}}` stand for literal braces. A substituted value is always one argument,
//! whatever it holds: an account name such as `x; rm -rf ~ $(id)` reaches the program as
//! those bytes, and no shell ever sees it. It may still begin with `-`, so a script
//! should put `--` before untrusted arguments.
//!
//! Notices wait in a bounded queue (a full queue drops the notice and counts it); at
//! most `concurrency` programs run at once, each with standard input from `/dev/null`,
//! its output captured (the first 4 KiB of each stream kept for [`ExecCounters::last_error`]),
//! killed with everything in its process group at `timeout`. When the program exits,
//! whatever it left running in its process group is killed too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::{fmt, mem};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::Notice;
use crate::child::{self, Keep, RunError};

/// The most programs run at once that a configuration may ask for.
pub const MAX_CONCURRENCY: usize = 1024;

/// The longest queue a configuration may ask for.
pub const MAX_QUEUE: usize = 1 << 20;

/// The most of each output stream kept for the error message.
const OUTPUT_KEPT: usize = 4096;

/// What to run and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The program (a path, or a name looked up in `PATH`) and its argument templates.
    pub argv: Vec<String>,
    /// How long one run may take before it is killed (default 10 s).
    pub timeout: Duration,
    /// How many runs at once, at most (default 4; 1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// How many notices may wait, at most (default 1024; 1 to [`MAX_QUEUE`]).
    pub queue: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            argv: Vec::new(),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            queue: 1024,
        }
    }
}

/// Why an [`Exec`] could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// `argv` is empty, or its program is empty or a placeholder.
    NoProgram,
    /// An argument names a placeholder that does not exist.
    UnknownPlaceholder {
        /// Which argument (0 is the program).
        argument: usize,
        /// The name between the braces.
        name: String,
    },
    /// An argument has a brace that opens or closes nothing.
    StrayBrace {
        /// Which argument.
        argument: usize,
    },
    /// `timeout` is zero, or `concurrency` or `queue` is outside its range.
    OutOfRange {
        /// Which one.
        field: &'static str,
        /// What it may be.
        allowed: &'static str,
    },
    /// [`Exec::spawn`] was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::NoProgram => {
                f.write_str("exec: argv needs a program, which cannot be a placeholder")
            }
            ExecError::UnknownPlaceholder { argument, name } => write!(
                f,
                "exec: argument {argument} has an unknown placeholder {{{name}}} (known: {})",
                FIELDS
                    .iter()
                    .map(|(n, _)| format!("{{{n}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            ExecError::StrayBrace { argument } => write!(
                f,
                "exec: argument {argument} has a brace that opens or closes nothing (write {{{{ or }}}} for a literal brace)"
            ),
            ExecError::OutOfRange { field, allowed } => {
                write!(f, "exec: {field} must be {allowed}")
            }
            ExecError::NoRuntime => f.write_str("exec: must be started within a tokio runtime"),
        }
    }
}

impl std::error::Error for ExecError {}

/// What the runner did, as counters the daemon can export.
#[derive(Debug, Default)]
pub struct ExecCounters {
    /// Programs started, or tried: every run, however it ended.
    pub runs: AtomicU64,
    /// Runs that exited with a non-zero status or could not be started.
    pub failed: AtomicU64,
    /// Runs killed at the timeout.
    pub timed_out: AtomicU64,
    /// Notices dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Notices waiting in the queue now.
    pub queued: AtomicU64,
    /// Notices waiting or runs under way when shutdown's grace ran out (the runs killed).
    pub abandoned: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ExecCounters {
    /// The newest failure in words (the program, how it ended, the first bytes of its
    /// standard error and output), for the daemon to log when `failed` or `timed_out`
    /// moves.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|l| l.clone())
    }

    fn fail(&self, counter: &AtomicU64, message: String) {
        bump(counter);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message);
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The running runner.
#[derive(Debug)]
pub struct Exec {
    template: Vec<Vec<Piece>>,
    jobs: mpsc::Sender<Vec<String>>,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    timeout: Duration,
    concurrency: usize,
    counters: Arc<ExecCounters>,
}

impl Exec {
    /// Checks the configuration and starts the runner's task. Must be called within a
    /// tokio runtime.
    pub fn spawn(config: ExecConfig) -> Result<Exec, ExecError> {
        let template = parse_argv(&config.argv)?;
        for (field, bad, allowed) in [
            ("timeout", config.timeout.is_zero(), "more than zero"),
            (
                "concurrency",
                !(1..=MAX_CONCURRENCY).contains(&config.concurrency),
                "1 to 1024",
            ),
            (
                "queue",
                !(1..=MAX_QUEUE).contains(&config.queue),
                "1 to 1048576",
            ),
        ] {
            if bad {
                return Err(ExecError::OutOfRange { field, allowed });
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ExecError::NoRuntime)?;
        let (jobs, rx) = mpsc::channel(config.queue);
        let shared = Arc::new(Shared {
            timeout: config.timeout,
            concurrency: config.concurrency,
            counters: Arc::default(),
        });
        let (stop, stopped) = oneshot::channel();
        let task = runtime.spawn(dispatch(rx, Arc::clone(&shared), stopped));
        Ok(Exec {
            template,
            jobs,
            shared,
            stop,
            task,
        })
    }

    /// Queues a run for `notice`; `false` (and counted as dropped) when the queue is full.
    pub fn send(&self, notice: &Notice) -> bool {
        let argv = substitute(&self.template, notice);
        let counters = &self.shared.counters;
        // Counted before it can be taken, so the gauge never goes below zero.
        bump(&counters.queued);
        if self.jobs.try_send(argv).is_ok() {
            return true;
        }
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        bump(&counters.dropped);
        false
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<ExecCounters> {
        &self.shared.counters
    }

    /// Takes no more notices, lets what is queued and running finish within `grace`,
    /// then kills what still runs and drops what still waits (counted as abandoned).
    pub async fn shutdown(self, grace: Duration) {
        let Exec {
            jobs,
            shared,
            stop,
            mut task,
            ..
        } = self;
        drop(jobs);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            let _ = stop.send(());
            let _ = task.await;
        }
        let left = shared.counters.queued.swap(0, Ordering::Relaxed);
        shared.counters.abandoned.fetch_add(left, Ordering::Relaxed);
    }
}

/// Takes jobs while fewer than `concurrency` run, so a burst waits in the bounded queue,
/// until the queue is closed and empty and every run has ended, or until `stop`, when it
/// drops the runs (which kills their programs) and returns once they are gone.
async fn dispatch(
    mut jobs: mpsc::Receiver<Vec<String>>,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut running = JoinSet::new();
    let mut open = true;
    // The sender gone without a word (the `Exec` dropped): carry on until the end.
    let mut stoppable = true;
    while open || !running.is_empty() {
        let room = running.len() < shared.concurrency;
        tokio::select! {
            r = &mut stop, if stoppable => match r {
                Ok(()) => break,
                Err(_) => stoppable = false,
            },
            job = jobs.recv(), if open && room => match job {
                Some(argv) => {
                    shared.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    running.spawn(run(argv, Arc::clone(&shared)));
                }
                None => open = false,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    running.shutdown().await;
}

async fn run(argv: Vec<String>, shared: Arc<Shared>) {
    let counters = &shared.counters;
    bump(&counters.runs);
    // Counted as abandoned unless the run gets to its end.
    let mut pending = Abandoned(Some(Arc::clone(counters)));
    let keep = Keep {
        stdout: OUTPUT_KEPT,
        stderr: OUTPUT_KEPT,
    };
    let program = argv.first().cloned().unwrap_or_default();
    let result = child::run(&argv, None, shared.timeout, keep).await;
    pending.0 = None;
    match result {
        Ok(done) if done.status.success() => {}
        Ok(done) => {
            let stderr = crate::bounded_text(&done.stderr.kept, OUTPUT_KEPT, done.stderr.omitted);
            let stdout = crate::bounded_text(&done.stdout.kept, OUTPUT_KEPT, done.stdout.omitted);
            counters.fail(
                &counters.failed,
                format!(
                    "exec: {program} ended with {}; stderr: {stderr:?}; stdout: {stdout:?}",
                    done.status
                ),
            );
        }
        Err(RunError::Spawn(e) | RunError::Wait(e)) => {
            counters.fail(&counters.failed, format!("exec: cannot run {program}: {e}"));
        }
        Err(RunError::TimedOut) => counters.fail(
            &counters.timed_out,
            format!("exec: {program} was killed after {:?}", shared.timeout),
        ),
    }
}

struct Abandoned(Option<Arc<ExecCounters>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take() {
            bump(&counters.abandoned);
        }
    }
}

/// A part of an argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Action,
    Address,
    Prefix,
    Account,
    Kind,
    Reason,
    Duration,
    Time,
}

const FIELDS: [(&str, Field); 8] = [
    ("action", Field::Action),
    ("address", Field::Address),
    ("prefix", Field::Prefix),
    ("account", Field::Account),
    ("kind", Field::Kind),
    ("reason", Field::Reason),
    ("duration", Field::Duration),
    ("time", Field::Time),
];

fn parse_argv(argv: &[String]) -> Result<Vec<Vec<Piece>>, ExecError> {
    let template = argv
        .iter()
        .enumerate()
        .map(|(i, arg)| parse_argument(i, arg))
        .collect::<Result<Vec<_>, _>>()?;
    match template.first().map(Vec::as_slice) {
        Some([Piece::Text(program)]) if !program.is_empty() => Ok(template),
        _ => Err(ExecError::NoProgram),
    }
}

fn parse_argument(argument: usize, arg: &str) -> Result<Vec<Piece>, ExecError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            text.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            text.push('}');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('{') {
            let end = inner.find('}').ok_or(ExecError::StrayBrace { argument })?;
            let name = &inner[..end];
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| ExecError::UnknownPlaceholder {
                    argument,
                    name: name.to_owned(),
                })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(mem::take(&mut text)));
            }
            pieces.push(Piece::Field(field));
            rest = &inner[end + 1..];
        } else {
            return Err(ExecError::StrayBrace { argument });
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn substitute(template: &[Vec<Piece>], notice: &Notice) -> Vec<String> {
    template
        .iter()
        .map(|pieces| {
            let mut arg = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(t) => arg.push_str(t),
                    Piece::Field(f) => arg.push_str(&value(*f, notice)),
                }
            }
            arg
        })
        .collect()
}

/// A field's text. A NUL cannot be passed in an argument: it becomes U+FFFD, so a crafted
/// account name cannot stop the program from running.
fn value(field: Field, n: &Notice) -> String {
    let text = match field {
        Field::Action => n.action.as_str().to_owned(),
        Field::Address => n.address.map(|a| a.to_string()).unwrap_or_default(),
        Field::Prefix => n.prefix.map(|p| p.to_string()).unwrap_or_default(),
        Field::Account => n.account.clone().unwrap_or_default(),
        Field::Kind => n.kind.clone().unwrap_or_default(),
        Field::Reason => n.reason.clone(),
        Field::Duration => n.duration_secs.map(|d| d.to_string()).unwrap_or_default(),
        Field::Time => n.time.clone(),
    };
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoticeAction;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn notice() -> Notice {
        Notice {
            action: NoticeAction::Lock,
            time: "2017-06-23T09:14:05Z".into(),
            address: None,
            prefix: None,
            account: Some("j.smith\0@example".into()),
            kind: None,
            reason: "r".into(),
            duration_secs: Some(900),
            dry_run: true,
        }
    }

    #[test]
    fn placeholders_are_substituted_inside_arguments_and_braces_escape() {
        let t = parse_argv(&args(&[
            "/bin/hook",
            "{action}",
            "--ip={address}",
            "{account}:{duration}s",
            "{{\"x\": {kind}}}",
            "plain",
            "",
        ]))
        .unwrap();
        assert_eq!(
            substitute(&t, &notice()),
            [
                "/bin/hook",
                "lock",
                "--ip=",
                "j.smith\u{FFFD}@example:900s",
                "{\"x\": }",
                "plain",
                ""
            ]
        );
    }

    #[test]
    fn bad_templates_are_refused_and_say_where() {
        assert_eq!(parse_argv(&[]), Err(ExecError::NoProgram));
        assert_eq!(parse_argv(&args(&[""])), Err(ExecError::NoProgram));
        assert_eq!(parse_argv(&args(&["{reason}"])), Err(ExecError::NoProgram));
        let err = parse_argv(&args(&["hook", "ok", "--user={user}"])).unwrap_err();
        assert_eq!(
            err,
            ExecError::UnknownPlaceholder {
                argument: 2,
                name: "user".into()
            }
        );
        assert!(err.to_string().contains("{user}"), "{err}");
        for stray in ["{address", "address}", "{", "a}b"] {
            assert_eq!(
                parse_argv(&args(&["hook", stray])),
                Err(ExecError::StrayBrace { argument: 1 }),
                "{stray}"
            );
        }
    }

    #[tokio::test]
    async fn limits_out_of_range_are_refused() {
        let base = || ExecConfig {
            argv: args(&["true"]),
            ..ExecConfig::default()
        };
        for (config, field) in [
            (
                ExecConfig {
                    timeout: Duration::ZERO,
                    ..base()
                },
                "timeout",
            ),
            (
                ExecConfig {
                    concurrency: 0,
                    ..base()
                },
                "concurrency",
            ),
            (
                ExecConfig {
                    concurrency: MAX_CONCURRENCY + 1,
                    ..base()
                },
                "concurrency",
            ),
            (ExecConfig { queue: 0, ..base() }, "queue"),
            (
                ExecConfig {
                    queue: usize::MAX,
                    ..base()
                },
                "queue",
            ),
        ] {
            match Exec::spawn(config) {
                Err(ExecError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let most = Exec::spawn(ExecConfig {
            concurrency: MAX_CONCURRENCY,
            queue: MAX_QUEUE,
            timeout: Duration::MAX,
            ..base()
        })
        .unwrap();
        most.shutdown(Duration::from_secs(1)).await;
    }

    #[test]
    fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
        let config = ExecConfig {
            argv: args(&["true"]),
            ..ExecConfig::default()
        };
        assert_eq!(Exec::spawn(config).unwrap_err(), ExecError::NoRuntime);
    }
}
