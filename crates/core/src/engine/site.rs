//! The site-wide detectors: CUSUMs over the number of distinct names failing from
//! sources with no history, per minute and per hour, against a learned baseline (in the
//! spirit of Javed & Paxson, CCS 2013), and a burst test over the last few minutes
//! against the same baseline. They open distributed campaigns; the engine attributes
//! the participants.

use std::collections::VecDeque;
use std::net::IpAddr;

use foldhash::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

/// A CUSUM over per-bucket counts of distinct names (accounts, or unknown names) with
/// suspicious failures from sources that never logged in, against a baseline learned
/// outside campaigns. Names, not sources: a campaign that matters to the site-wide
/// detectors is one that tries many accounts (a spray, stuffing); one account hammered
/// or slowly guessed at is judged per source and per account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Cusum {
    /// Bucket width, seconds.
    pub(super) width: i64,
    pub(super) bucket: i64,
    /// The first second of the bucket after the current one: nothing to close before.
    pub(super) next: i64,
    pub(super) seen: HashSet<u64>,
    /// Names counted per source in this bucket.
    pub(super) sources: HashMap<IpAddr, u8>,
    pub(super) baseline: f64,
    pub(super) sum: f64,
    pub(super) quiet: i64,
    pub(super) allowance: f64,
    pub(super) threshold: f64,
    /// Buckets of quiet that end a campaign this detector opened.
    pub(super) quiet_limit: i64,
    /// Weight of a new bucket in the baseline (an EWMA).
    pub(super) learn: f64,
}

impl Cusum {
    pub(super) fn new(
        width: i64,
        allowance: f64,
        threshold: f64,
        quiet_limit: i64,
        learn: f64,
    ) -> Self {
        Self {
            width,
            allowance,
            threshold,
            quiet_limit,
            learn,
            ..Default::default()
        }
    }

    /// Takes `tuned`'s settings (bucket width, allowance, alarm level, quiet limit,
    /// learning rate), keeping what was learned: a restored detector obeys the current
    /// configuration.
    pub(super) fn retune(&mut self, tuned: &Cusum) {
        self.width = tuned.width;
        self.allowance = tuned.allowance;
        self.threshold = tuned.threshold;
        self.quiet_limit = tuned.quiet_limit;
        self.learn = tuned.learn;
    }

    /// Closes buckets up to `t`; returns true when a campaign has been quiet long
    /// enough to end.
    #[inline]
    pub(super) fn roll(&mut self, t: i64, in_campaign: bool) -> bool {
        // Called for every event; a bucket closes once a minute or so.
        t >= self.next && self.close_buckets(t, in_campaign)
    }

    #[inline(never)]
    fn close_buckets(&mut self, t: i64, in_campaign: bool) -> bool {
        let bucket = t.div_euclid(self.width);
        if self.bucket == 0 {
            self.bucket = bucket;
        }
        let mut ended = false;
        while self.bucket < bucket {
            let x = self.seen.len() as f64;
            self.seen.clear();
            self.sources.clear();
            let k = self.baseline + self.allowance;
            self.sum = (self.sum + x - k).max(0.0);
            if in_campaign && !ended {
                self.quiet = if x <= k { self.quiet + 1 } else { 0 };
                if self.quiet >= self.quiet_limit {
                    ended = true;
                    self.sum = 0.0;
                    self.quiet = 0;
                }
            } else if !in_campaign {
                // The baseline learns only outside campaigns, and a burst moves it no
                // more than a bucket at the alarm's edge would.
                let x = x.min(self.baseline + self.allowance);
                self.baseline += (x - self.baseline) * self.learn;
            }
            self.bucket += 1;
            // A long silence: jump ahead.
            if bucket - self.bucket > 1000 {
                self.bucket = bucket;
            }
        }
        self.next = (self.bucket + 1).saturating_mul(self.width);
        ended
    }

    /// Counts a name tried by `source` in the current bucket; true if the sum crosses
    /// the threshold with at least three sources behind it. A source counts for at most
    /// two names a bucket: one loud source is judged on its own, and a distributed
    /// campaign is many sources trying a little each.
    ///
    /// A bucket remembers at most `max_names` names and `max_sources` sources (the
    /// engine's table caps): an attacker choosing a fresh address and name for every
    /// try would otherwise fill an hour's bucket without limit. Past the caps nothing
    /// more is counted: the bucket's count stays at the cap, far above any sensible
    /// alarm level (a few names over the baseline), so the alarm has gone off and a
    /// campaign stays open while the flood lasts.
    pub(super) fn add(
        &mut self,
        name: u64,
        source: IpAddr,
        max_names: usize,
        max_sources: usize,
    ) -> bool {
        if self.sources.len() >= max_sources && !self.sources.contains_key(&source) {
            return false;
        }
        let n = self.sources.entry(source).or_insert(0);
        if *n >= 2 || (self.seen.len() >= max_names && !self.seen.contains(&name)) {
            return false;
        }
        let fresh = self.seen.insert(name);
        if fresh {
            *n += 1;
        }
        fresh
            && self.sources.len() >= 3
            && self.sum + self.seen.len() as f64 - (self.baseline + self.allowance)
                >= self.threshold
    }
}

/// The site-wide detectors: a fast one (per minute) for loud campaigns and a slow one
/// (per hour) for stealthy ones whose sources each try once in a while.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct SiteWatch {
    pub(super) fast: Cusum,
    pub(super) slow: Cusum,
    pub(super) campaign: Option<usize>,
    /// The open campaign was opened by the slow detector.
    pub(super) slow_open: bool,
    /// Recent suspicious (time, source), for enrolling a campaign's early members.
    pub(super) recent: VecDeque<(i64, IpAddr)>,
}

/// The chance that a Poisson count of mean `mean` is `k` or more, summed upwards from
/// `k` (accurate for the tiny tails the burst detector compares; 0 where they
/// underflow).
pub(super) fn poisson_tail(k: usize, mean: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    let mut term = (-mean).exp();
    for i in 1..=k {
        term *= mean / i as f64;
    }
    let mut sum = 0.0;
    let mut i = k;
    while term > 0.0 && term >= sum * 1e-15 && i < k + 10_000 {
        sum += term;
        i += 1;
        term *= mean / i as f64;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::poisson_tail;

    #[test]
    fn poisson_tails_match_known_values() {
        // P(X >= 1) = 1 - e^-m.
        assert!((poisson_tail(1, 0.5) - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        // Mean 1/12 (one an hour, over five minutes): five or more is about 3.3e-8.
        let p = poisson_tail(5, 1.0 / 12.0);
        assert!((3.0e-8..3.6e-8).contains(&p), "{p}");
        // Mean 5: 18 or more is about 5.42e-6 (one minus the first 18 terms).
        let p = poisson_tail(18, 5.0);
        assert!((5.40e-6..5.44e-6).contains(&p), "{p}");
        assert_eq!(poisson_tail(0, 3.0), 1.0);
        assert!(poisson_tail(2000, 0.01) < 1e-300);
    }
}
