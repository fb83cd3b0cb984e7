//! The engine's thresholds, each with a documented default and a configuration key
//! (docs/analyze.md lists them).

use serde::{Deserialize, Serialize};

/// Every threshold the detectors use. Keys are the field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// A failure followed by a success of the same account from the same source within
    /// this many seconds was a typo, not a guess.
    pub typo_window_secs: i64,
    /// Brute force: at least this many suspicious failures from one source ...
    pub brute_force_failures: u32,
    /// ... within this many seconds ...
    pub brute_force_window_secs: i64,
    /// ... on at most this many accounts.
    pub brute_force_max_accounts: u32,
    /// Password spray from one source: suspicious failures on at least this many
    /// distinct accounts.
    pub spray_accounts: u32,
    /// A source is judged on failures only when at least this share of its attempts
    /// failed (shared gateways succeed far more often than they fail).
    pub min_failure_share: f64,
    /// Credential stuffing: at least this many distinct names tried ...
    pub stuffing_accounts: u32,
    /// ... of which at least this share do not exist.
    pub stuffing_unknown_share: f64,
    /// Distributed campaign (CUSUM over per-minute counts of distinct suspicious
    /// sources): allowance above the learned baseline, in sources per minute.
    pub cusum_allowance: f64,
    /// ... and the alarm level of the cumulative sum.
    pub cusum_threshold: f64,
    /// ... a campaign ends after this many quiet minutes.
    pub campaign_quiet_mins: i64,
    /// Slow distributed campaigns (the same CUSUM per hour): allowance above the
    /// baseline, in sources per hour ...
    pub slow_cusum_allowance: f64,
    /// ... alarm level ...
    pub slow_cusum_threshold: f64,
    /// ... and quiet hours that end such a campaign.
    pub slow_campaign_quiet_hours: i64,
    /// The burst detector: over this many seconds, distinct sources with suspicious
    /// failures and no history, tested against the per-hour detector's baseline as a
    /// Poisson count. It sees a slow spray in minutes where the per-hour CUSUM needs a
    /// dozen names. `0` turns it off.
    pub burst_window_secs: i64,
    /// ... alarming when at least this many sources ...
    pub burst_min_sources: u32,
    /// ... are that unlikely under the baseline (the chance of as many or more).
    pub burst_p: f64,
    /// A participant of a distributed campaign has suspicious failures on at least this
    /// many distinct accounts (or names) during it.
    pub participant_accounts: u32,
    /// A member of a distributed campaign whose share of unknown names would make it
    /// another kind on its own (stuffing in a spray, or the reverse) keeps the
    /// campaign's kind unless its count of unknown names is at most this likely under
    /// the campaign's own mix (a Poisson tail): among hundreds of members each trying a
    /// dozen names, a few draw more unknown names by chance, and one attack is one
    /// campaign. `0` turns this off.
    pub member_kind_p: f64,
    /// ... or, never having logged in (or only into accounts it was a stranger to),
    /// failed on an account being sprayed: at least this many of the account's other
    /// attackers are spray members that tried several accounts, and they are at least
    /// `1 - targeted_focus` of its attackers (so a targeted account's lone guessers are
    /// left to the targeted detector). `0` turns the rule off.
    pub probe_account_sources: u32,
    /// Targeted guessing: an account tried by at least this many distinct suspicious
    /// sources ...
    pub targeted_sources: u32,
    /// ... most of which (this share) try at most two accounts.
    pub targeted_focus: f64,
    /// IPv4 prefix length sources are aggregated at.
    pub prefix_v4: u8,
    /// IPv6 prefix length sources are aggregated at (one client's /64 can rotate).
    pub prefix_v6: u8,
    /// Memory bounds: sources tracked ...
    pub max_sources: usize,
    /// ... accounts tracked ...
    pub max_accounts: usize,
    /// ... prefixes tracked.
    pub max_prefixes: usize,
    /// Failures waiting to learn whether they were typos.
    pub max_pending: usize,
    /// Campaigns kept; beyond this the oldest single-source ones are retired into an
    /// archive (their sources are still reported, each as its own campaign).
    pub max_campaigns: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            typo_window_secs: 60,
            brute_force_failures: 10,
            brute_force_window_secs: 600,
            brute_force_max_accounts: 3,
            spray_accounts: 10,
            min_failure_share: 0.5,
            stuffing_accounts: 5,
            stuffing_unknown_share: 0.3,
            cusum_allowance: 2.0,
            cusum_threshold: 8.0,
            campaign_quiet_mins: 30,
            slow_cusum_allowance: 3.0,
            slow_cusum_threshold: 10.0,
            slow_campaign_quiet_hours: 2,
            burst_window_secs: 300,
            burst_min_sources: 5,
            burst_p: 1e-6,
            participant_accounts: 2,
            member_kind_p: 1e-3,
            probe_account_sources: 3,
            targeted_sources: 10,
            targeted_focus: 0.7,
            prefix_v4: 24,
            prefix_v6: 64,
            max_sources: 1_000_000,
            max_accounts: 1_000_000,
            max_prefixes: 1_000_000,
            max_pending: 1_000_000,
            max_campaigns: 10_000,
        }
    }
}
