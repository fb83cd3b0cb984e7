//! Network namespaces for the daemon's firewall tests: a namespace per host, so the
//! machine's own ruleset is never touched, deleted when the test ends however it ends.
//! Needs root, `ip` (iproute2), `nft` (nftables) and `ping` (iputils-ping); a missing one
//! fails the test with a message saying so, never skips it.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// A network namespace made for one test.
pub struct Netns {
    /// Its name, `portcullis-d-<pid>-<n>`.
    pub name: String,
}

/// Runs `argv`, failing the test if it cannot be started at all.
pub fn run(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
}

/// Runs `argv` and fails the test unless it succeeds.
pub fn ok(argv: &[&str]) -> Output {
    let out = run(argv);
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Netns {
    /// A new, empty namespace (only its loopback, down).
    pub fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        for (program, package) in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("ping", "iputils-ping"),
        ] {
            assert!(
                Command::new(program).arg("-V").output().is_ok(),
                "`{program}` is missing: install the Debian package {package} (this test needs it, and root)"
            );
        }
        let name = format!(
            "portcullis-d-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = run(&["ip", "netns", "add", &name]);
        assert!(
            out.status.success(),
            "`ip netns add {name}` failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    /// The `nft` command of the daemon's `[firewall] command`, as TOML.
    pub fn nft_command_toml(&self) -> String {
        format!("[\"ip\", \"netns\", \"exec\", \"{}\", \"nft\"]", self.name)
    }

    /// Runs a program inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        run(&[&["ip", "netns", "exec", &self.name][..], argv].concat())
    }

    /// The names of the `inet` tables in the namespace's ruleset.
    pub fn tables(&self) -> Vec<String> {
        let out = self.exec(&["nft", "-j", "list", "tables"]);
        assert!(
            out.status.success(),
            "nft list tables: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root: Value = serde_json::from_slice(&out.stdout).expect("nft -j output");
        root["nftables"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("table"))
                    .filter_map(|t| t["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The elements of `set` in `table inet portcullis`, as (element as nft writes it,
    /// timeout in seconds). Read with nft's own JSON, independently of the daemon.
    pub fn elements(&self, set: &str) -> Vec<(String, Option<u64>)> {
        let out = self.exec(&["nft", "-j", "list", "set", "inet", "portcullis", set]);
        assert!(
            out.status.success(),
            "nft list set {set}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root: Value = serde_json::from_slice(&out.stdout).expect("nft -j output");
        let Some(elems) = root["nftables"]
            .as_array()
            .and_then(|items| items.iter().find_map(|i| i.get("set")))
            .and_then(|s| s.get("elem"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        elems
            .iter()
            .map(|e| {
                let inner = e.get("elem");
                let val = inner.map_or(e, |i| &i["val"]);
                let text = match (val.as_str(), val.get("prefix")) {
                    (Some(s), _) => s.to_owned(),
                    (None, Some(p)) => {
                        format!("{}/{}", p["addr"].as_str().unwrap_or("?"), p["len"])
                    }
                    (None, None) => val.to_string(),
                };
                let timeout = inner.and_then(|i| i.get("timeout")).and_then(Value::as_u64);
                (text, timeout)
            })
            .collect()
    }

    /// Whether a ping from this namespace reaches `to`: one reply within `wait_secs`.
    pub fn pings(&self, to: &str, wait_secs: u32) -> bool {
        let deadline = wait_secs.to_string();
        self.exec(&["ping", "-n", "-c", "1", "-W", "1", "-w", &deadline, to])
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Two namespaces joined by a veth pair: the attacker A (10.232.0.1/24) and the
/// protected host B (10.232.0.2/24), whose firewall the daemon keeps.
pub struct Link {
    /// The attacker.
    pub a: Netns,
    /// The protected host.
    pub b: Netns,
}

/// A's address.
pub const ATTACKER: &str = "10.232.0.1";
/// B's address.
pub const HOST: &str = "10.232.0.2";

impl Link {
    /// Makes both namespaces and the link between them, up.
    pub fn new() -> Link {
        let (a, b) = (Netns::new(), Netns::new());
        let (na, nb) = (a.name.as_str(), b.name.as_str());
        ok(&[
            "ip", "-n", na, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", nb,
        ]);
        ok(&[
            "ip",
            "-n",
            na,
            "addr",
            "add",
            "10.232.0.1/24",
            "dev",
            "veth0",
        ]);
        ok(&[
            "ip",
            "-n",
            nb,
            "addr",
            "add",
            "10.232.0.2/24",
            "dev",
            "veth1",
        ]);
        ok(&["ip", "-n", na, "link", "set", "veth0", "up"]);
        ok(&["ip", "-n", nb, "link", "set", "veth1", "up"]);
        Link { a, b }
    }

    /// Whether A reaches B: one reply within 5 s (a link just made may still be
    /// coming up).
    pub fn reaches(&self) -> bool {
        self.a.pings(HOST, 5)
    }

    /// Whether A's one ping to B goes unanswered within a second.
    pub fn blocked(&self) -> bool {
        !self.a.pings(HOST, 1)
    }
}
