//! The simulator's truth matches its logs, and a seed fixes every byte.
//!
//! The logs are read back with Portcullis' own parsers: every event must come from a
//! source the truth knows, with the role it gives, and per source the failures and
//! successes must be exactly the truth's counts.

use std::collections::HashMap;
use std::net::IpAddr;

use jiff::tz::TimeZone;
use portcullis_core::Origin;
use portcullis_parse::envelope::EnvelopeConfig;
use portcullis_parse::{LogParser, ParseConfig, YearRule};
use portcullis_sim::scenario::Format;
use portcullis_sim::{Options, Scenario, Simulation, Truth, generate};

/// Generates a simulation into memory: bytes per format and the truth.
fn run(scenario: &str, seed: u64) -> (HashMap<Format, Vec<u8>>, Truth) {
    let sim = Simulation::new(
        Scenario::built_in(scenario).unwrap(),
        Options { seed, scale: 1.0 },
    )
    .unwrap();
    let mut files: HashMap<Format, Vec<u8>> = HashMap::new();
    let formats = sim.scenario().output.formats.clone();
    let builder = generate(&sim, |slot| {
        for f in &formats {
            files
                .entry(*f)
                .or_default()
                .extend_from_slice(slot.bytes(*f));
        }
        Ok(())
    })
    .unwrap();
    let truth = builder.finish(
        &sim,
        formats.iter().map(|f| f.file_name().to_owned()).collect(),
    );
    (files, truth)
}

fn check_against_parsers(scenario: &str, seed: u64) {
    let (files, truth) = run(scenario, seed);
    let s = Scenario::built_in(scenario).unwrap();
    let zone = TimeZone::get(&s.time_zone).unwrap();
    let year = s.start.to_zoned(zone.clone()).year();
    let mut seen: HashMap<IpAddr, (u64, u64)> = HashMap::new();
    let mut events = 0u64;
    let mut lines = 0u64;
    for (format, bytes) in &files {
        let config = ParseConfig {
            envelope: EnvelopeConfig {
                time_zone: zone.clone(),
                year: YearRule::Fixed(year),
            },
            format: portcullis_parse::format::detect(&bytes[..bytes.len().min(65_536)]),
            ..Default::default()
        };
        let mut p = LogParser::new(config);
        let mut out = Vec::new();
        let origin = Origin {
            file: Some(format.file_name().into()),
            line: 0,
            offset: 0,
        };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            p.push(line, &origin, &mut out);
        }
        p.finish(&mut out);
        assert_eq!(
            p.stats().unparsed_auth_lines,
            0,
            "{scenario}: lines the parsers do not understand"
        );
        lines += p.stats().lines;
        for e in &out {
            let src = e
                .source
                .unwrap_or_else(|| panic!("event without a source: {e:?}"));
            let c = seen.entry(src).or_default();
            if e.outcome.is_failure() {
                c.0 += u64::from(e.attempts);
            } else {
                c.1 += u64::from(e.attempts);
            }
            events += u64::from(e.attempts);
            assert!(e.time.is_some(), "event without a time: {e:?}");
        }
    }
    assert_eq!(lines, truth.lines, "{scenario}: line count");
    assert_eq!(
        events, truth.attempts,
        "{scenario}: every attempt is exactly one event"
    );
    let by_addr: HashMap<IpAddr, &portcullis_sim::truth::SourceTruth> = truth
        .sources
        .iter()
        .map(|s| (s.address.parse().unwrap(), s))
        .collect();
    for (addr, (failures, successes)) in &seen {
        let t = by_addr
            .get(addr)
            .unwrap_or_else(|| panic!("{scenario}: {addr} is in the logs but not in the truth"));
        assert_eq!(
            (t.failures, t.successes),
            (*failures, *successes),
            "{scenario}: counts of {addr} ({})",
            t.kind
        );
    }
    assert_eq!(
        seen.len(),
        truth.sources.len(),
        "{scenario}: sources in the truth but not in the logs"
    );
    // Each campaign logs in once into each account it breaks (two campaigns may break
    // the same account).
    let attacker_successes: u64 = truth
        .sources
        .iter()
        .filter(|s| s.role == "attacker")
        .map(|s| s.successes)
        .sum();
    let falls: u64 = truth
        .campaigns
        .iter()
        .map(|c| c.accounts_compromised.len() as u64)
        .sum();
    assert_eq!(
        attacker_successes, falls,
        "{scenario}: one attacker login per account a campaign breaks"
    );
    let mut union: Vec<&String> = truth
        .campaigns
        .iter()
        .flat_map(|c| &c.accounts_compromised)
        .collect();
    union.sort();
    union.dedup();
    assert_eq!(union.len(), truth.compromised_accounts.len());
}

#[test]
fn truth_matches_the_logs_small_office() {
    check_against_parsers("small-office", 3);
}

#[test]
fn truth_matches_the_logs_ssh_exposed() {
    check_against_parsers("ssh-exposed", 4);
}

#[test]
fn truth_matches_the_logs_slow_vip() {
    check_against_parsers("slow-vip", 5);
}

#[test]
fn truth_matches_the_logs_exchange_site() {
    check_against_parsers("exchange-site", 1);
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let (a, ta) = run("small-office", 11);
    let (b, tb) = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| run("small-office", 11));
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    let (c, _) = run("small-office", 12);
    assert_ne!(
        a[&Format::Mail],
        c[&Format::Mail],
        "another seed, other traffic"
    );
}

#[test]
fn scenario_shapes_come_out() {
    let (_, t) = run("small-office", 3);
    let kinds: Vec<&str> = t.campaigns.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "password_spray",
            "password_spray",
            "brute_force",
            "credential_stuffing",
            "targeted"
        ]
    );
    // The distributed spray rotates IPv6 addresses inside /64s.
    let rotating = t.sources.iter().filter(|s| s.prefix.is_some()).count();
    assert!(rotating > 50, "{rotating} rotating addresses");
    // Every benign kind is represented.
    for kind in [
        "office_gateway",
        "vpn_gateway",
        "cgnat",
        "home",
        "stale_device",
    ] {
        assert!(
            t.sources
                .iter()
                .any(|s| s.role == "benign" && s.kind == kind),
            "no {kind} source"
        );
    }
    // The stuffing burst mostly tries names that do not exist.
    let stuffing = &t.campaigns[3];
    assert_eq!(stuffing.attempts, stuffing.accounts_targeted);
}
