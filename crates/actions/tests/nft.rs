//! The nftables adapter against the real `nft`, each test in network namespaces of its
//! own, so the host's ruleset is never touched. Needs root, `ip` (iproute2), `nft`
//! (nftables) and `ping` (iputils-ping); a missing one fails the test, never skips it.

use std::net::IpAddr;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use portcullis_actions::nft::{Nft, NftConfig, NftError, Reconciled};
use serde_json::Value;

/// A network namespace made for one test, deleted when the test ends, however it ends.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
            let found = std::process::Command::new(program).arg("-V").output();
            assert!(
                found.is_ok(),
                "`{program}` is missing: install the Debian package {package} (this test needs it and root)"
            );
        }
        let name = format!(
            "portcullis-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("running ip");
        assert!(
            out.status.success(),
            "`ip netns add {name}` failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    /// The adapter, running nft inside this namespace.
    fn nft(&self) -> Nft {
        Nft::new(NftConfig {
            command: ["ip", "netns", "exec", &self.name, "nft"]
                .map(String::from)
                .to_vec(),
            ..NftConfig::default()
        })
        .expect("a valid config")
    }

    /// Runs a program inside the namespace, bounded in time.
    async fn exec(&self, argv: &[&str]) -> Output {
        run(&[&["ip", "netns", "exec", &self.name][..], argv].concat()).await
    }

    /// `nft -j list set inet portcullis NAME`: element (as nft writes it) and its
    /// timeout and remaining seconds. Read independently of the adapter's own parser.
    async fn set(&self, set: &str) -> Vec<(String, Option<u64>, Option<u64>)> {
        let out = self
            .exec(&["nft", "-j", "list", "set", "inet", "portcullis", set])
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root: Value = serde_json::from_slice(&out.stdout).unwrap();
        let set = root["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|i| i.get("set"))
            .unwrap();
        let Some(elems) = set.get("elem").and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out: Vec<_> = elems
            .iter()
            .map(|e| {
                let inner = e.get("elem");
                let val = inner.map_or(e, |i| &i["val"]);
                let text = if let Some(s) = val.as_str() {
                    s.to_owned()
                } else if let Some(p) = val.get("prefix") {
                    format!("{}/{}", p["addr"].as_str().unwrap(), p["len"])
                } else {
                    let r = val["range"].as_array().unwrap();
                    format!("{}-{}", r[0].as_str().unwrap(), r[1].as_str().unwrap())
                };
                let num = |k: &str| inner.and_then(|i| i.get(k)).and_then(Value::as_u64);
                (text, num("timeout"), num("expires"))
            })
            .collect();
        out.sort();
        out
    }

    /// Whether the kernel's set matches `addr` (`nft get element`).
    async fn matches(&self, set: &str, addr: &str) -> bool {
        let elem = format!("{{ {addr} }}");
        let out = self
            .exec(&["nft", "get", "element", "inet", "portcullis", set, &elem])
            .await;
        out.status.success()
    }

    async fn rules(&self) -> Vec<Value> {
        let out = self
            .exec(&["nft", "-j", "list", "chain", "inet", "portcullis", "input"])
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root: Value = serde_json::from_slice(&out.stdout).unwrap();
        root["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i.get("rule").cloned())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a program, killed after 20 s.
async fn run(argv: &[&str]) -> Output {
    let child = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), child).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run {argv:?}: {e}"),
        Err(_) => panic!("{argv:?} did not finish within 20 s"),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

/// The remaining time lies within the ban's duration and a few seconds of test time.
fn assert_remaining(got: Option<u64>, want: u64) {
    let got = got.expect("an expiry");
    assert!(
        got <= want && got + 30 >= want,
        "{got} s left, wanted about {want}"
    );
}

#[tokio::test]
async fn setup_twice_makes_the_documented_table_once() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    nft.setup().await.unwrap();
    let rules = ns.rules().await;
    assert_eq!(rules.len(), 2, "{rules:?}");
    let out = ns
        .exec(&["nft", "list", "table", "inet", "portcullis"])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "set banned4 {",
        "type ipv4_addr",
        "set banned6 {",
        "type ipv6_addr",
        "flags interval,timeout",
        "type filter hook input priority filter - 10; policy accept;",
        "ip saddr @banned4 drop",
        "ip6 saddr @banned6 drop",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[tokio::test]
async fn ban_puts_addresses_and_prefixes_in_the_sets_with_their_timeouts() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    nft.ban(&[
        (net("203.0.113.7/32"), HOUR),
        (net("198.51.100.77/24"), 2 * HOUR),
        (net("2001:db8::1/128"), Duration::from_secs(1800)),
        (net("2001:db8:1:2:3::/64"), HOUR),
        (net("::ffff:192.0.2.9/128"), HOUR),
    ])
    .await
    .unwrap();
    let v4 = ns.set("banned4").await;
    let names: Vec<_> = v4.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["192.0.2.9", "198.51.100.0/24", "203.0.113.7"]);
    assert_eq!(v4[1].1, Some(7200));
    assert_remaining(v4[1].2, 7200);
    assert_remaining(v4[2].2, 3600);
    let v6 = ns.set("banned6").await;
    let names: Vec<_> = v6.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["2001:db8:1:2::/64", "2001:db8::1"]);
    assert_remaining(v6[1].2, 1800);
    assert!(ns.matches("banned4", "198.51.100.200").await);
    assert!(ns.matches("banned6", "2001:db8:1:2:ffff::1").await);

    let listed = nft.list().await.unwrap();
    let nets: Vec<_> = listed.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "192.0.2.9/32",
            "198.51.100.0/24",
            "203.0.113.7/32",
            "2001:db8::1/128",
            "2001:db8:1:2::/64"
        ]
    );
    assert_remaining(listed[1].1.map(|d| d.as_secs()), 7200);
}

#[tokio::test]
async fn a_second_ban_restarts_the_timeout_longer_or_shorter() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    let a = net("203.0.113.7/32");
    nft.ban(&[(a, Duration::from_secs(1000))]).await.unwrap();
    nft.ban(&[(a, Duration::from_secs(100))]).await.unwrap();
    let set = ns.set("banned4").await;
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].1, Some(100));
    assert_remaining(set[0].2, 100);
    nft.ban(&[(a, Duration::from_secs(5000))]).await.unwrap();
    let set = ns.set("banned4").await;
    assert_eq!(set.len(), 1);
    assert_remaining(set[0].2, 5000);
}

#[tokio::test]
async fn unban_removes_and_an_absent_element_is_not_an_error() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    nft.ban(&[(net("203.0.113.7/32"), HOUR), (net("2001:db8::/64"), HOUR)])
        .await
        .unwrap();
    nft.unban(&[
        net("203.0.113.7/32"),
        net("2001:db8::/64"),
        net("192.0.2.1/32"),
    ])
    .await
    .unwrap();
    assert!(ns.set("banned4").await.is_empty());
    assert!(ns.set("banned6").await.is_empty());
    nft.unban(&[net("203.0.113.7/32")]).await.unwrap();
    nft.unban(&[]).await.unwrap();
}

#[tokio::test]
async fn overlapping_bans_are_resolved_exactly() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    // A rotating IPv6 attacker: addresses one by one, then the whole /64.
    nft.ban(&[
        (net("2001:db8::1/128"), HOUR),
        (net("2001:db8::2/128"), HOUR),
    ])
    .await
    .unwrap();
    nft.ban(&[(net("2001:db8::/64"), 2 * HOUR)]).await.unwrap();
    let v6 = ns.set("banned6").await;
    assert_eq!(v6.len(), 1, "{v6:?}");
    assert_eq!(v6[0].0, "2001:db8::/64");
    assert_remaining(v6[0].2, 7200);

    // One address lifted out of a banned /24: the rest stays banned.
    nft.ban(&[(net("198.51.100.0/24"), HOUR)]).await.unwrap();
    nft.unban(&[net("198.51.100.7/32")]).await.unwrap();
    assert!(!ns.matches("banned4", "198.51.100.7").await);
    for other in [
        "198.51.100.0",
        "198.51.100.6",
        "198.51.100.8",
        "198.51.100.255",
    ] {
        assert!(ns.matches("banned4", other).await, "{other}");
    }
    for (_, _, expires) in ns.set("banned4").await {
        assert_remaining(expires, 3600);
    }
    let listed = nft.list().await.unwrap();
    assert!(
        listed
            .iter()
            .all(|(n, _)| !n.contains(&"198.51.100.7".parse::<IpAddr>().unwrap()))
    );
    assert_eq!(listed.iter().filter(|(n, _)| n.addr().is_ipv4()).count(), 8);

    // A shorter ban inside it decides for its own address only.
    nft.ban(&[(net("198.51.100.9/32"), Duration::from_secs(60))])
        .await
        .unwrap();
    let nine = nft
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|(n, _)| *n == net("198.51.100.9/32"))
        .expect("198.51.100.9/32 on its own");
    assert!(nine.1.unwrap() <= Duration::from_secs(60));
    assert!(ns.matches("banned4", "198.51.100.10").await);

    // Overlaps within one batch: the later decides.
    nft.ban(&[
        (net("192.0.2.0/24"), HOUR),
        (net("192.0.2.5/32"), Duration::from_secs(60)),
    ])
    .await
    .unwrap();
    assert!(ns.matches("banned4", "192.0.2.5").await);
    assert!(ns.matches("banned4", "192.0.2.4").await);
}

#[tokio::test]
async fn reconcile_adds_the_missing_and_removes_the_unwanted() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.setup().await.unwrap();
    nft.ban(&[
        (net("203.0.113.1/32"), HOUR),
        (net("203.0.113.2/32"), HOUR),
        (net("2001:db8::/64"), HOUR),
    ])
    .await
    .unwrap();
    let done = nft
        .reconcile(&[
            (net("203.0.113.1/32"), Duration::from_secs(600)),
            (net("203.0.113.3/32"), Duration::from_secs(600)),
            (net("2001:db8:5::/48"), Duration::from_secs(900)),
        ])
        .await
        .unwrap();
    assert_eq!(
        done,
        Reconciled {
            added: 2,
            removed: 2,
            kept: 1
        }
    );
    let v4 = ns.set("banned4").await;
    let names: Vec<_> = v4.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["203.0.113.1", "203.0.113.3"]);
    assert_remaining(v4[0].2, 3600);
    assert_remaining(v4[1].2, 600);
    let v6 = ns.set("banned6").await;
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].0, "2001:db8:5::/48");
    assert_remaining(v6[0].2, 900);
    let again = nft
        .reconcile(&[(net("203.0.113.1/32"), HOUR)])
        .await
        .unwrap();
    assert_eq!(
        again,
        Reconciled {
            added: 0,
            removed: 2,
            kept: 1
        }
    );
    assert_eq!(
        nft.reconcile(&[]).await.unwrap(),
        Reconciled {
            added: 0,
            removed: 1,
            kept: 0
        }
    );
    assert!(nft.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn cleanup_removes_the_table_and_a_missing_table_is_fine() {
    let ns = Netns::new();
    let nft = ns.nft();
    nft.cleanup().await.unwrap();
    nft.setup().await.unwrap();
    nft.ban(&[(net("203.0.113.7/32"), HOUR)]).await.unwrap();
    nft.cleanup().await.unwrap();
    let out = ns.exec(&["nft", "list", "tables"]).await;
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    nft.cleanup().await.unwrap();
}

#[tokio::test]
async fn errors_carry_the_command_its_status_and_nfts_stderr() {
    let ns = Netns::new();
    let nft = ns.nft();
    // No setup: the table is missing.
    let err = nft.ban(&[(net("203.0.113.7/32"), HOUR)]).await.unwrap_err();
    let NftError::Failed {
        command,
        status,
        stderr,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(command.ends_with("nft -j -f -"), "{command}");
    assert!(!status.success());
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(err.to_string().contains("nftables ban"), "{err}");
    let err = nft.list().await.unwrap_err();
    assert!(matches!(err, NftError::Failed { .. }), "{err:?}");
}

/// Two namespaces joined by a veth pair: A (10.231.0.1) pings B (10.231.0.2), whose
/// nftables bans A.
#[tokio::test]
async fn a_ban_stops_traffic_and_an_unban_lets_it_through_again() {
    let found = std::process::Command::new("ping").arg("-V").output();
    assert!(
        found.is_ok(),
        "`ping` is missing: install the Debian package iputils-ping"
    );
    let a = Netns::new();
    let b = Netns::new();
    for argv in [
        &[
            "ip", "-n", &a.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", &b.name,
        ][..],
        &[
            "ip",
            "-n",
            &a.name,
            "addr",
            "add",
            "10.231.0.1/24",
            "dev",
            "veth0",
        ],
        &[
            "ip",
            "-n",
            &b.name,
            "addr",
            "add",
            "10.231.0.2/24",
            "dev",
            "veth1",
        ],
        &["ip", "-n", &a.name, "link", "set", "veth0", "up"],
        &["ip", "-n", &b.name, "link", "set", "veth1", "up"],
    ] {
        let out = run(argv).await;
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One reply within 5 s (the link may still be coming up), or one lost packet.
    let reaches = || async {
        a.exec(&["ping", "-n", "-c", "1", "-w", "5", "10.231.0.2"])
            .await
            .status
            .success()
    };
    let blocked = || async {
        !a.exec(&["ping", "-n", "-c", "1", "-W", "1", "10.231.0.2"])
            .await
            .status
            .success()
    };
    assert!(reaches().await, "A cannot reach B before any ban");
    let nft = b.nft();
    nft.setup().await.unwrap();
    nft.ban(&[(net("10.231.0.1/32"), HOUR)]).await.unwrap();
    assert!(blocked().await, "A still reaches B after the ban");
    nft.unban(&[net("10.231.0.1/32")]).await.unwrap();
    assert!(reaches().await, "A cannot reach B after the unban");
    nft.ban(&[(net("10.231.0.0/24"), HOUR)]).await.unwrap();
    assert!(
        blocked().await,
        "A still reaches B after its /24 was banned"
    );
    nft.cleanup().await.unwrap();
    assert!(reaches().await, "A cannot reach B after cleanup");
}
