//! Scoring a report against the truth: what `portcullis eval` prints.
//!
//! Recall of attacking sources per attack kind; benign sources flagged, split by the
//! kinds that are hard to tell from attackers (shared gateways, CGNAT, stale devices);
//! legitimate users a defender would have locked out; compromised accounts found and
//! wrongly named; and how long after each campaign began the report could first have
//! alerted. Pure: the binary reads the files and prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;
use portcullis_core::report::Report;
use serde::Serialize;

use crate::truth::Truth;

/// Recall of one attack kind's sources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindRecall {
    /// Attack kind.
    pub kind: String,
    /// Attacking sources in the truth.
    pub sources: u64,
    /// Of those, reported as attacker.
    pub found: u64,
    /// Of those, reported only as suspicious.
    pub suspicious: u64,
    /// found / sources.
    pub recall: f64,
}

/// Benign sources of one class reported as attacker or suspicious.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenignClass {
    /// `shared_gateway` (office NAT, VPN), `cgnat`, `stale_device`, `other` (home,
    /// travelling users).
    pub class: String,
    /// Benign sources of the class.
    pub sources: u64,
    /// Reported as attacker.
    pub attacker: u64,
    /// Reported as suspicious.
    pub suspicious: u64,
}

/// Compromised accounts found and wrongly named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompromiseScore {
    /// Accounts that fell, in the truth.
    pub truth: u64,
    /// Of those, reported compromised.
    pub found: u64,
    /// found / truth (1 when nothing fell).
    pub recall: f64,
    /// Reported compromised but did not fall.
    pub false_positives: Vec<String>,
    /// false positives / accounts reported compromised (0 when none reported).
    pub false_positive_rate: f64,
    /// Fell but not reported.
    pub missed: Vec<String>,
}

/// One campaign's detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignScore {
    /// Truth id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// First attempt, in the truth.
    pub start: String,
    /// The earliest `detected_at` of a reported campaign of the same kind overlapping
    /// it in time, if any.
    pub detected_at: Option<String>,
    /// Seconds from start to detection (0 if the report saw it coming).
    pub delay_seconds: Option<i64>,
}

/// The whole score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Per attack kind.
    pub attacks: Vec<KindRecall>,
    /// Benign sources in the truth.
    pub benign_sources: u64,
    /// Benign sources reported as attacker.
    pub benign_flagged: u64,
    /// benign_flagged / benign_sources.
    pub benign_flagged_rate: f64,
    /// Per benign class.
    pub benign: Vec<BenignClass>,
    /// Legitimate users reported as locked.
    pub locked_out: Vec<String>,
    /// Compromised accounts.
    pub compromise: CompromiseScore,
    /// Per campaign.
    pub campaigns: Vec<CampaignScore>,
}

/// Limits a score must keep; `None` means not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Minimum source recall, per attack kind (`all` for every kind).
    pub min_source_recall: Vec<(String, f64)>,
    /// Minimum compromised-account recall.
    pub min_compromise_recall: Option<f64>,
    /// Maximum rate of wrongly named compromised accounts.
    pub max_compromise_false_positive_rate: Option<f64>,
    /// Maximum share of benign sources reported as attacker.
    pub max_benign_flagged_rate: Option<f64>,
    /// Maximum shared gateways and stale devices reported as attacker.
    pub max_gateways_flagged: Option<u64>,
    /// Maximum legitimate users locked out.
    pub max_locked_out: Option<u64>,
    /// Maximum detection delay, seconds; an undetected campaign fails it.
    pub max_delay_seconds: Option<i64>,
}

fn class_of(kind: &str) -> &'static str {
    match kind {
        "office_gateway" | "vpn_gateway" => "shared_gateway",
        "cgnat" => "cgnat",
        "stale_device" => "stale_device",
        _ => "other",
    }
}

/// An address or prefix from a report.
enum Net {
    Addr(IpAddr),
    Prefix(IpAddr, u8),
}

impl Net {
    fn parse(text: &str) -> Option<Net> {
        match text.split_once('/') {
            None => portcullis_core::address::parse(text).map(Net::Addr),
            Some((a, len)) => {
                let a: IpAddr = a.parse().ok()?;
                let len: u8 = len.parse().ok()?;
                let max = if a.is_ipv4() { 32 } else { 128 };
                (len <= max).then_some(Net::Prefix(a, len))
            }
        }
    }

    fn contains(&self, x: &IpAddr) -> bool {
        match (self, x) {
            (Net::Addr(a), x) => a == x,
            (Net::Prefix(IpAddr::V4(p), len), IpAddr::V4(x)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*len))
                };
                u32::from(*p) & mask == u32::from(*x) & mask
            }
            (Net::Prefix(IpAddr::V6(p), len), IpAddr::V6(x)) => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*len))
                };
                u128::from(*p) & mask == u128::from(*x) & mask
            }
            _ => false,
        }
    }
}

/// Account names compare case-insensitively; a report that shows local parts only
/// (SSH, or `--domain strip`) matches the truth's `local@domain` on the local part.
fn same_account(report: &str, truth: &str) -> bool {
    let (r, t) = (report.to_lowercase(), truth.to_lowercase());
    r == t || (!r.contains('@') && t.split_once('@').is_some_and(|(local, _)| local == r))
}

fn ratio(n: u64, d: u64, empty: f64) -> f64 {
    if d == 0 { empty } else { n as f64 / d as f64 }
}

/// Scores `report` against `truth`.
pub fn score(truth: &Truth, report: &Report) -> Score {
    // Verdict per truth address: the strongest verdict of any report entry covering it.
    let mut verdicts: HashMap<IpAddr, u8> = HashMap::new();
    let truth_addrs: Vec<IpAddr> = truth
        .sources
        .iter()
        .filter_map(|s| s.address.parse().ok())
        .collect();
    let truth_set: HashSet<IpAddr> = truth_addrs.iter().copied().collect();
    for s in &report.sources {
        let rank = match s.verdict.as_str() {
            "attacker" => 2,
            "suspicious" => 1,
            _ => continue,
        };
        match Net::parse(&s.address) {
            Some(Net::Addr(a)) if truth_set.contains(&a) => {
                let v = verdicts.entry(a).or_default();
                *v = (*v).max(rank);
            }
            Some(Net::Addr(_)) => {}
            Some(net) => {
                for a in truth_addrs.iter().filter(|a| net.contains(a)) {
                    let v = verdicts.entry(*a).or_default();
                    *v = (*v).max(rank);
                }
            }
            None => {}
        }
    }
    let verdict = |addr: &str| {
        addr.parse::<IpAddr>()
            .ok()
            .and_then(|a| verdicts.get(&a).copied())
            .unwrap_or(0)
    };

    let mut kinds: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    let mut classes: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for s in &truth.sources {
        let v = verdict(&s.address);
        let slot = if s.role == "attacker" {
            kinds.entry(s.kind.as_str()).or_default()
        } else {
            classes.entry(class_of(&s.kind)).or_default()
        };
        slot.0 += 1;
        match v {
            2 => slot.1 += 1,
            1 => slot.2 += 1,
            _ => {}
        }
    }
    let attacks = kinds
        .into_iter()
        .map(|(kind, (n, found, sus))| KindRecall {
            kind: kind.to_owned(),
            sources: n,
            found,
            suspicious: sus,
            recall: ratio(found, n, 1.0),
        })
        .collect();
    let benign: Vec<BenignClass> = classes
        .into_iter()
        .map(|(class, (n, a, s))| BenignClass {
            class: class.to_owned(),
            sources: n,
            attacker: a,
            suspicious: s,
        })
        .collect();
    let benign_sources: u64 = benign.iter().map(|c| c.sources).sum();
    let benign_flagged: u64 = benign.iter().map(|c| c.attacker).sum();

    let legit: HashSet<String> = truth
        .legitimate_users
        .iter()
        .map(|u| u.to_lowercase())
        .collect();
    let locked_out: Vec<String> = report
        .accounts
        .iter()
        .filter(|a| a.status == "locked")
        .filter(|a| legit.iter().any(|l| same_account(&a.user, l)))
        .map(|a| a.user.clone())
        .collect();

    let reported: Vec<&str> = report
        .accounts
        .iter()
        .filter(|a| a.status == "compromised")
        .map(|a| a.user.as_str())
        .collect();
    let found = truth
        .compromised_accounts
        .iter()
        .filter(|t| reported.iter().any(|r| same_account(r, t)))
        .count() as u64;
    let missed = truth
        .compromised_accounts
        .iter()
        .filter(|t| !reported.iter().any(|r| same_account(r, t)))
        .cloned()
        .collect();
    let false_positives: Vec<String> = reported
        .iter()
        .filter(|r| {
            !truth
                .compromised_accounts
                .iter()
                .any(|t| same_account(r, t))
        })
        .map(|r| (*r).to_owned())
        .collect();
    let compromise = CompromiseScore {
        truth: truth.compromised_accounts.len() as u64,
        found,
        recall: ratio(found, truth.compromised_accounts.len() as u64, 1.0),
        false_positive_rate: ratio(false_positives.len() as u64, reported.len() as u64, 0.0),
        false_positives,
        missed,
    };

    let ts = |s: &str| s.parse::<Timestamp>().ok();
    let campaigns = truth
        .campaigns
        .iter()
        .map(|c| {
            let (start, end) = (ts(&c.start), ts(&c.end));
            let detected = report
                .campaigns
                .iter()
                .filter(|r| r.kind == c.kind)
                .filter(|r| match (start, end, ts(&r.start), ts(&r.end)) {
                    (Some(s0), Some(e0), Some(s1), Some(e1)) => s1 <= e0 && s0 <= e1,
                    _ => false,
                })
                .filter_map(|r| ts(&r.detected_at).map(|d| (d, r.detected_at.clone())))
                .min_by_key(|(d, _)| *d);
            CampaignScore {
                id: c.id.clone(),
                kind: c.kind.clone(),
                start: c.start.clone(),
                delay_seconds: detected
                    .as_ref()
                    .zip(start)
                    .map(|((d, _), s)| d.duration_since(s).as_secs().max(0)),
                detected_at: detected.map(|(_, text)| text),
            }
        })
        .collect();

    Score {
        attacks,
        benign_sources,
        benign_flagged,
        benign_flagged_rate: ratio(benign_flagged, benign_sources, 0.0),
        benign,
        locked_out,
        compromise,
        campaigns,
    }
}

/// The thresholds a score breaks, each as one line.
pub fn check(s: &Score, t: &Thresholds) -> Vec<String> {
    let mut fails = Vec::new();
    for (kind, min) in &t.min_source_recall {
        for k in s
            .attacks
            .iter()
            .filter(|k| kind == "all" || &k.kind == kind)
        {
            if k.recall < *min {
                fails.push(format!("{} source recall {:.3} < {min}", k.kind, k.recall));
            }
        }
        if kind != "all" && !s.attacks.iter().any(|k| &k.kind == kind) {
            fails.push(format!(
                "no {kind} attack in the truth to measure recall on"
            ));
        }
    }
    if let Some(min) = t.min_compromise_recall
        && s.compromise.recall < min
    {
        fails.push(format!(
            "compromised-account recall {:.3} < {min}",
            s.compromise.recall
        ));
    }
    if let Some(max) = t.max_compromise_false_positive_rate
        && s.compromise.false_positive_rate > max
    {
        fails.push(format!(
            "compromised-account false-positive rate {:.4} > {max}",
            s.compromise.false_positive_rate
        ));
    }
    if let Some(max) = t.max_benign_flagged_rate
        && s.benign_flagged_rate > max
    {
        fails.push(format!(
            "benign sources flagged {:.4} > {max}",
            s.benign_flagged_rate
        ));
    }
    if let Some(max) = t.max_gateways_flagged {
        let n: u64 = s
            .benign
            .iter()
            .filter(|c| c.class == "shared_gateway" || c.class == "stale_device")
            .map(|c| c.attacker)
            .sum();
        if n > max {
            fails.push(format!(
                "shared gateways and stale devices flagged as attacker: {n} > {max}"
            ));
        }
    }
    if let Some(max) = t.max_locked_out
        && s.locked_out.len() as u64 > max
    {
        fails.push(format!(
            "legitimate users locked out: {} > {max}",
            s.locked_out.len()
        ));
    }
    if let Some(max) = t.max_delay_seconds {
        for c in &s.campaigns {
            match c.delay_seconds {
                Some(d) if d > max => fails.push(format!(
                    "campaign {} ({}) detected after {d} s > {max} s",
                    c.id, c.kind
                )),
                None => fails.push(format!("campaign {} ({}) not detected", c.id, c.kind)),
                _ => {}
            }
        }
    }
    fails
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_addresses() {
        let n = Net::parse("2001:db8:1:2::/64").unwrap();
        assert!(n.contains(&"2001:db8:1:2::99".parse().unwrap()));
        assert!(!n.contains(&"2001:db8:1:3::1".parse().unwrap()));
        let n = Net::parse("198.51.100.0/24").unwrap();
        assert!(n.contains(&"198.51.100.200".parse().unwrap()));
        assert!(!n.contains(&"198.51.101.1".parse().unwrap()));
        assert!(Net::parse("1.2.3.4/33").is_none());
    }

    #[test]
    fn account_matching() {
        assert!(same_account("J.Smith@Example.org", "j.smith@example.org"));
        assert!(same_account("j.smith", "j.smith@example.org"));
        assert!(!same_account("j.smith@other.org", "j.smith@example.org"));
    }
}
