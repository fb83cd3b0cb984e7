//! What monitoring sees: `/metrics` in a format Prometheus accepts, with values that
//! follow what happens, and `/healthz`.

use std::io::Write;
use std::process::{Command, Stdio};

use super::common::daemon::{DaemonDir, spray_events, wait_for};

/// Runs `promtool check metrics` on `text`; fails the test with promtool's complaint,
/// or with the package to install when promtool is missing.
fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run promtool ({e}): install the Debian package `prometheus` \
             (apt-get install prometheus), which provides it"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .expect("a number")
}

#[test]
fn metrics_pass_promtool_and_follow_events_and_bans() {
    let dir = DaemonDir::new();
    dir.config(super::FAST_JUDGEMENT);
    let d = dir.start();

    let before = d.metrics();
    promtool_check(&before);
    let failures = "portcullis_events_total{service=\"api\",outcome=\"failure\"}";
    let bans = "portcullis_decisions_total{action=\"ban\"}";
    assert_eq!(sample(&before, failures), 0.0);
    assert_eq!(sample(&before, bans), 0.0);
    assert_eq!(sample(&before, "portcullis_bans_active"), 0.0);

    let (code, _) = d.report(&spray_events("203.0.113.7", 12));
    assert_eq!(code, 202);
    super::wait_for_ban(&d, "203.0.113.7/32");
    let after = wait_for("the gauges to follow the ban", super::SETTLE, || {
        let m = d.metrics();
        (sample(&m, "portcullis_bans_active") == 1.0).then_some(m)
    });
    promtool_check(&after);
    assert_eq!(sample(&after, failures), 12.0);
    assert_eq!(sample(&after, "portcullis_reported_events_total"), 12.0);
    assert_eq!(sample(&after, "portcullis_engine_events_total"), 12.0);
    assert_eq!(sample(&after, bans), 1.0);
    assert_eq!(
        sample(&after, "portcullis_findings_total{kind=\"attacker\"}"),
        1.0
    );
    // No addresses or names: counts only.
    assert!(!after.contains("203.0.113.7"), "{after}");
    assert!(!after.contains("example.org"), "{after}");
}

#[test]
fn healthz_answers_ok_without_a_token() {
    let dir = DaemonDir::new();
    dir.config("");
    let d = dir.start();
    let (code, body) = d.call("GET", "/healthz", None, None);
    assert_eq!(code, 200);
    assert_eq!(body.as_str().map(str::trim), Some("ok"));
    assert_eq!(d.stop(), Some(0));
}
