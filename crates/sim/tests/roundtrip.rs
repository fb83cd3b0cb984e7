//! Every format the simulator writes reads back through Portcullis' own parsers as
//! exactly the events the simulator says it wrote: field by field (time to the
//! format's precision, service, protocol, address, port, user, account, outcome and
//! reason, second factor, session, host), in order, IPv6 included.

use jiff::tz::TimeZone;
use portcullis_core::{Event, Origin, Outcome, Reason, SecondFactor};
use portcullis_parse::envelope::EnvelopeConfig;
use portcullis_parse::{LogParser, ParseConfig, YearRule};
use portcullis_sim::scenario::{Format, Service};
use portcullis_sim::{Attempt, Options, Scenario, Simulation, generate};

/// Every door, every format, IPv6 clients, second factors and a lockout.
const ALL_DOORS: &str = r#"
name = "all-doors"
start = "2024-06-11T00:00:00+01:00"
hours = 6
time_zone = "Europe/London"

[organisation]
domain = "corp.example"
accounts = 120
weak_share = 0.1
mfa_share = 0.5
ssh_users = 10

[benign]
logins_per_day = 40
doors = { imap = 2, pop3 = 1, smtp = 1, owa = 3, activesync = 3, entra = 3, vpn = 2, rdp = 1, sso = 2, exchange_imap = 2 }
ipv6_share = 0.4
typo_rate = 0.1
stale_devices = 3
deliveries_per_day = 5

[output]
formats = ["mail", "ssh", "exchange", "entra", "windows", "openvpn", "keycloak", "exchange_imap"]
stamp = "rfc3164"
host = "srv01"

[[attack]]
kind = "password_spray"
start = "1h"
duration = "4h"
sources = 60
ipv6_share = 0.4
passwords = 4
unknown_share = 0.2
services = ["imap", "pop3", "smtp", "ssh", "owa", "activesync", "entra", "vpn", "rdp", "sso", "exchange_imap"]

[[attack]]
kind = "password_spray"
start = "30m"
duration = "3h"
sources = 20
passwords = 6
services = ["entra"]

[[attack]]
kind = "brute_force"
start = "2h"
duration = "30m"
sources = 1
attempts = 40
services = ["entra"]
"#;

fn simulate(stamp: &str, seed: u64) -> (Simulation, Vec<Vec<u8>>, Vec<Attempt>) {
    let text = ALL_DOORS.replace("stamp = \"rfc3164\"", &format!("stamp = \"{stamp}\""));
    let sim = Simulation::new(
        Scenario::from_toml(&text).unwrap(),
        Options { seed, scale: 1.0 },
    )
    .unwrap();
    let mut files = vec![Vec::new(); Format::ALL.len()];
    let mut attempts = Vec::new();
    generate(&sim, |slot| {
        for f in Format::ALL {
            files[f.index()].extend_from_slice(slot.bytes(f));
        }
        attempts.extend_from_slice(&slot.attempts);
        Ok(())
    })
    .unwrap();
    (sim, files, attempts)
}

/// Reads one file as `analyze` would: the reader its first bytes call for.
fn parse(bytes: &[u8], zone: &TimeZone) -> Vec<Event> {
    let config = ParseConfig {
        envelope: EnvelopeConfig {
            time_zone: zone.clone(),
            year: YearRule::Fixed(2024),
        },
        format: portcullis_parse::format::detect(&bytes[..bytes.len().min(65_536)]),
        ..Default::default()
    };
    let mut p = LogParser::new(config);
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        p.push(line, &Origin::default(), &mut out);
    }
    p.finish(&mut out);
    assert_eq!(
        p.stats().unparsed_auth_lines,
        0,
        "lines no parser understood"
    );
    assert_eq!(p.stats().malformed_records, 0, "malformed records");
    for e in &mut out {
        e.origin = Origin::default();
    }
    out
}

fn round_trip(stamp: &str, seed: u64) {
    let (sim, files, attempts) = simulate(stamp, seed);
    let zone = TimeZone::get("Europe/London").unwrap();
    for f in Format::ALL {
        let want: Vec<Event> = attempts
            .iter()
            .filter(|a| a.service.format() == f)
            .map(|a| sim.logged_event(a))
            .collect();
        let mut got = parse(&files[f.index()], &zone);
        let mut want = want;
        if matches!(f, Format::Mail | Format::Ssh) {
            // Dovecot and sshd settle an attempt at a later line of its connection.
            let key = |e: &Event| (e.time, e.source, e.port, e.user.clone(), e.session.clone());
            got.sort_by_key(key);
            want.sort_by_key(key);
        }
        assert!(!want.is_empty(), "{f:?}: nothing simulated");
        assert_eq!(
            got.len(),
            want.len(),
            "{f:?} ({stamp}, seed {seed}): event count"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{f:?} ({stamp}, seed {seed})");
        }
    }
    // What the formats have to show, shown.
    let has = |f: &dyn Fn(&Attempt) -> bool| attempts.iter().any(f);
    for door in [
        Service::Owa,
        Service::Activesync,
        Service::Entra,
        Service::Vpn,
        Service::Rdp,
        Service::Sso,
        Service::ExchangeImap,
    ] {
        assert!(
            has(&|a| a.service == door && a.source.is_ipv6()),
            "{door:?}: IPv6"
        );
        assert!(
            has(&|a| a.service == door && a.outcome == Outcome::Success),
            "{door:?}: success"
        );
        assert!(
            has(&|a| a.service == door && a.outcome == Outcome::Failure(Reason::BadPassword)),
            "{door:?}: failure"
        );
    }
    let entra: Vec<Event> = attempts
        .iter()
        .filter(|a| a.service == Service::Entra)
        .map(|a| sim.logged_event(a))
        .collect();
    for (what, ok) in [
        ("50034", Outcome::Failure(Reason::UnknownAccount), None),
        ("50053", Outcome::Failure(Reason::Locked), None),
        ("50126", Outcome::Failure(Reason::BadPassword), None),
        ("0", Outcome::Success, None),
        ("50074", Outcome::Success, Some(SecondFactor::Required)),
    ]
    .map(|(what, outcome, factor)| {
        (what, move |e: &Event| {
            e.outcome == outcome && e.second_factor == factor
        })
    }) {
        assert!(entra.iter().any(ok), "no Entra {what}");
    }
    let keycloak: Vec<Event> = attempts
        .iter()
        .filter(|a| a.service == Service::Sso)
        .map(|a| sim.logged_event(a))
        .collect();
    for (what, outcome) in [
        ("user_not_found", Outcome::Failure(Reason::UnknownAccount)),
        (
            "invalid_user_credentials",
            Outcome::Failure(Reason::BadPassword),
        ),
        ("LOGIN", Outcome::Success),
    ] {
        assert!(
            keycloak.iter().any(|e| e.outcome == outcome),
            "no Keycloak {what}"
        );
    }
    assert!(
        keycloak
            .iter()
            .all(|e| e.session.is_some() == (e.outcome == Outcome::Success)),
        "a Keycloak LOGIN opens a session, a LOGIN_ERROR none"
    );
}

#[test]
fn every_format_reads_back_as_simulated() {
    round_trip("rfc3164", 1);
    round_trip("iso8601", 2);
}
