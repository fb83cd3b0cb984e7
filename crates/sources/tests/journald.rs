//! The journal source against a fake `journalctl` (a shell script): records arrive,
//! the program is restarted after it exits and resumes after the last cursor, and it
//! is killed on shutdown.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use portcullis_core::{Origin, Outcome, Reason};
use portcullis_parse::{LogParser, ParseConfig};
use portcullis_sources::journald::{JournaldConfig, JournaldSource};
use portcullis_sources::{Line, Source};
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(10);

fn record(cursor: &str, pid: u32, user: &str) -> String {
    format!(
        r#"{{"__CURSOR":"{cursor}","__REALTIME_TIMESTAMP":"1498205645000000","_HOSTNAME":"mail01","SYSLOG_IDENTIFIER":"sshd","_PID":"{pid}","MESSAGE":"Failed password for {user} from 203.0.113.7 port 51234 ssh2"}}"#
    )
}

/// A fake `journalctl`: logs its arguments and pid; the first run prints two records
/// and a too-long line and exits; a run resuming after `c2` prints a third record and
/// stays up.
fn fake_journalctl(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("journalctl");
    let long = "x".repeat(300);
    let text = format!(
        "#!/bin/sh\n\
         echo \"$*\" >> '{dir}/args'\n\
         case \"$*\" in\n\
         *--after-cursor=c2*) echo $$ > '{dir}/pid'; echo '{r3}'; exec sleep 600 ;;\n\
         *) echo '{r1}'; echo '{long}'; echo '{r2}' ;;\n\
         esac\n",
        dir = dir.display(),
        r1 = record("c1", 101, "alice"),
        r2 = record("c2", 102, "bob"),
        r3 = record("c3", 103, "carol"),
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

async fn next(rx: &mut mpsc::Receiver<Line>) -> Line {
    tokio::time::timeout(GUARD, rx.recv())
        .await
        .expect("no record arrived")
        .expect("channel closed")
}

#[tokio::test]
async fn records_arrive_the_program_restarts_after_the_cursor_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournaldConfig {
        program: fake_journalctl(dir.path()),
        max_line: 280,
        backoff_min: Duration::from_millis(10),
        ..JournaldConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(4);
    let source = JournaldSource::start(config, tx);
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(next(&mut rx).await);
    }
    assert!(lines.iter().all(|l| l.source == Source::Journald));

    let args = fs::read_to_string(dir.path().join("args")).unwrap();
    let runs: Vec<&str> = args.lines().collect();
    assert_eq!(
        runs,
        [
            "--follow --output=json --lines=0",
            "--follow --output=json --after-cursor=c2"
        ]
    );
    let counters = std::sync::Arc::clone(source.counters());
    assert_eq!(
        counters
            .oversized
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The envelope reads journald JSON: three sshd failures for three users.
    let mut parser = LogParser::new(ParseConfig::default());
    let mut events = Vec::new();
    for l in &lines {
        parser.push(&l.bytes, &Origin::default(), &mut events);
    }
    parser.finish(&mut events);
    let users: Vec<_> = events.iter().filter_map(|e| e.user.clone()).collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
    assert!(
        events
            .iter()
            .all(|e| e.outcome == Outcome::Failure(Reason::BadPassword)
                && e.host.as_deref() == Some("mail01")
                && e.time.is_some())
    );

    let pid = fs::read_to_string(dir.path().join("pid")).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(Path::new(&proc_dir).exists());
    source.shutdown().await;
    // Killed and reaped: no process, not even a zombie.
    assert!(!Path::new(&proc_dir).exists());
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_missing_program_is_counted_and_retried_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournaldConfig {
        program: dir.path().join("no-such-journalctl"),
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(2),
        ..JournaldConfig::default()
    };
    let (tx, _rx) = mpsc::channel(4);
    let source = JournaldSource::start(config, tx);
    let counters = std::sync::Arc::clone(source.counters());
    tokio::time::timeout(GUARD, async {
        while counters
            .start_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            < 3
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("no retries");
    source.shutdown().await;
}
