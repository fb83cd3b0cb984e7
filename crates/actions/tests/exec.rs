//! The exec action against real programs: scripts written into a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portcullis_actions::exec::{Exec, ExecConfig};
use portcullis_actions::{Notice, NoticeAction};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Writes its arguments after the first, each ended by NUL, to the file named first.
fn recorder(dir: &Path) -> PathBuf {
    script(
        dir,
        "record",
        "out=\"$1\"; shift\nprintf '%s\\0' \"$@\" > \"$out\"\n",
    )
}

fn recorded(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8(bytes).unwrap();
    let mut args: Vec<_> = text.split('\0').map(String::from).collect();
    assert_eq!(
        args.pop().as_deref(),
        Some(""),
        "each argument ends with NUL"
    );
    args
}

fn ban() -> Notice {
    Notice {
        action: NoticeAction::Ban,
        time: "2017-06-23T09:14:05+01:00".into(),
        address: Some("203.0.113.7".parse().unwrap()),
        prefix: Some("203.0.113.7/32".parse().unwrap()),
        account: Some("j.smith@parliament.example".into()),
        kind: Some("password_spray".into()),
        reason: "17 accounts, 1 attempt each".into(),
        duration_secs: Some(3600),
        dry_run: false,
    }
}

fn config(argv: Vec<String>) -> ExecConfig {
    ExecConfig {
        argv,
        ..ExecConfig::default()
    }
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

const GRACE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn placeholders_are_substituted_and_absent_fields_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let record = recorder(dir.path());
    let out = dir.path().join("args-{action}");
    let exec = Exec::spawn(config(vec![
        record.display().to_string(),
        out.display().to_string(),
        "{action}".into(),
        "--ip={address}".into(),
        "{prefix}".into(),
        "{account}".into(),
        "{kind}".into(),
        "{reason}".into(),
        "{duration}".into(),
        "{time}".into(),
        "{{literal}}".into(),
    ]))
    .unwrap();
    assert!(exec.send(&ban()));
    let unlock = Notice {
        action: NoticeAction::Unlock,
        address: None,
        prefix: None,
        kind: None,
        duration_secs: None,
        reason: String::new(),
        ..ban()
    };
    assert!(exec.send(&unlock));
    let counters = exec.counters().clone();
    exec.shutdown(GRACE).await;
    assert_eq!(
        recorded(&dir.path().join("args-ban")),
        [
            "ban",
            "--ip=203.0.113.7",
            "203.0.113.7/32",
            "j.smith@parliament.example",
            "password_spray",
            "17 accounts, 1 attempt each",
            "3600",
            "2017-06-23T09:14:05+01:00",
            "{literal}"
        ]
    );
    assert_eq!(
        recorded(&dir.path().join("args-unlock")),
        [
            "unlock",
            "--ip=",
            "",
            "j.smith@parliament.example",
            "",
            "",
            "",
            "2017-06-23T09:14:05+01:00",
            "{literal}"
        ]
    );
    assert_eq!(load(&counters.runs), 2);
    assert_eq!(load(&counters.failed), 0);
    assert_eq!(load(&counters.queued), 0);
}

#[tokio::test]
async fn a_hostile_account_name_is_one_literal_argument_and_no_shell_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let record = recorder(dir.path());
    let out = dir.path().join("args");
    let pwned = |n: u8| dir.path().join(format!("pwned{n}"));
    let hostile = format!(
        "x; touch {} $(touch {}) `touch {}` | touch {} && id\n-rf --help '\"*",
        pwned(1).display(),
        pwned(2).display(),
        pwned(3).display(),
        pwned(4).display()
    );
    let exec = Exec::spawn(config(vec![
        record.display().to_string(),
        out.display().to_string(),
        "--account={account}".into(),
        "{account}".into(),
        "{reason}".into(),
    ]))
    .unwrap();
    let notice = Notice {
        account: Some(hostile.clone()),
        reason: "$(id) *".into(),
        ..ban()
    };
    assert!(exec.send(&notice));
    let counters = exec.counters().clone();
    exec.shutdown(GRACE).await;
    assert_eq!(
        recorded(&out),
        [format!("--account={hostile}"), hostile, "$(id) *".into()]
    );
    for n in 1..=4 {
        assert!(!pwned(n).exists(), "{} was created", pwned(n).display());
    }
    assert_eq!(load(&counters.failed), 0);
}

#[tokio::test]
async fn a_program_that_overstays_is_killed_at_the_timeout() {
    let exec = Exec::spawn(ExecConfig {
        argv: words(&["sleep", "30"]),
        timeout: Duration::from_millis(200),
        ..ExecConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    assert!(exec.send(&ban()));
    let last = exec.counters().clone();
    exec.shutdown(GRACE).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(load(&last.timed_out), 1);
    assert_eq!(load(&last.failed), 0);
    assert_eq!(load(&last.abandoned), 0);
    assert!(last.last_error().unwrap().contains("killed"));
}

#[tokio::test]
async fn failures_are_counted_with_the_programs_own_words() {
    let dir = tempfile::tempdir().unwrap();
    let failing = script(
        dir.path(),
        "fail",
        "echo 'router 192.0.2.1 refused the ban' >&2\necho partial\nexit 3\n",
    );
    let exec = Exec::spawn(config(vec![failing.display().to_string()])).unwrap();
    assert!(exec.send(&ban()));
    let counters = exec.counters().clone();
    exec.shutdown(GRACE).await;
    assert_eq!(load(&counters.runs), 1);
    assert_eq!(load(&counters.failed), 1);
    let message = counters.last_error().expect("a failure message");
    assert!(
        message.contains("router 192.0.2.1 refused the ban"),
        "{message}"
    );
    assert!(message.contains("partial"), "{message}");
    assert!(message.contains("exit status: 3"), "{message}");

    let missing = Exec::spawn(config(words(&[
        "/nonexistent/portcullis-hook",
        "{address}",
    ])))
    .unwrap();
    assert!(missing.send(&ban()));
    let counters = missing.counters().clone();
    missing.shutdown(GRACE).await;
    assert_eq!(load(&counters.failed), 1);
    let message = counters.last_error().expect("a failure message");
    assert!(
        message.contains("cannot run /nonexistent/portcullis-hook"),
        "{message}"
    );
}

/// A full queue drops and counts; shutdown kills the program still running when its
/// grace runs out. The script tells the test it started through one FIFO and holds
/// another open while it lives, so the test sees its death as that FIFO's end of file.
#[tokio::test]
async fn a_full_queue_drops_and_shutdown_kills_what_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let alive = dir.path().join("alive");
    for fifo in [&started, &alive] {
        let out = std::process::Command::new("mkfifo")
            .arg(fifo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mkfifo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hold = script(
        dir.path(),
        "hold",
        "exec 3>\"$2\"\necho started > \"$1\"\nexec sleep 30\n",
    );
    let exec = Exec::spawn(ExecConfig {
        argv: vec![
            hold.display().to_string(),
            started.display().to_string(),
            alive.display().to_string(),
        ],
        timeout: Duration::from_secs(60),
        concurrency: 1,
        queue: 1,
    })
    .unwrap();
    let counters = exec.counters().clone();
    let lifetime = tokio::spawn({
        let alive = alive.clone();
        async move { tokio::fs::read(alive).await }
    });
    assert!(exec.send(&ban()));
    let said = tokio::time::timeout(Duration::from_secs(10), tokio::fs::read(&started))
        .await
        .expect("the script starts within 10 s")
        .unwrap();
    assert_eq!(said, b"started\n");
    // The first runs (concurrency 1), the second waits (queue 1), the third is dropped.
    assert!(exec.send(&ban()));
    assert!(!exec.send(&ban()));
    assert_eq!(load(&counters.dropped), 1);
    assert_eq!(load(&counters.queued), 1);

    let began = Instant::now();
    exec.shutdown(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), lifetime)
        .await
        .expect("the script is killed at shutdown")
        .unwrap()
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(load(&counters.abandoned), 2);
    assert_eq!(load(&counters.queued), 0);
    assert_eq!(load(&counters.runs), 1);
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::Relaxed)
}
