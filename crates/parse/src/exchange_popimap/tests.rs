use portcullis_core::{Origin, Protocol, Service};

use super::*;
use crate::InputFormat;
use crate::exchange_smtp::LogKind;
use crate::testing::{config, read, row as r, rows};

const FIXTURE: &str = include_str!("../../tests/fixtures/exchange-popimap.log");

#[test]
fn fixture_through_the_w3c_reader() {
    let (events, stats) = read(FIXTURE, config(InputFormat::W3c));
    assert_eq!(
        rows(&events),
        vec![
            r(20, "j.smith@contoso.com", "203.0.113.7", "bad_password"),
            r(21, "", "203.0.113.7", "bad_password"),
            r(25, "frank", "10.1.1.70", "success"),
            r(27, "", "2001:db8::7", "bad_password"),
            r(28, "o'brien, pat", "192.0.2.44", "bad_password"),
            r(39, "alice@contoso.com", "203.0.113.7", "bad_password"),
            r(42, "carol@contoso.com", "10.1.1.71", "success"),
            r(43, "", "203.0.113.8", "bad_password"),
        ]
    );
    // The unterminated quote, the short line and the unreadable time.
    assert_eq!(stats.malformed_records, 3);
    let imap = &events[2];
    assert_eq!(imap.service, Service::Exchange);
    assert_eq!(imap.protocol, Some(Protocol::Imap));
    assert_eq!(imap.port, Some(50002));
    assert_eq!(imap.session.as_deref(), Some("0000000000000002"));
    assert_eq!(
        imap.time.map(|t| t.to_string()).as_deref(),
        Some("2025-11-03T01:00:01.205+00:00")
    );
    assert_eq!(events[3].port, Some(50123));
    for pop in &events[5..] {
        assert_eq!(pop.protocol, Some(Protocol::Pop3));
    }
}

fn log_with(fields: &str, lines: &[&str]) -> Vec<Event> {
    let mut log = PopImapLog::default();
    let mut out = Vec::new();
    log.push(&format!("#Fields: {fields}"), &Origin::default(), &mut out);
    for l in lines {
        log.push(l, &Origin::default(), &mut out);
    }
    out
}

const FIELDS: &str =
    "dateTime,sessionId,seqNumber,sIp,cIp,user,duration,command,parameters,context";

#[test]
fn answers_are_read_from_context_whatever_else_it_holds() {
    assert_eq!(answer("R=OK"), Some("OK"));
    assert_eq!(
        answer(r#"R=OK;Msg="Proxy:EX:1993:SSL;ProxySuccess""#),
        Some("OK")
    );
    assert_eq!(
        answer(r#"R="a2 NO LOGIN failed.";Rows=0"#),
        Some("a2 NO LOGIN failed.")
    );
    // `R=` after other items, one of them quoted with a `;` inside.
    assert_eq!(
        answer(r#"Msg="x;R=OK";R="a1 NO LOGIN failed.""#),
        Some("a1 NO LOGIN failed.")
    );
    assert_eq!(answer(r#"Msg="R=OK""#), None);
    assert_eq!(answer(""), None);
}

#[test]
fn only_failed_logins_and_successes_are_judged() {
    assert_eq!(judge("OK"), Some(true));
    assert_eq!(judge("a1 OK LOGIN completed."), Some(true));
    assert_eq!(judge("+OK"), Some(true));
    assert_eq!(judge("a2 NO LOGIN failed."), Some(false));
    assert_eq!(
        judge("a2 NO [AUTHENTICATIONFAILED] Authentication failed."),
        Some(false)
    );
    assert_eq!(
        judge("-ERR Logon failure: unknown user name or bad password."),
        Some(false)
    );
    // The server's trouble, or a malformed command: no password was judged.
    assert_eq!(judge("a2 NO Server Unavailable. 15"), None);
    assert_eq!(judge("-ERR Server Unavailable. 21"), None);
    assert_eq!(judge("a2 BAD Command Argument Error. 11"), None);
    assert_eq!(judge(""), None);
}

#[test]
fn the_name_a_client_gave_is_its_first_argument() {
    assert_eq!(
        first_word("j.smith@contoso.com *****"),
        Some("j.smith@contoso.com")
    );
    assert_eq!(first_word(r#""o'brien, pat" *****"#), Some("o'brien, pat"));
    assert_eq!(first_word(" *****"), None);
    assert_eq!(first_word("*****"), None);
    assert_eq!(first_word(r#""unterminated *****"#), None);
    assert_eq!(first_word(""), None);
}

#[test]
fn back_end_lines_name_the_front_end_and_are_skipped() {
    let events = log_with(
        FIELDS,
        &[
            r#"2025-11-03T01:00:01.300Z,1,1,10.0.0.2:1995,10.0.0.1:26748,,5,pass,*****,"R=""-ERR Logon failure: unknown user name or bad password.""""#,
            r#"2025-11-03T01:00:01.300Z,2,1,10.0.0.2:995,203.0.113.9:26748,,5,pass,*****,"R=""-ERR Logon failure: unknown user name or bad password.""""#,
        ],
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, Some("203.0.113.9".parse().unwrap()));
}

#[test]
fn a_pop3_name_is_the_sessions_own_and_goes_at_its_close() {
    let fail = |session: &str| {
        format!(
            r#"2025-11-03T01:00:01.300Z,{session},2,10.0.0.1:995,203.0.113.9:1,,5,pass,*****,"R=""-ERR Logon failure: unknown user name or bad password.""""#
        )
    };
    let events = log_with(
        FIELDS,
        &[
            "2025-11-03T01:00:01.000Z,A,1,10.0.0.1:995,203.0.113.9:1,,0,user,ann,R=+OK",
            "2025-11-03T01:00:01.000Z,B,1,10.0.0.1:995,203.0.113.9:2,,0,user,ben,R=+OK",
            &fail("B"),
            &fail("A"),
            "2025-11-03T01:00:01.000Z,A,3,10.0.0.1:995,203.0.113.9:1,,0,CloseSession,,",
            &fail("A"),
        ],
    );
    let users: Vec<_> = events.iter().map(|e| e.user.as_deref()).collect();
    assert_eq!(users, vec![Some("ben"), Some("ann"), None]);
}

#[test]
fn held_names_are_capped() {
    let mut log = PopImapLog::default();
    let mut out = Vec::new();
    log.push(&format!("#Fields: {FIELDS}"), &Origin::default(), &mut out);
    for i in 0..MAX_SESSIONS + 10 {
        log.push(
            &format!(
                "2025-11-03T01:00:01.000Z,s{i},1,10.0.0.1:995,203.0.113.9:1,,0,user,u{i},R=+OK"
            ),
            &Origin::default(),
            &mut out,
        );
    }
    assert_eq!(log.held(), MAX_SESSIONS);
    assert!(out.is_empty());
}

#[test]
fn directives_and_fields_say_which_log_a_file_is() {
    assert_eq!(
        LogKind::from_directive("#Log-type: IMAP4 Protocol Log"),
        Some(LogKind::PopImap)
    );
    assert_eq!(
        LogKind::from_directive("#Log-type: POP3 Protocol Log"),
        Some(LogKind::PopImap)
    );
    assert_eq!(
        LogKind::from_directive(&format!("#Fields: {FIELDS}")),
        Some(LogKind::PopImap)
    );
    // IIS's and the SMTP log's fields say nothing of their own.
    assert_eq!(
        LogKind::from_directive("#Fields: date time c-ip cs-username"),
        None
    );
    assert_eq!(
        LogKind::from_directive(
            "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context"
        ),
        None
    );
}
