//! Findings: what the engine concludes, as it concludes it, for a live shell to act on.
//!
//! The batch report ([`super::Engine::report`]) is built from the engine's tables at the
//! end; the daemon cannot wait for the end. With [`super::Engine::enable_findings`], each
//! judgement is also queued as a [`Finding`] at the moment (in event time) it is made,
//! and [`super::Engine::take_findings`] hands them over. A finding is never withdrawn:
//! verdicts are final.

use std::net::IpAddr;

use super::Kind;

/// One conclusion of the engine. Times are event time, in Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A source was judged an attacker.
    Attacker {
        /// The source address.
        source: IpAddr,
        /// What it does.
        kind: Kind,
        /// When it was judged.
        at: i64,
        /// Why, in words.
        evidence: String,
    },
    /// An IPv6 network whose addresses together attack (one client rotating addresses).
    AttackerPrefix {
        /// The network's first address.
        network: IpAddr,
        /// Its prefix length.
        len: u8,
        /// What it does.
        kind: Kind,
        /// When it was judged.
        at: i64,
        /// Why, in words.
        evidence: String,
    },
    /// An account logged in from an attacker, from a place it had not used before.
    Compromised {
        /// The canonical account name.
        account: String,
        /// The attacker's address.
        source: IpAddr,
        /// The attacker's kind.
        kind: Kind,
        /// When the login happened.
        login_at: i64,
        /// When it was known to be the attacker's (the later of the login and the
        /// verdict).
        at: i64,
    },
    /// A campaign was recognised.
    Campaign {
        /// Its number, the same as in the report (`c` + id + 1).
        id: usize,
        /// Its kind when opened.
        kind: Kind,
        /// Opened by the site-wide detectors (many sources), not one source or account.
        distributed: bool,
        /// Its first suspicious failure.
        start: i64,
        /// When it was recognised.
        detected_at: i64,
    },
}

/// Findings held when nobody takes them: the oldest go first beyond this many.
pub(super) const MAX_FINDINGS: usize = 1 << 20;
