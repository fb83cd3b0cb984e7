use super::*;
use crate::InputFormat;
use crate::testing::{config, read, row as r, rows};

const FIXTURE: &str = include_str!("../../tests/fixtures/exchange-smtp-receive.log");

#[test]
fn fixture_through_the_w3c_reader() {
    let (events, stats) = read(FIXTURE, config(InputFormat::W3c));
    assert_eq!(
        rows(&events),
        vec![
            r(21, "", "203.0.113.7", "bad_password"),
            r(28, "CONTOSO\\j.smith", "2001:db8:1::7", "success"),
            r(
                32,
                "CONTOSO\\o'brien, \"pat\" 1.2.3.4",
                "192.0.2.44",
                "success"
            ),
            r(35, "", "198.51.100.9", "bad_password"),
            r(36, "", "198.51.100.9", "bad_password"),
            r(37, "", "203.0.113.99", "bad_password"),
        ]
    );
    // The unterminated quote, the short line and the unreadable time.
    assert_eq!(stats.malformed_records, 3);
    let e = &events[1];
    assert_eq!(e.service, Service::Exchange);
    assert_eq!(e.protocol, Some(Protocol::Smtp));
    assert_eq!(e.port, Some(50123));
    assert_eq!(e.session.as_deref(), Some("08DC9A0000000002"));
    assert_eq!(
        e.time.map(|t| t.to_string()).as_deref(),
        Some("2024-06-23T09:01:00.302+00:00")
    );
    // A user name never moves the address: it came from the remote endpoint.
    assert_eq!(events[2].source, Some("192.0.2.44".parse().unwrap()));
}

#[test]
fn directives_say_which_log_a_file_is() {
    assert_eq!(
        LogKind::from_directive("#Software: Microsoft Exchange Server"),
        Some(LogKind::OtherExchange)
    );
    assert_eq!(
        LogKind::from_directive("#Log-type: SMTP Receive Protocol Log"),
        Some(LogKind::SmtpReceive)
    );
    assert_eq!(
        LogKind::from_directive("#Log-type: Message Tracking Log"),
        Some(LogKind::OtherExchange)
    );
    assert_eq!(
        LogKind::from_directive("#Software: Microsoft Internet Information Services 10.0"),
        Some(LogKind::Iis)
    );
    assert_eq!(LogKind::from_directive("#Fields: date time"), None);
    assert_eq!(LogKind::from_directive("2024-06-23,x"), None);
}

#[test]
fn endpoints_and_csv() {
    assert_eq!(endpoint("[::1]:25"), Some(("::1".parse().unwrap(), 25)));
    assert_eq!(
        endpoint("[::ffff:192.0.2.1]:587"),
        Some(("192.0.2.1".parse().unwrap(), 587))
    );
    assert_eq!(
        endpoint("192.0.2.1:587"),
        Some(("192.0.2.1".parse().unwrap(), 587))
    );
    assert_eq!(
        endpoint("2001:db8::1:25"),
        None,
        "ambiguous without brackets"
    );
    assert_eq!(endpoint("mail.example:25"), None);
    assert_eq!(endpoint(""), None);
    assert_eq!(
        split_csv(r#"a,"b,""c""",,d"#).unwrap(),
        vec!["a", "b,\"c\"", "", "d"]
    );
    assert_eq!(split_csv(r#"a,"b"x,c"#), None);
    assert_eq!(split_csv(r#"a,"b"#), None);
    assert_eq!(split_csv(&",".repeat(100)), None);
}

#[test]
fn held_sessions_are_capped_and_go_at_disconnect() {
    let mut log = SmtpReceiveLog::default();
    let mut out = Vec::new();
    let o = Origin::default();
    let line = |s: usize, event: &str, data: &str| {
        format!("2024-06-23T09:00:00.000Z,c,S{s},0,10.0.0.1:587,192.0.2.1:1000,{event},{data},")
    };
    for s in 0..MAX_SESSIONS + 1000 {
        log.push(&line(s, "<", "AUTH LOGIN"), &o, &mut out);
    }
    assert_eq!(log.held(), MAX_SESSIONS);
    assert!(log.sessions.order.len() <= 2 * MAX_SESSIONS);
    log.push(&line(MAX_SESSIONS + 999, "-", ""), &o, &mut out);
    assert_eq!(log.held(), MAX_SESSIONS - 1);
    // The oldest went: its reply still counts, without a user.
    log.push(
        &line(0, ">", "535 5.7.3 Authentication unsuccessful"),
        &o,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(out.iter().all(|e| e.user.is_none()));
}
