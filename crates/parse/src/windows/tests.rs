use crate::InputFormat;
use crate::testing::{config, read, row as r, rows};

const WINLOGBEAT: &str = include_str!("../../tests/fixtures/windows-winlogbeat.jsonl");
const GET_WINEVENT: &str = include_str!("../../tests/fixtures/windows-get-winevent.json");

#[test]
fn winlogbeat_every_event_and_status() {
    let (events, stats) = read(WINLOGBEAT, config(InputFormat::Json));
    let want = vec![
        r(9, "PARLIAMENT\\j.smith", "203.0.113.7", "bad_password"),
        r(10, "PARLIAMENT\\nobody", "203.0.113.7", "unknown_account"),
        r(11, "PARLIAMENT\\m.brown", "2001:db8::7", "locked"),
        r(12, "PARLIAMENT\\old.account", "203.0.113.8", "disabled"),
        r(13, "PARLIAMENT\\t.evans", "203.0.113.8", "expired"),
        r(
            14,
            "zoë.ünïcode@parliament.example",
            "198.51.100.4",
            "bad_password",
        ),
        r(15, "PARLIAMENT\\j.smith", "203.0.113.7", "success"),
        r(18, "a.jones", "203.0.113.9", "bad_password"),
        r(19, "r.green", "", "bad_password"),
        r(20, "m.brown", "", "locked"),
        r(
            23,
            "PARLIAMENT\\O'\"Quote\"",
            "203.0.113.10",
            "bad_password",
        ),
    ];
    assert_eq!(rows(&events), want);
    // The cut record.
    assert_eq!(stats.malformed_records, 1);
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:14:05.123+00:00"
    );
    assert_eq!(events[0].host.as_deref(), Some("DC01.parliament.example"));
    assert_eq!(events[0].port, Some(51234));
    assert_eq!(
        events[0].account.as_deref(),
        Some("j.smith"),
        "DOMAIN\\ is dropped"
    );
    assert_eq!(
        events[8].source_name.as_deref(),
        Some("WS-17"),
        "4776 names the workstation"
    );
    assert_eq!(
        events[9].source_name.as_deref(),
        Some("WS-17"),
        "4740 names the caller"
    );
    assert_eq!(events[6].port, None, "port 0 is no port");
}

#[test]
fn get_winevent_positional_properties() {
    let (events, stats) = read(GET_WINEVENT, config(InputFormat::Json));
    let got = rows(&events);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(&got[0].1, "PARLIAMENT\\j.smith");
    assert_eq!(&got[0].3, "bad_password");
    assert_eq!(
        &got[1].1, "PARLIAMENT\\nobody",
        "a user already qualified keeps its domain"
    );
    assert_eq!(&got[1].2, "2001:db8::5");
    assert_eq!(&got[1].3, "unknown_account");
    assert_eq!(
        (&got[2].1[..], &got[2].2[..], &got[2].3[..]),
        ("a.jones", "203.0.113.9", "bad_password")
    );
    assert_eq!(
        (&got[3].1[..], &got[3].3[..]),
        ("PARLIAMENT\\j.smith", "success")
    );
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:14:05+00:00"
    );
    assert_eq!(events[0].host.as_deref(), Some("DC01.parliament.example"));
    // A record too short to name its user yields nothing; one whose Properties are no
    // array is of no known shape.
    assert_eq!(stats.malformed_records, 0);
    assert_eq!(
        stats.unparsed_auth_lines, 1,
        "the record without Properties"
    );
}

#[test]
fn evtx_and_flat_shapes() {
    use portcullis_core::{Origin, Outcome, Reason};
    let evtx = serde_json::json!({"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {"EventID": 4625, "Computer": "DC01", "TimeCreated": {"#attributes": {"SystemTime": "2017-06-23T08:14:05.000000Z"}}},
        "EventData": {"TargetUserName": "bob", "TargetDomainName": "CORP", "Status": "0xc000006d", "SubStatus": "0xc0000064", "LogonType": 3, "IpAddress": "192.0.2.1", "IpPort": "1"}}});
    let flat = serde_json::json!({"EventID": 4771, "TimeGenerated": "2017-06-23T08:14:06Z", "Computer": "DC01",
        "TargetUserName": "carol", "Status": "0x12", "IpAddress": "::ffff:192.0.2.2"});
    let qualified = serde_json::json!({"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 0}, "#text": 4771}},
        "EventData": {"TargetUserName": "dave", "Status": "0x17"}}});
    let mut out = Vec::new();
    for v in [&evtx, &flat, &qualified] {
        assert!(super::read(v, &Origin::default(), &mut out));
    }
    let got: Vec<_> = out
        .iter()
        .map(|e| (e.user.clone().unwrap(), e.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "CORP\\bob".to_owned(),
                Outcome::Failure(Reason::UnknownAccount)
            ),
            ("carol".to_owned(), Outcome::Failure(Reason::Disabled)),
            ("dave".to_owned(), Outcome::Failure(Reason::Expired)),
        ]
    );
    assert_eq!(out[1].source, Some("192.0.2.2".parse().unwrap()));
    assert!(!super::read(
        &serde_json::json!({"Id": "x"}),
        &Origin::default(),
        &mut out
    ));
}

#[test]
fn anonymous_and_computer_logons_with_a_domain_are_skipped() {
    use portcullis_core::Origin;
    let mut out = Vec::new();
    for user in ["ANONYMOUS LOGON", "WS01$"] {
        let v = serde_json::json!({"EventID": 4624, "LogonType": 3, "TargetUserName": user,
            "TargetDomainName": "NT AUTHORITY", "IpAddress": "192.0.2.9"});
        assert!(super::read(&v, &Origin::default(), &mut out));
    }
    assert!(out.is_empty(), "{out:?}");
}

/// The `.evtx` fast path hands on only [`super::EVTX_DATA_FIELDS`] of a record's event
/// data: with every documented field of each event present and filled, a record cut
/// down to those fields must read as the whole one does.
#[test]
fn the_evtx_data_fields_are_all_the_reader_reads() {
    use portcullis_core::Origin;
    // Values that make an event of every id (a network logon, failure codes, an
    // address and port, names) and differ from field to field.
    let value = |name: &str| match name {
        "LogonType" => serde_json::json!(3),
        "Status" | "SubStatus" => serde_json::json!("0xc000006a"),
        "IpAddress" => serde_json::json!("192.0.2.7"),
        "IpPort" => serde_json::json!("50123"),
        other => serde_json::json!(format!("{other}-value")),
    };
    for id in [4624, 4625, 4771, 4776, 4740] {
        let all: serde_json::Map<_, _> = super::field_names(id)
            .iter()
            .map(|n| ((*n).to_owned(), value(n)))
            .collect();
        let kept: serde_json::Map<_, _> = all
            .iter()
            .filter(|(n, _)| super::EVTX_DATA_FIELDS.contains(&n.as_str()))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let record = |data| {
            serde_json::json!({"Event": {"System": {"EventID": id, "Computer": "DC01",
                "TimeCreated": {"#attributes": {"SystemTime": "2017-06-23T08:14:05.1234567Z"}}},
                "EventData": data}})
        };
        let (mut whole, mut cut) = (Vec::new(), Vec::new());
        assert!(super::read(&record(all), &Origin::default(), &mut whole));
        assert!(super::read(&record(kept), &Origin::default(), &mut cut));
        assert_eq!(whole.len(), 1, "{id}: {whole:?}");
        assert_eq!(whole, cut, "{id}");
    }
}
