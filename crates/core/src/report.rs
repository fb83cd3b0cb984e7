//! The report contract: what `portcullis analyze --format json` writes and what other
//! tools (and `portcullis eval`) read.
//!
//! Versioned and stable: fields may be added, never renamed. Readers ignore fields they
//! do not know and take absent optional fields as unknown, so a newer report still
//! reads. See DESIGN.md, "The report contract".

use serde::{Deserialize, Serialize};

/// The current contract version.
pub const VERSION: u32 = 1;

/// A whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Contract version.
    pub version: u32,
    /// What was read.
    #[serde(default)]
    pub input: Input,
    /// Every source that is not plainly benign.
    #[serde(default)]
    pub sources: Vec<SourceReport>,
    /// Every account that is compromised, targeted or locked.
    #[serde(default)]
    pub accounts: Vec<AccountReport>,
    /// One per attack.
    #[serde(default)]
    pub campaigns: Vec<CampaignReport>,
}

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Input {
    /// Files, as named.
    pub files: Vec<String>,
    /// Lines read.
    pub lines: u64,
    /// Events found.
    pub events: u64,
    /// Auth-looking lines no parser understood.
    pub unparsed_auth_lines: u64,
    /// First event's time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<String>,
    /// Last event's time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

/// One source's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceReport {
    /// Canonical address (or a prefix such as `2001:db8:1:2::/64`).
    pub address: String,
    /// `attacker`, `suspicious` or `benign`.
    pub verdict: String,
    /// Attack kinds (`brute_force`, `password_spray`, `credential_stuffing`, `targeted`).
    pub attacks: Vec<String>,
    /// First seen (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// Last seen (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Failed attempts.
    pub failures: u64,
    /// Successful logins.
    pub successes: u64,
    /// Distinct accounts tried.
    pub accounts_tried: u64,
    /// Attempts on accounts that do not exist.
    pub unknown_accounts: u64,
    /// Why, for a person.
    pub evidence: String,
    /// The services it tried to log in through (`dovecot`, `exchange`, `sshd`, …, as
    /// in `events`), in a fixed order.
    pub services: Vec<String>,
}

/// One account's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountReport {
    /// The account.
    pub user: String,
    /// `compromised`, `targeted` or `locked`.
    pub status: String,
    /// Failed attempts on it.
    pub failures: u64,
    /// Attacking sources that tried it.
    pub attack_sources: u64,
    /// Why, for a person.
    pub evidence: String,
}

/// One attack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignReport {
    /// Report-local id.
    pub id: String,
    /// Attack kind.
    pub kind: String,
    /// First attempt (RFC 3339).
    pub start: String,
    /// The event time at which Portcullis could first have alerted (RFC 3339).
    pub detected_at: String,
    /// Last attempt (RFC 3339).
    pub end: String,
    /// Sources taking part.
    pub sources: u64,
    /// Accounts tried.
    pub accounts_targeted: u64,
    /// Accounts that fell.
    pub accounts_compromised: Vec<String>,
    /// The services its sources tried to log in through: the doors it came through.
    pub services: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_design_example_and_ignores_new_fields() {
        let text = r#"{
          "version": 1,
          "input": {"files": ["mail.log"], "lines": 1234567, "events": 345678,
                    "unparsed_auth_lines": 0, "first_event": "2017-06-23T00:00:01+01:00",
                    "last_event": "2017-06-24T12:00:00+01:00", "later_field": true},
          "sources": [{"address": "203.0.113.7", "verdict": "attacker",
             "attacks": ["password_spray"], "first_seen": "2017-06-23T08:00:00+01:00",
             "last_seen": "2017-06-23T20:00:00+01:00", "failures": 17, "successes": 1,
             "accounts_tried": 17, "unknown_accounts": 0, "evidence": "17 distinct accounts"}],
          "accounts": [{"user": "j.smith@parliament.example", "status": "compromised",
             "failures": 3, "attack_sources": 2, "evidence": "login success from 203.0.113.7"}],
          "campaigns": [{"id": "c1", "kind": "password_spray", "start": "2017-06-23T08:00:00+01:00",
             "detected_at": "2017-06-23T08:03:00+01:00", "end": "2017-06-23T20:00:00+01:00",
             "sources": 1650, "accounts_targeted": 9210,
             "accounts_compromised": ["j.smith@parliament.example"]}]
        }"#;
        let r: Report = serde_json::from_str(text).unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(r.sources[0].verdict, "attacker");
        assert_eq!(r.accounts[0].status, "compromised");
        assert_eq!(
            r.campaigns[0].accounts_compromised,
            ["j.smith@parliament.example"]
        );
        assert_eq!(
            r.input.first_event.as_deref(),
            Some("2017-06-23T00:00:01+01:00")
        );
    }
}
