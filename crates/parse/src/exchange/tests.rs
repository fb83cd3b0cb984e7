use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/exchange-iis.log");

/// (line, service, source, user, outcome, reason)
type Row = (u64, String, String, String, String, String);

fn read(text: &str, trusted: &[&str]) -> (Vec<Event>, usize) {
    let mut log = IisLog::new(trusted.iter().map(|n| n.parse().unwrap()).collect());
    let mut out = Vec::new();
    let mut malformed = 0;
    for (i, line) in text.lines().enumerate() {
        let origin = Origin {
            file: None,
            line: i as u64 + 1,
            offset: 0,
        };
        if log.push(line, None, &origin, &mut out) == LineKind::Malformed {
            malformed += 1;
        }
    }
    log.flush(&mut out);
    (out, malformed)
}

fn rows(events: &[Event]) -> Vec<Row> {
    events
        .iter()
        .map(|e| {
            (
                e.origin.line,
                e.service.to_string(),
                e.source.map(|a| a.to_string()).unwrap_or_default(),
                e.user.clone().unwrap_or_default(),
                e.outcome.as_str().to_owned(),
                e.outcome
                    .reason()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn row(line: u64, service: &str, source: &str, user: &str, outcome: &str, reason: &str) -> Row {
    (
        line,
        service.into(),
        source.into(),
        user.into(),
        outcome.into(),
        reason.into(),
    )
}

#[test]
fn fixture_reads_as_documented() {
    let (events, malformed) = read(FIXTURE, &["10.0.0.0/8"]);
    assert_eq!(
        malformed, 4,
        "one bad line, one short, one bad time, one long"
    );
    let got = rows(&events);
    let want = vec![
        row(
            13,
            "exchange",
            "203.0.113.7",
            "j.smith@parliament.example",
            "failure",
            "bad_password",
        ),
        row(
            15,
            "exchange",
            "198.51.100.20",
            "PARLIAMENT\\a.jones",
            "success",
            "",
        ),
        row(
            20,
            "exchange",
            "192.0.2.44",
            "t.evans",
            "failure",
            "bad_password",
        ),
        row(21, "exchange", "192.0.2.44", "t.evans", "success", ""),
        row(
            22,
            "exchange",
            "203.0.113.8",
            "PARLIAMENT\\locked.user",
            "failure",
            "locked",
        ),
        row(
            23,
            "exchange",
            "203.0.113.9",
            "disabled.user@parliament.example",
            "failure",
            "disabled",
        ),
        row(
            24,
            "exchange",
            "203.0.113.10",
            "expired.user",
            "failure",
            "expired",
        ),
        row(
            25,
            "exchange",
            "203.0.113.11",
            "",
            "failure",
            "bad_password",
        ),
        row(
            26,
            "exchange",
            "203.0.113.12",
            "\"odd\"user@parliament.example",
            "failure",
            "bad_password",
        ),
        row(
            27,
            "exchange",
            "2001:db8::1:0:0:9",
            "zoë.ünïcode@parliament.example",
            "success",
            "",
        ),
        row(28, "iis", "203.0.113.13", "bob", "failure", "bad_password"),
        // The OWA logon nothing answered, settled when event time moved on an hour.
        row(
            18,
            "exchange",
            "2001:db8:4::77",
            "m.brown@parliament.example",
            "failure",
            "other",
        ),
        row(
            38,
            "exchange",
            "203.0.113.50",
            "j.smith",
            "failure",
            "bad_password",
        ),
        row(39, "exchange", "203.0.113.60", "j.smith", "success", ""),
        row(40, "exchange", "2001:db8:9::5", "", "failure", "other"),
    ];
    assert_eq!(got, want);
    let first = &events[0];
    assert_eq!(first.time.unwrap().to_string(), "2017-06-23T08:00:05+00:00");
    assert_eq!(first.protocol, Some(Protocol::Http));
    assert_eq!(events[12].host.as_deref(), Some("EXCH01"));
}

#[test]
fn without_trusted_proxies_the_balancer_is_the_source() {
    let (events, _) = read(FIXTURE, &[]);
    let xff = events.iter().find(|e| e.origin.line == 38).unwrap();
    assert_eq!(xff.source, Some("10.0.0.5".parse().unwrap()));
}

#[test]
fn a_header_change_moves_the_columns() {
    let text = "#Fields: date time c-ip cs-username cs-uri-stem sc-status\n\
                2017-06-23 08:00:00 192.0.2.1 bob /EWS/x 401\n\
                #Fields: date time cs-uri-stem sc-status cs-username c-ip\n\
                2017-06-23 08:00:01 /EWS/x 401 carol 192.0.2.2\n";
    let (events, malformed) = read(text, &[]);
    assert_eq!(malformed, 0);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.user.clone().unwrap(), e.source.unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("bob".to_owned(), "192.0.2.1".to_owned()),
            ("carol".to_owned(), "192.0.2.2".to_owned())
        ]
    );
}

#[test]
fn the_default_header_reads_a_file_joined_in_the_middle() {
    let line = "2017-06-23 08:00:20 10.1.0.10 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync 443 t.evans 192.0.2.44 Apple - 401 1 1326 15";
    let (events, _) = read(line, &[]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Failure(Reason::BadPassword));
}

#[test]
fn held_owa_logons_are_capped() {
    let mut log = IisLog::new(Vec::new());
    let mut out = Vec::new();
    for i in 0..(MAX_PENDING + 10) {
        let a = std::net::Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + i as u128);
        let line = format!(
            "2017-06-23 08:00:00 10.1.0.10 POST /owa/auth.owa - 443 u{i} {a} UA - 302 0 0 1"
        );
        log.push(&line, None, &Origin::default(), &mut out);
    }
    assert!(log.pending.len() <= MAX_PENDING);
    assert_eq!(out.len(), 10, "the oldest were settled early");
    log.flush(&mut out);
    assert_eq!(out.len(), MAX_PENDING + 10);
}
