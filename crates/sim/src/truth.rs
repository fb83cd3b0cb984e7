//! The ground truth written beside the simulated logs (`truth.json`).
//!
//! Every source that made an attempt, with its role (which benign kind, or which
//! campaign) and its counts; every campaign with its kind, first and last attempt,
//! sources and accounts; the compromised accounts; the legitimate users. `portcullis
//! eval` scores a report against it. Versioned like the report: fields may be added,
//! never renamed.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::campaign::Source;
use crate::population::SourceKind;
use crate::{Actor, Attempt, Simulation};

/// The whole truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Format version (1).
    pub version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Benign volume multiplier used.
    pub scale: f64,
    /// First instant.
    pub start: String,
    /// End instant.
    pub end: String,
    /// Log files written (names inside the output folder).
    pub files: Vec<String>,
    /// Lines written, all files.
    pub lines: u64,
    /// Login attempts in the logs (each is one event).
    pub attempts: u64,
    /// Accounts in the organisation.
    pub accounts: u32,
    /// Accounts whose owners logged in during the scenario.
    pub legitimate_users: Vec<String>,
    /// Accounts an attacker logged into.
    pub compromised_accounts: Vec<String>,
    /// Every source that made an attempt.
    pub sources: Vec<SourceTruth>,
    /// Every attack.
    pub campaigns: Vec<CampaignTruth>,
}

/// One source address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTruth {
    /// Canonical address.
    pub address: String,
    /// `attacker` or `benign`.
    pub role: String,
    /// Attackers: the campaign's kind; benign: `office_gateway`, `vpn_gateway`,
    /// `cgnat`, `home`, `traveller`, `stale_device`.
    pub kind: String,
    /// Attackers: the campaign id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub campaign: Option<String>,
    /// Attackers rotating inside a /64: that prefix.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prefix: Option<String>,
    /// Failed attempts.
    pub failures: u64,
    /// Successful logins.
    pub successes: u64,
}

/// One campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTruth {
    /// `c1`, `c2`, …
    pub id: String,
    /// Contract kind.
    pub kind: String,
    /// First attempt.
    pub start: String,
    /// Last attempt.
    pub end: String,
    /// Addresses that took part.
    pub sources: u64,
    /// Distinct names tried.
    pub accounts_targeted: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Accounts that fell.
    pub accounts_compromised: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct SourceStats {
    actor: Actor,
    failures: u64,
    successes: u64,
}

/// Accumulates the truth slot by slot.
#[derive(Debug, Default)]
pub struct TruthBuilder {
    sources: HashMap<IpAddr, SourceStats>,
    campaign_attempts: Vec<u64>,
    campaign_span: Vec<Option<(i64, i64)>>,
    legitimate: Vec<bool>,
    attempts: u64,
    lines: u64,
}

/// Benign kinds by how telling they are: a stale device sits at its owner's home.
fn precedence(k: SourceKind) -> u8 {
    match k {
        SourceKind::StaleDevice => 3,
        SourceKind::Traveller => 2,
        _ => 1,
    }
}

impl TruthBuilder {
    /// A builder for this simulation.
    pub fn new(sim: &Simulation) -> Self {
        Self {
            campaign_attempts: vec![0; sim.campaigns().len()],
            campaign_span: vec![None; sim.campaigns().len()],
            legitimate: vec![false; sim.population().accounts.len()],
            ..Default::default()
        }
    }

    /// Adds a slot's attempts and line count.
    pub fn add(&mut self, attempts: &[Attempt], lines: u64) {
        self.lines += lines;
        self.attempts += attempts.len() as u64;
        for a in attempts {
            let s = self.sources.entry(a.source).or_insert(SourceStats {
                actor: a.actor,
                failures: 0,
                successes: 0,
            });
            match (s.actor, a.actor) {
                (Actor::Benign(old), Actor::Benign(new)) if precedence(new) > precedence(old) => {
                    s.actor = a.actor
                }
                (Actor::Benign(_), Actor::Attacker(_)) => s.actor = a.actor,
                _ => {}
            }
            if a.outcome.is_failure() {
                s.failures += 1;
            } else {
                s.successes += 1;
            }
            match a.actor {
                Actor::Attacker(c) => {
                    let c = usize::from(c);
                    self.campaign_attempts[c] += 1;
                    let span = self.campaign_span[c].get_or_insert((a.at_ms, a.at_ms));
                    span.0 = span.0.min(a.at_ms);
                    span.1 = span.1.max(a.at_ms);
                }
                Actor::Benign(_) => {
                    if let crate::Target::Account(i) = a.target {
                        self.legitimate[i as usize] = true;
                    }
                }
            }
        }
    }

    /// The truth, with `files` the log files written.
    pub fn finish(self, sim: &Simulation, files: Vec<String>) -> Truth {
        let zone = sim.zone.clone();
        let time = |ms: i64| show(ms, &zone);
        let pop = sim.population();
        let campaigns: Vec<CampaignTruth> = sim
            .campaigns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (first, last) = self.campaign_span[i].unwrap_or((c.start_ms, c.start_ms));
                let sources = self
                    .sources
                    .values()
                    .filter(|s| s.actor == Actor::Attacker(c.index))
                    .count() as u64;
                CampaignTruth {
                    id: c.id.clone(),
                    kind: c.kind.as_str().to_owned(),
                    start: time(first),
                    end: time(last),
                    sources,
                    accounts_targeted: c.names_tried() as u64,
                    attempts: self.campaign_attempts[i],
                    accounts_compromised: c
                        .compromised
                        .iter()
                        .map(|&a| pop.accounts[a as usize].name.clone())
                        .collect(),
                }
            })
            .collect();
        let mut compromised: Vec<String> = campaigns
            .iter()
            .flat_map(|c| c.accounts_compromised.iter().cloned())
            .collect();
        compromised.sort();
        compromised.dedup();
        let rotating: HashMap<u16, Vec<u64>> = sim
            .campaigns()
            .iter()
            .map(|c| {
                let p = c
                    .sources
                    .iter()
                    .filter_map(|s| {
                        if let Source::Rotating(p) = s {
                            Some(*p)
                        } else {
                            None
                        }
                    })
                    .collect();
                (c.index, p)
            })
            .collect();
        let mut sources: BTreeMap<IpAddr, SourceTruth> = BTreeMap::new();
        for (addr, s) in &self.sources {
            let (role, kind, campaign, prefix) = match s.actor {
                Actor::Benign(k) => ("benign", k.as_str().to_owned(), None, None),
                Actor::Attacker(c) => {
                    let camp = &sim.campaigns()[usize::from(c)];
                    let prefix = match addr {
                        IpAddr::V6(v6) => {
                            let p = (u128::from(*v6) >> 64) as u64;
                            rotating[&c].contains(&p).then(|| {
                                format!("{}/64", std::net::Ipv6Addr::from(u128::from(p) << 64))
                            })
                        }
                        IpAddr::V4(_) => None,
                    };
                    (
                        "attacker",
                        camp.kind.as_str().to_owned(),
                        Some(camp.id.clone()),
                        prefix,
                    )
                }
            };
            sources.insert(
                *addr,
                SourceTruth {
                    address: addr.to_string(),
                    role: role.to_owned(),
                    kind,
                    campaign,
                    prefix,
                    failures: s.failures,
                    successes: s.successes,
                },
            );
        }
        let s = sim.scenario();
        Truth {
            version: 1,
            scenario: s.name.clone(),
            seed: sim.options.seed,
            scale: sim.options.scale,
            start: time(s.start.as_millisecond()),
            end: time(s.start.as_millisecond() + i64::from(s.hours) * 3_600_000),
            files,
            lines: self.lines,
            attempts: self.attempts,
            accounts: pop.accounts.len() as u32,
            legitimate_users: pop
                .accounts
                .iter()
                .zip(&self.legitimate)
                .filter(|(_, l)| **l)
                .map(|(a, _)| a.name.clone())
                .collect(),
            compromised_accounts: compromised,
            sources: sources.into_values().collect(),
            campaigns,
        }
    }
}

/// RFC 3339 in the scenario's zone.
pub fn show(ms: i64, zone: &TimeZone) -> String {
    let t = Timestamp::from_millisecond(ms).unwrap_or_default();
    t.display_with_offset(zone.to_offset(t)).to_string()
}
