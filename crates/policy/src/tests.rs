use super::*;

const T0: u32 = 1_800_000_000;

fn at<'a>(account: &'a str, source: &str) -> Attempt<'a> {
    Attempt {
        account,
        source: Some(source.parse().unwrap()),
        ..Attempt::default()
    }
}

fn with_pw<'a>(mut a: Attempt<'a>, pw: &'a str) -> Attempt<'a> {
    a.password = Some(pw);
    a
}

/// The real user logs in from the office once.
fn user_logs_in(p: &Policy, now: u32) {
    p.report(&at("alice", "192.0.2.10"), Outcome::Success, now);
}

#[test]
fn an_attacker_locks_the_account_only_for_unfamiliar_places() {
    let p = Policy::new(Rules::default());
    user_logs_in(&p, T0);
    let guesses: Vec<String> = (0..10).map(|i| format!("guess{i}")).collect();
    for (i, g) in guesses.iter().enumerate() {
        let a = with_pw(at("alice", "203.0.113.7"), g);
        assert_ne!(
            p.decide(&a, T0 + 1),
            Decision::Reject(Reason::LockedOut),
            "{i}"
        );
        p.report(&a, Outcome::Failure, T0 + 1);
    }
    // Locked for unfamiliar places: any other address outside the office, too.
    assert_eq!(
        p.decide(&at("alice", "198.51.100.1"), T0 + 2),
        Decision::Reject(Reason::LockedOut)
    );
    // The office (same /24) is still in, with the right password.
    assert_eq!(
        p.decide(&at("alice", "192.0.2.99"), T0 + 2),
        Decision::Allow
    );
    // The lockout ends after lockout_secs.
    assert_eq!(
        p.decide(&at("alice", "198.51.100.1"), T0 + 1 + 60),
        Decision::Allow
    );
}

#[test]
fn the_same_wrong_password_counts_once() {
    let p = Policy::new(Rules::default());
    for _ in 0..50 {
        let a = with_pw(at("bob", "203.0.113.8"), "old-password-hash");
        p.report(&a, Outcome::Failure, T0);
    }
    assert_eq!(p.decide(&at("bob", "203.0.113.8"), T0), Decision::Allow);
    assert_eq!(p.stats(Some("bob"), None, T0).account_failures, 1);
    // And it does not tarpit the phone that keeps trying it.
    assert_eq!(
        p.stats(None, "203.0.113.8".parse().ok(), T0)
            .source_failures,
        1
    );
}

#[test]
fn lockouts_escalate_and_are_capped() {
    let rules = Rules {
        lockout_threshold: 2,
        lockout_secs: 60,
        lockout_max_secs: 200,
        source_accounts: 0,
        tarpit_after: 0,
        ..Rules::default()
    };
    let p = Policy::new(rules);
    let mut now = T0;
    let mut lengths = Vec::new();
    for round in 0..4 {
        for i in 0..2 {
            let pw = format!("r{round}g{i}");
            p.report(
                &with_pw(at("carol", "203.0.113.9"), &pw),
                Outcome::Failure,
                now,
            );
        }
        let until = p.stats(Some("carol"), None, now).locked_out_until.unwrap();
        lengths.push(until - now);
        now = until;
    }
    assert_eq!(lengths, vec![60, 120, 200, 200]);
}

#[test]
fn a_spraying_source_is_refused_then_tarpitted_sources_slow_down() {
    let p = Policy::new(Rules::default());
    user_logs_in(&p, T0);
    let src = "203.0.113.50";
    let mut answers = Vec::new();
    for i in 0..10 {
        let acc = format!("user{i}");
        let a = with_pw(at(&acc, src), "Summer2017!");
        answers.push(p.decide(&a, T0 + 10));
        p.report(&a, Outcome::Failure, T0 + 10);
    }
    // 3 free attempts, then 1, 2, 4, 8, 10, 10, 10 s of tarpit.
    assert_eq!(
        answers,
        vec![
            Decision::Allow,
            Decision::Allow,
            Decision::Allow,
            Decision::Tarpit(1),
            Decision::Tarpit(2),
            Decision::Tarpit(4),
            Decision::Tarpit(8),
            Decision::Tarpit(10),
            Decision::Tarpit(10),
            Decision::Tarpit(10),
        ]
    );
    // Ten accounts: refused, even for alice's right password...
    assert_eq!(
        p.decide(&at("alice", src), T0 + 11),
        Decision::Reject(Reason::Spraying)
    );
    // ...and its success does not make it one of alice's places.
    p.report(&at("alice", src), Outcome::Success, T0 + 11);
    assert_eq!(p.stats(Some("alice"), None, T0 + 11).familiar_places, 1);
    // Alice's own place is not concerned.
    assert_eq!(
        p.decide(&at("alice", "192.0.2.10"), T0 + 11),
        Decision::Allow
    );
    // The window passes.
    assert_eq!(p.decide(&at("alice", src), T0 + 10 + 3600), Decision::Allow);
}

#[test]
fn a_fingerprint_failing_on_many_accounts_is_a_spray() {
    let p = Policy::new(Rules::default());
    for i in 0..5 {
        let acc = format!("user{i}");
        // Five sources, one attempt each: no source is suspicious on its own.
        let src = format!("198.51.100.{i}");
        let mut a = at(&acc, &src);
        a.fingerprint = Some("hmac-of-Winter2024");
        p.report(&a, Outcome::Failure, T0);
    }
    let mut a = at("user9", "198.51.100.77");
    a.fingerprint = Some("hmac-of-Winter2024");
    assert_eq!(
        p.decide(&a, T0 + 1),
        Decision::Reject(Reason::SprayedPassword)
    );
    a.fingerprint = Some("hmac-of-something-else");
    assert_eq!(p.decide(&a, T0 + 1), Decision::Allow);
}

#[test]
fn lockdown_lets_in_only_familiar_places_and_the_allowlist() {
    let p = Policy::new(Rules::default());
    user_logs_in(&p, T0);
    let mut by_device = at("dave", "198.51.100.3");
    by_device.device = Some("phone-1");
    p.report(&by_device, Outcome::Success, T0);
    p.set_allowlist(["10.0.0.0/8".parse().unwrap()]);
    p.set_lockdown(Some(i64::from(T0) + 100));
    assert_eq!(
        p.decide(&at("alice", "192.0.2.10"), T0 + 1),
        Decision::Allow
    );
    assert_eq!(
        p.decide(&at("alice", "203.0.113.1"), T0 + 1),
        Decision::Reject(Reason::Lockdown)
    );
    assert_eq!(p.decide(&at("alice", "10.1.2.3"), T0 + 1), Decision::Allow);
    // The same device from a new network is familiar.
    let mut moved = at("dave", "203.0.113.77");
    moved.device = Some("phone-1");
    assert_eq!(p.decide(&moved, T0 + 1), Decision::Allow);
    // A timed lockdown ends by itself; a manual one when switched off.
    assert_eq!(
        p.decide(&at("alice", "203.0.113.1"), T0 + 100),
        Decision::Allow
    );
    p.set_lockdown(None);
    assert_eq!(p.lockdown_until(T0 + 1_000_000), Some(None));
    p.set_lockdown(Some(0));
    assert_eq!(p.lockdown_until(T0), None);
}

#[test]
fn bans_locks_and_the_allowlist() {
    let p = Policy::new(Rules::default());
    p.set_bans([("203.0.113.0/24".parse().unwrap(), i64::from(T0) + 60)]);
    p.ban("2001:db8::1/128".parse().unwrap(), i64::from(T0) + 60);
    assert_eq!(
        p.decide(&at("x", "203.0.113.200"), T0),
        Decision::Reject(Reason::Banned)
    );
    assert_eq!(
        p.decide(&at("x", "2001:db8::1"), T0),
        Decision::Reject(Reason::Banned)
    );
    assert_eq!(p.decide(&at("x", "2001:db8::2"), T0), Decision::Allow);
    // Expired bans no longer count, before the daemon removes them.
    assert_eq!(
        p.decide(&at("x", "203.0.113.200"), T0 + 60),
        Decision::Allow
    );
    p.unban(&"2001:db8::1/128".parse().unwrap());
    assert_eq!(p.decide(&at("x", "2001:db8::1"), T0), Decision::Allow);
    // The allowlist wins over a ban; a lock wins over the allowlist.
    p.set_allowlist(["203.0.113.200/32".parse().unwrap()]);
    assert_eq!(p.decide(&at("x", "203.0.113.200"), T0), Decision::Allow);
    p.lock("x", i64::from(T0) + 10);
    assert_eq!(
        p.decide(&at("x", "203.0.113.200"), T0),
        Decision::Reject(Reason::AccountLocked)
    );
    p.unlock("x");
    assert_eq!(p.decide(&at("x", "203.0.113.200"), T0), Decision::Allow);
}

#[test]
fn familiar_networks_from_the_logs_count() {
    let p = Policy::new(Rules::default());
    // The log pipeline records /24s (or a host).
    p.learn_network("erin", &"192.0.2.0/24".parse().unwrap(), T0);
    p.learn_network("erin", &"198.51.100.7/32".parse().unwrap(), T0);
    p.set_lockdown(None);
    assert_eq!(p.decide(&at("erin", "192.0.2.44"), T0 + 1), Decision::Allow);
    assert_eq!(
        p.decide(&at("erin", "198.51.100.8"), T0 + 1),
        Decision::Allow
    );
    assert_eq!(
        p.decide(&at("erin", "203.0.113.1"), T0 + 1),
        Decision::Reject(Reason::Lockdown)
    );
    // Familiarity fades after familiar_secs.
    let later = T0 + Rules::default().familiar_secs;
    assert_eq!(
        p.decide(&at("erin", "192.0.2.44"), later),
        Decision::Reject(Reason::Lockdown)
    );
}

#[test]
fn the_real_user_keeps_logging_in_through_a_long_attack() {
    // 1000 distinct guesses from 100 addresses: the attacker gets locked out, escalating;
    // the user, at home, never is.
    let p = Policy::new(Rules::default());
    user_logs_in(&p, T0);
    let mut now = T0;
    for i in 0..1000u32 {
        now += 1;
        let src = format!("203.0.{}.{}", i % 100, i % 7);
        let pw = format!("g{i}");
        let a = with_pw(at("alice", &src), &pw);
        if p.decide(&a, now) == Decision::Allow {
            p.report(&a, Outcome::Failure, now);
        }
        if i % 50 == 0 {
            assert_eq!(
                p.decide(&at("alice", "192.0.2.10"), now),
                Decision::Allow,
                "{i}"
            );
            p.report(&at("alice", "192.0.2.10"), Outcome::Success, now);
        }
    }
}

#[test]
fn a_busy_table_is_reported_to_the_caller() {
    let p = Policy::new(Rules::default());
    let g = p.gate.write().unwrap();
    assert_eq!(p.try_decide(&at("x", "192.0.2.1"), T0), None);
    drop(g);
    assert_eq!(
        p.try_decide(&at("x", "192.0.2.1"), T0),
        Some(Decision::Allow)
    );
}

#[test]
fn state_per_tracked_account_and_source_is_at_most_200_bytes() {
    let n = 200_000;
    let p = Policy::new(Rules {
        max_accounts: n,
        max_sources: n,
        ..Rules::default()
    });
    for i in 0..n as u32 {
        let acc = format!("user{i}@example.org");
        let src = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        let a = with_pw(at(&acc, &src), "pw");
        p.report(&a, Outcome::Failure, T0);
    }
    let s = p.sizes();
    assert!(s.accounts > n * 9 / 10, "{s:?}");
    assert!(s.sources > n * 9 / 10, "{s:?}");
    let per_entry = s.bytes / (s.accounts + s.sources);
    eprintln!(
        "{} accounts + {} sources in {} bytes: {per_entry} bytes per tracked entry (slots: {:?})",
        s.accounts,
        s.sources,
        s.bytes,
        Policy::bytes_per_entry()
    );
    assert!(per_entry <= 200, "{per_entry} bytes per entry");
    for b in Policy::bytes_per_entry() {
        assert!(b <= 200, "{b}");
    }
}

#[test]
fn many_bans_are_added_and_lifted_one_at_a_time_cheaply() {
    // 100,000 bans one by one, as the daemon dispatches them: each is O(1) (a
    // quadratic re-index would take minutes here).
    let p = Policy::new(Rules::default());
    let started = std::time::Instant::now();
    for i in 0..100_000u32 {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        p.ban(IpNet::from(IpAddr::V4(a)), i64::from(T0) + 60);
    }
    p.ban("198.51.100.0/24".parse().unwrap(), i64::from(T0) + 60);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(
        p.decide(&at("x", "10.0.1.2"), T0),
        Decision::Reject(Reason::Banned)
    );
    assert_eq!(
        p.decide(&at("x", "198.51.100.9"), T0),
        Decision::Reject(Reason::Banned)
    );
    p.unban(&"198.51.100.0/24".parse().unwrap());
    assert_eq!(p.decide(&at("x", "198.51.100.9"), T0), Decision::Allow);
    for i in 0..100_000u32 {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        p.unban(&IpNet::from(IpAddr::V4(a)));
    }
    assert_eq!(p.decide(&at("x", "10.0.1.2"), T0), Decision::Allow);
    assert!(p.gate.read().unwrap().lens_v4.is_empty());
}

#[test]
fn new_thresholds_apply_at_once_and_keep_what_was_learnt() {
    let p = Policy::new(Rules::default());
    user_logs_in(&p, T0);
    for i in 0..3 {
        let pw = format!("guess{i}");
        p.report(
            &with_pw(at("alice", "203.0.113.7"), &pw),
            Outcome::Failure,
            T0 + 1,
        );
    }
    assert_ne!(
        p.decide(&at("alice", "203.0.113.7"), T0 + 2),
        Decision::Reject(Reason::LockedOut)
    );
    // Lowered below the three failures already counted: the next one locks.
    let lower = Rules {
        lockout_threshold: 4,
        ..Rules::default()
    };
    assert!(p.set_rules(lower));
    assert_eq!(p.rules().lockout_threshold, 4);
    p.report(
        &with_pw(at("alice", "203.0.113.7"), "guess3"),
        Outcome::Failure,
        T0 + 3,
    );
    assert_eq!(
        p.decide(&at("alice", "203.0.113.7"), T0 + 4),
        Decision::Reject(Reason::LockedOut)
    );
    // The office is still familiar: nothing learnt was lost.
    assert_eq!(
        p.decide(&at("alice", "192.0.2.10"), T0 + 4),
        Decision::Allow
    );
    // Sizes and prefix lengths stay as made, and the caller is told.
    let resized = Rules {
        max_accounts: 7,
        prefix_v4: 16,
        tarpit_after: 2,
        ..lower
    };
    assert!(!p.set_rules(resized));
    let now = p.rules();
    assert_eq!(now.tarpit_after, 2);
    assert_eq!(now.max_accounts, Rules::default().max_accounts);
    assert_eq!(now.prefix_v4, Rules::default().prefix_v4);
    assert_eq!(
        p.decide(&at("alice", "192.0.3.10"), T0 + 4),
        Decision::Reject(Reason::LockedOut)
    );
}
