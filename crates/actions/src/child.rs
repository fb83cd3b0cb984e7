//! Running one program to completion: input on its standard input, a deadline, its output
//! kept within bounds, and its whole process group killed when it overstays, when it
//! leaves helpers behind, or when the caller stops waiting.
//!
//! The program gets a process group of its own so that a script's children die with it:
//! killing only the script would leave, say, its `sleep 30` holding the output pipes open
//! and the reader waiting for them.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The first bytes of an output stream and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub kept: Vec<u8>,
    pub omitted: usize,
}

/// A program that ran to its end.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Why a program did not run to its end.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started (missing, not executable, a NUL byte in an argument).
    Spawn(io::Error),
    /// Waiting for it failed.
    Wait(io::Error),
    /// It was still running at the deadline and was killed.
    TimedOut,
}

/// How much of each output stream to keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    pub stdout: usize,
    pub stderr: usize,
}

/// Runs `argv` (program and arguments, no shell) with `input` on its standard input
/// (`None`: `/dev/null`) and kills it at `timeout`.
pub(crate) async fn run(
    argv: &[String],
    input: Option<&[u8]>,
    timeout: Duration,
    keep: Keep,
) -> Result<Finished, RunError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(RunError::Spawn(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no program to run",
        )));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let mut group = Group(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    );
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let feed = async move {
        if let (Some(mut pipe), Some(data)) = (stdin, input) {
            // A program that exits without reading all of it breaks the pipe; its exit
            // status says what happened, so the write error adds nothing.
            let _ = pipe.write_all(data).await;
        }
    };
    let wait = async {
        let status = child.wait().await;
        // Whatever it left running in its group would hold the pipes open.
        group.kill();
        status
    };
    let all = async {
        tokio::join!(
            feed,
            capture(stdout, keep.stdout),
            capture(stderr, keep.stderr),
            wait
        )
    };
    // `timeout` rather than a deadline of our own: it takes any duration without overflow.
    let result = tokio::time::timeout(timeout, all).await;
    match result {
        Ok(((), stdout, stderr, status)) => Ok(Finished {
            status: status.map_err(RunError::Wait)?,
            stdout,
            stderr,
        }),
        Err(_) => {
            group.kill();
            // SIGKILL is not refused, so this is prompt; the bound is for the impossible.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            Err(RunError::TimedOut)
        }
    }
}

/// A child's process group, killed at most once: explicitly, or on drop when the caller
/// stops waiting (a shut-down worker's task is dropped mid-run).
struct Group(Option<Pid>);

impl Group {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            // The group's leader is our child and not yet reaped, or the group still has
            // members, so the id cannot have been reused yet. An error only means the
            // group is already gone.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn capture<R: AsyncRead + Unpin>(reader: Option<R>, keep: usize) -> Captured {
    let mut out = Captured::default();
    let Some(mut reader) = reader else {
        return out;
    };
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let take = keep.saturating_sub(out.kept.len()).min(n);
                out.kept.extend_from_slice(&buf[..take]);
                out.omitted = out.omitted.saturating_add(n - take);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    const KEEP: Keep = Keep {
        stdout: 16,
        stderr: 16,
    };

    #[tokio::test]
    async fn feeds_stdin_and_keeps_the_first_bytes_of_output() {
        let done = run(
            &argv(&["cat"]),
            Some(&[b'x'; 100_000]),
            Duration::from_secs(10),
            KEEP,
        )
        .await
        .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout.kept, [b'x'; 16]);
        assert_eq!(done.stdout.omitted, 100_000 - 16);
    }

    #[tokio::test]
    async fn a_child_left_behind_does_not_hold_the_run_open() {
        let started = Instant::now();
        let done = run(
            &argv(&["sh", "-c", "sleep 30 & echo started"]),
            None,
            Duration::from_secs(20),
            KEEP,
        )
        .await
        .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout.kept, b"started\n");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_script_and_its_children_are_killed_at_the_deadline() {
        let started = Instant::now();
        let err = run(
            &argv(&["sh", "-c", "sleep 30; echo late"]),
            None,
            Duration::from_millis(200),
            KEEP,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::TimedOut), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn any_timeout_is_taken_without_overflow() {
        let done = run(&argv(&["true"]), None, Duration::MAX, KEEP)
            .await
            .unwrap();
        assert!(done.status.success());
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = run(
            &argv(&["/nonexistent/portcullis-test"]),
            None,
            Duration::from_secs(1),
            KEEP,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err:?}");
        let err = run(&[], None, Duration::from_secs(1), KEEP)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)), "{err:?}");
    }
}
