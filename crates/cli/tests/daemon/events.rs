//! `POST /v1/events`: what applications report is accepted, refused whole when
//! malformed, guarded by a token of its own, and judged like log lines.

use serde_json::json;

use super::common::daemon::{DaemonDir, TOKEN, spray_events, wait_for};

const REPORT_TOKEN: &str = "fedcba9876543210fedcba9876543210";

#[test]
fn reported_events_are_accepted_one_or_many_and_refused_whole_when_malformed() {
    let dir = DaemonDir::new();
    dir.config_with_http("max_body = 4096", "");
    let d = dir.start();

    let one = r#"{"source":"203.0.113.7","user":"j.smith@example.org","outcome":"failure","reason":"bad_password"}"#;
    let (code, v) = d.report(one);
    assert_eq!((code, v), (202, json!({"accepted": 1})));
    let (code, v) = d.report(&spray_events("198.51.100.7", 3));
    assert_eq!((code, v), (202, json!({"accepted": 3})));
    let (code, v) = d.report("[]");
    assert_eq!((code, v), (202, json!({"accepted": 0})));

    for (body, says) in [
        ("{", "not an event"),
        (r#"{"outcome":"failure"}"#, "not an event"),
        (
            r#"{"source":"mail.example.org","outcome":"failure"}"#,
            "source \"mail.example.org\" is not an IP address",
        ),
        (
            r#"[{"source":"192.0.2.1","outcome":"success"},{"source":"192.0.2.1","outcome":"maybe"}]"#,
            "event 1: outcome",
        ),
        (
            r#"{"source":"192.0.2.1","outcome":"failure","time":"yesterday"}"#,
            "RFC 3339",
        ),
    ] {
        let (code, v) = d.report(body);
        assert_eq!(code, 400, "{body}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {v}");
    }

    // Larger than http.max_body: 413, whatever it holds.
    let (code, _) = d.report(&spray_events("192.0.2.1", 100));
    assert_eq!(code, 413);

    // Only the good requests' events reached the engine: the array with one bad event
    // was refused whole.
    wait_for("4 events observed", super::SETTLE, || {
        (d.status()["engine_events"] == 4).then_some(())
    });
    let m = d.metrics();
    assert!(m.contains("\nportcullis_reported_events_total 4\n"), "{m}");
    assert!(
        m.contains("\nportcullis_reported_malformed_total 5\n"),
        "{m}"
    );
    assert!(
        m.contains("portcullis_events_total{service=\"api\",outcome=\"failure\"} 4\n"),
        "{m}"
    );
}

#[test]
fn applications_report_with_their_own_token_which_opens_nothing_else() {
    let dir = DaemonDir::new();
    std::fs::write(dir.path("report.token"), format!("{REPORT_TOKEN}\n")).unwrap();
    dir.config_with_http(
        &format!(
            "report_token_file = \"{}\"",
            dir.path("report.token").display()
        ),
        "",
    );
    let d = dir.start();
    let one = r#"{"source":"203.0.113.7","outcome":"failure"}"#;

    let (code, v) = d.call("POST", "/v1/events", Some(one), Some(REPORT_TOKEN));
    assert_eq!((code, v), (202, json!({"accepted": 1})));
    // The admin token works there too.
    let (code, _) = d.call("POST", "/v1/events", Some(one), Some(TOKEN));
    assert_eq!(code, 202);
    for token in [None, Some("0123456789abcdef-wrong-token")] {
        let (code, v) = d.call("POST", "/v1/events", Some(one), token);
        assert_eq!(code, 401, "{token:?}");
        assert_eq!(v, json!({"error": "unauthorized"}));
    }
    // The report token is not an admin token.
    let (code, v) = d.call("GET", "/v1/status", None, Some(REPORT_TOKEN));
    assert_eq!((code, v), (401, json!({"error": "unauthorized"})));
    let ban = r#"{"network":"192.0.2.1"}"#;
    let (code, _) = d.call("POST", "/v1/bans", Some(ban), Some(REPORT_TOKEN));
    assert_eq!(code, 401);
    assert!(d.bans().is_empty());
}

#[test]
fn a_source_reported_failing_on_twelve_accounts_is_banned_and_a_typo_is_not() {
    let dir = DaemonDir::new();
    dir.config(super::FAST_JUDGEMENT);
    let d = dir.start();

    let (code, _) = d.report(&spray_events("203.0.113.7", 12));
    assert_eq!(code, 202);
    // Someone mistypes their password twice, then gets in.
    let user = |outcome: &str| {
        json!({"source": "198.51.100.10", "user": "alice@example.org", "outcome": outcome,
               "reason": "bad_password"})
    };
    let typo = json!([user("failure"), user("failure"), user("success")]).to_string();
    let (code, _) = d.report(&typo);
    assert_eq!(code, 202);
    let sent = jiff::Timestamp::now();

    let ban = super::wait_for_ban(&d, "203.0.113.7/32");
    assert_eq!(ban["kind"], "password_spray", "{ban}");
    assert_eq!(ban["manual"], false);
    assert_eq!(ban["offences"], 1);
    assert_eq!(super::length(&ban), 3600, "bans.duration's default");
    // Once everything sent is judged, the user is still not banned.
    super::wait_until_judged(&d, sent);
    let s = d.status();
    assert_eq!(s["engine_events"], 15, "{s}");
    assert_eq!(s["attackers_found"], 1, "{s}");
    assert_eq!(d.bans(), ["203.0.113.7/32"]);
}

#[test]
fn a_source_failing_again_after_its_ban_ran_out_is_banned_for_longer() {
    let dir = DaemonDir::new();
    dir.config(&format!(
        "{}\n[bans]\nduration = \"3s\"\nescalation = 4.0\n",
        super::FAST_JUDGEMENT
    ));
    let d = dir.start();
    let (code, _) = d.report(&spray_events("203.0.113.7", 12));
    assert_eq!(code, 202);
    let first = super::wait_for_ban(&d, "203.0.113.7/32");
    assert_eq!(super::length(&first), 3);
    wait_for("the first ban to run out", super::SETTLE, || {
        d.bans().is_empty().then_some(())
    });
    // One more guess is enough: the engine judged this source already.
    let one = r#"{"source":"203.0.113.7","user":"user99@example.org","outcome":"failure"}"#;
    let (code, _) = d.report(one);
    assert_eq!(code, 202);
    let second = super::wait_for_ban(&d, "203.0.113.7/32");
    assert_eq!(super::length(&second), 12, "{second}");
    assert_eq!(second["offences"], 2, "{second}");
}
