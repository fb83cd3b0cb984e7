//! The admin API and its command-line client change and show the daemon's state.

use serde_json::{Value, json};

use super::common::daemon::{Daemon, DaemonDir, TOKEN};

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    d.call("POST", path, Some(&body.to_string()), Some(TOKEN))
}

fn delete(d: &Daemon, path: &str) -> (u16, Value) {
    d.call("DELETE", path, None, Some(TOKEN))
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_client_bans_shows_and_unbans_a_network() {
    let dir = DaemonDir::new();
    let config = dir.config("");
    let d = dir.start();

    let out = d.client(
        &config,
        &[
            "ban",
            "198.51.100.9/24",
            "--duration",
            "1d",
            "--reason",
            "spray from this network",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "banned 198.51.100.0/24 for 86400 s");
    let (_, v) = d.get("/v1/bans");
    let bans = v["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 1, "{v}");
    assert_eq!(bans[0]["net"], "198.51.100.0/24");
    assert_eq!(bans[0]["manual"], true);
    assert_eq!(bans[0]["reason"], "spray from this network");
    assert_eq!(super::length(&bans[0]), 86_400);

    let out = d.client(&config, &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 bans and 0 locks in force"), "{text}");
    assert!(text.contains("ban  198.51.100.0/24"), "{text}");
    assert!(text.contains("spray from this network"), "{text}");

    let out = d.client(&config, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(v["status"]["bans_active"], 1, "{v}");
    assert_eq!(v["bans"][0]["net"], "198.51.100.0/24", "{v}");

    let out = d.client(&config, &["unban", "198.51.100.0/24"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "unbanned 198.51.100.0/24");
    assert!(d.bans().is_empty());

    // Again: nothing to lift, and the client says so and fails.
    let out = d.client(&config, &["unban", "198.51.100.0/24"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert!(stderr(&out).contains("not banned"), "{}", stderr(&out));
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn an_account_locked_through_the_api_is_unlocked_by_the_api_and_the_client() {
    let dir = DaemonDir::new();
    let config = dir.config("");
    let d = dir.start();

    // Names are compared as accounts: case folded.
    let body = json!({"account": "J.Smith@Example.org", "duration": "1h", "reason": "phished"});
    let (code, v) = post(&d, "/v1/locks", &body);
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["lock"]["account"], "j.smith@example.org");
    assert_eq!(super::length(&v["lock"]), 3600);
    let out = d.client(&config, &["status"]);
    let text = stdout(&out);
    assert!(text.contains("0 bans and 1 locks in force"), "{text}");
    assert!(text.contains("lock j.smith@example.org"), "{text}");

    let out = d.client(&config, &["unlock", "J.Smith@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "unlocked j.smith@example.org");
    let (_, v) = d.get("/v1/locks");
    assert_eq!(v["locks"], json!([]));
    let out = d.client(&config, &["unlock", "j.smith@example.org"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    let (code, _) = post(&d, "/v1/locks", &json!({"account": "a.jones@example.org"}));
    assert_eq!(code, 201);
    let (code, v) = delete(&d, "/v1/locks?account=a.jones%40example.org");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["unlocked"]["account"], "a.jones@example.org");
    let (code, v) = delete(&d, "/v1/locks?account=a.jones%40example.org");
    assert_eq!(code, 404, "{v}");
    let (_, v) = d.get("/v1/locks");
    assert_eq!(v["locks"], json!([]));
}

#[test]
fn allowlisted_networks_cannot_be_banned_and_run_time_entries_lift_bans() {
    let dir = DaemonDir::new();
    let config = dir.config("[bans]\nallowlist = [\"192.0.2.0/24\"]\n");
    let d = dir.start();

    for network in ["192.0.2.7", "192.0.2.0/25", "192.0.0.0/16"] {
        let (code, v) = post(&d, "/v1/bans", &json!({"network": network}));
        assert_eq!(code, 409, "{network}: {v}");
        assert!(v["error"].as_str().unwrap().contains("allowlist"), "{v}");
    }
    let out = d.client(&config, &["ban", "192.0.2.7"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));
    assert!(d.bans().is_empty());

    // A run-time entry lifts the bans it covers, and is listed with the configuration's.
    let (code, _) = post(&d, "/v1/bans", &json!({"network": "203.0.113.7"}));
    assert_eq!(code, 201);
    let (code, _) = post(&d, "/v1/bans", &json!({"network": "198.51.100.7"}));
    assert_eq!(code, 201);
    let (code, v) = post(
        &d,
        "/v1/allowlist",
        &json!({"network": "203.0.113.0/24", "note": "branch office"}),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(d.bans(), ["198.51.100.7/32"]);
    let (_, v) = d.get("/v1/allowlist");
    assert_eq!(
        v["allowlist"],
        json!([
            {"network": "192.0.2.0/24", "note": "configuration"},
            {"network": "203.0.113.0/24", "note": "branch office"},
        ])
    );
    let (code, _) = post(&d, "/v1/bans", &json!({"network": "203.0.113.7"}));
    assert_eq!(code, 409);

    // Removing it allows bans again; configuration entries cannot be removed.
    let (code, v) = delete(&d, "/v1/allowlist?network=203.0.113.0/24");
    assert_eq!(code, 200, "{v}");
    let (code, _) = delete(&d, "/v1/allowlist?network=203.0.113.0/24");
    assert_eq!(code, 404);
    let (code, v) = delete(&d, "/v1/allowlist?network=192.0.2.0/24");
    assert_eq!(code, 404, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("configuration"),
        "{v}"
    );
    let (code, _) = post(&d, "/v1/bans", &json!({"network": "203.0.113.7"}));
    assert_eq!(code, 201);
}

#[test]
fn requests_that_make_no_sense_are_refused_with_the_reason() {
    let dir = DaemonDir::new();
    dir.config("");
    let d = dir.start();

    let (code, v) = delete(&d, "/v1/bans?network=203.0.113.99");
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"], "203.0.113.99/32 is not banned");

    for (path, body, says) in [
        ("/v1/bans", "{", "EOF"),
        ("/v1/bans", "[]", "invalid length"),
        (
            "/v1/bans",
            r#"{"network": "mail.example.org"}"#,
            "not an address",
        ),
        (
            "/v1/bans",
            r#"{"network": "192.0.2.1", "duration": "soon"}"#,
            "soon",
        ),
        (
            "/v1/bans",
            r#"{"network": "192.0.2.1", "for": "1h"}"#,
            "unknown field",
        ),
        (
            "/v1/locks",
            r#"{"acount": "x@example.org"}"#,
            "unknown field",
        ),
        ("/v1/allowlist", "not json", "expected"),
    ] {
        let (code, v) = d.call("POST", path, Some(body), Some(TOKEN));
        assert_eq!(code, 400, "{path} {body}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{path} {body}: {v}");
    }
    assert!(d.bans().is_empty());
    let (_, v) = d.get("/v1/allowlist");
    assert_eq!(v["allowlist"], json!([]));
}
