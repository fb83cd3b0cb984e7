//! Decisions against a real store in a temporary directory: escalation, network bans,
//! the allowlist, findings, the cap, operators' bans, and lifting what is not there.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ipnet::IpNet;
use portcullis_core::engine::{Finding, Kind};
use portcullis_store::Store;

use super::{BanOutcome, Decisions, Effect};
use crate::config::{BanConfig, LockConfig};
use crate::metrics::Metrics;

/// A store in its own directory, and the decisions over it.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    d: Decisions,
}

fn fixture(bans: BanConfig, locks: LockConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let d = Decisions::load(bans, locks, Arc::clone(&store), Arc::clone(&metrics)).unwrap();
    Fixture {
        _dir: dir,
        store,
        metrics,
        d,
    }
}

/// Bans of 100 s, four times longer each time, at most 1,000 s; no network bans.
fn short_bans() -> BanConfig {
    BanConfig {
        duration: Duration::from_secs(100),
        escalation: 4.0,
        max_duration: Duration::from_secs(1000),
        prefix_members: 0,
        ..BanConfig::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn attacker(source: &str) -> Finding {
    Finding::Attacker {
        source: ip(source),
        kind: Kind::PasswordSpray,
        at: 0,
        evidence: "12 accounts".into(),
    }
}

fn banned(d: &Decisions) -> Vec<String> {
    let mut v: Vec<String> = d.bans().iter().map(|b| b.net.to_string()).collect();
    v.sort();
    v
}

fn load(m: &std::sync::atomic::AtomicU64) -> u64 {
    m.load(Ordering::Relaxed)
}

#[test]
fn each_later_ban_of_a_network_is_longer_up_to_the_cap() {
    let mut f = fixture(short_bans(), LockConfig::default());
    let a = ip("203.0.113.7");
    f.d.on_finding(&attacker("203.0.113.7"), 1_000).unwrap();
    let mut now = 1_000;
    let mut lengths = Vec::new();
    for _ in 0..4 {
        let b = f.d.ban_of(a).cloned().expect("banned");
        assert!(!b.manual);
        assert_eq!(b.kind.as_deref(), Some("password_spray"));
        lengths.push((b.offences, b.until - b.since));
        // While the ban holds, failing again changes nothing.
        f.d.repeat_offender(a, Kind::PasswordSpray, b.until - 1)
            .unwrap();
        assert_eq!(f.d.ban_of(a), Some(&b));
        now = b.until;
        f.d.expire(now).unwrap();
        assert_eq!(f.d.ban_of(a), None, "expired at its end");
        f.d.repeat_offender(a, Kind::PasswordSpray, now).unwrap();
    }
    assert_eq!(lengths, [(1, 100), (2, 400), (3, 1000), (4, 1000)]);
    let effects = f.d.take_effects();
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Expired(_)))
            .count(),
        4
    );
    assert_eq!(load(&f.metrics.bans), 5);
    assert_eq!(load(&f.metrics.unbans), 4);
    // The history is in the store: a restart escalates from where it was.
    f.d.expire(now + 1000).unwrap();
    let mut d2 = Decisions::load(
        short_bans(),
        LockConfig::default(),
        Arc::clone(&f.store),
        Arc::clone(&f.metrics),
    )
    .unwrap();
    d2.repeat_offender(a, Kind::BruteForce, now + 1000).unwrap();
    assert_eq!(d2.ban_of(a).unwrap().offences, 6);
}

#[test]
fn a_ban_that_ran_out_before_it_was_expired_still_escalates() {
    let mut f = fixture(short_bans(), LockConfig::default());
    let a = ip("203.0.113.7");
    f.d.on_finding(&attacker("203.0.113.7"), 0).unwrap();
    // The source fails again after its ban ended but before the once-a-second
    // expiry ran: the new ban is its second offence, and the third comes after it.
    f.d.repeat_offender(a, Kind::PasswordSpray, 150).unwrap();
    let second = f.d.ban_of(a).cloned().unwrap();
    assert_eq!((second.offences, second.until - second.since), (2, 400));
    f.d.repeat_offender(a, Kind::PasswordSpray, second.until + 5)
        .unwrap();
    let third = f.d.ban_of(a).cloned().unwrap();
    assert_eq!((third.offences, third.until - third.since), (3, 1000));
    assert_eq!(f.d.bans().len(), 1);
}

#[test]
fn enough_banned_addresses_of_a_slash_24_ban_the_network() {
    let mut f = fixture(
        BanConfig {
            prefix_members: 3,
            ..short_bans()
        },
        LockConfig::default(),
    );
    f.d.on_finding(&attacker("198.51.100.1"), 0).unwrap();
    f.d.on_finding(&attacker("198.51.100.2"), 0).unwrap();
    // Another network's address does not count towards this one.
    f.d.on_finding(&attacker("198.51.101.3"), 0).unwrap();
    assert_eq!(
        banned(&f.d),
        ["198.51.100.1/32", "198.51.100.2/32", "198.51.101.3/32"]
    );
    f.d.on_finding(&attacker("198.51.100.3"), 0).unwrap();
    assert!(banned(&f.d).contains(&"198.51.100.0/24".to_string()));
    let whole = f.d.ban_of(ip("198.51.100.200")).cloned().unwrap();
    assert_eq!(whole.net, net("198.51.100.0/24"));
    assert!(whole.reason.contains("3 addresses"), "{}", whole.reason);
    // A fourth address of it is covered already.
    let r =
        f.d.ban(net("198.51.100.4/32"), "again", None, None, 1)
            .unwrap();
    assert_eq!(r, BanOutcome::AlreadyBanned);
    assert_eq!(f.d.bans().len(), 5);
}

#[test]
fn enough_banned_addresses_of_an_ipv6_slash_64_ban_the_network() {
    let mut f = fixture(
        BanConfig {
            prefix_members: 3,
            ..short_bans()
        },
        LockConfig::default(),
    );
    for a in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::3"] {
        f.d.on_finding(&attacker(a), 0).unwrap();
    }
    assert_eq!(f.d.ban_of(ip("2001:db8:1:2::99")), None);
    f.d.on_finding(&attacker("2001:db8:1:2:ffff::4"), 0)
        .unwrap();
    assert_eq!(
        f.d.ban_of(ip("2001:db8:1:2::99")).map(|b| b.net),
        Some(net("2001:db8:1:2::/64"))
    );
    assert_eq!(f.d.ban_of(ip("2001:db8:1:3::99")), None);
}

#[test]
fn a_rotating_ipv6_network_is_banned_whole_at_once() {
    let mut f = fixture(short_bans(), LockConfig::default());
    f.d.on_finding(
        &Finding::AttackerPrefix {
            network: ip("2001:db8:7:7::"),
            len: 64,
            kind: Kind::PasswordSpray,
            at: 0,
            evidence: "rotating".into(),
        },
        10,
    )
    .unwrap();
    let b = f.d.ban_of(ip("2001:db8:7:7:1:2:3:4")).cloned().unwrap();
    assert_eq!(b.net, net("2001:db8:7:7::/64"));
    assert_eq!(b.until - b.since, 100);
    assert_eq!(load(&f.metrics.findings[1]), 1);
}

#[test]
fn allowlisted_networks_and_networks_holding_them_are_never_banned() {
    let mut f = fixture(
        BanConfig {
            prefix_members: 3,
            allowlist: vec![net("192.0.2.0/24"), net("198.51.100.77/32")],
            ..short_bans()
        },
        LockConfig::default(),
    );
    // Inside an allowlisted network, by the engine or by an operator.
    f.d.on_finding(&attacker("192.0.2.7"), 0).unwrap();
    let manual = Some(Duration::from_secs(60));
    assert_eq!(
        f.d.ban(net("192.0.2.0/25"), "op", None, manual, 0).unwrap(),
        BanOutcome::Allowlisted
    );
    // A network that contains an allowlisted one.
    assert_eq!(
        f.d.ban(net("192.0.0.0/16"), "op", None, manual, 0).unwrap(),
        BanOutcome::Allowlisted
    );
    // Three addresses of a /24 holding an allowlisted address: they are banned, the
    // /24 is not.
    for a in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        f.d.on_finding(&attacker(a), 0).unwrap();
    }
    assert_eq!(
        banned(&f.d),
        ["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]
    );
    assert_eq!(f.d.ban_of(ip("198.51.100.77")), None);
    assert_eq!(load(&f.metrics.bans_allowlisted), 4);
    let sources: Vec<String> =
        f.d.allowlist()
            .iter()
            .map(|(n, from)| format!("{n} {from}"))
            .collect();
    assert_eq!(
        sources,
        [
            "192.0.2.0/24 configuration",
            "198.51.100.77/32 configuration"
        ]
    );
}

#[test]
fn adding_to_the_allowlist_lifts_the_bans_it_covers_and_is_stored() {
    let mut f = fixture(short_bans(), LockConfig::default());
    f.d.on_finding(&attacker("203.0.113.9"), 0).unwrap();
    let manual = Some(Duration::from_secs(600));
    f.d.ban(net("203.0.0.0/16"), "op", None, manual, 0).unwrap();
    f.d.on_finding(&attacker("198.51.100.1"), 0).unwrap();
    f.d.take_effects();
    assert!(f.d.allow(net("203.0.113.0/24"), "office").unwrap());
    assert!(!f.d.allow(net("203.0.113.0/24"), "office").unwrap());
    assert_eq!(banned(&f.d), ["198.51.100.1/32"]);
    let lifted: Vec<String> =
        f.d.take_effects()
            .iter()
            .filter_map(|e| match e {
                Effect::Unban(b) => Some(b.net.to_string()),
                _ => None,
            })
            .collect();
    assert_eq!(lifted.len(), 2, "{lifted:?}");
    f.d.on_finding(&attacker("203.0.113.9"), 1).unwrap();
    assert_eq!(f.d.ban_of(ip("203.0.113.9")), None);
    // A restart keeps the entry.
    let mut d2 = Decisions::load(
        short_bans(),
        LockConfig::default(),
        Arc::clone(&f.store),
        Arc::clone(&f.metrics),
    )
    .unwrap();
    assert_eq!(
        d2.allowlist(),
        [(net("203.0.113.0/24"), "office".to_string())]
    );
    assert_eq!(
        d2.ban(net("203.0.113.9/32"), "x", None, None, 2).unwrap(),
        BanOutcome::Allowlisted
    );
    // Removing it allows bans again.
    assert!(d2.disallow(net("203.0.113.0/24")).unwrap());
    assert!(!d2.disallow(net("203.0.113.0/24")).unwrap());
    assert!(matches!(
        d2.ban(net("203.0.113.9/32"), "x", None, None, 2).unwrap(),
        BanOutcome::Banned(_)
    ));
}

fn compromised() -> Finding {
    Finding::Compromised {
        account: "j.smith@example.org".into(),
        source: ip("203.0.113.7"),
        kind: Kind::PasswordSpray,
        login_at: 0,
        at: 0,
    }
}

#[test]
fn an_account_an_attacker_logged_in_to_is_locked() {
    let mut f = fixture(
        short_bans(),
        LockConfig {
            compromised: true,
            duration: Duration::from_secs(3600),
        },
    );
    f.d.on_finding(&compromised(), 50).unwrap();
    let locks = f.d.locks();
    assert_eq!(locks.len(), 1);
    let l = &locks[0];
    assert_eq!(l.account, "j.smith@example.org");
    assert_eq!((l.since, l.until, l.manual), (50, 3650, false));
    assert!(l.reason.contains("203.0.113.7"), "{}", l.reason);
    assert_eq!(f.d.take_effects(), [Effect::Lock(l.clone())]);
    assert_eq!(f.store.locks().unwrap(), locks);
    assert_eq!(load(&f.metrics.locks_active), 1);
    // Found again while locked: nothing new.
    f.d.on_finding(&compromised(), 60).unwrap();
    assert!(f.d.take_effects().is_empty());
    // The lock ends by itself.
    f.d.expire(3650).unwrap();
    assert!(f.d.locks().is_empty());
    assert!(matches!(f.d.take_effects()[..], [Effect::Unlock(_)]));
    assert_eq!(load(&f.metrics.findings[2]), 2);
}

#[test]
fn no_lock_when_locks_compromised_is_false() {
    let mut f = fixture(
        short_bans(),
        LockConfig {
            compromised: false,
            ..LockConfig::default()
        },
    );
    f.d.on_finding(&compromised(), 50).unwrap();
    assert!(f.d.locks().is_empty());
    assert!(f.d.take_effects().is_empty());
    assert!(f.store.locks().unwrap().is_empty());
    assert_eq!(load(&f.metrics.findings[2]), 1, "still counted as found");
    // A campaign is counted and decides nothing.
    f.d.on_finding(
        &Finding::Campaign {
            id: 0,
            kind: Kind::PasswordSpray,
            distributed: true,
            start: 0,
            detected_at: 10,
        },
        50,
    )
    .unwrap();
    assert!(f.d.bans().is_empty() && f.d.take_effects().is_empty());
    assert_eq!(load(&f.metrics.findings[3]), 1);
}

#[test]
fn new_bans_beyond_max_bans_are_refused_and_counted() {
    let mut f = fixture(
        BanConfig {
            max_bans: 2,
            ..short_bans()
        },
        LockConfig::default(),
    );
    for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        f.d.on_finding(&attacker(a), 0).unwrap();
    }
    assert_eq!(banned(&f.d), ["192.0.2.1/32", "192.0.2.2/32"]);
    assert_eq!(load(&f.metrics.bans_refused), 1);
    assert_eq!(
        f.d.ban(
            net("192.0.2.4/32"),
            "op",
            None,
            Some(Duration::from_secs(9)),
            0
        )
        .unwrap(),
        BanOutcome::Full
    );
    // An operator may still lengthen a ban held.
    let r =
        f.d.ban(
            net("192.0.2.1/32"),
            "op",
            None,
            Some(Duration::from_secs(9000)),
            0,
        )
        .unwrap();
    assert!(matches!(r, BanOutcome::Banned(b) if b.until == 9000));
    // Once one ends, there is room again.
    f.d.expire(100).unwrap();
    f.d.on_finding(&attacker("192.0.2.3"), 100).unwrap();
    assert_eq!(banned(&f.d), ["192.0.2.1/32", "192.0.2.3/32"]);
}

#[test]
fn a_full_store_refuses_like_max_bans() {
    let dir = tempfile::tempdir().unwrap();
    let limits = portcullis_store::StoreLimits {
        max_bans: 1,
        ..Default::default()
    };
    let store = Arc::new(Store::open_with(&dir.path().join("state.redb"), limits).unwrap());
    let metrics = Arc::new(Metrics::default());
    let mut d = Decisions::load(
        short_bans(),
        LockConfig::default(),
        store,
        Arc::clone(&metrics),
    )
    .unwrap();
    d.on_finding(&attacker("192.0.2.1"), 0).unwrap();
    d.on_finding(&attacker("192.0.2.2"), 0).unwrap();
    assert_eq!(banned(&d), ["192.0.2.1/32"]);
    assert_eq!(load(&metrics.bans_refused), 1);
    assert_eq!(load(&metrics.store_errors), 0);
}

#[test]
fn an_operators_ban_lasts_what_they_said_and_replaces_a_held_one() {
    let mut f = fixture(
        BanConfig {
            prefix_members: 2,
            ..short_bans()
        },
        LockConfig::default(),
    );
    f.d.on_finding(&attacker("203.0.113.7"), 0).unwrap();
    let week = Duration::from_secs(7 * 86_400);
    let BanOutcome::Banned(b) =
        f.d.ban(net("203.0.113.7/32"), "known bad", None, Some(week), 10)
            .unwrap()
    else {
        panic!("not banned");
    };
    // Longer than bans.max_duration: the operator's word, not the escalation rule.
    assert_eq!((b.since, b.until, b.manual), (10, 10 + 7 * 86_400, true));
    assert_eq!(b.reason, "known bad");
    assert_eq!(
        b.offences, 1,
        "replacing a ban in force is not another offence"
    );
    assert_eq!(f.store.bans().unwrap(), std::slice::from_ref(&b));
    // A network given with host bits is the network.
    let BanOutcome::Banned(n) =
        f.d.ban(
            net("198.51.100.9/24"),
            "op",
            None,
            Some(Duration::from_secs(60)),
            10,
        )
        .unwrap()
    else {
        panic!("not banned");
    };
    assert_eq!(n.net, net("198.51.100.0/24"));
    assert!(f.d.ban_of(ip("198.51.100.200")).is_some());
}

#[test]
fn lifting_what_is_not_there_changes_nothing() {
    let mut f = fixture(short_bans(), LockConfig::default());
    f.d.on_finding(&attacker("203.0.113.7"), 0).unwrap();
    f.d.take_effects();
    assert_eq!(f.d.unban(net("203.0.113.8/32")).unwrap(), None);
    assert_eq!(f.d.unban(net("203.0.113.0/24")).unwrap(), None);
    assert_eq!(f.d.unlock("nobody@example.org").unwrap(), None);
    assert!(f.d.take_effects().is_empty());
    assert_eq!(load(&f.metrics.unbans), 0);
    assert_eq!(load(&f.metrics.unlocks), 0);
    assert_eq!(banned(&f.d), ["203.0.113.7/32"]);
    // And lifting what is there does.
    let b = f.d.unban(net("203.0.113.7/32")).unwrap().unwrap();
    assert_eq!(f.d.take_effects(), [Effect::Unban(b)]);
    assert!(f.store.bans().unwrap().is_empty());
    assert_eq!(load(&f.metrics.bans_active), 0);
}
