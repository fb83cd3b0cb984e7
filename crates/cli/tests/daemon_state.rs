//! End-to-end tests of what `portcullis run` keeps and what it does outside itself: its
//! state across `kill -9` in the middle of an attack (docs/daemon.md, "State, restarts
//! and crashes"), nftables for real in network namespaces, dry runs, and the webhook and
//! program actions (docs/actions.md). The real binary, real files, real `nft`.

mod common;
#[path = "daemon_state/hook.rs"]
mod hook;
#[path = "daemon_state/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::daemon::{Daemon, DaemonDir, append, dovecot_failure, dovecot_success, wait_for};
use netns::{ATTACKER, Link, Netns};

/// How long any one thing the daemon does may take before the test fails.
const LIMIT: Duration = Duration::from_secs(60);

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

// ---------------------------------------------------------------------------------
// nftables, dry runs

/// The configuration of a daemon whose firewall is nftables in `ns`, bans lasting 1 h.
fn nft_config(dir: &DaemonDir, ns: &Netns) -> std::path::PathBuf {
    dir.config(&format!(
        "{}\n[bans]\nduration = \"1h\"\n\n[firewall]\nbackend = \"nftables\"\ncommand = {}\n",
        follow_logs(dir),
        ns.nft_command_toml()
    ))
}

/// The timeout of `addr`'s element in `banned4`, once it is there.
fn element_timeout(ns: &Netns, addr: &str) -> u64 {
    wait_for(&format!("{addr} in the nftables set"), LIMIT, || {
        ns.elements("banned4")
            .into_iter()
            .find(|(e, _)| e == addr)
            .map(|(_, t)| t.unwrap_or(0))
    })
}

#[test]
fn nftables_bans_stop_the_attackers_packets_and_survive_a_restart() {
    let link = Link::new();
    let dir = DaemonDir::new();
    let log = dir.path("logs/mail.log");
    let config = nft_config(&dir, &link.b);
    assert!(link.reaches(), "A cannot reach B before any ban");
    let d = dir.start();
    append(&log, &spray(ATTACKER, 12, 1));
    let banned = format!("{ATTACKER}/32");
    wait_for("the ban of the attacker", LIMIT, || {
        d.bans().contains(&banned).then_some(())
    });
    let timeout = element_timeout(&link.b, ATTACKER);
    assert!(
        (3590..=3600).contains(&timeout),
        "the element's timeout is bans.duration (3600 s), not {timeout} s"
    );
    assert!(link.blocked(), "A still reaches B after the ban");

    // The operator lifts it.
    let out = common::bin()
        .args(["unban", ATTACKER, "--url", &d.url, "-c"])
        .arg(&config)
        .output()
        .expect("portcullis unban");
    assert!(
        out.status.success(),
        "portcullis unban: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the element gone after the unban", LIMIT, || {
        link.b.elements("banned4").is_empty().then_some(())
    });
    assert!(link.reaches(), "A cannot reach B after the unban");
    assert!(d.bans().is_empty(), "{:?}", d.bans());

    // It fails again: banned again, for longer (its second offence: 4 h).
    append(
        &log,
        &[dovecot_failure(ATTACKER, "user99@example.org", 500)],
    );
    wait_for("the attacker banned again", LIMIT, || {
        d.bans().contains(&banned).then_some(())
    });
    element_timeout(&link.b, ATTACKER);
    // Someone deletes the element by hand; a restart puts it back.
    let elem = format!("{{ {ATTACKER} }}");
    let out = link.b.exec(&[
        "nft",
        "delete",
        "element",
        "inet",
        "portcullis",
        "banned4",
        &elem,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(link.b.elements("banned4").is_empty());
    assert!(link.reaches(), "A cannot reach B with the element deleted");
    assert_eq!(d.stop(), Some(0));
    let d = dir.start();
    let timeout = element_timeout(&link.b, ATTACKER);
    assert!(
        (4 * 3600 - 60..=4 * 3600).contains(&timeout),
        "reconciled with the ban's remaining time (about 4 h), not {timeout} s"
    );
    assert!(link.blocked(), "A reaches B after the restart");
    assert_eq!(d.stop(), Some(0));

    // --cleanup removes the table, and with it the ban.
    let out = common::bin()
        .args(["run", "--cleanup", "-c"])
        .arg(&config)
        .output()
        .expect("portcullis run --cleanup");
    assert!(
        out.status.success(),
        "portcullis run --cleanup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = link.b.tables();
    assert!(!tables.iter().any(|t| t == "portcullis"), "{tables:?}");
    assert!(link.reaches(), "A cannot reach B after the cleanup");
}

#[test]
fn a_dry_run_records_the_ban_and_leaves_nftables_untouched() {
    let ns = Netns::new();
    let dir = DaemonDir::new();
    let config = nft_config(&dir, &ns);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen("[daemon]\n", "[daemon]\ndry_run = true\n", 1),
    )
    .expect("config");
    let d = dir.start();
    append(&dir.path("logs/mail.log"), &spray("203.0.113.7", 12, 1));
    wait_for("the ban recorded", LIMIT, || {
        d.bans()
            .contains(&"203.0.113.7/32".to_string())
            .then_some(())
    });
    wait_for("`would ban` on stderr", LIMIT, || {
        d.log().contains("would ban 203.0.113.7/32").then_some(())
    });
    assert_eq!(d.status()["dry_run"], true);
    let tables = ns.tables();
    assert!(
        tables.is_empty(),
        "a dry run created nftables tables: {tables:?}"
    );
    assert_eq!(d.stop(), Some(0));
    assert!(ns.tables().is_empty());
}

// ---------------------------------------------------------------------------------
// Webhooks and programs

#[test]
fn the_daemon_posts_a_signed_ban_notice_to_its_webhook() {
    const SECRET: &str = "webhook-secret-0123456789abcdef";
    let (port, requests) = hook::receiver();
    let dir = DaemonDir::new();
    std::fs::write(dir.path("hook.secret"), format!("{SECRET}\n")).expect("secret");
    dir.config(&format!(
        "{}\n[[actions.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"{}\"\n",
        follow_logs(&dir),
        dir.path("hook.secret").display()
    ));
    let d = dir.start();
    append(&dir.path("logs/mail.log"), &spray("203.0.113.7", 12, 1));
    let req = requests
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("no webhook request; daemon said:\n{}", d.log()));
    let notice: serde_json::Value = serde_json::from_slice(&req.body).expect("a JSON body");
    assert_eq!(notice["action"], "ban", "{notice}");
    assert_eq!(notice["address"], "203.0.113.7", "{notice}");
    assert_eq!(notice["prefix"], "203.0.113.7/32", "{notice}");
    assert_eq!(notice["kind"], "password_spray", "{notice}");
    assert_eq!(notice["duration_secs"], 3600, "{notice}");
    assert_eq!(notice["dry_run"], false, "{notice}");
    assert_eq!(req.header("content-type"), Some("application/json"));
    // The signature, computed here independently of the daemon, on the bytes received
    // (the secret as read from its file: trimmed).
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&req.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        req.header("x-portcullis-signature-256"),
        Some(expected.as_str()),
        "signature of {}",
        String::from_utf8_lossy(&req.body)
    );
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn the_daemon_runs_its_program_for_a_ban() {
    let dir = DaemonDir::new();
    let (script, out) = (dir.path("hook.sh"), dir.path("hook.out"));
    // Written whole, then renamed: the test never reads half of it.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            out.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir.config(&format!(
        "{}\n[[actions.exec]]\nargv = [\"{}\", \"--\", \"{{action}}\", \"{{address}}\"]\n",
        follow_logs(&dir),
        script.display()
    ));
    let d = dir.start();
    append(&dir.path("logs/mail.log"), &spray("203.0.113.7", 12, 1));
    let args = wait_for("the program's run", LIMIT, || {
        std::fs::read_to_string(&out).ok()
    });
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["--", "ban", "203.0.113.7"],
        "daemon said:\n{}",
        d.log()
    );
    assert_eq!(d.stop(), Some(0));
}
