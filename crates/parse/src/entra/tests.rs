use crate::InputFormat;
use crate::testing::{config, read, row as r, rows};
use portcullis_core::Protocol;

const GRAPH: &str = include_str!("../../tests/fixtures/entra-graph.json");
const SIGNINLOGS: &str = include_str!("../../tests/fixtures/entra-signinlogs.jsonl");

#[test]
fn graph_page_every_error_code() {
    let (events, stats) = read(GRAPH, config(InputFormat::Json));
    // Every record of a page carries the page's line.
    let want = vec![
        r(6, "j.smith@parliament.example", "203.0.113.7", "success"),
        r(
            6,
            "a.jones@parliament.example",
            "203.0.113.7",
            "bad_password",
        ),
        r(
            6,
            "nobody@parliament.example",
            "203.0.113.7",
            "unknown_account",
        ),
        r(6, "m.brown@parliament.example", "2001:db8::7", "locked"),
        r(6, "t.evans@parliament.example", "203.0.113.8", "expired"),
        r(
            6,
            "old.account@parliament.example",
            "203.0.113.8",
            "disabled",
        ),
        r(
            6,
            "k.patel@parliament.example",
            "203.0.113.9",
            "success/required",
        ),
        r(
            6,
            "l.khan@parliament.example",
            "203.0.113.9",
            "success/required",
        ),
        r(
            6,
            "r.green@parliament.example",
            "203.0.113.9",
            "success/required",
        ),
        r(
            6,
            "s.lewis@parliament.example",
            "203.0.113.9",
            "success/failed",
        ),
        r(6, "zoë.ünïcode@parliament.example", "2001:db8::9", "other"),
        r(
            6,
            "o'\"quoted\"@parliament.example",
            "198.51.100.4",
            "bad_password",
        ),
        r(6, "no.ip@parliament.example", "", "bad_password"),
    ];
    assert_eq!(rows(&events), want);
    assert_eq!(stats.malformed_records, 1, "the 42");
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:14:05+00:00"
    );
    assert_eq!(
        events[0].session.as_deref(),
        Some("c0ffee00-0000-0000-0000-000000000001")
    );
    assert_eq!(events[7].protocol, Some(Protocol::Imap));
    assert_eq!(events[8].protocol, Some(Protocol::Smtp));
    assert_eq!(events[9].protocol, Some(Protocol::Pop3));
    assert_eq!(events[0].protocol, Some(Protocol::Http));
    assert_eq!(
        events[0].account.as_deref(),
        Some("j.smith@parliament.example")
    );
}

#[test]
fn signinlogs_lines_and_diagnostic_exports() {
    let (events, stats) = read(SIGNINLOGS, config(InputFormat::Json));
    let want = vec![
        r(
            7,
            "j.smith@parliament.example",
            "203.0.113.7",
            "bad_password",
        ),
        r(8, "j.smith@parliament.example", "203.0.113.7", "success"),
        r(9, "PARLIAMENT\\a.jones", "2001:db8::1", "success/required"),
        r(
            11,
            "ghost@parliament.example",
            "203.0.113.99",
            "unknown_account",
        ),
    ];
    assert_eq!(rows(&events), want);
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:20:00.1234567+00:00"
    );
    // The cut line.
    assert_eq!(stats.malformed_records, 1, "{stats:?}");
    assert_eq!(events[2].account.as_deref(), Some("a.jones"));
}

#[test]
fn forcing_another_reader_ignores_sign_ins() {
    let (events, stats) = read(SIGNINLOGS, config(InputFormat::Keycloak));
    assert!(events.is_empty());
    assert!(stats.unparsed_auth_lines >= 3);
}
