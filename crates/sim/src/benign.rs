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

use std::net::IpAddr;

use crate::population::{Account, SourceKind};
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

/// Where a login comes from when doors are not set: a traveller's hotel, the office,
/// the VPN gateway, a phone's carrier, or home (the draws in this order).
fn usual_source(
    rng: &mut ChaCha8Rng,
    sim: &Simulation,
    acc: &Account,
    t: i64,
    at_work: bool,
) -> (IpAddr, SourceKind) {
    let b = &sim.scenario.benign;
    let pop = &sim.population;
    match acc.trip {
        Some((from, to, hotel)) if (from..to).contains(&t) => (hotel, SourceKind::Traveller),
        _ if at_work && rng.random_bool(b.office_share) => {
            (pop.office[acc.office as usize], SourceKind::OfficeGateway)
        }
        _ if rng.random_bool(b.vpn_share) => (
            pop.vpn[rng.random_range(0..pop.vpn.len())],
            SourceKind::VpnGateway,
        ),
        _ if rng.random_bool(b.mobile_share) => carrier(rng, sim, acc),
        _ => (acc.home, SourceKind::Home),
    }
}

fn carrier(rng: &mut ChaCha8Rng, sim: &Simulation, acc: &Account) -> (IpAddr, SourceKind) {
    let pool = &sim.population.cgnat[acc.pool as usize];
    (pool[rng.random_range(0..pool.len())], SourceKind::Cgnat)
}

/// Where a login through `door` comes from: ActiveSync is a phone (on the office
/// Wi-Fi at work, else mostly its carrier); the VPN is reached from outside (home,
/// carrier, hotel), never through itself or the office; the other doors as usual.
fn door_source(
    rng: &mut ChaCha8Rng,
    sim: &Simulation,
    acc: &Account,
    door: Service,
    t: i64,
    at_work: bool,
) -> (IpAddr, SourceKind) {
    let b = &sim.scenario.benign;
    let travelling = acc.trip.filter(|(from, to, _)| (*from..*to).contains(&t));
    match door {
        Service::Activesync => match travelling {
            Some((_, _, hotel)) => (hotel, SourceKind::Traveller),
            None if at_work && rng.random_bool(b.office_share) => (
                sim.population.office[acc.office as usize],
                SourceKind::OfficeGateway,
            ),
            None if rng.random_bool(0.8) => carrier(rng, sim, acc),
            None => (acc.home, SourceKind::Home),
        },
        Service::Vpn | Service::Rdp => match travelling {
            Some((_, _, hotel)) => (hotel, SourceKind::Traveller),
            None if rng.random_bool(b.mobile_share * 0.3) => carrier(rng, sim, acc),
            None => (acc.home, SourceKind::Home),
        },
        _ => usual_source(rng, sim, acc, t, at_work),
    }
}

/// The door of a login when doors are not set: SSH for a tenth of an administrator's
/// logins, else SMTP, POP3 or IMAP by their shares.
fn mail_door(rng: &mut ChaCha8Rng, b: &Benign, ssh: bool) -> Service {
    if ssh && rng.random_bool(0.1) {
        return Service::Ssh;
    }
    let x: f64 = rng.random();
    if x < b.smtp_share {
        Service::Smtp
    } else if x < b.smtp_share + b.pop3_share {
        Service::Pop3
    } else {
        Service::Imap
    }
}

/// A door by weight; SSH for a tenth of an administrator's logins, as without doors.
fn pick_door(rng: &mut ChaCha8Rng, doors: &[(Service, f64)], ssh: bool) -> Service {
    if ssh && rng.random_bool(0.1) {
        return Service::Ssh;
    }
    let total: f64 = doors.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0.0..total);
    for (s, w) in doors {
        if x < *w {
            return *s;
        }
        x -= w;
    }
    doors.last().map_or(Service::Imap, |(s, _)| *s)
}

/// The door a stale device keeps retrying through: a phone's ActiveSync if the site
/// has it, else IMAP or POP3, else the busiest door.
pub(crate) fn stale_door(b: &Benign) -> Service {
    let Some(doors) = &b.doors else {
        return Service::Imap;
    };
    let used = |s: Service| doors.get(&s).is_some_and(|w| *w > 0.0);
    [Service::Activesync, Service::Imap, Service::Pop3]
        .into_iter()
        .find(|s| used(*s))
        .or_else(|| {
            doors
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(s, _)| *s)
        })
        .unwrap_or(Service::Imap)
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

    let doors: Option<Vec<(Service, f64)>> = b
        .doors
        .as_ref()
        .map(|d| d.iter().map(|(s, w)| (*s, *w)).collect());
    for (i, acc) in pop.accounts.iter().enumerate() {
        let n = logins.as_ref().map_or(0, |p| p.sample(&mut rng) as u64);
        for _ in 0..n {
            let t = rng.random_range(s0..s1);
            // With doors, the door comes first: it decides where people come from (a
            // phone syncing mail, a laptop on the VPN from home).
            let door = doors.as_deref().map(|d| pick_door(&mut rng, d, acc.ssh));
            let (source, kind) = match door {
                Some(door) => door_source(&mut rng, sim, acc, door, t, at_work),
                None => usual_source(&mut rng, sim, acc, t, at_work),
            };
            let service = match door {
                Some(door) => door,
                None => mail_door(&mut rng, b, acc.ssh),
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

    let stale = stale_door(b);
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
                service: stale,
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
