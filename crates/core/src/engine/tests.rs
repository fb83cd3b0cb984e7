//! The engine on hand-written event lists: a test is events in, verdicts out.

use std::net::IpAddr;

use jiff::Timestamp;

use super::*;
use crate::event::{EventTime, Protocol, Service};
use crate::report::{Input, Report};

const T0: i64 = 1_498_204_800; // 2017-06-23T08:00:00Z

fn ev(t: i64, src: &str, user: &str, outcome: Outcome) -> Event {
    let mut e = Event::new(Service::Dovecot, outcome);
    e.time = Some(EventTime::utc(Timestamp::from_second(T0 + t).unwrap()));
    e.protocol = Some(Protocol::Imap);
    e.source = Some(src.parse().unwrap());
    if !user.is_empty() {
        e.user = Some(user.into());
        e.account = Some(user.to_lowercase());
    }
    e
}

fn fail(t: i64, src: &str, user: &str) -> Event {
    ev(t, src, user, Outcome::Failure(Reason::BadPassword))
}

fn ok(t: i64, src: &str, user: &str) -> Event {
    ev(t, src, user, Outcome::Success)
}

fn run(events: &[Event]) -> Report {
    run_with(EngineConfig::default(), events)
}

fn run_with(config: EngineConfig, events: &[Event]) -> Report {
    let mut e = Engine::new(config);
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.time.map(|t| t.instant));
    for x in &sorted {
        e.observe(x);
    }
    e.finish();
    e.report(Input::default())
}

fn verdict<'a>(r: &'a Report, addr: &str) -> Option<&'a crate::report::SourceReport> {
    r.sources.iter().find(|s| s.address == addr)
}

fn attacker_kind(r: &Report, addr: &str) -> Option<String> {
    verdict(r, addr)
        .filter(|s| s.verdict == "attacker")
        .map(|s| s.attacks.join(","))
}

/// Ordinary users behind one office gateway: logins all day, a typo now and then.
fn office(users: u32, hours: i64) -> Vec<Event> {
    let mut out = Vec::new();
    for u in 0..users {
        let name = format!("user{u}@example.org");
        for h in 0..hours {
            let t = h * 3600 + i64::from(u % 3000);
            if (u + h as u32) % 17 == 0 {
                out.push(fail(t - 8, "198.51.100.1", &name));
            }
            out.push(ok(t, "198.51.100.1", &name));
        }
    }
    out
}

#[test]
fn brute_force_from_one_source() {
    let mut events = office(200, 4);
    events.extend((0..40).map(|i| fail(3600 + i * 20, "203.0.113.9", "admin@example.org")));
    let r = run(&events);
    assert_eq!(
        attacker_kind(&r, "203.0.113.9").as_deref(),
        Some("brute_force")
    );
    assert_eq!(
        r.campaigns
            .iter()
            .filter(|c| c.kind == "brute_force")
            .count(),
        1
    );
    // The gateway carries 200 users and their typos: never an attacker.
    assert_ne!(
        verdict(&r, "198.51.100.1").map(|s| s.verdict.as_str()),
        Some("attacker")
    );
}

#[test]
fn single_source_spray_and_its_success() {
    let mut events = office(100, 6);
    for i in 0..60 {
        let user = format!("user{i}@example.org");
        if i == 42 {
            events.push(ok(7200 + i * 60, "203.0.113.20", &user));
        } else {
            events.push(fail(7200 + i * 60, "203.0.113.20", &user));
        }
    }
    let r = run(&events);
    assert_eq!(
        attacker_kind(&r, "203.0.113.20").as_deref(),
        Some("password_spray")
    );
    let fell: Vec<&str> = r
        .accounts
        .iter()
        .filter(|a| a.status == "compromised")
        .map(|a| a.user.as_str())
        .collect();
    assert_eq!(fell, ["user42@example.org"]);
    assert_eq!(r.campaigns[0].accounts_compromised, ["user42@example.org"]);
}

#[test]
fn success_before_the_attack_is_judged_is_rejudged() {
    // The source's first act is a success; its spray comes later.
    let mut events = vec![ok(0, "203.0.113.30", "victim@example.org")];
    events.extend((0..30).map(|i| {
        fail(
            600 + i * 30,
            "203.0.113.30",
            &format!("other{i}@example.org"),
        )
    }));
    let r = run(&events);
    assert!(attacker_kind(&r, "203.0.113.30").is_some());
    assert!(
        r.accounts
            .iter()
            .any(|a| a.user == "victim@example.org" && a.status == "compromised")
    );
}

#[test]
fn stale_device_and_fumbling_user_stay_benign() {
    let mut events = vec![
        ok(0, "192.0.2.50", "stale@example.org"),
        ok(0, "192.0.2.51", "fumble@example.org"),
    ];
    // A phone with an old password retrying every 5 minutes for 8 hours.
    events.extend((1..=96).map(|i| fail(i * 300, "192.0.2.50", "stale@example.org")));
    // A user who mistypes twice, then gets it right.
    events.extend([
        fail(1000, "192.0.2.51", "fumble@example.org"),
        fail(1010, "192.0.2.51", "fumble@example.org"),
        ok(1020, "192.0.2.51", "fumble@example.org"),
    ]);
    let r = run(&events);
    assert_eq!(attacker_kind(&r, "192.0.2.50"), None);
    assert_eq!(attacker_kind(&r, "192.0.2.51"), None);
    assert!(r.campaigns.is_empty(), "{:?}", r.campaigns);
    // The stale device may be pointed out, with its reason, but only as suspicious.
    if let Some(s) = verdict(&r, "192.0.2.50") {
        assert_eq!(s.verdict, "suspicious");
        assert!(s.evidence.contains("old password"), "{}", s.evidence);
    }
}

/// A distributed spray: 400 sources (10.0.x.7, 10.1.x.7), each trying three of
/// `office`'s accounts twenty minutes apart, from hour 2.
fn botnet() -> Vec<Event> {
    let mut events = Vec::new();
    for s in 0..400u32 {
        let src = format!("10.{}.{}.7", s / 200, s % 200);
        for k in 0..3u32 {
            let t = 7200 + i64::from(s) * 9 + i64::from(k) * 1200;
            events.push(fail(
                t,
                &src,
                &format!("user{}@example.org", (s * 3 + k) % 300),
            ));
        }
    }
    events
}

#[test]
fn distributed_spray_is_one_campaign_of_many_quiet_sources() {
    let mut events = office(300, 8);
    events.extend(botnet());
    let r = run(&events);
    let found = (0..400u32)
        .filter(|s| attacker_kind(&r, &format!("10.{}.{}.7", s / 200, s % 200)).is_some())
        .count();
    assert!(found >= 390, "{found} of 400 sources found");
    let sprays: Vec<_> = r
        .campaigns
        .iter()
        .filter(|c| c.kind == "password_spray")
        .collect();
    assert_eq!(sprays.len(), 1, "{:?}", r.campaigns);
    let c = sprays[0];
    let delay = c.detected_at.parse::<Timestamp>().unwrap().as_second()
        - c.start.parse::<Timestamp>().unwrap().as_second();
    assert!(delay <= 300, "detected after {delay} s");
    assert_ne!(
        verdict(&r, "198.51.100.1").map(|s| s.verdict.as_str()),
        Some("attacker")
    );
}

/// One botnet spraying through three doors (Dovecot, Exchange, sshd), 5 % of its names
/// unknown here: 400 sources, thirteen names each. One member drew four unknown names
/// of its thirteen (about one in three hundred members does): on its own that looks
/// like credential stuffing, but it is the same attack, and the report says one
/// campaign.
#[test]
fn an_unlucky_member_stays_in_its_campaign_across_doors() {
    let mut events = office(300, 8);
    let doors = [Service::Dovecot, Service::Exchange, Service::Sshd];
    for s in 0..400u32 {
        let src = format!("10.{}.{}.9", s / 200, s % 200);
        for k in 0..13u32 {
            let t = 7200 + i64::from(s) * 9 + i64::from(k) * 1200;
            let i = s * 13 + k;
            let unknown = if s == 399 { k < 4 } else { i % 20 == 0 };
            let mut e = if unknown {
                ev(
                    t,
                    &src,
                    &format!("gone{i}@example.org"),
                    Outcome::Failure(Reason::UnknownAccount),
                )
            } else {
                fail(t, &src, &format!("user{}@example.org", i % 300))
            };
            e.service = doors[(k % 3) as usize];
            events.push(e);
        }
    }
    let r = run(&events);
    let kinds: Vec<&str> = r.campaigns.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["password_spray"], "{:?}", r.campaigns);
    assert_eq!(r.campaigns[0].sources, 400);
    assert_eq!(
        attacker_kind(&r, "10.1.199.9").as_deref(),
        Some("password_spray")
    );
    // Judged on its own, it would be reported as a stuffing campaign of its own.
    let alone = run_with(
        EngineConfig {
            member_kind_p: 0.0,
            ..EngineConfig::default()
        },
        &events,
    );
    assert_eq!(
        attacker_kind(&alone, "10.1.199.9").as_deref(),
        Some("credential_stuffing")
    );
    assert_eq!(alone.campaigns.len(), 2, "{:?}", alone.campaigns);
}

/// A spray at two tries a minute, each source fresh: the burst detector sees it
/// within five minutes, where the per-hour CUSUM needs a dozen names.
#[test]
fn a_slow_spray_is_seen_within_five_minutes() {
    let spray = |events: &mut Vec<Event>| {
        // Each source tries two accounts, half a minute apart, and is not seen again.
        for i in 0..60u32 {
            let t = 20_000 + i64::from(i) * 60;
            let src = format!("10.3.{i}.5");
            events.push(fail(t, &src, &format!("user{}@example.org", i * 3)));
            events.push(fail(
                t + 30,
                &src,
                &format!("user{}@example.org", i * 3 + 1),
            ));
        }
    };
    let delay = |r: &Report| {
        r.campaigns
            .iter()
            .find(|c| c.kind == "password_spray")
            .map(|c| {
                c.detected_at.parse::<Timestamp>().unwrap().as_second()
                    - c.start.parse::<Timestamp>().unwrap().as_second()
            })
    };
    let mut events = office(100, 8);
    spray(&mut events);
    let r = run(&events);
    let d = delay(&r).expect("the spray is found");
    assert!(d <= 300, "detected after {d} s");
    // Off, only the per-hour detector: later.
    let off = EngineConfig {
        burst_window_secs: 0,
        ..EngineConfig::default()
    };
    let later = delay(&run_with(off, &events)).expect("found by the per-hour detector");
    assert!(later > 300, "{later} s");
    // The office alone, its typos and all: no campaign.
    assert!(run(&office(100, 8)).campaigns.is_empty());
}

#[test]
fn rotating_ipv6_client_is_caught_by_its_prefix() {
    let mut events = office(50, 3);
    for i in 0..40 {
        events.push(fail(
            3600 + i * 40,
            &format!("2001:db8:aa:bb::{:x}", i + 1),
            &format!("user{i}@example.org"),
        ));
    }
    let r = run(&events);
    assert!(
        r.sources
            .iter()
            .any(|s| s.address == "2001:db8:aa:bb::/64" && s.verdict == "attacker"),
        "{:?}",
        r.sources
    );
    assert!(attacker_kind(&r, "2001:db8:aa:bb::5").is_some());
}

#[test]
fn stuffing_is_told_from_spray() {
    let mut events = Vec::new();
    for i in 0..60 {
        let mut e = fail(i * 10, "203.0.113.40", &format!("leaked{i}@example.org"));
        if i % 3 != 0 {
            e.outcome = Outcome::Failure(Reason::UnknownAccount);
        }
        events.push(e);
    }
    let r = run(&events);
    assert_eq!(
        attacker_kind(&r, "203.0.113.40").as_deref(),
        Some("credential_stuffing")
    );
}

/// A million events from random addresses (IPv4 and IPv6) on random account names:
/// every table stays at its cap.
#[test]
fn memory_stays_bounded_under_random_keys() {
    let config = EngineConfig {
        max_sources: 10_000,
        max_accounts: 10_000,
        max_prefixes: 10_000,
        max_pending: 10_000,
        ..Default::default()
    };
    let mut e = Engine::new(config);
    let mut x: u64 = 0x9e37_79b9;
    for i in 0..1_000_000i64 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let addr = if i % 2 == 0 {
            IpAddr::from(((x >> 32) as u32).to_be_bytes())
        } else {
            IpAddr::from(u128::from(x).rotate_left(77).to_be_bytes())
        };
        let mut ev = fail(i / 100, "192.0.2.1", &format!("u{}", x >> 40));
        ev.source = Some(crate::address::canonical(addr));
        e.observe(&ev);
        let (s, p, a, q) = e.sizes();
        assert!(
            s <= 10_001 && p <= 10_001 && a <= 10_001 && q <= 10_001,
            "{s} {p} {a} {q}"
        );
        // The site-wide detectors' buckets too: the hour's would hold 360,000 of each.
        for c in [&e.site.fast, &e.site.slow] {
            assert!(
                c.seen.len() <= 10_000 && c.sources.len() <= 10_000,
                "{} {}",
                c.seen.len(),
                c.sources.len()
            );
        }
    }
    assert!(e.stats().evicted > 0);
}

#[test]
fn a_full_site_bucket_counts_no_more_but_has_raised_the_alarm() {
    let mut c = site::Cusum::new(60, 2.0, 8.0, 30, 1.0 / 60.0);
    c.roll(T0, false);
    let mut alarm = false;
    for i in 0..1000u32 {
        alarm |= c.add(u64::from(i), IpAddr::from((i + 1).to_be_bytes()), 100, 500);
    }
    assert!(alarm);
    assert_eq!((c.seen.len(), c.sources.len()), (100, 500));
    // A source already counted still counts its second name while there is room.
    let mut c = site::Cusum::new(60, 2.0, 8.0, 30, 1.0 / 60.0);
    let a = IpAddr::from([192, 0, 2, 1]);
    c.add(1, a, 3, 1);
    c.add(2, a, 3, 1);
    c.add(3, IpAddr::from([192, 0, 2, 2]), 3, 1);
    assert_eq!((c.seen.len(), c.sources.len()), (2, 1));
}

#[test]
fn mistyped_user_name_then_the_right_one_is_a_typo() {
    // One user at one address gets the user name wrong three times in a day, each time
    // followed at once by the right one: no suspicion.
    let mut events = Vec::new();
    for i in 0..3 {
        let mut wrong = fail(i * 3600, "192.0.2.100", "jsmtih@example.org");
        wrong.outcome = Outcome::Failure(Reason::UnknownAccount);
        events.push(wrong);
        events.push(ok(i * 3600 + 15, "192.0.2.100", "jsmith@example.org"));
    }
    let r = run(&events);
    assert!(r.sources.is_empty(), "{:?}", r.sources);
}

#[test]
fn first_logins_with_a_typo_from_a_new_place_are_typos() {
    // Three colleagues at a conference hotel, each mistyping once on first login there.
    let mut events = Vec::new();
    for (i, user) in ["a@example.org", "b@example.org", "c@example.org"]
        .iter()
        .enumerate()
    {
        let t = i as i64 * 900;
        events.push(fail(t, "198.51.100.77", user));
        events.push(ok(t + 12, "198.51.100.77", user));
    }
    let r = run(&events);
    assert!(r.sources.is_empty(), "{:?}", r.sources);
}

#[test]
fn events_without_time_or_address_are_counted_not_judged() {
    let mut e = Engine::new(EngineConfig::default());
    let mut named = fail(0, "192.0.2.1", "a@example.org");
    named.source = None;
    named.source_name = Some("client.example.net".into());
    let mut undated = fail(0, "192.0.2.1", "a@example.org");
    undated.time = None;
    e.observe(&named);
    e.observe(&undated);
    e.observe(&fail(1, "192.0.2.1", "a@example.org"));
    assert_eq!(e.stats().unjudged, 2);
    assert_eq!(e.stats().events, 1);
}

#[test]
fn probes_join_a_running_campaign_but_a_hammer_is_brute_force() {
    let mut events = office(300, 8);
    events.extend(botnet());
    // Fifty sources that each try one name that does not exist, during the campaign.
    for s in 0..50i64 {
        let mut e = fail(
            9000 + s * 60,
            &format!("10.9.{s}.9"),
            &format!("admin{s}@example.org"),
        );
        e.outcome = Outcome::Failure(Reason::UnknownAccount);
        events.push(e);
    }
    // One that starts the same way and then hammers that name.
    for i in 0..40 {
        let mut e = fail(9100 + i * 10, "10.8.8.8", "root@example.org");
        e.outcome = Outcome::Failure(Reason::UnknownAccount);
        events.push(e);
    }
    let r = run(&events);
    let probes = (0..50)
        .filter(|s| attacker_kind(&r, &format!("10.9.{s}.9")).is_some())
        .count();
    assert_eq!(probes, 50);
    assert_eq!(
        attacker_kind(&r, "10.8.8.8").as_deref(),
        Some("brute_force")
    );
    assert_ne!(
        verdict(&r, "198.51.100.1").map(|s| s.verdict.as_str()),
        Some("attacker")
    );
}

#[test]
fn one_try_on_a_sprayed_account_is_named_but_a_targeted_accounts_guessers_are_not() {
    let mut events = office(300, 8);
    events.extend(botnet());
    // Thirty sources that never log in, each trying one real account that the botnet
    // has sprayed (user0..user299 are each tried by four of its sources), as its last
    // round ends and the campaign is still open.
    let probes: Vec<String> = (0..30).map(|s| format!("10.7.{s}.9")).collect();
    for (s, src) in probes.iter().enumerate() {
        let t = 13_000 + s as i64 * 20;
        events.push(fail(t, src, &format!("user{}@example.org", s * 7 + 1)));
    }
    // Twenty guessers at user5 alone, after four of the botnet's sources have tried it:
    // a targeted attack beside the spray, whose guessers the spray must not take in.
    let guessers: Vec<String> = (0..20).map(|s| format!("10.6.{s}.9")).collect();
    for (s, src) in guessers.iter().enumerate() {
        events.push(fail(12_400 + s as i64 * 30, src, "user5@example.org"));
    }
    // A source whose guess worked: in, as a stranger to the account, then on to a name
    // that does not exist here. And a user who got their password wrong, then right
    // long after, on an account the botnet sprayed: not an attacker.
    events.push(ok(11_000, "10.5.5.5", "user20@example.org"));
    let mut next = fail(12_000, "10.5.5.5", "nosuch20@example.org");
    next.outcome = Outcome::Failure(Reason::UnknownAccount);
    events.push(next);
    events.push(fail(11_000, "10.5.6.6", "user21@example.org"));
    events.push(ok(12_000, "10.5.6.6", "user21@example.org"));
    let named = |r: &Report| {
        probes
            .iter()
            .filter(|p| attacker_kind(r, p).is_some())
            .count()
    };
    let r = run(&events);
    assert_eq!(named(&r), 30);
    for g in &guessers {
        assert_eq!(attacker_kind(&r, g).as_deref(), Some("targeted"), "{g}");
    }
    let spray = r
        .campaigns
        .iter()
        .find(|c| c.kind == "password_spray")
        .expect("the spray");
    // Moved, not counted twice.
    let spraying = r
        .sources
        .iter()
        .filter(|s| s.verdict == "attacker" && s.attacks.iter().any(|a| a == "password_spray"))
        .count();
    assert_eq!(spray.sources, spraying as u64);
    assert!(attacker_kind(&r, "10.5.5.5").is_some());
    assert!(
        r.accounts
            .iter()
            .any(|a| a.user == "user20@example.org" && a.status == "compromised")
    );
    assert_ne!(
        verdict(&r, "10.5.6.6").map(|s| s.verdict.as_str()),
        Some("attacker")
    );
    assert_ne!(
        verdict(&r, "198.51.100.1").map(|s| s.verdict.as_str()),
        Some("attacker")
    );
    // Off: none of the one-try sources is named.
    let config = EngineConfig {
        probe_account_sources: 0,
        ..EngineConfig::default()
    };
    assert_eq!(named(&run_with(config, &events)), 0);
}

/// `office` and `botnet`, with two bot logins that work, in time order.
fn attack_day() -> Vec<Event> {
    let mut events = office(300, 8);
    events.extend(botnet());
    events.push(ok(7200 + 50 * 9 + 1300, "10.0.50.7", "user7@example.org"));
    events.push(ok(7200 + 120 * 9 + 2500, "10.0.120.7", "user9@example.org"));
    // A single-source spray that later logs in.
    for i in 0..40 {
        events.push(fail(
            14_400 + i * 20,
            "203.0.113.20",
            &format!("user{i}@example.org"),
        ));
    }
    events.push(ok(15_400, "203.0.113.20", "user250@example.org"));
    events.sort_by_key(|e| e.time.map(|t| t.instant));
    events
}

fn report_of(mut e: Engine) -> Report {
    e.finish();
    e.report(Input::default())
}

#[test]
fn findings_name_every_attacker_and_fallen_account_as_judged() {
    let events = attack_day();
    let mut quiet = Engine::new(EngineConfig::default());
    let mut live = Engine::new(EngineConfig::default());
    live.enable_findings();
    let mut findings = Vec::new();
    for x in &events {
        quiet.observe(x);
        live.observe(x);
        findings.extend(live.take_findings());
    }
    assert_eq!(
        quiet.take_findings().count(),
        0,
        "findings are off by default"
    );
    // Judged while running, not only at the end.
    let before_finish = findings.len();
    let last = events
        .last()
        .and_then(|e| e.time)
        .unwrap()
        .instant
        .as_second();
    live.advance(last + 3600);
    findings.extend(live.take_findings());
    let r = report_of(live);

    let attackers: Vec<String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Attacker { source, .. } => Some(source.to_string()),
            _ => None,
        })
        .collect();
    let mut distinct = attackers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), attackers.len(), "one finding per attacker");
    assert!(
        attackers.len() >= 390,
        "{} attackers found live",
        attackers.len()
    );
    assert!(before_finish >= 390);
    // Every live attacker is an attacker in the report.
    for a in &attackers {
        assert!(
            attacker_kind(&r, a).is_some(),
            "{a} found live but not in the report"
        );
    }
    assert!(attackers.iter().any(|a| a == "203.0.113.20"));
    let mut fell: Vec<&str> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Compromised { account, .. } => Some(account.as_str()),
            _ => None,
        })
        .collect();
    fell.sort();
    let mut reported: Vec<&str> = r
        .accounts
        .iter()
        .filter(|a| a.status == "compromised")
        .map(|a| a.user.as_str())
        .collect();
    reported.sort();
    assert_eq!(
        fell,
        [
            "user250@example.org",
            "user7@example.org",
            "user9@example.org"
        ]
    );
    assert_eq!(fell, reported);
    let distributed: Vec<_> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Campaign {
                distributed: true,
                start,
                detected_at,
                ..
            } => Some((*start, *detected_at)),
            _ => None,
        })
        .collect();
    assert_eq!(distributed.len(), 1, "{findings:?}");
    assert!(distributed[0].1 - T0 <= 7200 + 300, "{distributed:?}");
    // The gateway is never judged.
    assert!(!attackers.iter().any(|a| a == "198.51.100.1"));
}

#[test]
fn a_quiet_source_is_judged_when_the_watermark_moves_on() {
    let mut e = Engine::new(EngineConfig::default());
    e.enable_findings();
    for i in 0..30 {
        e.observe(&fail(i, "192.0.2.66", "victim@example.org"));
    }
    // The last failures are still in their typo window: no verdict yet.
    let now = e.now().unwrap();
    assert_eq!(now, T0 + 29);
    let early: Vec<Finding> = e.take_findings().collect();
    let window = EngineConfig::default().typo_window_secs;
    e.advance(now + window + 1);
    let late: Vec<Finding> = e.take_findings().collect();
    let judged = |fs: &[Finding]| {
        fs.iter().any(|f| {
            matches!(f, Finding::Attacker { source, kind: Kind::BruteForce, .. }
                if source.to_string() == "192.0.2.66")
        })
    };
    assert!(
        judged(&early) || judged(&late),
        "early {early:?}, late {late:?}"
    );
    assert_eq!(
        e.verdict(&"192.0.2.66".parse().unwrap()),
        Some(Kind::BruteForce)
    );
    // Time never goes back.
    e.advance(T0);
    assert_eq!(e.now(), Some(now + window + 1));
}

#[test]
fn a_restored_snapshot_carries_on_as_if_never_stopped() {
    let events = attack_day();
    let mut whole = Engine::new(EngineConfig::default());
    for x in &events {
        whole.observe(x);
    }
    let expected = report_of(whole);
    assert!(expected.campaigns.len() >= 2, "{:#?}", expected.campaigns);
    for cut in [events.len() / 5, events.len() / 2, events.len() * 9 / 10] {
        let mut first = Engine::new(EngineConfig::default());
        for x in &events[..cut] {
            first.observe(x);
        }
        let bytes = first.snapshot();
        drop(first);
        let mut second = Engine::restore(EngineConfig::default(), &bytes).unwrap();
        for x in &events[cut..] {
            second.observe(x);
        }
        let got = report_of(second);
        assert_eq!(got, expected, "cut at event {cut}");
    }
}

#[test]
fn damaged_snapshots_are_refused_without_panic() {
    let mut e = Engine::new(EngineConfig::default());
    let day = attack_day();
    for x in &day[..day.len() * 2 / 3] {
        e.observe(x);
    }
    let bytes = e.snapshot();
    assert!(Engine::restore(EngineConfig::default(), &bytes).is_ok());
    assert_eq!(
        Engine::restore(EngineConfig::default(), b"not a snapshot").unwrap_err(),
        SnapshotError::NotASnapshot
    );
    let mut other = bytes.clone();
    other[4] = 9;
    assert_eq!(
        Engine::restore(EngineConfig::default(), &other).unwrap_err(),
        SnapshotError::Version(9)
    );
    // Every truncation fails cleanly.
    let step = (bytes.len() / 300).max(1);
    for len in (0..bytes.len()).step_by(step) {
        assert!(Engine::restore(EngineConfig::default(), &bytes[..len]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Engine::restore(EngineConfig::default(), &longer).is_err());
    // Flipped bytes: an error or an engine, never a panic.
    let mut x = 0x9e37_79b9_u64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bad = bytes.clone();
        let i = 8 + (x as usize) % (bytes.len() - 8);
        bad[i] ^= (x >> 32) as u8 | 1;
        if let Ok(mut e) = Engine::restore(EngineConfig::default(), &bad) {
            e.observe(&fail(100_000, "192.0.2.1", "someone@example.org"));
        }
    }
}

/// Brute forcers one after another, each a campaign of its own, and single-source
/// sprays among them: with room for only 20 campaigns the engine keeps 20 or fewer, and
/// reports every attack exactly as an engine with room for all of them does.
#[test]
fn campaigns_stay_within_their_cap_and_are_all_still_reported() {
    let mut events = Vec::new();
    for i in 0..300i64 {
        let src = format!("198.51.{}.{}", i / 200, i % 200 + 1);
        let t = i * 600;
        if i % 7 == 0 {
            for k in 0..12 {
                events.push(fail(t + k * 20, &src, &format!("user{k}")));
            }
        } else {
            for k in 0..15 {
                events.push(fail(t + k * 3, &src, "root"));
            }
        }
    }
    // The first attackers come back after their campaigns were retired.
    for i in 0..5i64 {
        let src = format!("198.51.0.{}", i + 1);
        for k in 0..4 {
            events.push(fail(300 * 600 + i * 60 + k, &src, &format!("late{k}")));
        }
    }
    events.extend(office(40, 60));
    let capped = EngineConfig {
        max_campaigns: 20,
        ..Default::default()
    };
    let mut e = Engine::new(capped);
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.time.map(|t| t.instant));
    let mut most = 0;
    for x in &sorted {
        e.observe(x);
        most = most.max(e.campaigns.len());
    }
    e.finish();
    assert!(most <= 20, "{most} campaigns kept");
    assert!(e.stats().evicted > 250, "{:?}", e.stats());
    // An archive keeps no names: its members' own are what it reports.
    assert!(
        e.campaigns
            .iter()
            .filter(|c| c.archive)
            .all(|c| c.names_tried.is_empty())
    );
    let capped = e.report(Input::default());
    let whole = run(&events);
    assert_eq!(whole.campaigns.len(), 300);
    assert_eq!(capped.campaigns, whole.campaigns);
    assert_eq!(capped.sources, whole.sources);
    assert_eq!(capped.accounts, whole.accounts);
}

/// An IIS log (UTC) that starts a few seconds before the site's syslog (local time):
/// the report speaks the offset most events came with, not the first one's.
#[test]
fn the_report_shows_times_in_the_offset_most_events_have() {
    let local = jiff::tz::Offset::from_hours(1).unwrap();
    let mut events: Vec<Event> = (0..3).map(|i| fail(i, "192.0.2.9", "a")).collect();
    for i in 0..20 {
        let mut e = fail(10 + i * 4, "203.0.113.7", "root");
        e.time = e.time.map(|t| EventTime {
            instant: t.instant,
            offset: local,
        });
        events.push(e);
    }
    let r = run(&events);
    assert_eq!(
        r.input.first_event.as_deref(),
        Some("2017-06-23T09:00:00+01:00")
    );
    assert!(r.sources.iter().all(|s| {
        s.first_seen
            .as_deref()
            .is_some_and(|t| t.ends_with("+01:00"))
    }));
    // The first event's offset when it is the most common.
    let utc: Vec<Event> = (0..5).map(|i| fail(i, "192.0.2.9", "a")).collect();
    assert_eq!(
        run(&utc).input.first_event.as_deref(),
        Some("2017-06-23T08:00:00+00:00")
    );
}
