//! Portcullis' actions: what the daemon does to the world once it has decided.
//!
//! The engine (`portcullis-core`) decides, purely, that an address or a network is to be
//! banned for so long, or that an account is locked; the daemon (`portcullis run`) hands
//! those decisions to the adapters in this crate, which do the I/O:
//!
//! - [`nft`]: the kernel firewall. Banned addresses and networks are elements of two
//!   nftables sets (IPv4 and IPv6) in a table of our own, with per-element timeouts so the
//!   kernel lifts a ban even if the daemon is gone. Driven through `nft -j -f -` with JSON
//!   built from typed values, never from concatenated text.
//! - [`webhook`]: a signed JSON POST of each [`Notice`] to one URL, retried with backoff,
//!   from a bounded queue.
//! - [`exec`]: an operator's program run for each [`Notice`], with placeholders
//!   substituted into its arguments (never through a shell), bounded in time, in
//!   concurrency and in queue length.
//!
//! What it is not for: deciding (who to ban and for how long is the engine's job; the
//! [`nft::Nft`] adapter does exactly what it is told), configuration files, logging
//! (nft calls return their errors; the webhook and exec workers count what happened and
//! keep their newest error for the daemon to report), mail notifications and the admin
//! API (elsewhere).
//!
//! Every queue is bounded: when a webhook or exec queue is full, the notice is dropped
//! and counted, and the caller is told, so a flood of bans never grows memory or blocks
//! the engine. See `docs/actions.md` for the operator's view.
//!
//! # Layout
//!
//! - [`nft`]: [`nft::Nft`] (setup, ban, unban, list, reconcile, cleanup) and the pure
//!   model of the sets' contents that plans changes when bans overlap.
//! - [`webhook`]: [`webhook::Webhook`], its worker task, signatures and retry rules.
//! - [`exec`]: [`exec::Exec`], its argument templates and the runner.
//! - `child` (private): running a program with a timeout, bounded output capture and the
//!   whole process group killed when it overstays; shared by `nft` and `exec`.
#![deny(missing_docs)]

mod child;
pub mod exec;
pub mod nft;
pub mod webhook;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

/// What happened, for webhooks and exec actions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// What was done.
    pub action: NoticeAction,
    /// When, as RFC 3339 wall-clock time, set by the caller.
    pub time: String,
    /// The single address banned, when the ban is of one address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The network banned (for a single address, its /32 or /128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<IpNet>,
    /// The account locked or unlocked, or under attack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The kind of attack: `brute_force`, `password_spray`, `credential_stuffing`,
    /// `targeted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Why, in words for people.
    pub reason: String,
    /// How long the ban or lock lasts, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
    /// Whether the daemon runs in dry-run mode, so nothing was really banned.
    pub dry_run: bool,
}

/// The action a [`Notice`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeAction {
    /// An address or network was banned.
    Ban,
    /// A ban was lifted.
    Unban,
    /// An account was locked.
    Lock,
    /// An account was unlocked.
    Unlock,
}

impl NoticeAction {
    /// The action's name as it appears in JSON and in exec placeholders.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeAction::Ban => "ban",
            NoticeAction::Unban => "unban",
            NoticeAction::Lock => "lock",
            NoticeAction::Unlock => "unlock",
        }
    }
}

impl std::fmt::Display for NoticeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keeps at most the first `max` bytes of `text`, cut at a character boundary, and says
/// how much was left out.
pub(crate) fn bounded_text(bytes: &[u8], max: usize, omitted: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end + omitted;
    if cut == 0 {
        text.to_owned()
    } else {
        format!("{} … ({cut} more bytes)", &text[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_serialises_with_snake_case_action_and_without_absent_fields() {
        let notice = Notice {
            action: NoticeAction::Ban,
            time: "2017-06-23T09:14:05+01:00".into(),
            address: Some("203.0.113.7".parse().unwrap()),
            prefix: Some("203.0.113.7/32".parse().unwrap()),
            account: None,
            kind: Some("password_spray".into()),
            reason: "17 accounts".into(),
            duration_secs: Some(3600),
            dry_run: false,
        };
        let json = serde_json::to_string(&notice).unwrap();
        assert_eq!(
            json,
            r#"{"action":"ban","time":"2017-06-23T09:14:05+01:00","address":"203.0.113.7","prefix":"203.0.113.7/32","kind":"password_spray","reason":"17 accounts","duration_secs":3600,"dry_run":false}"#
        );
    }

    #[test]
    fn bounded_text_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(bounded_text(b"  short\n", 10, 0), "short");
        assert_eq!(bounded_text("ééé".as_bytes(), 3, 0), "é … (4 more bytes)");
        assert_eq!(bounded_text(b"abc", 10, 5), "abc … (5 more bytes)");
    }
}
