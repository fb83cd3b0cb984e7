//! End-to-end tests of the policy server in `portcullis run`: its listener, lockdown
//! through the admin client, lockdown kept across a restart, and its metrics.
//! (The real Dovecot talks to it in `daemon_dovecot.rs`.)

mod common;

use common::daemon::{DaemonDir, POLICY_SECRET, policy_post};

fn config(dir: &DaemonDir) -> std::path::PathBuf {
    std::fs::write(dir.path("policy-secret"), POLICY_SECRET).expect("secret");
    dir.config(&format!(
        "[policy]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"{}\"\n",
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
