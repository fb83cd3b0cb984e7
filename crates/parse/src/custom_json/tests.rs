use super::*;
use crate::testing::{config, read, rows};
use crate::{InputFormat, ParseConfig};
use std::sync::Arc;

fn spec() -> CustomJsonSpec {
    CustomJsonSpec {
        name: "vpn-portal".into(),
        when: [("app".to_owned(), "portal".to_owned())].into(),
        time: Some("ts".into()),
        time_format: Some("unix".into()),
        source: Some("client.ip".into()),
        port: Some("client.port".into()),
        user: Some("login".into()),
        session: None,
        host: Some("node".into()),
        outcome: "result".into(),
        outcomes: [
            ("ok".to_owned(), "success".to_owned()),
            ("bad_pw".to_owned(), "bad_password".to_owned()),
            ("no_user".to_owned(), "unknown_account".to_owned()),
        ]
        .into(),
        protocol: Some("http".into()),
    }
}

#[test]
fn a_mapping_reads_its_records_and_only_those() {
    let custom = compile(&[spec()]).unwrap();
    let text = concat!(
        "{\"app\":\"portal\",\"ts\":1498205645,\"client\":{\"ip\":\"203.0.113.7\",\"port\":443},\"login\":\"bob\",\"result\":\"bad_pw\",\"node\":\"vpn1\"}\n",
        "{\"app\":\"portal\",\"ts\":1498205646,\"client\":{\"ip\":\"2001:db8::1\"},\"login\":\"zoë\",\"result\":\"ok\"}\n",
        "{\"app\":\"portal\",\"ts\":1498205647,\"client\":{\"ip\":\"203.0.113.7\"},\"login\":\"x\",\"result\":\"logout\"}\n",
        "{\"app\":\"portal\",\"ts\":\"soon\",\"client\":{\"ip\":\"203.0.113.7\"},\"login\":\"x\",\"result\":\"ok\"}\n",
        "{\"app\":\"other\",\"ts\":1498205648,\"client\":{\"ip\":\"203.0.113.7\"},\"login\":\"x\",\"result\":\"ok\"}\n",
    );
    let config = ParseConfig {
        json_formats: Arc::from(custom),
        ..config(InputFormat::Json)
    };
    let (events, stats) = read(text, config);
    assert_eq!(
        rows(&events),
        vec![
            (1, "bob".into(), "203.0.113.7".into(), "bad_password".into()),
            (2, "zoë".into(), "2001:db8::1".into(), "success".into()),
        ]
    );
    assert_eq!(events[0].service, portcullis_core::Service::Custom);
    assert_eq!(events[0].port, Some(443));
    assert_eq!(events[0].host.as_deref(), Some("vpn1"));
    assert_eq!(
        events[0].time.unwrap().to_string(),
        "2017-06-23T08:14:05+00:00"
    );
    assert_eq!(stats.malformed_records, 1, "the unreadable time");
    assert_eq!(stats.unparsed_auth_lines, 1, "the record no mapping takes");
}

#[test]
fn errors_name_the_mapping_and_the_key() {
    let cases: Vec<(CustomJsonSpec, &str)> = vec![
        (
            CustomJsonSpec {
                outcomes: [("x".to_owned(), "bad_pw".to_owned())].into(),
                ..spec()
            },
            "parse.json_formats \"vpn-portal\": outcomes: \"x\" = \"bad_pw\" is neither success nor a failure reason",
        ),
        (
            CustomJsonSpec {
                time_format: Some("iso".into()),
                ..spec()
            },
            "parse.json_formats \"vpn-portal\": time_format = \"iso\"",
        ),
        (
            CustomJsonSpec {
                source: Some("client..ip".into()),
                ..spec()
            },
            "parse.json_formats \"vpn-portal\": source = \"client..ip\" is not a field path",
        ),
        (
            CustomJsonSpec {
                source: None,
                user: None,
                ..spec()
            },
            "needs source or user",
        ),
        (
            CustomJsonSpec {
                outcomes: BTreeMap::new(),
                ..spec()
            },
            "outcomes must map at least one value",
        ),
        (
            CustomJsonSpec {
                protocol: Some("gopher".into()),
                ..spec()
            },
            "protocol = \"gopher\"",
        ),
        (
            CustomJsonSpec {
                name: " ".into(),
                ..spec()
            },
            "parse.json_formats [0]: name must not be empty",
        ),
    ];
    for (s, want) in cases {
        let e = compile(&[s]).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} does not contain {want:?}");
    }
    let e = compile(&[spec(), spec()]).unwrap_err();
    assert_eq!(e.rule, "\"vpn-portal\"");
    assert!(e.message.contains("same name"));
}

#[test]
fn specs_deserialise_strictly() {
    let s: CustomJsonSpec =
        serde_json::from_str(r#"{"name":"n","user":"u","outcome":"o","outcomes":{"1":"success"}}"#)
            .unwrap();
    assert_eq!(s.name, "n");
    assert!(
        serde_json::from_str::<CustomJsonSpec>(
            r#"{"name":"n","user":"u","outcome":"o","outcomes":{},"typo":1}"#
        )
        .is_err()
    );
}
