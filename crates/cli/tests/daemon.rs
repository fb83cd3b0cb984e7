//! End-to-end tests of `portcullis run`: the real binary, real files, its admin API.

mod common;

use std::io::Write;
use std::time::Duration;

use common::daemon::{DaemonDir, TOKEN, dovecot_failure, dovecot_success, wait_for};

fn append(path: &std::path::Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for l in lines {
        writeln!(f, "{l}").expect("write log");
    }
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
