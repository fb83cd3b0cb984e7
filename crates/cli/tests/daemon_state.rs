//! End-to-end tests of what `portcullis run` keeps: its state across `kill -9` in the
//! middle of an attack (docs/daemon.md, "State, restarts and crashes"). The real binary,
//! real files.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::daemon::{Daemon, DaemonDir, dovecot_failure, dovecot_success, wait_for};

/// How long any one thing the daemon does may take before the test fails.
const LIMIT: Duration = Duration::from_secs(60);

/// Appends `lines` to the log; returns how many.
fn append(path: &Path, lines: &[String]) -> usize {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for l in lines {
        writeln!(f, "{l}").expect("write log");
    }
    lines.len()
}

/// A spray: one failure from `source` on each of `accounts` distinct accounts.
fn spray(source: &str, accounts: usize, session: u64) -> Vec<String> {
    (0..accounts)
        .map(|i| dovecot_failure(source, &format!("user{i}@example.org"), session + i as u64))
        .collect()
}

/// `[sources.files]` following `logs/*.log` from their start, and a 2 s typo window.
fn follow_logs(dir: &DaemonDir) -> String {
    format!(
        "[sources.files]\ninclude = [\"{}\"]\nstart_at = \"beginning\"\n\n\
         [engine]\ntypo_window_secs = 2\n",
        dir.path("logs/*.log").display()
    )
}

/// A counter or gauge from `/metrics` (no labels), if the daemon exports it.
fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let (code, body) = d.get("/metrics");
    assert_eq!(code, 200, "{body}");
    let text = body.as_str()?.to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `files[path]` of `/v1/status`: the offset just after the last line consumed.
fn consumed(status: &serde_json::Value, path: &Path) -> Option<u64> {
    status["files"][path.display().to_string()].as_u64()
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).expect("log size").len()
}

// ---------------------------------------------------------------------------------
// kill -9 in the middle of an attack

/// The slow sprayer: its failures straddle the first crash, 6 accounts before and 6
/// after, so it reaches the 10 accounts of a spray only if the engine's state carried
/// over.
const SLOW: &str = "172.16.5.5";
/// Fast sprayers, each in a /24 of its own (three banned addresses of one /24 would ban
/// the /24, and cover the others' addresses).
const FAST: [&str; 4] = ["203.0.113.7", "198.51.100.23", "192.0.2.45", "100.64.1.9"];
/// Batches written after the first part of the attack, one every [`PACE`].
const BATCHES: usize = 48;
/// The pace of a busy mail server's log.
const PACE: Duration = Duration::from_millis(100);

fn slow_failure(i: u64) -> String {
    dovecot_failure(SLOW, &format!("slow{i}@example.org"), 90_000 + i)
}

/// Benign traffic: people logging in from their usual addresses, one mistyping first.
fn benign(i: usize, session: u64) -> Vec<String> {
    let (user, addr) = (
        format!("staff{}@example.org", i % 10),
        format!("10.1.0.{}", 10 + i % 10),
    );
    let mut out = Vec::new();
    if i % 7 == 3 {
        out.push(dovecot_failure(&addr, &user, session));
    }
    out.push(dovecot_success(&addr, &user, session + 1));
    out
}

/// The attack's first part: benign logins, the first fast sprayer, and the slow
/// sprayer's first six accounts.
fn first_part() -> Vec<String> {
    let mut lines: Vec<String> = (0..10).flat_map(|i| benign(i, 10 * i as u64)).collect();
    lines.extend(spray(FAST[0], 12, 1_000));
    lines.extend((0..6).map(slow_failure));
    lines
}

/// Batch `i` of the rest: benign logins; fast sprayers 1–3 one account a batch, each for
/// 12 batches in its own stretch; the slow sprayer's other six accounts every 8 batches.
fn batch(i: usize) -> Vec<String> {
    let session = 10_000 + 100 * i as u64;
    let mut lines = benign(i, session);
    lines.extend(benign(i + 5, session + 10));
    for (k, source) in FAST.iter().enumerate().skip(1) {
        let start = (k - 1) * 16;
        if (start..start + 12).contains(&i) {
            let account = format!("user{}@example.org", i - start);
            lines.push(dovecot_failure(source, &account, session + 20 + k as u64));
        }
    }
    if i % 8 == 4 {
        lines.push(slow_failure(6 + i as u64 / 8));
    }
    lines
}

/// Writes the batches at [`PACE`], never past the allowance it was last sent (so that
/// lines are still to be written when the daemon is killed); returns the lines written.
fn writer(
    log: std::path::PathBuf,
    written: Arc<AtomicUsize>,
    allowance: mpsc::Receiver<usize>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let (mut lines, mut allowed) = (0, 0);
        for i in 0..BATCHES {
            while i >= allowed {
                match allowance.recv() {
                    Ok(n) => allowed = n,
                    // The test failed and went away.
                    Err(_) => return lines,
                }
            }
            lines += append(&log, &batch(i));
            written.store(i + 1, Ordering::SeqCst);
            std::thread::sleep(PACE);
        }
        lines
    })
}

/// The bans listed, whole records by network.
fn ban_records(d: &Daemon) -> BTreeMap<String, serde_json::Value> {
    let (code, v) = d.get("/v1/bans");
    assert_eq!(code, 200, "{v}");
    v["bans"]
        .as_array()
        .expect("bans")
        .iter()
        .map(|b| (b["net"].as_str().unwrap_or_default().to_owned(), b.clone()))
        .collect()
}

/// When the daemon is killed, and how far the writer may go before the next kill.
struct Crash {
    what: &'static str,
    when: fn(&Daemon, usize) -> bool,
    then_allow: usize,
}

fn snapshots(d: &Daemon) -> f64 {
    metric(d, "portcullis_snapshots_total").unwrap_or(0.0)
}

const CRASHES: [Crash; 3] = [
    Crash {
        what: "just after a batch was written, this run having saved a snapshot",
        when: |d, written| written >= 2 && snapshots(d) >= 1.0,
        then_allow: 36,
    },
    Crash {
        what: "as soon as the second sprayer's ban is listed (most likely decided after the \
               last snapshot, so the restarted engine decides it again)",
        when: |d, _| snapshots(d) >= 1.0 && d.bans().iter().any(|b| b == "198.51.100.23/32"),
        then_allow: 44,
    },
    Crash {
        what: "right after a start, as the restarted daemon reads again what came after the \
               last snapshot",
        when: |_, _| true,
        then_allow: BATCHES,
    },
];

#[test]
fn kill_9_mid_attack_loses_no_ban_reads_each_line_once_and_keeps_detecting() {
    let dir = DaemonDir::new();
    let log = dir.path("logs/mail.log");
    // Only single-source judgements: with the site-wide detectors off, the slow sprayer
    // can be caught by nothing but its own ten accounts.
    dir.config(&format!(
        "{}cusum_threshold = 1000000.0\nslow_cusum_threshold = 1000000.0\n",
        follow_logs(&dir)
    ));
    let mut d = dir.start();
    let mut lines = append(&log, &first_part());
    let first = format!("{}/32", FAST[0]);
    wait_for("the first sprayer's ban", LIMIT, || {
        d.bans().contains(&first).then_some(())
    });
    // A snapshot that holds the slow sprayer's first six accounts: one saved after the
    // engine had consumed the whole first part.
    let size = file_size(&log);
    wait_for("the first part consumed", LIMIT, || {
        (consumed(&d.status(), &log) == Some(size)).then_some(())
    });
    let saved = snapshots(&d);
    wait_for("a snapshot of the first part", LIMIT, || {
        (snapshots(&d) > saved).then_some(())
    });
    let slow = format!("{SLOW}/32");
    assert!(
        !d.bans().contains(&slow),
        "the slow sprayer is banned on six accounts: the test proves nothing"
    );

    let written = Arc::new(AtomicUsize::new(0));
    let (allow, allowance) = mpsc::channel();
    let writing = writer(log.clone(), Arc::clone(&written), allowance);
    let _ = allow.send(12);
    for (k, crash) in CRASHES.iter().enumerate() {
        wait_for(crash.what, LIMIT, || {
            (crash.when)(&d, written.load(Ordering::SeqCst)).then_some(())
        });
        let before = ban_records(&d);
        d.crash();
        let _ = allow.send(crash.then_allow);
        d = dir.start();
        let after = ban_records(&d);
        for (net, ban) in &before {
            assert_eq!(
                after.get(net),
                Some(ban),
                "crash {k} ({}): the ban of {net} was lost or changed",
                crash.what
            );
        }
    }
    lines += writing.join().expect("the writer");

    let size = file_size(&log);
    let status = wait_for("every line consumed after the last restart", LIMIT, || {
        let s = d.status();
        (consumed(&s, &log) == Some(size)).then_some(s)
    });
    assert_eq!(
        status["engine_events"].as_u64(),
        Some(lines as u64),
        "each of the {lines} lines is one event, observed exactly once across 3 crashes: {status}"
    );
    wait_for("the slow sprayer's ban, after the restart", LIMIT, || {
        d.bans().contains(&slow).then_some(())
    });
    let mut expected: Vec<String> = FAST.iter().map(|a| format!("{a}/32")).collect();
    expected.push(slow);
    expected.sort();
    let bans = wait_for("every sprayer banned", LIMIT, || {
        let mut b = d.bans();
        b.sort();
        (b.len() >= expected.len()).then_some(b)
    });
    assert_eq!(bans, expected, "the sprayers, and none of the staff");
    assert_eq!(d.stop(), Some(0));
}

/// Regression: a file followed from its end, and a crash before the first snapshot
/// interval had passed. The restarted daemon found no snapshot, took it for a first
/// start, began again at the file's end, and missed every line in between.
#[test]
fn a_crash_before_the_first_interval_misses_no_line_of_a_file_followed_from_its_end() {
    let dir = DaemonDir::new();
    let log = dir.path("logs/mail.log");
    // Written before the daemon ever ran: not to be read.
    append(&log, &spray("192.0.2.99", 3, 1));
    let config = dir.config(&format!(
        "[sources.files]\ninclude = [\"{}\"]\nstart_at = \"end\"\n",
        dir.path("logs/*.log").display()
    ));
    // An interval far longer than the test: only the start's own snapshot is saved.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen(
            "snapshot_interval = \"1s\"",
            "snapshot_interval = \"1h\"",
            1,
        ),
    )
    .expect("config");
    let d = dir.start();
    wait_for("the daemon to save where it starts reading", LIMIT, || {
        (snapshots(&d) >= 1.0).then_some(())
    });
    append(
        &log,
        &[dovecot_success("10.1.0.1", "staff1@example.org", 10)],
    );
    let size = file_size(&log);
    wait_for("the first new line consumed", LIMIT, || {
        (consumed(&d.status(), &log) == Some(size)).then_some(())
    });
    d.crash();
    // Written while the daemon is down.
    append(
        &log,
        &[dovecot_success("10.1.0.2", "staff2@example.org", 11)],
    );
    let d = dir.start();
    let size = file_size(&log);
    let status = wait_for("every line consumed after the restart", LIMIT, || {
        let s = d.status();
        (consumed(&s, &log) == Some(size)).then_some(s)
    });
    assert_eq!(
        status["engine_events"], 2,
        "the two lines written after the first start, once each: {status}"
    );
    assert_eq!(d.stop(), Some(0));
}
