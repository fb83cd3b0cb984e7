//! Attacks, compiled into deterministic schedules.
//!
//! A campaign is a numbered sequence of attempts spread over its active time (its
//! duration less its pauses). Attempt `i`'s time, source, target and outcome are pure
//! functions of the seed and `i`, so any slot can be generated alone, and the truth
//! (who fell) is known without generating anything.
//!
//! - Password spray: the target list is walked once per common password; attempt `i`
//!   tries name `i mod n` with password `i / n`. An account whose password is on the
//!   list falls when its password comes up, and is not tried again.
//! - Credential stuffing: each leaked name tried once; many names do not exist here.
//! - Brute force: one account, guess after guess, from one or a few sources.
//! - Targeted: one (VIP) account, guesses spread thin over many sources and hours.

use std::net::{IpAddr, Ipv6Addr};

use portcullis_core::{Outcome, Reason};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::population::{Population, local_part};
use crate::rng::{self, purpose};
use crate::scenario::{Attack, AttackKind, Scenario, ScenarioError, Service};
use crate::{Actor, Attempt, Target};

/// Where a campaign's attempt comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One address.
    Fixed(IpAddr),
    /// A /64 whose interface id changes every attempt (first 64 bits).
    Rotating(u64),
}

/// One compiled attack.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Index in the scenario.
    pub index: u16,
    /// `c1`, `c2`, … in scenario order.
    pub id: String,
    /// What kind.
    pub kind: AttackKind,
    /// First instant, ms.
    pub start_ms: i64,
    /// Last instant, ms.
    pub end_ms: i64,
    /// Active windows (wall time, ms), pauses excluded.
    windows: Vec<(i64, i64)>,
    active_ms: i64,
    /// Attempts scheduled (some are skipped: no attacker retries an account it has).
    pub total: u64,
    /// The sources.
    pub sources: Vec<Source>,
    targets: Vec<Target>,
    /// A name tried that does not exist (brute force / targeted on a made-up name).
    named_unknown: Option<String>,
    passwords: u32,
    services: Vec<Service>,
    success_share: f64,
    seed: u64,
    /// Accounts that fall to this campaign.
    pub compromised: Vec<u32>,
}

impl Campaign {
    /// Compiles an attack. Draws its sources from the population's unused addresses.
    pub fn compile(
        index: usize,
        a: &Attack,
        s: &Scenario,
        pop: &mut Population,
        seed: u64,
        scenario_start_ms: i64,
    ) -> Result<Self, ScenarioError> {
        let index = u16::try_from(index)
            .map_err(|_| ScenarioError("too many attacks (at most 65535)".into()))?;
        let mut rng = rng::stream(seed, &[purpose::CAMPAIGN, u64::from(index)]);
        let start_ms = scenario_start_ms + a.start.as_millis() as i64;
        let end_ms = start_ms + a.duration.as_millis() as i64;
        let mut pauses: Vec<(i64, i64)> = a
            .pauses
            .iter()
            .map(|p| {
                (
                    start_ms + p.at.as_millis() as i64,
                    start_ms + (p.at + p.length).as_millis() as i64,
                )
            })
            .collect();
        pauses.sort_unstable();
        let mut windows = Vec::new();
        let mut t = start_ms;
        for (p0, p1) in pauses {
            if p0 > t {
                windows.push((t, p0));
            }
            t = t.max(p1);
        }
        if end_ms > t {
            windows.push((t, end_ms));
        }
        let active_ms = windows.iter().map(|(a, b)| b - a).sum();

        let sources = (0..a.sources)
            .map(|_| {
                if rng.random_bool(a.ipv6_share) {
                    let p = pop.fresh_v6_prefix(&mut rng);
                    if a.rotate_ipv6 {
                        Source::Rotating(p)
                    } else {
                        Source::Fixed(IpAddr::V6(Ipv6Addr::from(
                            (u128::from(p) << 64) | u128::from(rng.random::<u64>() | 1),
                        )))
                    }
                } else {
                    Source::Fixed(pop.fresh_v4(&mut rng))
                }
            })
            .collect();

        let n_accounts = pop.accounts.len() as u32;
        let mut named_unknown = None;
        let (targets, total, passwords) = match a.kind {
            AttackKind::PasswordSpray | AttackKind::CredentialStuffing => {
                let names = a.accounts.unwrap_or(n_accounts);
                let unknown = if a.accounts.is_none() {
                    (f64::from(names) * a.unknown_share / (1.0 - a.unknown_share).max(0.01)).round()
                        as u32
                } else {
                    (f64::from(names) * a.unknown_share).round() as u32
                };
                let real = if a.accounts.is_none() {
                    names
                } else {
                    names - unknown
                }
                .min(n_accounts);
                let mut all: Vec<u32> = (0..n_accounts).collect();
                all.shuffle(&mut rng);
                let mut targets: Vec<Target> = all[..real as usize]
                    .iter()
                    .map(|&i| Target::Account(i))
                    .collect();
                targets.extend((0..unknown).map(|j| Target::Unknown(j, index)));
                targets.shuffle(&mut rng);
                let passwords = if a.kind == AttackKind::CredentialStuffing {
                    1
                } else {
                    a.passwords
                };
                let total = targets.len() as u64 * u64::from(passwords);
                (targets, total, passwords)
            }
            AttackKind::BruteForce | AttackKind::Targeted => {
                let target = match a.target.as_deref() {
                    Some("vip") => Target::Account(0),
                    Some(local) => {
                        let name = format!("{local}@{}", s.organisation.domain);
                        match pop.find(&name) {
                            Some(i) => Target::Account(i),
                            None => {
                                named_unknown = Some(name);
                                Target::Unknown(0, index)
                            }
                        }
                    }
                    None => Target::Account(rng.random_range(0..n_accounts)),
                };
                let attempts = a.attempts.unwrap_or(1);
                (vec![target], u64::from(attempts), attempts)
            }
        };
        if total == 0 {
            return Err(ScenarioError(format!(
                "attack {} ({}) makes no attempts",
                index + 1,
                a.kind.as_str()
            )));
        }
        let mut c = Campaign {
            index,
            id: format!("c{}", index + 1),
            kind: a.kind,
            start_ms,
            end_ms,
            windows,
            active_ms,
            total,
            sources,
            targets,
            named_unknown,
            passwords,
            services: a.services.clone(),
            success_share: a.success_share,
            seed,
            compromised: Vec::new(),
        };
        c.compromised = c.falls(pop);
        Ok(c)
    }

    /// The made-up name of an unknown target.
    pub fn unknown_name(&self, j: u32, domain: &str) -> String {
        match &self.named_unknown {
            Some(n) => n.clone(),
            // Beyond any real account's name: former staff, guessed names.
            None => format!(
                "{}@{domain}",
                local_part(10_000_000 + u32::from(self.index) * 1_000_000 + j)
            ),
        }
    }

    /// Distinct names this campaign tries.
    pub fn names_tried(&self) -> usize {
        self.targets.len()
    }

    fn h(&self, i: u64, what: u64) -> u64 {
        rng::hash(
            self.seed,
            &[purpose::ATTEMPT, u64::from(self.index), i, what],
        )
    }

    fn stuffing_hit(&self, i: u64) -> bool {
        rng::unit(self.h(i, 5)) < self.success_share
    }

    /// Which accounts fall, known from the schedule alone.
    fn falls(&self, pop: &Population) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .targets
            .iter()
            .enumerate()
            .filter_map(|(j, t)| {
                let Target::Account(a) = *t else { return None };
                let fell = match self.kind {
                    AttackKind::CredentialStuffing => self.stuffing_hit(j as u64),
                    _ => self.falls_at(pop, j as u64).is_some(),
                };
                fell.then_some(a)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The door of attempt `i`.
    fn service_of(&self, i: u64) -> Service {
        self.services[(self.h(i, 3) % self.services.len() as u64) as usize]
    }

    /// Whether attempt `i`, the `round`-th on its account, meets Entra ID's smart
    /// lockout (which then refuses even the right password).
    fn locked_out(&self, i: u64, round: u64) -> bool {
        round >= crate::render::entra::LOCKOUT_THRESHOLD && self.service_of(i) == Service::Entra
    }

    /// The round at which the target at index `j` falls to a spray, brute force or
    /// targeted guessing: its password's rank on the list, if the list gets there and
    /// that attempt is not refused by a lockout.
    fn falls_at(&self, pop: &Population, j: u64) -> Option<u64> {
        let Target::Account(a) = self.targets[j as usize] else {
            return None;
        };
        let w = u64::from(pop.accounts[a as usize].weak_round?);
        let (i, rounds) = match self.kind {
            AttackKind::PasswordSpray => {
                (w * self.targets.len() as u64 + j, u64::from(self.passwords))
            }
            AttackKind::BruteForce | AttackKind::Targeted => (w, self.total),
            AttackKind::CredentialStuffing => return None,
        };
        (w < rounds && !self.locked_out(i, w)).then_some(w)
    }

    /// Wall time of an active-time offset.
    fn wall(&self, mut active: i64) -> i64 {
        for &(w0, w1) in &self.windows {
            if active < w1 - w0 {
                return w0 + active;
            }
            active -= w1 - w0;
        }
        self.end_ms
    }

    /// Active-time offset of a wall time.
    fn active(&self, t: i64) -> i64 {
        self.windows
            .iter()
            .map(|&(w0, w1)| (t.clamp(w0, w1) - w0).max(0))
            .sum()
    }

    /// The time of attempt `i`: evenly spread with jitter, strictly increasing.
    fn time_of(&self, i: u64) -> i64 {
        let step = self.active_ms as f64 / self.total as f64;
        let a = ((i as f64 + rng::unit(self.h(i, 0))) * step) as i64;
        self.wall(a.min(self.active_ms - 1))
    }

    /// Attempt `i`, or `None` when the attacker skips it (it already has the account).
    pub fn attempt(&self, pop: &Population, i: u64) -> Option<Attempt> {
        let n = self.targets.len() as u64;
        let (target, round) = match self.kind {
            AttackKind::PasswordSpray | AttackKind::CredentialStuffing => {
                (self.targets[(i % n) as usize], i / n)
            }
            AttackKind::BruteForce | AttackKind::Targeted => (self.targets[0], i),
        };
        let j = match self.kind {
            AttackKind::PasswordSpray | AttackKind::CredentialStuffing => i % n,
            AttackKind::BruteForce | AttackKind::Targeted => 0,
        };
        let outcome = match target {
            Target::Unknown(..) => Outcome::Failure(Reason::UnknownAccount),
            Target::Account(_) => {
                let fell = match self.kind {
                    AttackKind::CredentialStuffing => None,
                    _ => self.falls_at(pop, j),
                };
                if fell.is_some_and(|w| w < round) {
                    return None;
                }
                let hit = match self.kind {
                    AttackKind::CredentialStuffing => self.stuffing_hit(j),
                    _ => fell == Some(round),
                };
                if hit {
                    Outcome::Success
                } else if self.locked_out(i, round) {
                    Outcome::Failure(Reason::Locked)
                } else {
                    Outcome::Failure(Reason::BadPassword)
                }
            }
        };
        let s = self.sources.len() as u64;
        let src = match self.kind {
            AttackKind::BruteForce => self.sources[(i % s) as usize],
            _ => self.sources[(self.h(i, 1) % s) as usize],
        };
        let source = match src {
            Source::Fixed(a) => a,
            Source::Rotating(p) => IpAddr::V6(Ipv6Addr::from(
                (u128::from(p) << 64) | u128::from(self.h(i, 2) | 1),
            )),
        };
        let service = self.service_of(i);
        Some(Attempt {
            at_ms: self.time_of(i),
            service,
            source,
            port: 1024 + (self.h(i, 4) % 64_512) as u16,
            target,
            outcome,
            actor: Actor::Attacker(self.index),
            tag: self.h(i, 6),
        })
    }

    /// Appends the attempts that fall in `[s0, s1)`.
    pub fn slot(&self, pop: &Population, s0: i64, s1: i64, out: &mut Vec<Attempt>) {
        if s1 <= self.start_ms || s0 >= self.end_ms {
            return;
        }
        let per = self.total as f64 / self.active_ms as f64;
        let lo = ((self.active(s0) as f64 * per).floor() as u64).saturating_sub(1);
        let hi = (((self.active(s1) as f64 * per).ceil() as u64) + 1).min(self.total);
        for i in lo..hi {
            if let Some(a) = self.attempt(pop, i)
                && (s0..s1).contains(&a.at_ms)
            {
                out.push(a);
            }
        }
    }
}
