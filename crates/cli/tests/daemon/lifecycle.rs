//! Signals and restarts: SIGHUP takes a new configuration or refuses a broken one,
//! SIGTERM stops cleanly, and a restarted daemon carries on where it stopped.

use serde_json::json;

use super::common::daemon::{DaemonDir, TOKEN, spray_events, wait_for};

/// Bans and locks lasting `hours`.
fn lasting(hours: u32) -> String {
    format!(
        "{}\n[bans]\nduration = \"{hours}h\"\n\n[locks]\nduration = \"{hours}h\"\n",
        super::FAST_JUDGEMENT
    )
}

#[test]
fn sighup_applies_a_new_ban_duration_and_refuses_a_broken_file() {
    let dir = DaemonDir::new();
    let config = dir.config(&lasting(1));
    let d = dir.start();

    let (code, _) = d.report(&spray_events("203.0.113.7", 12));
    assert_eq!(code, 202);
    assert_eq!(
        super::length(&super::wait_for_ban(&d, "203.0.113.7/32")),
        3600
    );

    dir.config(&lasting(2));
    d.signal("HUP");
    d.wait_for_log("portcullis: reloaded", super::SETTLE);
    let (code, _) = d.report(&spray_events("198.51.100.7", 12));
    assert_eq!(code, 202);
    assert_eq!(
        super::length(&super::wait_for_ban(&d, "198.51.100.7/32")),
        7200
    );
    // An operator's ban without a duration takes bans.duration too.
    let (code, v) = d.call(
        "POST",
        "/v1/bans",
        Some(r#"{"network":"192.0.2.1"}"#),
        Some(TOKEN),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(super::length(&v["ban"]), 7200, "{v}");
    // And an operator's lock, locks.duration.
    let (code, v) = d.call(
        "POST",
        "/v1/locks",
        Some(r#"{"account":"j.smith@example.org"}"#),
        Some(TOKEN),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(super::length(&v["lock"]), 7200, "{v}");
    // The ban made before the reload keeps its time.
    assert_eq!(
        super::length(&super::wait_for_ban(&d, "203.0.113.7/32")),
        3600
    );

    std::fs::write(&config, "[bans]\nduration = \"a while\"\n").unwrap();
    d.signal("HUP");
    let log = d.wait_for_log("reload refused", super::SETTLE);
    assert!(
        log.contains("a while"),
        "the reason names the value:\n{log}"
    );
    // Still running, with the configuration it had.
    let (code, _) = d.call("GET", "/healthz", None, None);
    assert_eq!(code, 200);
    let (code, _) = d.report(&spray_events("198.51.101.7", 12));
    assert_eq!(code, 202);
    assert_eq!(
        super::length(&super::wait_for_ban(&d, "198.51.101.7/32")),
        7200
    );
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn sigterm_exits_zero_and_a_restart_carries_on_with_its_counts_and_bans() {
    let dir = DaemonDir::new();
    let config = dir.config(super::FAST_JUDGEMENT);
    let d = dir.start();
    let (code, _) = d.report(&spray_events("203.0.113.7", 12));
    assert_eq!(code, 202);
    super::wait_for_ban(&d, "203.0.113.7/32");
    let (code, _) = d.call(
        "POST",
        "/v1/locks",
        Some(r#"{"account":"j.smith@example.org"}"#),
        Some(TOKEN),
    );
    assert_eq!(code, 201);
    wait_for("12 events observed", super::SETTLE, || {
        (d.status()["engine_events"] == 12).then_some(())
    });
    assert_eq!(d.stop(), Some(0), "SIGTERM is a clean stop");

    let d = dir.start();
    let s = wait_for("the saved event count", super::SETTLE, || {
        let s = d.status();
        (s["engine_events"] == 12).then_some(s)
    });
    assert_eq!(s["bans_active"], 1, "{s}");
    assert_eq!(d.bans(), ["203.0.113.7/32"]);
    let (_, v) = d.get("/v1/locks");
    assert_eq!(v["locks"][0]["account"], "j.smith@example.org", "{v}");
    // Counting goes on from there.
    let (code, _) = d.report(&spray_events("203.0.113.7", 3));
    assert_eq!(code, 202);
    wait_for("15 events observed", super::SETTLE, || {
        (d.status()["engine_events"] == 15).then_some(())
    });
    // The client reads the same state.
    let out = d.client(&config, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["status"]["engine_events"], 15, "{v}");
    assert_eq!(v["bans"][0]["net"], json!("203.0.113.7/32"), "{v}");
    assert_eq!(d.stop(), Some(0));
}

/// Regression: the daemon announced its admin API before it caught signals, so a
/// SIGHUP or SIGTERM sent just after start killed it on the spot (no final snapshot).
#[test]
fn signals_right_after_start_are_handled_not_fatal() {
    let dir = DaemonDir::new();
    dir.config("");
    for _ in 0..5 {
        let d = dir.start();
        assert_eq!(d.stop(), Some(0), "SIGTERM at once is a clean stop");
        let d = dir.start();
        d.signal("HUP");
        d.wait_for_log("portcullis: reloaded", super::SETTLE);
        assert_eq!(d.stop(), Some(0));
    }
}
