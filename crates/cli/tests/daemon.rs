//! End-to-end tests of `portcullis run`: the real binary, real files, its admin API.
//!
//! - this file: detection from a followed file, and helpers for the others;
//! - `daemon/admin.rs`: the admin API and the `ban`/`unban`/`unlock`/`status` client;
//! - `daemon/events.rs`: `POST /v1/events`;
//! - `daemon/observe.rs`: `/metrics` (checked by promtool) and `/healthz`;
//! - `daemon/lifecycle.rs`: SIGHUP reloads, SIGTERM, restarts;
//! - `daemon/check_config.rs`: `check-config` and the commands' help;
//! - `daemon/simulate.rs`: `portcullis simulate --live` against the daemon, scored
//!   against the scenario's ground truth.

mod common;

#[path = "daemon/admin.rs"]
mod admin;
#[path = "daemon/check_config.rs"]
mod check_config;
#[path = "daemon/documents.rs"]
mod documents;
#[path = "daemon/events.rs"]
mod events;
#[path = "daemon/lifecycle.rs"]
mod lifecycle;
#[path = "daemon/observe.rs"]
mod observe;
#[path = "daemon/simulate.rs"]
mod simulate;

use std::time::Duration;

use common::daemon::{
    Daemon, DaemonDir, TOKEN, append, dovecot_failure, dovecot_success, wait_for,
};
use serde_json::Value;

/// Detection settings every test daemon that must judge sources uses: a 2 s typo
/// window, so that a failure is judged about 3 s after it happened.
const FAST_JUDGEMENT: &str = "[engine]\ntypo_window_secs = 2\n";

/// Waits (at most 30 s) for a ban of exactly `net` and returns it.
fn wait_for_ban(d: &Daemon, net: &str) -> Value {
    wait_for(&format!("a ban of {net}"), SETTLE, || {
        let (code, v) = d.get("/v1/bans");
        assert_eq!(code, 200, "{v}");
        v["bans"]
            .as_array()
            .and_then(|bans| bans.iter().find(|b| b["net"] == net).cloned())
    })
}

/// How long a ban or lock lasts, in seconds.
fn length(record: &Value) -> i64 {
    record["until"].as_i64().expect("until") - record["since"].as_i64().expect("since")
}

/// The longest any test waits for the daemon to catch up.
const SETTLE: Duration = Duration::from_secs(30);

/// Waits until the engine's event time has passed `before` by the typo window (and a
/// second), so that every event stamped before `before` has been judged and acted on.
fn wait_until_judged(d: &Daemon, before: jiff::Timestamp) {
    let due = before.as_second() + 3;
    wait_for("the engine to judge what was sent", SETTLE, || {
        let s = d.status();
        let t: jiff::Timestamp = s["event_time"].as_str()?.parse().ok()?;
        (t.as_second() >= due).then_some(())
    });
}

#[test]
fn a_spray_in_a_followed_file_is_banned_and_the_users_are_not() {
    let dir = DaemonDir::new();
    let log = dir.path("logs/mail.log");
    append(
        &log,
        &[dovecot_success("198.51.100.10", "alice@example.org", 1)],
    );
    dir.config(&format!(
        "[sources.files]\ninclude = [\"{}\"]\nstart_at = \"beginning\"\n\n[engine]\ntypo_window_secs = 2\n",
        dir.path("logs/*.log").display()
    ));
    let d = dir.start();
    let mut lines: Vec<String> = (0..12)
        .map(|i| dovecot_failure("203.0.113.7", &format!("user{i}@example.org"), 100 + i))
        .collect();
    // A user who mistypes once, then gets in.
    lines.push(dovecot_failure("198.51.100.10", "alice@example.org", 2));
    lines.push(dovecot_success("198.51.100.10", "alice@example.org", 3));
    append(&log, &lines);
    let bans = wait_for("the sprayer's ban", Duration::from_secs(60), || {
        let b = d.bans();
        b.iter().any(|n| n == "203.0.113.7/32").then_some(b)
    });
    assert_eq!(bans, ["203.0.113.7/32"], "only the sprayer is banned");
    let s = d.status();
    assert_eq!(s["engine_events"], 15, "{s}");
    assert_eq!(s["attackers_found"], 1, "{s}");
    // The user's place is remembered (with the next snapshot); the sprayer's is not.
    let familiar = wait_for("alice's familiar network", Duration::from_secs(30), || {
        let (code, v) = d.get("/v1/familiar?account=alice@example.org");
        assert_eq!(code, 200, "{v}");
        let nets: Vec<String> = v["familiar"]
            .as_array()?
            .iter()
            .filter_map(|f| f["network"].as_str().map(str::to_string))
            .collect();
        (!nets.is_empty()).then_some(nets)
    });
    assert_eq!(familiar, ["198.51.100.0/24"]);
    // Nothing without the token, whatever the path.
    for path in ["/v1/status", "/v1/bans", "/v1/nothing-here", "/v1/events"] {
        let (code, body) = d.call("GET", path, None, None);
        assert_eq!(code, 401, "{path}");
        assert_eq!(body, serde_json::json!({"error": "unauthorized"}), "{path}");
        let (code, _) = d.call("GET", path, None, Some(&TOKEN.replace('0', "1")));
        assert_eq!(code, 401, "{path} with a wrong token");
    }
    assert_eq!(d.stop(), Some(0));
}
