use crate::InputFormat;
use crate::testing::{config, read, row as r, rows};

const EVENTS: &str = include_str!("../../tests/fixtures/keycloak-events.json");
const LOG: &str = include_str!("../../tests/fixtures/keycloak-log.jsonl");

#[test]
fn admin_api_events_every_error() {
    let (events, stats) = read(EVENTS, config(InputFormat::Json));
    let got = rows(&events);
    let lines: Vec<u64> = got.iter().map(|g| g.0).collect();
    let rest: Vec<_> = got.into_iter().map(|(_, u, s, w)| (u, s, w)).collect();
    assert_eq!(
        rest,
        vec![
            (
                "j.smith".into(),
                "203.0.113.7".into(),
                "bad_password".into()
            ),
            (
                "nobody".into(),
                "203.0.113.7".into(),
                "unknown_account".into()
            ),
            (
                "old.account".into(),
                "2001:db8::7".into(),
                "disabled".into()
            ),
            ("m.brown".into(), "203.0.113.8".into(), "locked".into()),
            (
                "zoë \"quoted\" ünïcode".into(),
                "203.0.113.8".into(),
                "other".into()
            ),
            ("j.smith".into(), "203.0.113.7".into(), "success".into()),
        ]
    );
    assert!(
        lines.windows(2).all(|w| w[0] < w[1]),
        "each record has its own line"
    );
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:14:05+00:00"
    );
    assert_eq!(
        events[5].session.as_deref(),
        Some("dfd53c28-19e3-483c-ab55-4d54cc4a02e1")
    );
    // "not an event" inside the array.
    assert_eq!(stats.malformed_records, 1);
}

#[test]
fn json_console_log_messages() {
    let (events, stats) = read(LOG, config(InputFormat::Json));
    assert_eq!(
        rows(&events),
        vec![
            r(6, "j.smith, \"jr\"", "203.0.113.7", "bad_password"),
            r(7, "ghost", "2001:db8::9", "unknown_account"),
            r(8, "j.smith", "203.0.113.7", "success"),
        ]
    );
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T09:14:05.123+01:00"
    );
    assert_eq!(events[0].session, None, "\"null\" is no session");
    assert_eq!(events[2].session.as_deref(), Some("abc"));
    assert_eq!(stats.unparsed_auth_lines, 1, "the services logger's line");
}

#[test]
fn pairs_survive_odd_messages() {
    for m in [
        "",
        "=",
        "a=\"unterminated",
        "type=\"LOGIN\", =x, b",
        "x=\"\\",
    ] {
        let _ = super::pairs(m);
    }
    assert_eq!(
        super::pairs("a=1, b=\"x, y\", c=\"\""),
        vec![
            ("a", "1".to_owned()),
            ("b", "x, y".to_owned()),
            ("c", String::new())
        ]
    );
}
