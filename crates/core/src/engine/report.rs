//! The engine's state as a report in the contract (crate::report).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

use jiff::Timestamp;

use super::{Engine, Kind};
use crate::event::Service;
use crate::report::{AccountReport, CampaignReport, Input, Report, SourceReport, VERSION};

/// A source is listed as suspicious (never attacker) with this many suspicious failures.
const SUSPICIOUS_FAILURES: u32 = 3;
/// A source failing this often on accounts it is familiar to looks like a device with
/// an old password: listed as suspicious, with that reason.
const STALE_FAILURES: u32 = 20;

/// A campaign as reported.
struct Group {
    kind: Kind,
    start: i64,
    end: i64,
    detected_at: i64,
    members: Vec<IpAddr>,
    names: u64,
    /// The members' services ([`Service::bit`]s).
    services: u32,
}

/// The names of a set of services, in declaration order.
fn service_names(bits: u32) -> Vec<String> {
    Service::set(bits).map(|s| s.as_str().to_owned()).collect()
}

impl Engine {
    fn show(&self, t: i64) -> String {
        let ts = Timestamp::from_second(t).unwrap_or_default();
        ts.display_with_offset(self.offset).to_string()
    }

    /// The report so far (call [`Engine::finish`] first at the end of input). `input`
    /// is what the caller read.
    pub fn report(&self, input: Input) -> Report {
        let mut input = input;
        if input.first_event.is_none() {
            input.first_event = self.first.map(|t| self.show(t));
            input.last_event = self.first.map(|_| self.show(self.now));
        }

        // Attacker v6 prefixes and their member addresses.
        let bad_prefixes: HashMap<u64, (Kind, usize, &str)> = self
            .prefixes
            .iter()
            .filter_map(|(k, p)| {
                p.verdict
                    .as_ref()
                    .map(|v| (*k, (v.kind, v.campaign, v.evidence.as_str())))
            })
            .collect();

        // Which campaign each attacker address belongs to, and its kind.
        let mut attackers: Vec<(IpAddr, Kind, usize, String)> = Vec::new();
        for (a, s) in &self.sources {
            if let Some(v) = &s.verdict {
                let evidence = format!("{} (judged at {})", v.evidence, self.show(v.at));
                attackers.push((
                    *a,
                    self.member_kind(v.campaign, v.kind, s),
                    v.campaign,
                    evidence,
                ));
            } else if a.is_ipv6()
                && let Some((kind, c, ev)) = bad_prefixes.get(&self.prefix_of(a))
                && (s.failures > 0 || !s.unfamiliar_wins.is_empty())
            {
                attackers.push((
                    *a,
                    self.campaign_kind(*c, *kind),
                    *c,
                    format!("in an attacking /64: {ev}"),
                ));
            }
        }
        attackers.sort_by_key(|x| x.0);

        // Compromised accounts: unfamiliar successes of attacker sources.
        let mut compromised: BTreeMap<String, (i64, IpAddr, Kind, usize)> = BTreeMap::new();
        for (a, kind, c, _) in &attackers {
            let Some(s) = self.sources.get(a) else {
                continue;
            };
            for (account, t) in &s.unfamiliar_wins {
                let e = compromised
                    .entry(account.to_string())
                    .or_insert((*t, *a, *kind, *c));
                if *t < e.0 {
                    *e = (*t, *a, *kind, *c);
                }
            }
        }

        let mut sources: Vec<SourceReport> = attackers
            .iter()
            .map(|(a, kind, _, evidence)| {
                let s = &self.sources[a];
                let mut evidence = evidence.clone();
                if s.successes > 0 {
                    evidence.push_str(&format!("; {} successful login(s)", s.successes));
                }
                self.source_row(a, s, "attacker", vec![kind.as_str().into()], evidence)
            })
            .collect();
        sources.sort_by(|x, y| {
            y.failures
                .cmp(&x.failures)
                .then_with(|| x.address.cmp(&y.address))
        });
        let mut prefix_rows: Vec<SourceReport> = bad_prefixes
            .iter()
            .filter_map(|(k, (kind, c, ev))| {
                let p = self.prefixes.get(k)?;
                Some(SourceReport {
                    address: format!(
                        "{}/{}",
                        Ipv6Addr::from(u128::from(*k) << 64),
                        self.config.prefix_v6.clamp(1, 64)
                    ),
                    verdict: "attacker".into(),
                    attacks: vec![self.campaign_kind(*c, *kind).as_str().into()],
                    first_seen: Some(self.show(p.first_suspicious)),
                    last_seen: Some(self.show(p.last_suspicious)),
                    failures: u64::from(p.failures),
                    successes: u64::from(p.successes),
                    accounts_tried: u64::from(p.accounts.len()),
                    unknown_accounts: 0,
                    evidence: (*ev).to_owned(),
                    services: service_names(p.services),
                })
            })
            .collect();
        prefix_rows.sort_by(|x, y| x.address.cmp(&y.address));
        sources.extend(prefix_rows);

        // Suspicious but not judged: unexplained failures, or a stale-looking device.
        let attacker_set: std::collections::HashSet<IpAddr> =
            attackers.iter().map(|x| x.0).collect();
        let mut suspicious: Vec<SourceReport> = self
            .sources
            .iter()
            .filter(|(a, _)| !attacker_set.contains(a))
            .filter_map(|(a, s)| {
                let evidence = if s.suspicious >= SUSPICIOUS_FAILURES && s.failure_share() >= self.config.min_failure_share {
                    format!("{} unexplained failures on {} account(s)", s.suspicious, s.accounts.len())
                } else if s.failures >= STALE_FAILURES && s.suspicious == 0 && s.failure_share() >= self.config.min_failure_share {
                    format!(
                        "{} failures on accounts that log in from here: a device with an old password?",
                        s.failures
                    )
                } else {
                    return None;
                };
                Some(self.source_row(a, s, "suspicious", Vec::new(), evidence))
            })
            .collect();
        suspicious.sort_by(|x, y| {
            y.failures
                .cmp(&x.failures)
                .then_with(|| x.address.cmp(&y.address))
        });
        sources.extend(suspicious);

        // Accounts.
        let mut accounts: Vec<AccountReport> = Vec::new();
        for (name, (t, a, kind, _)) in &compromised {
            let st = self.accounts.get(&self.hash64(name.as_str()));
            accounts.push(AccountReport {
                user: name.clone(),
                status: "compromised".into(),
                failures: st.map_or(0, |s| u64::from(s.failures)),
                attack_sources: st.map_or(0, |s| u64::from(s.attackers.len())),
                evidence: format!(
                    "login success from {a} ({}) at {}",
                    kind.as_str(),
                    self.show(*t)
                ),
            });
        }
        let mut others: Vec<AccountReport> = self
            .accounts
            .values()
            .filter_map(|s| s.name.as_deref().map(|n| (n, s)))
            .filter(|(n, _)| !compromised.contains_key(*n))
            .filter_map(|(n, s)| {
                let (status, evidence) = if let Some(c) = s.targeted {
                    (
                        "targeted",
                        format!(
                            "guessed at by {}+ sources since {}",
                            s.attackers.len(),
                            self.show(self.campaigns[c].start)
                        ),
                    )
                } else if s.locked {
                    (
                        "locked",
                        "the server reported the account locked".to_owned(),
                    )
                } else {
                    return None;
                };
                Some(AccountReport {
                    user: n.to_string(),
                    status: status.into(),
                    failures: u64::from(s.failures),
                    attack_sources: u64::from(s.attackers.len()),
                    evidence,
                })
            })
            .collect();
        others.sort_by(|x, y| x.status.cmp(&y.status).then_with(|| x.user.cmp(&y.user)));
        accounts.extend(others);

        // Campaigns. A distributed campaign's members are regrouped by kind and by time
        // (activity chained with gaps under an hour), so that two attacks that ran back
        // to back, or overlapped, are reported apart.
        let mut groups: Vec<Group> = Vec::new();
        let mut by_campaign: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, (_, _, c, _)) in attackers.iter().enumerate() {
            by_campaign.entry(*c).or_default().push(i);
        }
        let mut keys: Vec<usize> = by_campaign.keys().copied().collect();
        keys.sort_unstable();
        for c in keys {
            let members = &by_campaign[&c];
            let camp = &self.campaigns[c];
            if camp.archive {
                // Retired single-source campaigns: one each, as they were.
                for &m in members {
                    groups.push(self.group(&[m], &attackers, c, camp.kind));
                }
                continue;
            }
            if !camp.distributed {
                groups.push(self.group(members, &attackers, c, camp.kind));
                continue;
            }
            let mut by_kind: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
            for &i in members {
                by_kind.entry(attackers[i].1).or_default().push(i);
            }
            for (kind, mut list) in by_kind {
                list.sort_by_key(|&i| self.sources[&attackers[i].0].first_suspicious);
                let mut run: Vec<usize> = Vec::new();
                let mut run_end = i64::MIN;
                for i in list {
                    let s = &self.sources[&attackers[i].0];
                    if !run.is_empty() && s.first_suspicious > run_end + 3600 {
                        groups.push(self.group(&run, &attackers, c, kind));
                        run.clear();
                    }
                    run_end = run_end.max(s.last_suspicious);
                    run.push(i);
                }
                if !run.is_empty() {
                    groups.push(self.group(&run, &attackers, c, kind));
                }
            }
        }
        groups.sort_by_key(|g| (g.start, g.detected_at));
        let campaigns = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let fell: Vec<String> = compromised
                    .iter()
                    .filter(|(_, (_, a, _, _))| g.members.contains(a))
                    .map(|(n, _)| n.clone())
                    .collect();
                CampaignReport {
                    id: format!("c{}", i + 1),
                    kind: g.kind.as_str().into(),
                    start: self.show(g.start),
                    detected_at: self.show(g.detected_at.max(g.start)),
                    end: self.show(g.end),
                    sources: g.members.len() as u64,
                    accounts_targeted: g.names,
                    accounts_compromised: fell,
                    services: service_names(g.services),
                }
            })
            .collect();

        Report {
            version: VERSION,
            input,
            sources,
            accounts,
            campaigns,
        }
    }

    /// A source's row in the report.
    fn source_row(
        &self,
        a: &IpAddr,
        s: &super::state::SourceState,
        verdict: &str,
        attacks: Vec<String>,
        evidence: String,
    ) -> SourceReport {
        SourceReport {
            address: a.to_string(),
            verdict: verdict.into(),
            attacks,
            first_seen: Some(self.show(s.first_seen)),
            last_seen: Some(self.show(s.last_seen)),
            failures: u64::from(s.failures),
            successes: u64::from(s.successes),
            accounts_tried: u64::from(s.accounts.len()),
            unknown_accounts: u64::from(s.unknown),
            evidence,
            services: service_names(s.services),
        }
    }

    /// One reported campaign from some attackers (indices into `attackers`).
    fn group(
        &self,
        members: &[usize],
        attackers: &[(IpAddr, Kind, usize, String)],
        c: usize,
        kind: Kind,
    ) -> Group {
        let camp = &self.campaigns[c];
        let mut g = Group {
            kind,
            start: i64::MAX,
            end: i64::MIN,
            detected_at: i64::MAX,
            members: Vec::new(),
            names: 0,
            services: 0,
        };
        let mut names: std::collections::HashSet<u32> = std::collections::HashSet::new();
        for &i in members {
            let (a, _, _, _) = &attackers[i];
            let s = &self.sources[a];
            let (first, last) = if s.suspicious > 0 {
                (s.first_suspicious, s.last_suspicious)
            } else {
                (s.first_seen, s.last_seen)
            };
            g.start = g.start.min(first);
            g.end = g.end.max(last);
            if let Some(v) = &s.verdict {
                g.detected_at = g.detected_at.min(v.at);
            }
            names.extend(s.accounts.iter());
            g.services |= s.services;
            g.members.push(*a);
        }
        if camp.distributed && camp.detected_at >= g.start && camp.detected_at <= g.end {
            // The alarm came from this activity: that is when an operator would have
            // known, even if each member is named only later.
            g.detected_at = g.detected_at.min(camp.detected_at);
        }
        if camp.archive {
            // The archive's own times and names are its many campaigns'; the member's
            // are its own.
            g.names = names.len() as u64;
        } else if !camp.distributed {
            g.start = g.start.min(camp.start);
            g.detected_at = g.detected_at.min(camp.detected_at);
            g.names = (camp.names_tried.len() as u64).max(names.len() as u64);
        } else {
            g.names = names.len() as u64;
        }
        if g.detected_at == i64::MAX {
            g.detected_at = camp.detected_at;
        }
        g
    }

    /// A member of a distributed campaign is classified on all it did by the end (at
    /// the alarm, a sprayer's first round looks like stuffing's single tries), if it
    /// did enough to tell (`stuffing_accounts` names); one that tried a name or three
    /// takes its campaign's kind, so that a slow spray whose members each try a few
    /// names once is one campaign, not a spray and a stuffing. Others keep the kind
    /// they were judged for.
    fn member_kind(&self, c: usize, judged: Kind, s: &super::state::SourceState) -> Kind {
        if !self.campaigns[c].distributed || judged == Kind::BruteForce || judged == Kind::Targeted
        {
            return judged;
        }
        if s.accounts.len() < self.config.stuffing_accounts {
            return self.campaign_kind(c, judged);
        }
        let own = if super::source_stuffing(s, &self.config) {
            Kind::CredentialStuffing
        } else {
            Kind::PasswordSpray
        };
        let campaign = self.campaign_kind(c, judged);
        if own != campaign && !self.stands_apart(c, s) {
            return campaign;
        }
        own
    }

    /// Whether a member's count of unknown names is too unlikely under its distributed
    /// campaign's own mix of names to be the same attack's luck of the draw
    /// (`member_kind_p`): P(X >= k) for more unknown names than expected, P(X <= k) for
    /// fewer, X Poisson with the campaign's unknown share times the member's names.
    fn stands_apart(&self, c: usize, s: &super::state::SourceState) -> bool {
        let p = self.config.member_kind_p;
        let camp = &self.campaigns[c];
        let distinct = camp.names_tried.len();
        if p <= 0.0 || distinct == 0 || s.accounts.is_full() {
            return true;
        }
        let unknown = camp
            .names_tried
            .iter()
            .filter(|h| *h & 0x8000_0000 != 0)
            .count();
        let share = unknown as f64 / distinct as f64;
        let n = s.accounts.len() as f64;
        let k = s.unknown_names() as usize;
        let mean = share * n;
        let chance = if k as f64 >= mean {
            super::site::poisson_tail(k, mean)
        } else {
            1.0 - super::site::poisson_tail(k + 1, mean)
        };
        chance <= p
    }

    /// A distributed campaign's kind follows its members: mostly unknown names is
    /// credential stuffing.
    fn campaign_kind(&self, c: usize, _judged: Kind) -> Kind {
        let camp = &self.campaigns[c];
        if !camp.distributed {
            return camp.kind;
        }
        let distinct = camp.names_tried.len() as u32;
        let unknown = camp
            .names_tried
            .iter()
            .filter(|h| *h & 0x8000_0000 != 0)
            .count() as u32;
        let attempts = u32::try_from(camp.attempts).unwrap_or(u32::MAX);
        if super::looks_like_stuffing(distinct, unknown, attempts, &self.config) {
            Kind::CredentialStuffing
        } else {
            Kind::PasswordSpray
        }
    }
}
