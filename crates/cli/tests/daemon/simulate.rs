//! `portcullis simulate --live` against a running daemon, scored against the
//! scenario's ground truth: the attackers are banned, no legitimate source is.

use std::net::IpAddr;

use serde_json::Value;

use super::common::daemon::{DaemonDir, wait_for};
use super::common::run;

/// The built-in scenario: 300 accounts over 12 hours, every attack kind, about 11,000
/// attempts, which `--live` sends in a few seconds stamped as they go.
const SCENARIO: &str = "small-office";
const SEED: &str = "3";

/// Whether the network `net` ("a/len") holds `addr`.
fn covers(net: &str, addr: IpAddr) -> bool {
    let (base, len) = net.split_once('/').expect("a network");
    let base: IpAddr = base.parse().expect("a network address");
    let len: u32 = len.parse().expect("a prefix length");
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((b, width), (a, width_a)) = (bits(base), bits(addr));
    if width != width_a {
        return false;
    }
    let shift = width - len.min(width);
    shift == width || (a >> shift) == (b >> shift)
}

#[test]
fn simulated_live_traffic_gets_the_attackers_banned_and_no_legitimate_source() {
    let dir = DaemonDir::new();
    dir.config(super::FAST_JUDGEMENT);
    let d = dir.start();

    // The ground truth of the same scenario and seed.
    let truth_dir = dir.path("truth");
    let out = run(&[
        "simulate",
        "--scenario",
        SCENARIO,
        "--seed",
        SEED,
        "-q",
        "--out",
        truth_dir.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: Value =
        serde_json::from_slice(&std::fs::read(truth_dir.join("truth.json")).expect("truth"))
            .expect("truth.json");
    let attempts = truth["attempts"].as_u64().expect("attempts");

    let url = format!("{}/v1/events", d.url);
    let token = dir.path("token");
    let out = run(&[
        "simulate",
        "--scenario",
        SCENARIO,
        "--seed",
        SEED,
        "--live",
        &url,
        "--token-file",
        token.to_str().expect("utf-8"),
        "--rate",
        "5000",
        "--max-events",
        "20000",
        "--max-time",
        "40s",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("sent {attempts} events")),
        "the whole scenario was sent: {said}"
    );
    let sent = jiff::Timestamp::now();
    wait_for("every event observed", super::SETTLE, || {
        (d.status()["engine_events"] == attempts).then_some(())
    });
    super::wait_until_judged(&d, sent);

    let (_, v) = d.get("/v1/bans");
    let bans: Vec<String> = v["bans"]
        .as_array()
        .expect("bans")
        .iter()
        .map(|b| b["net"].as_str().expect("net").to_string())
        .collect();
    let banned = |addr: &str| {
        let a: IpAddr = addr.parse().expect("an address");
        bans.iter().any(|n| covers(n, a))
    };
    let sources = truth["sources"].as_array().expect("sources");
    let campaigns = truth["campaigns"].as_array().expect("campaigns");

    // No legitimate source is banned: homes, phones behind carriers' CGNAT, the office
    // and VPN gateways, travellers, devices with a stale password.
    let wrongly: Vec<&Value> = sources
        .iter()
        .filter(|s| s["role"] == "benign" && banned(s["address"].as_str().unwrap()))
        .collect();
    assert!(wrongly.is_empty(), "legitimate sources banned: {wrongly:?}");
    let gateways = sources
        .iter()
        .filter(|s| s["kind"] == "office_gateway" || s["kind"] == "cgnat")
        .count();
    assert!(
        gateways > 0,
        "the scenario has shared gateways to get wrong"
    );

    // Every source of a single-source campaign (the brute forcer, the lone sprayer) is
    // banned.
    let lone: Vec<&str> = campaigns
        .iter()
        .filter(|c| c["sources"] == 1)
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    let kinds: Vec<&Value> = campaigns
        .iter()
        .filter(|c| c["sources"] == 1)
        .map(|c| &c["kind"])
        .collect();
    assert!(
        kinds.contains(&&Value::from("brute_force"))
            && kinds.contains(&&Value::from("password_spray")),
        "{kinds:?}"
    );
    for s in sources
        .iter()
        .filter(|s| lone.iter().any(|c| s["campaign"] == *c))
    {
        assert!(banned(s["address"].as_str().unwrap()), "not banned: {s}");
    }
    // And most of the distributed campaigns' sources.
    let attackers: Vec<&Value> = sources.iter().filter(|s| s["role"] == "attacker").collect();
    let caught = attackers
        .iter()
        .filter(|s| banned(s["address"].as_str().unwrap()))
        .count();
    assert!(
        caught * 10 >= attackers.len() * 8,
        "only {caught} of {} attacking sources banned",
        attackers.len()
    );

    // Every account locked is one the attackers got into.
    let fell = truth["compromised_accounts"]
        .as_array()
        .expect("compromised");
    let (_, v) = d.get("/v1/locks");
    let locks = v["locks"].as_array().expect("locks");
    assert!(!locks.is_empty(), "no account was locked");
    for l in locks {
        assert!(
            fell.contains(&l["account"]),
            "a legitimate user locked: {l}"
        );
    }
}

#[test]
fn covers_matches_addresses_inside_networks_only() {
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(covers("203.0.113.0/24", a("203.0.113.99")));
    assert!(!covers("203.0.113.0/24", a("203.0.114.1")));
    assert!(covers("203.0.113.7/32", a("203.0.113.7")));
    assert!(!covers("203.0.113.7/32", a("203.0.113.8")));
    assert!(covers("2001:db8:1:2::/64", a("2001:db8:1:2:ffff::1")));
    assert!(!covers("2001:db8:1:2::/64", a("2001:db8:1:3::1")));
    assert!(!covers("0.0.0.0/0", a("2001:db8::1")));
    assert!(covers("0.0.0.0/0", a("192.0.2.1")));
}
