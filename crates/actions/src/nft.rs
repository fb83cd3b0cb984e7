//! The kernel firewall: banned addresses and networks as elements of two nftables sets.
//!
//! [`Nft::setup`] creates, in a table of its own (never touching anyone else's rules):
//!
//! ```text
//! table inet portcullis {
//!     set banned4 { type ipv4_addr; flags interval,timeout; }
//!     set banned6 { type ipv6_addr; flags interval,timeout; }
//!     chain input {
//!         type filter hook input priority filter - 10; policy accept;
//!         ip saddr @banned4 drop
//!         ip6 saddr @banned6 drop
//!     }
//! }
//! ```
//!
//! Every element carries its own timeout, so the kernel lifts a ban on time even when the
//! daemon is not running; after a restart [`Nft::reconcile`] makes the sets match what
//! the daemon still wants. `interval` lets an element be a whole network (an IPv6 /64,
//! an IPv4 /24).
//!
//! nft is run as a child process (`nft -j -f -`), one transaction per call, with the
//! JSON of libnftables-json(5) on its standard input, built from [`IpNet`] values and from
//! names validated at [`Nft::new`]: nothing from outside is ever read as nft syntax.
//!
//! The newest ban of an address decides when it ends. Banning an element again restarts
//! its timeout (it is deleted and added in one transaction), even to a shorter one. The
//! kernel refuses overlapping elements, so when a ban or an unban overlaps elements
//! already there (the /64 of IPv6 addresses banned one by one, one address lifted out of
//! a banned /24), the sets are read and the change is made exactly: the covered
//! elements are replaced, or the rest of a network stays banned, as ranges, for its
//! remaining time. See the `contents` module.

mod contents;
mod json;

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::child::{self, Keep, RunError};
use contents::{Contents, Element};
use json::Verb;

/// The longest timeout given to an element (about ten years); longer bans are cut to
/// this, as the kernel refuses much longer ones.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3650 * 24 * 3600);

/// The most of nft's standard error kept for an error message.
const STDERR_KEPT: usize = 4096;

/// The most of a listing read; a set this large (millions of elements) is a fault.
const LISTING_MAX: usize = 256 << 20;

/// How many times a change planned from a listing is tried when nft refuses it, as it
/// does when an element expired between the listing and the change.
const PLANNED_TRIES: u32 = 3;

/// Where and how to keep the banned sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftConfig {
    /// The program and the arguments before nft's own (default `["nft"]`; tests use
    /// `["ip", "netns", "exec", NAME, "nft"]`).
    pub command: Vec<String>,
    /// The table's family; only `inet` (IPv4 and IPv6 in one table) is supported.
    pub family: String,
    /// The table's name (default `portcullis`).
    pub table: String,
    /// The base chain's name (default `input`).
    pub chain: String,
    /// The base chain's priority on the input hook (default -10, so it runs before a
    /// typical filter chain at priority 0 and its drop cannot be overridden by an accept
    /// there).
    pub priority: i32,
    /// The IPv4 set's name (default `banned4`).
    pub set_v4: String,
    /// The IPv6 set's name (default `banned6`).
    pub set_v6: String,
    /// How long one nft invocation may take before it is killed (default 5 s).
    pub timeout: Duration,
}

impl Default for NftConfig {
    fn default() -> Self {
        NftConfig {
            command: vec!["nft".into()],
            family: "inet".into(),
            table: "portcullis".into(),
            chain: "input".into(),
            priority: -10,
            set_v4: "banned4".into(),
            set_v6: "banned6".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// What [`Nft::reconcile`] changed, in set elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Elements added because they were wanted and missing.
    pub added: usize,
    /// Elements deleted because nobody wanted them.
    pub removed: usize,
    /// Elements already there as wanted, left with the expiry the kernel had.
    pub kept: usize,
}

/// Why an nftables operation failed.
#[derive(Debug)]
pub enum NftError {
    /// A configuration value is unusable.
    Config {
        /// The field of [`NftConfig`].
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// nft could not be started or waited for.
    Run {
        /// What was being done (`setup`, `ban`, …).
        operation: &'static str,
        /// The command line.
        command: String,
        /// The system's error.
        error: io::Error,
    },
    /// nft ran and refused.
    Failed {
        /// What was being done.
        operation: &'static str,
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed, at most about 4 KiB.
        stderr: String,
    },
    /// nft did not finish in time and was killed.
    TimedOut {
        /// What was being done.
        operation: &'static str,
        /// The command line.
        command: String,
        /// The time it had.
        after: Duration,
    },
    /// nft's answer could not be read (a listing not in the expected shape, or our sets
    /// missing from it).
    Output {
        /// What was being done.
        operation: &'static str,
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftError::Config {
                field,
                value,
                reason,
            } => write!(f, "nftables: {field} {value:?} is unusable: {reason}"),
            NftError::Run {
                operation,
                command,
                error,
            } => write!(f, "nftables {operation}: cannot run `{command}`: {error}"),
            NftError::Failed {
                operation,
                command,
                status,
                stderr,
            } => write!(
                f,
                "nftables {operation}: `{command}` failed ({status}): {stderr}"
            ),
            NftError::TimedOut {
                operation,
                command,
                after,
            } => write!(
                f,
                "nftables {operation}: `{command}` did not finish within {after:?} and was killed"
            ),
            NftError::Output {
                operation,
                command,
                detail,
            } => write!(
                f,
                "nftables {operation}: cannot read the answer of `{command}`: {detail}"
            ),
        }
    }
}

impl std::error::Error for NftError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NftError::Run { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The banned sets, driven through nft.
#[derive(Debug)]
pub struct Nft {
    config: NftConfig,
    argv: Vec<String>,
    /// One operation at a time: a change planned from a listing must not race our own
    /// other changes.
    busy: Mutex<()>,
}

impl Nft {
    /// Checks the configuration: a command to run, the `inet` family, names of 1 to 64
    /// ASCII letters, digits and underscores, a non-zero timeout.
    pub fn new(config: NftConfig) -> Result<Nft, NftError> {
        let bad = |field, value: &str, reason| NftError::Config {
            field,
            value: value.to_owned(),
            reason,
        };
        if config.command.first().is_none_or(String::is_empty) {
            return Err(bad(
                "command",
                &config.command.join(" "),
                "no program to run",
            ));
        }
        if config.family != "inet" {
            return Err(bad("family", &config.family, "only inet is supported"));
        }
        for (field, name) in [
            ("table", &config.table),
            ("chain", &config.chain),
            ("set_v4", &config.set_v4),
            ("set_v6", &config.set_v6),
        ] {
            let ok = (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(bad(field, name, "a name is 1 to 64 of A-Z a-z 0-9 _"));
            }
        }
        if config.set_v4 == config.set_v6 {
            return Err(bad("set_v6", &config.set_v6, "the two sets need two names"));
        }
        if config.timeout.is_zero() {
            return Err(bad("timeout", "0", "nft needs some time to run"));
        }
        let mut argv = config.command.clone();
        argv.extend(["-j", "-f", "-"].map(String::from));
        Ok(Nft {
            config,
            argv,
            busy: Mutex::new(()),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &NftConfig {
        &self.config
    }

    /// Creates the table, the base chain, both sets and the drop rules; running it again
    /// changes nothing and never duplicates a rule. Fails if a set of the same name
    /// exists with another type or flags.
    pub async fn setup(&self) -> Result<(), NftError> {
        let _busy = self.busy.lock().await;
        self.run("setup", json::setup(&self.config)).await?;
        Ok(())
    }

    /// Bans each network for its duration (whole seconds, rounded up, at least one, at
    /// most [`MAX_TIMEOUT`]), in one transaction. A network already banned gets the new
    /// timeout; overlapping bans are resolved as the module documentation says. Networks
    /// are truncated to their prefix (`10.0.0.7/24` bans `10.0.0.0/24`), and IPv4-mapped
    /// IPv6 ones are banned as IPv4.
    pub async fn ban(&self, bans: &[(IpNet, Duration)]) -> Result<(), NftError> {
        let wanted = latest(
            bans.iter()
                .map(|&(net, d)| Element::of_net(contents::normalise(net), Some(seconds(d)))),
        );
        if wanted.is_empty() {
            return Ok(());
        }
        let _busy = self.busy.lock().await;
        if !contents::any_overlap(&wanted) {
            // Add first so that the delete cannot fail for an absent element; delete and
            // add again to restart the timeout of one that was there.
            let mut commands = json::elements(&self.config, Verb::Add, &wanted);
            commands.extend(json::elements(&self.config, Verb::Delete, &wanted));
            commands.extend(json::elements(&self.config, Verb::Add, &wanted));
            match self.run("ban", commands).await {
                Ok(_) => return Ok(()),
                // nft refused, most likely for an overlap with elements already there:
                // plan it exactly. A hung or missing nft would not do better.
                Err(NftError::Failed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.replay("ban", |contents| {
            for e in &wanted {
                contents.ban(*e);
            }
        })
        .await
    }

    /// Lifts the bans of every address in these networks, in one transaction. Networks
    /// not banned are not an error.
    pub async fn unban(&self, nets: &[IpNet]) -> Result<(), NftError> {
        let lifted = latest(
            nets.iter()
                .map(|&net| Element::of_net(contents::normalise(net), Some(1))),
        );
        if lifted.is_empty() {
            return Ok(());
        }
        let _busy = self.busy.lock().await;
        if !contents::any_overlap(&lifted) {
            let mut commands = json::elements(&self.config, Verb::Add, &lifted);
            commands.extend(json::elements(&self.config, Verb::Delete, &lifted));
            match self.run("unban", commands).await {
                Ok(_) => return Ok(()),
                Err(NftError::Failed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.replay("unban", |contents| {
            for e in &lifted {
                contents.lift(e.family, e.first, e.last);
            }
        })
        .await
    }

    /// Every banned network and the time until the kernel lifts it (`None`: never),
    /// IPv4 first, in address order. An element that is a range rather than a prefix is
    /// given as the fewest prefixes covering it.
    pub async fn list(&self) -> Result<Vec<(IpNet, Option<Duration>)>, NftError> {
        let _busy = self.busy.lock().await;
        let mut out: Vec<_> = self
            .elements("list")
            .await?
            .iter()
            .flat_map(|e| {
                let left = e.expires.map(Duration::from_secs);
                e.nets().into_iter().map(move |net| (net, left))
            })
            .collect();
        out.sort_by_key(|(net, _)| Element::of_net(*net, None).span());
        Ok(out)
    }

    /// Makes the sets hold exactly `wanted` (each with its remaining time), after a
    /// restart: adds what is missing, deletes what nobody wants, and leaves alone what
    /// is already there with the expiry the kernel has. Overlaps among `wanted` are
    /// resolved in order, the later deciding.
    pub async fn reconcile(&self, wanted: &[(IpNet, Duration)]) -> Result<Reconciled, NftError> {
        let wanted: Vec<_> = wanted
            .iter()
            .map(|&(net, d)| Element::of_net(contents::normalise(net), Some(seconds(d))))
            .collect();
        let _busy = self.busy.lock().await;
        let mut tries = 0;
        loop {
            tries += 1;
            let kernel = self.elements("reconcile").await?;
            let (changes, kept) = contents::reconcile(&kernel, &wanted);
            let done = Reconciled {
                added: changes.add.len(),
                removed: changes.delete.len(),
                kept,
            };
            if changes.is_empty() {
                return Ok(done);
            }
            match self.run("reconcile", self.changes(&changes)).await {
                Ok(_) => return Ok(done),
                Err(NftError::Failed { .. }) if tries < PLANNED_TRIES => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes the table, with its chain, rules and sets. A table already gone is fine.
    pub async fn cleanup(&self) -> Result<(), NftError> {
        let _busy = self.busy.lock().await;
        self.run("cleanup", json::cleanup(&self.config)).await?;
        Ok(())
    }

    /// Reads the sets, applies `steps` to what they hold, and makes the difference, read
    /// again and tried again if an element expired in between.
    async fn replay(
        &self,
        operation: &'static str,
        steps: impl Fn(&mut Contents),
    ) -> Result<(), NftError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut contents = Contents::new(self.elements(operation).await?);
            steps(&mut contents);
            let changes = contents.changes();
            if changes.is_empty() {
                return Ok(());
            }
            match self.run(operation, self.changes(&changes)).await {
                Ok(_) => return Ok(()),
                Err(NftError::Failed { .. }) if tries < PLANNED_TRIES => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn changes(&self, changes: &contents::Changes) -> Vec<Value> {
        let mut commands = json::elements(&self.config, Verb::Delete, &changes.delete);
        commands.extend(json::elements(&self.config, Verb::Add, &changes.add));
        commands
    }

    async fn elements(&self, operation: &'static str) -> Result<Vec<Element>, NftError> {
        let output = self.run(operation, json::list(&self.config)).await?;
        json::parse_listing(&self.config, &output).map_err(|detail| NftError::Output {
            operation,
            command: self.argv.join(" "),
            detail,
        })
    }

    /// Runs one batch; its standard output on success.
    async fn run(
        &self,
        operation: &'static str,
        commands: Vec<Value>,
    ) -> Result<Vec<u8>, NftError> {
        let input = json::batch(commands);
        let command = || self.argv.join(" ");
        let keep = Keep {
            stdout: LISTING_MAX,
            stderr: STDERR_KEPT,
        };
        match child::run(&self.argv, Some(&input), self.config.timeout, keep).await {
            Ok(done) if done.status.success() => {
                if done.stdout.omitted > 0 {
                    return Err(NftError::Output {
                        operation,
                        command: command(),
                        detail: format!("more than {LISTING_MAX} bytes"),
                    });
                }
                Ok(done.stdout.kept)
            }
            Ok(done) => Err(NftError::Failed {
                operation,
                command: command(),
                status: done.status,
                stderr: crate::bounded_text(&done.stderr.kept, STDERR_KEPT, done.stderr.omitted),
            }),
            Err(RunError::Spawn(error) | RunError::Wait(error)) => Err(NftError::Run {
                operation,
                command: command(),
                error,
            }),
            Err(RunError::TimedOut) => Err(NftError::TimedOut {
                operation,
                command: command(),
                after: self.config.timeout,
            }),
        }
    }
}

/// Whole seconds, rounded up, within what the kernel takes.
fn seconds(d: Duration) -> u64 {
    let d = d.min(MAX_TIMEOUT);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// One element per range, the last given deciding its time, in first-seen order.
fn latest(elements: impl Iterator<Item = Element>) -> Vec<Element> {
    let mut out: Vec<Element> = Vec::new();
    let mut at = std::collections::HashMap::new();
    for e in elements {
        match at.get(&e.span()) {
            Some(&i) => out[i] = e,
            None => {
                at.insert(e.span(), out.len());
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_are_validated() {
        assert!(Nft::new(NftConfig::default()).is_ok());
        let cases: [fn(&mut NftConfig); 7] = [
            |c| c.table = "port cullis".into(),
            |c| c.chain = String::new(),
            |c| c.set_v4 = "x".repeat(65),
            |c| c.set_v6 = "banned6; flush ruleset".into(),
            |c| c.family = "ip".into(),
            |c| c.command = vec![],
            |c| c.set_v6 = c.set_v4.clone(),
        ];
        for change in cases {
            let mut config = NftConfig::default();
            change(&mut config);
            let err = Nft::new(config.clone()).unwrap_err();
            assert!(matches!(err, NftError::Config { .. }), "{config:?}: {err}");
        }
        let longest = NftConfig {
            table: "A_b9".repeat(16),
            ..NftConfig::default()
        };
        assert!(Nft::new(longest).is_ok());
    }

    #[tokio::test]
    async fn an_nft_that_hangs_is_killed_at_the_timeout() {
        let nft = Nft::new(NftConfig {
            // `sh -c 'sleep 10' nft -j -f -`: the words after the script are ignored.
            command: ["sh", "-c", "sleep 10", "nft"].map(String::from).to_vec(),
            timeout: Duration::from_millis(200),
            ..NftConfig::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = nft.setup().await.unwrap_err();
        assert!(matches!(err, NftError::TimedOut { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_nft_is_an_error_naming_the_command() {
        let nft = Nft::new(NftConfig {
            command: vec!["/nonexistent/nft".into()],
            ..NftConfig::default()
        })
        .unwrap();
        let err = nft.cleanup().await.unwrap_err();
        assert!(matches!(err, NftError::Run { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/nft -j -f -"),
            "{err}"
        );
    }

    #[test]
    fn durations_become_whole_seconds_between_one_and_the_maximum() {
        assert_eq!(seconds(Duration::ZERO), 1);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::from_secs(60)), 60);
        assert_eq!(seconds(Duration::MAX), MAX_TIMEOUT.as_secs());
    }

    #[test]
    fn the_last_ban_of_the_same_network_decides() {
        let e = |s: &str, t| Element::of_net(s.parse().unwrap(), Some(t));
        let got = latest(
            [
                e("10.0.0.1/32", 5),
                e("10.0.0.2/32", 5),
                e("10.0.0.1/32", 9),
            ]
            .into_iter(),
        );
        assert_eq!(got, [e("10.0.0.1/32", 9), e("10.0.0.2/32", 5)]);
    }
}
