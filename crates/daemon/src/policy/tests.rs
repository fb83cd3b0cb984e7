//! The policy listener over real HTTP on loopback: Dovecot's requests as
//! `auth-policy.c` builds them, Weakforced's commands, the own API, the secret and the
//! budget.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use portcullis_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::*;
use crate::config::{BanConfig, LockConfig, PolicySettings};
use crate::decide::Decisions;
use crate::metrics::Metrics;

const SECRET: &str = "policy-secret-0123456789";

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    events: mpsc::Receiver<Vec<Event>>,
    _dir: tempfile::TempDir,
}

async fn server(settings: PolicySettings) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let settings = PolicySettings {
        secret_file: Some(secret),
        ..settings
    };
    let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let decisions = Decisions::load(
        BanConfig::default(),
        LockConfig::default(),
        Arc::clone(&store),
        Arc::clone(&metrics),
    )
    .unwrap();
    let (effects, _) = mpsc::channel(1024);
    let (reports, events) = mpsc::channel(1024);
    let shared = Arc::new(Shared {
        policy: Arc::new(PolicyRuntime::new(&settings, &store).unwrap()),
        metrics,
        decisions: Mutex::new(decisions),
        store,
        effects,
        reports,
        admin_token: None,
        report_token: None,
        rules: Default::default(),
        started: Timestamp::now(),
        dry_run: false,
        max_body: 1 << 20,
        engine_alive: AtomicBool::new(true),
        source_metrics: Box::new(|_| {}),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::serve::serve(
        listener,
        router(Arc::clone(&shared)),
        crate::serve::Limits::default(),
        std::future::pending(),
    ));
    Server {
        addr,
        shared,
        events,
        _dir: dir,
    }
}

/// Dovecot's header: `auth_policy_server_api_header = Authorization: Basic …`.
fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("dovecot:{SECRET}"))
    )
}

async fn call(
    s: &Server,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> (u16, Value) {
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let header = auth
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let code = out[9..12].parse().unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    // Every answer is JSON, and says so (Dovecot and wforce clients parse it as such).
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    (
        code,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

use serde_json::Value;

async fn dovecot(s: &Server, command: &str, body: &str) -> Value {
    let b = basic();
    let (code, v) = call(
        s,
        "POST",
        &format!("/?command={command}"),
        Some(("Authorization", &b)),
        body,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    v
}

/// The JSON Dovecot 2.3 sends with the default attributes (sorted keys) and TLS.
fn dovecot_allow(login: &str, remote: &str, pwhash: &str) -> String {
    format!(
        r#"{{"device_id":"","login":"{login}","protocol":"imap","pwhash":"{pwhash}","remote":"{remote}","session_id":"aBcD1234","tls":true}}"#
    )
}

fn dovecot_report(login: &str, remote: &str, pwhash: &str, success: bool, extra: &str) -> String {
    format!(
        r#"{{"device_id":"","login":"{login}","protocol":"imap","pwhash":"{pwhash}","remote":"{remote}","session_id":"aBcD1234"{extra},"success":{success},"policy_reject":false}}"#
    )
}

#[tokio::test]
async fn dovecot_is_answered_in_its_own_protocol() {
    let mut s = server(PolicySettings {
        tarpit_after: 2,
        source_accounts: 4,
        ..PolicySettings::default()
    })
    .await;
    // The real user at home.
    dovecot(
        &s,
        "report",
        &dovecot_report("alice", "192.0.2.10", "a1b", true, ""),
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let login = format!("user{i}");
        let v = dovecot(&s, "allow", &dovecot_allow(&login, "203.0.113.9", "f00")).await;
        statuses.push(v["status"].as_i64().unwrap());
        // 2.4 says why it failed.
        dovecot(
            &s,
            "report",
            &dovecot_report(
                &login,
                "203.0.113.9",
                "f00",
                false,
                r#","fail_type":"credentials""#,
            ),
        )
        .await;
    }
    assert_eq!(
        statuses,
        vec![0, 0, 1, 2],
        "allow, allow, then tarpit seconds"
    );
    let v = dovecot(&s, "allow", &dovecot_allow("alice", "203.0.113.9", "c0r")).await;
    assert_eq!(v["status"], -1);
    assert!(v["msg"].as_str().unwrap().contains("refused"), "{v}");
    let v = dovecot(&s, "allow", &dovecot_allow("alice", "192.0.2.10", "c0r")).await;
    assert_eq!(v["status"], 0);
    // URLs ending in '&' get "command=" appended: the same endpoint.
    let b = basic();
    let (code, v) = call(
        &s,
        "POST",
        "/?site=mail1&command=allow",
        Some(("Authorization", &b)),
        &dovecot_allow("alice", "192.0.2.10", "c0r"),
    )
    .await;
    assert_eq!((code, v["status"].as_i64()), (200, Some(0)));
    // Every report reached the engine's queue as an event.
    let mut events = Vec::new();
    while let Ok(batch) = s.events.try_recv() {
        events.extend(batch);
    }
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].outcome, Outcome::Success);
    assert_eq!(events[0].service, Service::Dovecot);
    assert_eq!(events[0].protocol, Some(Protocol::Imap));
    assert_eq!(
        events[1].outcome,
        Outcome::Failure(EventReason::BadPassword)
    );
}

#[tokio::test]
async fn reports_of_refusals_and_internal_failures_are_not_guesses() {
    let s = server(PolicySettings {
        lockout_threshold: 2,
        ..PolicySettings::default()
    })
    .await;
    for (i, extra) in [
        r#","fail_type":"internal""#,
        r#","fail_type":"expired""#,
        r#","fail_type":"policy""#,
    ]
    .iter()
    .enumerate()
    {
        let pw = format!("p{i}");
        dovecot(
            &s,
            "report",
            &dovecot_report("bob", "203.0.113.1", &pw, false, extra),
        )
        .await;
    }
    let rejected = r#"{"login":"bob","pwhash":"p9","remote":"203.0.113.1","success":false,"policy_reject":true}"#;
    dovecot(&s, "report", rejected).await;
    let v = dovecot(&s, "allow", &dovecot_allow("bob", "203.0.113.1", "x")).await;
    assert_eq!(v["status"], 0, "nothing counted: {v}");
    assert_eq!(
        s.shared.policy.metrics.reports[2].load(Ordering::Relaxed),
        4
    );
}

#[tokio::test]
async fn the_secret_is_required_in_any_of_its_forms() {
    let s = server(PolicySettings::default()).await;
    let body = dovecot_allow("alice", "192.0.2.1", "abc");
    let (code, v) = call(&s, "POST", "/?command=allow", None, &body).await;
    assert_eq!((code, v["status"].as_str()), (401, Some("failure")));
    for (k, v) in [
        ("Authorization", basic()),
        ("X-API-Key", SECRET.to_string()),
        ("Authorization", format!("Bearer {SECRET}")),
    ] {
        let (code, _) = call(&s, "POST", "/?command=allow", Some((k, &v)), &body).await;
        assert_eq!(code, 200, "{k}");
    }
    use base64::Engine as _;
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dovecot:not-the-secret")
    );
    for (k, v) in [("Authorization", wrong.as_str()), ("X-API-Key", "nope")] {
        let (code, _) = call(&s, "POST", "/?command=allow", Some((k, v)), &body).await;
        assert_eq!(code, 401, "{k}");
    }
    assert_eq!(
        s.shared.policy.metrics.unauthorized.load(Ordering::Relaxed),
        3
    );
}

#[tokio::test]
async fn a_busy_policy_answers_the_fallback_within_the_budget() {
    for (fallback, status) in [(Fallback::Allow, 0), (Fallback::Reject, -1)] {
        let s = server(PolicySettings {
            budget: Duration::from_millis(50),
            fallback,
            ..PolicySettings::default()
        })
        .await;
        let pause = s.shared.policy.policy.pause();
        let started = std::time::Instant::now();
        let v = dovecot(&s, "allow", &dovecot_allow("alice", "192.0.2.1", "abc")).await;
        let took = started.elapsed();
        drop(pause);
        assert_eq!(v["status"], status);
        if status < 0 {
            assert!(v["msg"].as_str().unwrap().contains("unavailable"), "{v}");
        }
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert_eq!(s.shared.policy.metrics.fallbacks.load(Ordering::Relaxed), 1);
    }
}

#[tokio::test]
async fn malformed_requests_get_400_never_a_panic() {
    let s = server(PolicySettings::default()).await;
    let long = format!(r#"{{"login":"{}","remote":"192.0.2.1"}}"#, "x".repeat(600));
    for body in [
        "",
        "{",
        "[1,2]",
        r#"{"login":"a","remote":"not-an-address"}"#,
        r#"{"login":5}"#,
        long.as_str(),
        r#"{"login":"a","remote":"192.0.2.1"}"#, // a report without success
    ] {
        let cmd = if body.contains("192.0.2.1\"}") && !body.contains("xxx") {
            "report"
        } else {
            "allow"
        };
        let b = basic();
        let (code, v) = call(
            &s,
            "POST",
            &format!("/?command={cmd}"),
            Some(("Authorization", &b)),
            body,
        )
        .await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["status"], "failure");
    }
    let (code, _) = call(&s, "POST", "/", Some(("X-API-Key", SECRET)), "{}").await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn weakforced_commands() {
    let s = server(PolicySettings::default()).await;
    let key = Some(("X-API-Key", SECRET));
    let wf = |cmd: &'static str, body: &'static str| {
        let s = &s;
        async move { call(s, "POST", &format!("/command/{cmd}"), key, body).await }
    };
    assert_eq!(wf("ping", "").await.1["status"], "ok");
    let (code, v) = wf(
        "addBLEntry",
        r#"{"ip":"203.0.113.5","expire_secs":3600,"reason":"spraying"}"#,
    )
    .await;
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")), "{v}");
    wf(
        "addBLEntry",
        r#"{"login":"mallory","expire_secs":60,"reason":"compromised"}"#,
    )
    .await;
    let (code, v) = wf("addBLEntry", r#"{"ip":"203.0.113.5"}"#).await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (400, Some("Missing mandatory expire_secs field"))
    );
    let (_, v) = wf("getBL", "").await;
    let entries = v["bl_entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{v}");
    assert!(
        entries
            .iter()
            .any(|e| e["ip"] == "203.0.113.5" && e["reason"] == "spraying")
    );
    assert!(entries.iter().any(|e| e["login"] == "mallory"));
    // "2026-Nov-29 12:00:00", as wforce's boost formatting.
    let exp = entries[0]["expiration"].as_str().unwrap();
    assert_eq!(exp.len(), 20, "{exp}");
    // Both the ban and the lock are in the policy's answers at once.
    let (_, v) = wf(
        "allow",
        r#"{"login":"x","remote":"203.0.113.5","pwhash":"1"}"#,
    )
    .await;
    assert_eq!(v["status"], -1);
    assert_eq!(v["r_attrs"], serde_json::json!({}));
    let (_, v) = wf(
        "allow",
        r#"{"login":"mallory","remote":"192.0.2.1","pwhash":"1"}"#,
    )
    .await;
    assert_eq!(v["status"], -1);
    let (_, v) = wf("getDBStats", r#"{"ip":"203.0.113.5"}"#).await;
    assert_eq!(
        (v["blacklisted"].as_bool(), v["bl_reason"].as_str()),
        (Some(true), Some("spraying"))
    );
    assert_eq!(wf("delBLEntry", r#"{"ip":"203.0.113.5"}"#).await.0, 200);
    assert_eq!(wf("reset", r#"{"login":"mallory"}"#).await.0, 200);
    let (_, v) = wf(
        "allow",
        r#"{"login":"mallory","remote":"203.0.113.5","pwhash":"1"}"#,
    )
    .await;
    assert_eq!(v["status"], 0, "{v}");
    let (_, v) = wf("stats", "").await;
    assert_eq!(v["allows"], 1, "{v}");
    assert_eq!(v["denieds"], 2, "{v}");
    // The same commands under /?command=.
    let (code, v) = call(&s, "GET", "/?command=getBL", key, "").await;
    assert_eq!(
        (code, v["bl_entries"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (code, _) = wf(
        "addBLEntry",
        r#"{"ip":"1.2.3.4","login":"x","expire_secs":1,"reason":"r"}"#,
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn the_own_api_with_a_password_fingerprint() {
    let s = server(PolicySettings::default()).await;
    let key = Some(("X-API-Key", SECRET));
    for i in 0..5 {
        let body = format!(
            r#"{{"account":"user{i}@example.org","source":"198.51.100.{i}","fingerprint":"hmac:Winter2024","outcome":"failure"}}"#
        );
        let (code, v) = call(&s, "POST", "/v1/report", key, &body).await;
        assert_eq!((code, v["accepted"].as_bool()), (200, Some(true)), "{v}");
    }
    let body = r#"{"account":"ceo@example.org","source":"198.51.100.200","fingerprint":"hmac:Winter2024"}"#;
    let (code, v) = call(&s, "POST", "/v1/allow", key, body).await;
    assert_eq!(code, 200);
    assert_eq!(v["decision"], "reject");
    assert_eq!(v["reason"], "sprayed_password");
    let body =
        r#"{"account":"ceo@example.org","source":"198.51.100.200","fingerprint":"hmac:other"}"#;
    let (_, v) = call(&s, "POST", "/v1/allow", key, body).await;
    assert_eq!(v["decision"], "allow");
    let (code, _) = call(&s, "POST", "/v1/allow", key, r#"{"source":"198.51.100.1"}"#).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn automatic_lockdown_lasts_its_hold_and_never_shortens_a_manual_one() {
    let s = server(PolicySettings {
        lockdown_auto_duration: Duration::from_secs(600),
        ..PolicySettings::default()
    })
    .await;
    let p = &s.shared.policy;
    let now = Timestamp::now().as_second();
    let l = p.campaign_found(&s.shared.store, now).unwrap();
    assert_eq!((l.until, l.automatic), (Some(now + 600), true));
    assert_eq!(s.shared.store.lockdown().unwrap(), Some(l.clone()));
    // A later detection extends it, from the same start.
    let l2 = p.campaign_found(&s.shared.store, now + 100).unwrap();
    assert_eq!((l2.since, l2.until), (now, Some(now + 700)));
    // Unfamiliar places are refused with the lockdown message.
    let v = dovecot(&s, "allow", &dovecot_allow("alice", "203.0.113.1", "x")).await;
    assert_eq!(v["status"], -1);
    assert!(v["msg"].as_str().unwrap().contains("restricted"), "{v}");
    // A manual lockdown until switched off is left alone.
    p.set_lockdown(
        &s.shared.store,
        Some(Lockdown {
            since: now,
            until: None,
            automatic: false,
        }),
    )
    .unwrap();
    assert!(p.campaign_found(&s.shared.store, now + 200).is_none());
    assert_eq!(p.lockdown(now + 1_000_000).unwrap().until, None);
}

#[test]
fn a_login_is_read_without_copying_its_strings() {
    let body = br#"{"device_id":"d1","login":"user7@example.org","protocol":"imap","pwhash":"8f3a","remote":"10.0.0.7","session_id":"s1","attrs":{"x":"y"}}"#;
    let l: Login<'_> = serde_json::from_slice(body).unwrap();
    for t in [&l.login, &l.remote, &l.pwhash, &l.device_id, &l.protocol] {
        let t = t.as_ref().expect("present");
        assert!(matches!(t.0, Cow::Borrowed(_)), "{t:?} was copied");
    }
    // An escaped string is unescaped into its own copy, and read right.
    let l: Login<'_> = serde_json::from_slice(br#"{"login":"a\"b@example.org"}"#).unwrap();
    assert_eq!(l.login.as_deref(), Some("a\"b@example.org"));
}

/// The bodies Debian 13's Dovecot 2.4.1 sent with its default attributes (captured
/// from a real login): `fail_type` is empty on `allow` and names the failure on
/// `report`.
#[tokio::test]
async fn dovecot_2_4_bodies_as_sent() {
    let s = server(PolicySettings {
        lockout_threshold: 2,
        ..PolicySettings::default()
    })
    .await;
    let allow = r#"{"device_id":"","fail_type":"","login":"alice","protocol":"imap","pwhash":"0e4e","remote":"127.0.0.3","session_id":"2Cqe5nFhy5B/AAAD","tls":false}"#;
    assert_eq!(dovecot(&s, "allow", allow).await["status"], 0);
    for pw in ["0e4e", "77a1"] {
        let report = format!(
            r#"{{"device_id":"","fail_type":"credentials","login":"alice","protocol":"imap","pwhash":"{pw}","remote":"127.0.0.3","session_id":"2Cqe5nFhy5B/AAAD","success":false,"policy_reject":false,"tls":false}}"#
        );
        assert_eq!(dovecot(&s, "report", &report).await["status"], "ok");
    }
    // Two wrong passwords: locked for unfamiliar places.
    let v = dovecot(&s, "allow", allow).await;
    assert_eq!(v["status"], -1, "{v}");
    // An unknown account's failure is a guess too.
    let unknown = r#"{"device_id":"","fail_type":"account","login":"nobody","protocol":"imap","pwhash":"0443","remote":"127.0.0.3","session_id":"ZJee5nFh2bF/AAAD","success":false,"policy_reject":false,"tls":false}"#;
    dovecot(&s, "report", unknown).await;
    assert_eq!(
        s.shared
            .policy
            .policy
            .stats(Some("nobody"), None, now32())
            .account_failures,
        1
    );
}
