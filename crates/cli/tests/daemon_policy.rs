//! End-to-end tests of the policy server in `portcullis run`: its listener, lockdown
//! through the admin client and by itself on a distributed spray, lockdown kept across
//! a restart, and its metrics.
//! (The real Dovecot talks to it in `daemon_dovecot.rs`.)

mod common;

use common::daemon::{DaemonDir, POLICY_SECRET, policy_post};

fn config(dir: &DaemonDir) -> std::path::PathBuf {
    config_with(dir, "")
}

/// The configuration with a policy listener, its secret, and `extra` keys in
/// `[policy]`.
fn config_with(dir: &DaemonDir, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.path("policy-secret"), POLICY_SECRET).expect("secret");
    dir.config(&format!(
        "[policy]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"{}\"\n{extra}",
        dir.path("policy-secret").display()
    ))
}

/// Dovecot's allow request for `login` from `remote`.
fn allow(url: &str, login: &str, remote: &str) -> i64 {
    let body = format!(
        r#"{{"device_id":"","login":"{login}","protocol":"imap","pwhash":"abc","remote":"{remote}","session_id":"s1"}}"#
    );
    let (code, v) = policy_post(url, "/?command=allow", &body);
    assert_eq!(code, 200, "{v}");
    v["status"].as_i64().expect("status")
}

fn report_success(url: &str, login: &str, remote: &str) {
    let body = format!(
        r#"{{"login":"{login}","pwhash":"abc","remote":"{remote}","success":true,"policy_reject":false}}"#
    );
    let (code, v) = policy_post(url, "/?command=report", &body);
    assert_eq!(code, 200, "{v}");
}

#[test]
fn lockdown_from_the_client_survives_a_restart_and_spares_familiar_places() {
    let dir = DaemonDir::new();
    let cfg = config(&dir);
    let d = dir.start();
    let url = d.policy_url();
    report_success(&url, "alice@example.org", "192.0.2.10");
    assert_eq!(allow(&url, "alice@example.org", "203.0.113.5"), 0);

    let out = d.client(&cfg, &["lockdown", "on"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(allow(&url, "alice@example.org", "203.0.113.5"), -1);
    assert_eq!(allow(&url, "alice@example.org", "192.0.2.10"), 0);
    let out = d.client(&cfg, &["lockdown", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lockdown is on"), "{text}");
    let metrics = d.metrics();
    assert!(
        metrics.contains("portcullis_policy_lockdown 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "portcullis_policy_decisions_total{decision=\"reject\",reason=\"lockdown\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(d.stop(), Some(0));

    // After a restart: still on.
    let d = dir.start();
    let url = d.policy_url();
    assert_eq!(allow(&url, "bob@example.org", "203.0.113.6"), -1);
    let out = d.client(&cfg, &["lockdown", "off"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lockdown is off"));
    assert_eq!(allow(&url, "bob@example.org", "203.0.113.6"), 0);
    // A timed lockdown says until when.
    let out = d.client(&cfg, &["lockdown", "on", "--duration", "2h", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["lockdown"], true);
    assert!(v["until"].is_string(), "{v}");
    let out = d.client(&cfg, &["lockdown", "off", "--duration", "2h"]);
    assert!(!out.status.success());
}

#[test]
fn a_ban_from_the_admin_api_reaches_the_policy_at_once() {
    let dir = DaemonDir::new();
    config(&dir);
    let d = dir.start();
    let url = d.policy_url();
    assert_eq!(allow(&url, "carol@example.org", "198.51.100.7"), 0);
    let (code, v) = d.call(
        "POST",
        "/v1/bans",
        Some(r#"{"network":"198.51.100.0/24","duration":"1h"}"#),
        Some(common::daemon::TOKEN),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(allow(&url, "carol@example.org", "198.51.100.7"), -1);
    let (code, _) = d.call(
        "POST",
        "/v1/allowlist",
        Some(r#"{"network":"198.51.100.7"}"#),
        Some(common::daemon::TOKEN),
    );
    assert_eq!(code, 201);
    // The allowlist lifted the covering ban and lets the address in.
    assert_eq!(allow(&url, "carol@example.org", "198.51.100.7"), 0);
    // Without the secret: refused.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .post(&format!("{url}/?command=allow"))
        .send(b"{}".as_slice())
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
}

/// Reported events: an office's users logging in each hour for five hours from their
/// gateway, then a slow spray from 60 fresh addresses, two names each, one address a
/// minute; stamped so that the spray ends now.
fn office_then_spray() -> Vec<String> {
    let end = jiff::Timestamp::now().as_second();
    let start = end - 6 * 3600;
    let at = |t: i64| jiff::Timestamp::from_second(t).expect("time").to_string();
    let mut events = Vec::new();
    for h in 0..5i64 {
        for u in 0..100i64 {
            events.push(serde_json::json!({
                "time": at(start + h * 3600 + u * 20),
                "source": "198.51.100.1",
                "user": format!("user{u}@example.org"),
                "outcome": "success",
            }));
        }
    }
    let spray = end - 3600;
    for i in 0..60i64 {
        for k in 0..2i64 {
            events.push(serde_json::json!({
                "time": at(spray + i * 60 + k * 30),
                "source": format!("10.3.{i}.5"),
                "user": format!("user{}@example.org", i * 2 + k),
                "outcome": "failure",
                "reason": "bad_password",
            }));
        }
    }
    events.iter().map(|e| e.to_string()).collect()
}

fn post_all(d: &common::daemon::Daemon, events: &[String]) {
    let (code, v) = d.report(&format!("[{}]", events.join(",")));
    assert_eq!(code, 202, "{v}");
}

#[test]
fn a_distributed_spray_switches_lockdown_on_by_itself() {
    let dir = DaemonDir::new();
    let cfg = config(&dir);
    let d = dir.start();
    let url = d.policy_url();
    // Alice's phone is familiar to the policy before the attack.
    report_success(&url, "alice@example.org", "192.0.2.10");
    post_all(&d, &office_then_spray());
    d.wait_for_log(
        "lockdown on: a distributed password spray was found",
        std::time::Duration::from_secs(30),
    );
    // Strangers are refused with the lockdown's message; Alice's phone is not.
    let body =
        r#"{"login":"alice@example.org","pwhash":"abc","remote":"203.0.113.5","protocol":"imap"}"#;
    let (code, v) = policy_post(&url, "/?command=allow", body);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], -1, "{v}");
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("restricted")),
        "{v}"
    );
    assert_eq!(allow(&url, "alice@example.org", "192.0.2.10"), 0);
    // The operator sees it is automatic and when it ends.
    let out = d.client(&cfg, &["lockdown", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["lockdown"], true, "{v}");
    assert_eq!(v["automatic"], true, "{v}");
    assert!(v["until"].is_string(), "{v}");
    assert!(d.metrics().contains("portcullis_policy_lockdown 1"));
    assert_eq!(d.stop(), Some(0));

    // With `lockdown_auto = false` the same attack leaves remote access open.
    let dir = DaemonDir::new();
    let cfg = config_with(&dir, "lockdown_auto = false\n");
    let d = dir.start();
    let url = d.policy_url();
    post_all(&d, &office_then_spray());
    // The spray is still found; only lockdown stays off, also once the daemon has
    // finished every decision and stopped.
    common::daemon::wait_for(
        "the spray's campaign",
        std::time::Duration::from_secs(30),
        || (d.status()["campaigns"].as_u64() >= Some(1)).then_some(()),
    );
    assert_eq!(allow(&url, "alice@example.org", "203.0.113.5"), 0);
    assert!(d.metrics().contains("portcullis_policy_lockdown 0"));
    assert_eq!(d.stop(), Some(0));
    // Every decision was made before the stop; a lockdown would have been stored.
    let d = dir.start();
    assert_eq!(
        allow(&d.policy_url(), "alice@example.org", "203.0.113.5"),
        0
    );
    let out = d.client(&cfg, &["lockdown", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["lockdown"], false, "{v}");
}

#[test]
fn sighup_changes_the_thresholds_without_forgetting_the_failures() {
    let dir = DaemonDir::new();
    let policy = |extra: &str| {
        config_with(
            &dir,
            &format!("tarpit_after = 0\nsource_accounts = 0\n{extra}"),
        )
    };
    policy("");
    let d = dir.start();
    let url = d.policy_url();
    let fail = |pw: &str| {
        let body = format!(
            r#"{{"login":"dave@example.org","pwhash":"{pw}","remote":"203.0.113.9","success":false,"policy_reject":false}}"#
        );
        let (code, v) = policy_post(&url, "/?command=report", &body);
        assert_eq!(code, 200, "{v}");
    };
    for pw in ["a1", "a2", "a3"] {
        fail(pw);
    }
    assert_eq!(allow(&url, "dave@example.org", "203.0.113.9"), 0);

    policy("lockout_threshold = 4\n");
    d.signal("HUP");
    d.wait_for_log("reloaded", std::time::Duration::from_secs(10));
    // The three failures already counted stand: a fourth locks the account.
    fail("a4");
    assert_eq!(allow(&url, "dave@example.org", "203.0.113.9"), -1);

    // Table sizes wait for a restart, and the operator is told.
    policy("lockout_threshold = 4\nmax_accounts = 1000\n");
    d.signal("HUP");
    d.wait_for_log(
        "take effect at the next restart",
        std::time::Duration::from_secs(10),
    );
    assert_eq!(allow(&url, "dave@example.org", "203.0.113.9"), -1);
}
