//! The organisation's ordinary traffic, one slot at a time.
//!
//! Users log in following the working day and the week: busy office hours, quiet
//! nights, light weekends. They type passwords wrong now and then and succeed a few
//! seconds later; they travel; their phones come through carriers' CGNAT; on a
//! password-reset day their second device fails until they update it; a few devices
//! keep retrying an old password for hours. Mail deliveries add the non-login lines a
//! real mail log is mostly made of.

use portcullis_core::{Outcome, Reason};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

use crate::population::SourceKind;
use crate::rng::{self, purpose};
use crate::scenario::{Benign, Service};
use crate::{Actor, Attempt, Simulation, Target};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A mail delivery to an account: (time ms, account, tag).
pub type Delivery = (i64, u32, u64);

/// Activity of local hour `h` on a weekday, relative to office hours (1.0).
fn hour_weight(b: &Benign, h: i64) -> f64 {
    let (start, end) = (i64::from(b.working_hours[0]), i64::from(b.working_hours[1]));
    if (start..end).contains(&h) {
        1.0
    } else if h == start - 1 {
        0.6
    } else if (end..end + 4).contains(&h) {
        0.45
    } else {
        0.08
    }
}

/// Activity at a local time (ms since the epoch, shifted to local).
fn weight(b: &Benign, local_ms: i64) -> f64 {
    let day = local_ms.div_euclid(DAY_MS);
    let weekday = (day + 3).rem_euclid(7); // 1970-01-01 was a Thursday; Monday is 0.
    let h = local_ms.rem_euclid(DAY_MS) / HOUR_MS;
    hour_weight(b, h) * if weekday >= 5 { b.weekend_factor } else { 1.0 }
}

/// The mean of [`weight`] over a week, so that `logins_per_day` is an average day.
fn mean_weight(b: &Benign) -> f64 {
    let week: f64 = (0..7 * 24).map(|h| weight(b, h * HOUR_MS)).sum();
    week / (7.0 * 24.0)
}

fn working(b: &Benign, local_ms: i64) -> bool {
    let weekday = (local_ms.div_euclid(DAY_MS) + 3).rem_euclid(7);
    let h = local_ms.rem_euclid(DAY_MS) / HOUR_MS;
    weekday < 5 && (i64::from(b.working_hours[0])..i64::from(b.working_hours[1])).contains(&h)
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    match Poisson::new(lambda) {
        Ok(p) => p.sample(rng) as u64,
        Err(_) => 0,
    }
}

/// Appends the slot's benign attempts and deliveries.
pub(crate) fn slot(
    sim: &Simulation,
    k: u64,
    s0: i64,
    s1: i64,
    out: &mut Vec<Attempt>,
    deliveries: &mut Vec<Delivery>,
) {
    let b = &sim.scenario.benign;
    let pop = &sim.population;
    let seed = sim.options.seed;
    let mut rng = rng::stream(seed, &[purpose::BENIGN, k]);
    let offset_ms = i64::from(
        sim.zone
            .to_offset(jiff::Timestamp::from_millisecond(s0).unwrap_or_default())
            .seconds(),
    ) * 1000;
    let local_mid = (s0 + s1) / 2 + offset_ms;
    let share_of_day = (s1 - s0) as f64 / DAY_MS as f64;
    let activity = weight(b, local_mid) / mean_weight(b) * sim.options.scale * share_of_day;
    let at_work = working(b, local_mid);
    let logins = Poisson::new((b.logins_per_day * activity).max(1e-9)).ok();
    let mut tag = rng::hash(seed, &[purpose::BENIGN, k, 0]);
    let mut next_tag = || {
        tag = rng::mix(tag);
        tag
    };

    for (i, acc) in pop.accounts.iter().enumerate() {
        let n = logins.as_ref().map_or(0, |p| p.sample(&mut rng) as u64);
        for _ in 0..n {
            let t = rng.random_range(s0..s1);
            let (source, kind) = match acc.trip {
                Some((from, to, hotel)) if (from..to).contains(&t) => {
                    (hotel, SourceKind::Traveller)
                }
                _ if at_work && rng.random_bool(b.office_share) => {
                    (pop.office[acc.office as usize], SourceKind::OfficeGateway)
                }
                _ if rng.random_bool(b.vpn_share) => (
                    pop.vpn[rng.random_range(0..pop.vpn.len())],
                    SourceKind::VpnGateway,
                ),
                _ if rng.random_bool(b.mobile_share) => {
                    let pool = &pop.cgnat[acc.pool as usize];
                    (pool[rng.random_range(0..pool.len())], SourceKind::Cgnat)
                }
                _ => (acc.home, SourceKind::Home),
            };
            let service = if acc.ssh && rng.random_bool(0.1) {
                Service::Ssh
            } else {
                let x: f64 = rng.random();
                if x < b.smtp_share {
                    Service::Smtp
                } else if x < b.smtp_share + b.pop3_share {
                    Service::Pop3
                } else {
                    Service::Imap
                }
            };
            let port = rng.random_range(1024..=65535);
            let attempt = |at_ms: i64, outcome: Outcome, tag: u64| Attempt {
                at_ms,
                service,
                source,
                port,
                target: Target::Account(i as u32),
                outcome,
                actor: Actor::Benign(kind),
                tag,
            };
            // A second device still holding the password changed today fails.
            if let Some((changed, fixed)) = acc.reset
                && (changed..fixed).contains(&t)
                && rng.random_bool(0.5)
            {
                out.push(attempt(
                    t,
                    Outcome::Failure(Reason::BadPassword),
                    next_tag(),
                ));
                continue;
            }
            if rng.random_bool(b.typo_rate) {
                let typos = if rng.random_bool(0.25) { 2 } else { 1 };
                for j in (1..=typos).rev() {
                    let before = t - j * rng.random_range(3_000..15_000);
                    out.push(attempt(
                        before.max(s0),
                        Outcome::Failure(Reason::BadPassword),
                        next_tag(),
                    ));
                }
            }
            out.push(attempt(t, Outcome::Success, next_tag()));
        }
    }

    for dev in &pop.stale {
        if dev.to_ms <= s0 || dev.from_ms >= s1 {
            continue;
        }
        let first = if dev.from_ms >= s0 {
            0
        } else {
            (s0 - dev.from_ms + dev.period_ms - 1) / dev.period_ms
        };
        let mut t = dev.from_ms + first * dev.period_ms;
        while t < s1 && t < dev.to_ms {
            let acc = &pop.accounts[dev.account as usize];
            out.push(Attempt {
                at_ms: t,
                service: Service::Imap,
                source: acc.home,
                port: rng.random_range(1024..=65535),
                target: Target::Account(dev.account),
                outcome: Outcome::Failure(Reason::BadPassword),
                actor: Actor::Benign(SourceKind::StaleDevice),
                tag: next_tag(),
            });
            t += dev.period_ms;
        }
    }

    let n = poisson(
        &mut rng,
        b.deliveries_per_day * activity * pop.accounts.len() as f64,
    );
    for _ in 0..n {
        let account = rng.random_range(0..pop.accounts.len() as u32);
        deliveries.push((rng.random_range(s0..s1), account, next_tag()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_rhythm() {
        let b = Benign::default();
        // 1970-01-05 was a Monday.
        let monday = 4 * DAY_MS;
        assert_eq!(weight(&b, monday + 10 * HOUR_MS), 1.0);
        assert!(weight(&b, monday + 3 * HOUR_MS) < 0.1);
        assert!(weight(&b, monday + 5 * DAY_MS + 10 * HOUR_MS) < 0.3);
        assert!(working(&b, monday + 9 * HOUR_MS));
        assert!(!working(&b, monday + 6 * DAY_MS + 9 * HOUR_MS));
        let m = mean_weight(&b);
        assert!(m > 0.2 && m < 0.6, "{m}");
    }
}
