//! The detection engine: a pure, deterministic state machine over event time.
//!
//! Events go in, in time order; the engine keeps bounded state per source, network
//! prefix and account, and judges as it goes. It never reads the clock: time is the
//! events' time, so a batch replay and a live run agree, and a test is a list of events.
//!
//! How it decides:
//!
//! 1. **Suspicious failures.** A failure is held for the typo window: if the same
//!    account then succeeds from the same source, it was a typo. Otherwise it counts as
//!    suspicious, unless the account has logged in from the source's prefix before
//!    (its owner's places: a stale device, a fumbling user). Shared gateways and CGNAT
//!    addresses therefore collect few suspicious failures however many users they carry.
//! 2. **One source.** Many suspicious failures fast on a few accounts is brute force;
//!    suspicious failures on many accounts is a password spray, or credential stuffing
//!    when many of the names do not exist. A source that mostly succeeds is never
//!    judged on volume.
//! 3. **Distributed campaigns.** Per minute, the number of distinct sources producing
//!    suspicious failures is compared with its learned baseline by a CUSUM (in the
//!    spirit of Javed & Paxson, CCS 2013); when it alarms, a campaign opens, and every
//!    source with suspicious failures on several accounts while it runs (or just before)
//!    is a participant. IPv6 sources are also aggregated by /64, so a client rotating
//!    addresses inside one is one participant.
//! 4. **Targeted guessing.** An account tried by many distinct suspicious sources that
//!    each try little else is targeted, and those sources are attackers.
//! 5. **Compromise.** Successes from a source on accounts it was not familiar to are
//!    remembered; when the source is judged an attacker (then or later), those accounts
//!    are compromised.
//!
//! Every threshold is in [`EngineConfig`]; every table is capped.

mod config;
mod finding;
mod report;
mod site;
mod snapshot;
mod state;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

// foldhash, seeded at random per process: several times faster than SipHash on these
// small keys, and (with every table capped) enough against keys chosen to collide.
use foldhash::fast::FixedState;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use config::EngineConfig;
pub use finding::Finding;
pub use snapshot::{SnapshotError, VERSION as SNAPSHOT_VERSION};

use crate::event::{Event, Outcome, Reason};
use jiff::tz::Offset;
use site::{Cusum, SiteWatch};
use state::{AccountState, Pending, PendingKey, PrefixState, SourceState, Verdict};

/// The kinds of attack, as the report contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// Many guesses on one or a few accounts.
    BruteForce,
    /// A few passwords on many accounts.
    PasswordSpray,
    /// Leaked pairs; many names unknown here.
    CredentialStuffing,
    /// Slow, distributed guessing on one account.
    Targeted,
}

impl Kind {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BruteForce => "brute_force",
            Kind::PasswordSpray => "password_spray",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::Targeted => "targeted",
        }
    }
}

/// A campaign as the engine tracks it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Campaign {
    kind: Kind,
    /// Opened by the site-wide CUSUM (several sources), else by one source or account.
    distributed: bool,
    start: i64,
    detected_at: i64,
    end: i64,
    open: bool,
    /// Holds single-source campaigns retired to stay within `max_campaigns`
    /// ([`Engine::bound_campaigns`]): its members are reported one by one, as the
    /// campaigns they were.
    archive: bool,
    /// Distinct names tried by members (high bit set: unknown here).
    names_tried: HashSet<u32>,
    /// Suspicious failures of members.
    attempts: u64,
}

/// Counts of what the engine did, for the report and for memory accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Events observed.
    pub events: u64,
    /// Events that could not be judged: no time, or no source address (a host name
    /// only, or a server that logged none).
    pub unjudged: u64,
    /// Events that went back in time by more than the typo window (read anyway).
    pub out_of_order: u64,
    /// Entries evicted to stay within the caps (campaigns retired included).
    pub evicted: u64,
    /// Findings dropped because nobody took them ([`Engine::take_findings`]).
    pub findings_dropped: u64,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    sources: HashMap<IpAddr, SourceState>,
    prefixes: HashMap<u64, PrefixState>,
    /// Keyed by the hash of the canonical name; the name itself is kept only where a
    /// report needs it (locked, targeted).
    accounts: HashMap<u64, AccountState>,
    pending: VecDeque<Pending>,
    /// Failures waiting, per (source, account or [`NO_USER`]).
    pending_keys: HashMap<(IpAddr, u64), PendingKey>,
    campaigns: Vec<Campaign>,
    /// [`Engine::bound_campaigns`] looks again once there are more campaigns than this
    /// (and than the cap): a cap that nothing more can be retired under is not checked
    /// again at every event.
    campaigns_checked: usize,
    site: SiteWatch,
    now: i64,
    first: Option<i64>,
    /// The offset the report shows times in: the one most of the first
    /// [`OFFSET_SAMPLE`] events were stamped with.
    offset: Offset,
    /// Those events' offsets (seconds) and how many had each; a few at most.
    offsets: Vec<(i32, u32)>,
    stats: EngineStats,
    /// Seeds [`Engine::hash64`]; kept in snapshots so that restored hashes still match.
    seed: u64,
    hasher: FixedState,
    /// Whether findings are collected for [`Engine::take_findings`].
    emit: bool,
    findings: VecDeque<Finding>,
}

/// The first events whose offsets choose the report's (an IIS log in UTC read with a
/// local syslog file shows the syslog's local time, whichever starts first).
const OFFSET_SAMPLE: u64 = 10_000;

/// The pending-failure key of a failure whose server logged no user, or whose name does
/// not exist here: any success from the same source within the typo window explains
/// it (a mistyped user name, then the right one).
const NO_USER: u64 = 0;

/// A seed no attacker can predict: std's hasher keys come from the operating system.
fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

fn pending_key(named: bool, unknown: bool, account_hash: u64) -> u64 {
    if named && !unknown {
        account_hash
    } else {
        NO_USER
    }
}

/// 31-bit hash of an account (high bit clear) or an unknown name (high bit set), from
/// the name's [`Engine::hash64`].
fn short_hash(hash: u64, unknown: bool) -> u32 {
    let h = (hash as u32) & 0x7fff_ffff;
    if unknown { h | 0x8000_0000 } else { h }
}

impl Engine {
    /// An engine with these thresholds.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            sources: HashMap::new(),
            prefixes: HashMap::new(),
            accounts: HashMap::new(),
            pending: VecDeque::new(),
            pending_keys: HashMap::new(),
            campaigns: Vec::new(),
            campaigns_checked: 0,
            site: SiteWatch {
                fast: Cusum::new(
                    60,
                    config.cusum_allowance,
                    config.cusum_threshold,
                    config.campaign_quiet_mins,
                    1.0 / 60.0,
                ),
                slow: Cusum::new(
                    3600,
                    config.slow_cusum_allowance,
                    config.slow_cusum_threshold,
                    config.slow_campaign_quiet_hours,
                    1.0 / 24.0,
                ),
                ..Default::default()
            },
            now: i64::MIN,
            first: None,
            offset: Offset::UTC,
            offsets: Vec::new(),
            stats: EngineStats::default(),
            seed: 0,
            hasher: FixedState::with_seed(0),
            emit: false,
            findings: VecDeque::new(),
            config,
        }
        .seeded(random_seed())
    }

    fn seeded(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.hasher = FixedState::with_seed(seed);
        self
    }

    /// The hash every table keyed by a name or a source uses: seeded per engine (at
    /// random, so that attackers cannot choose colliding names), and kept in snapshots.
    fn hash64<T: Hash + ?Sized>(&self, v: &T) -> u64 {
        self.hasher.hash_one(v)
    }

    /// [`short_hash`] of a known account's name.
    fn name_hash(&self, name: &str) -> u32 {
        short_hash(self.hash64(name), false)
    }

    /// Collects [`Finding`]s from now on, for [`Engine::take_findings`]. Off by default:
    /// batch analysis reads the report instead.
    pub fn enable_findings(&mut self) {
        self.emit = true;
    }

    /// Hands over the findings made since the last call, oldest first.
    pub fn take_findings(&mut self) -> impl Iterator<Item = Finding> + '_ {
        self.findings.drain(..)
    }

    /// Tells the engine that event time has reached `t` (Unix seconds) though no event
    /// says so: a live shell's watermark when sources are quiet. Failures whose typo
    /// window has passed are judged, and quiet campaigns close. Never moves time back.
    pub fn advance(&mut self, t: i64) {
        if t > self.now {
            self.now = t;
            self.promote_due();
            self.roll_site(self.now);
        }
    }

    /// The event time the engine has reached (Unix seconds), if it has seen any.
    pub fn now(&self) -> Option<i64> {
        (self.now != i64::MIN).then_some(self.now)
    }

    /// The kind of attack `source` was judged to make, if it was.
    pub fn verdict(&self, source: &IpAddr) -> Option<Kind> {
        self.sources
            .get(source)
            .and_then(|s| s.verdict.as_ref())
            .map(|v| v.kind)
    }

    /// What the engine did so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The prefix key a source aggregates into (/24 or /64 by default). IPv4 keys have
    /// the top 32 bits set, which no IPv6 source prefix has (that would be multicast).
    fn prefix_of(&self, a: &IpAddr) -> u64 {
        match a {
            IpAddr::V4(v4) => {
                let len = u32::from(self.config.prefix_v4.min(32));
                let masked = if len == 0 {
                    0
                } else {
                    u32::from(*v4) & (u32::MAX << (32 - len))
                };
                0xffff_ffff_0000_0000 | u64::from(masked)
            }
            IpAddr::V6(v6) => {
                let len = u32::from(self.config.prefix_v6.clamp(1, 64));
                ((u128::from(*v6) >> 64) as u64) & (u64::MAX << (64 - len))
            }
        }
    }

    /// Observes one event. Events should come in time order; small disorder is fine.
    pub fn observe(&mut self, e: &Event) {
        let (Some(time), Some(source)) = (e.time, e.source) else {
            self.stats.unjudged += 1;
            return;
        };
        let t = time.instant.as_second();
        if self.first.is_none() {
            self.first = Some(t);
        }
        if self.stats.events < OFFSET_SAMPLE {
            self.count_offset(time.offset);
        }
        if t + self.config.typo_window_secs < self.now {
            self.stats.out_of_order += 1;
        }
        self.now = self.now.max(t);
        self.stats.events += 1;
        self.promote_due();
        self.roll_site(self.now);

        let prefix = self.prefix_of(&source);
        let attempts = e.attempts.max(1);
        let unknown = e.outcome == Outcome::Failure(Reason::UnknownAccount);
        let account = e.account.as_deref();
        // Hashed once here; every table keyed by the account uses this.
        let account_hash = account.map_or(NO_USER, |a| self.hash64(a));
        let s = self.sources.entry(source).or_insert_with(|| SourceState {
            first_seen: t,
            ..Default::default()
        });
        s.last_seen = t;
        s.services |= e.service.bit();
        // Prefixes are judged only for IPv6 (one client's /64); IPv4 /24s hold many
        // unrelated hosts and serve familiarity alone, which needs no table.
        let mut p = if source.is_ipv6() {
            Some(self.prefixes.entry(prefix).or_default())
        } else {
            None
        };
        if let Some(p) = p.as_mut() {
            p.services |= e.service.bit();
        }
        match e.outcome {
            Outcome::Success => {
                s.successes = s.successes.saturating_add(attempts);
                if let Some(p) = p.as_mut() {
                    p.successes = p.successes.saturating_add(attempts);
                }
                // A failure of this account from this source moments ago was a typo;
                // so was one whose server logged no user (Postfix SASL).
                // Most successes come from sources with nothing pending: skip the lookups.
                let any = s.pending > 0;
                let same = any
                    && account.is_some()
                    && self.pending_keys.contains_key(&(source, account_hash));
                if same || (any && self.pending_keys.contains_key(&(source, NO_USER))) {
                    // Marked on the key; the failures are judged against it when their
                    // window ends, with no scan of the queue now.
                    for key in [account_hash, NO_USER] {
                        if let Some(k) = self.pending_keys.get_mut(&(source, key)) {
                            k.success_at = t;
                        }
                    }
                }
                if let Some(a) = account {
                    let acct = self.accounts.entry(account_hash).or_default();
                    if !acct.is_familiar(prefix) {
                        if s.unfamiliar_wins.len() < 8 {
                            s.unfamiliar_wins.push((a.into(), t));
                        }
                        acct.learn(prefix);
                        // A known attacker (or a member of an attacking /64) logging in.
                        let judged = s.verdict.as_ref().map(|v| v.kind).or_else(|| {
                            p.as_ref().and_then(|p| p.verdict.as_ref()).map(|v| v.kind)
                        });
                        if let Some(kind) = judged {
                            self.found(Finding::Compromised {
                                account: a.into(),
                                source,
                                kind,
                                login_at: t,
                                at: t,
                            });
                        }
                    }
                }
            }
            Outcome::Failure(reason) => {
                s.failures = s.failures.saturating_add(attempts);
                s.pending = s.pending.saturating_add(1);
                if let Some(p) = p.as_mut() {
                    p.failures = p.failures.saturating_add(attempts);
                }
                let familiar = match account {
                    Some(a) if !unknown => {
                        let acct = self.accounts.entry(account_hash).or_default();
                        acct.failures = acct.failures.saturating_add(attempts);
                        if reason == Reason::Locked {
                            acct.locked = true;
                            acct.name.get_or_insert_with(|| a.into());
                        }
                        acct.is_familiar(prefix)
                    }
                    _ => false,
                };
                let key = pending_key(account.is_some(), unknown, account_hash);
                let waiting = self
                    .pending_keys
                    .entry((source, key))
                    .or_insert(PendingKey {
                        count: 0,
                        success_at: i64::MIN,
                    });
                waiting.count += 1;
                // A source that never logged in, failing on an account that does not
                // know it: count it site-wide now rather than after the typo window.
                let fresh =
                    !familiar && self.sources.get(&source).is_some_and(|s| s.successes == 0);
                self.pending.push_back(Pending {
                    time: t,
                    source,
                    account: account.map(Into::into),
                    account_hash,
                    unknown,
                    familiar,
                    attempts,
                });
                if fresh {
                    let name = if account.is_some() {
                        account_hash
                    } else {
                        self.hash64(&source)
                    };
                    self.site_count(t, source, name, account.is_some());
                }
                if self.pending.len() > self.config.max_pending {
                    // Over the cap: judge the oldest now rather than hold it longer.
                    self.promote_one();
                }
            }
        }
        self.bound_tables();
    }

    /// Counts one event's offset; the report's is the most common so far (the first
    /// seen among equals).
    fn count_offset(&mut self, offset: Offset) {
        let secs = offset.seconds();
        if let Some((_, n)) = self.offsets.iter_mut().find(|(s, _)| *s == secs) {
            *n += 1;
        } else if self.offsets.len() < 8 {
            self.offsets.push((secs, 1));
        } else {
            return;
        }
        let mut best = self.offsets[0];
        for &(s, n) in &self.offsets[1..] {
            if n > best.1 {
                best = (s, n);
            }
        }
        if best.0 != self.offset.seconds() {
            self.offset = Offset::from_seconds(best.0).unwrap_or(Offset::UTC);
        }
    }

    /// Judges failures whose typo window has passed.
    fn promote_due(&mut self) {
        let limit = self.now - self.config.typo_window_secs;
        while self.pending.front().is_some_and(|f| f.time < limit) {
            self.promote_one();
        }
    }

    fn promote_one(&mut self) {
        let Some(f) = self.pending.pop_front() else {
            return;
        };
        if let Some(s) = self.sources.get_mut(&f.source) {
            s.pending = s.pending.saturating_sub(1);
        }
        let key = (
            f.source,
            pending_key(f.account.is_some(), f.unknown, f.account_hash),
        );
        // A success of the same account (or, for a failure without a known user, any
        // success) from the same source since the failure: a typo.
        let mut corrected = false;
        if let Some(k) = self.pending_keys.get_mut(&key) {
            corrected = k.success_at >= f.time;
            k.count -= 1;
            if k.count == 0 {
                self.pending_keys.remove(&key);
            }
        }
        if corrected || f.familiar {
            return;
        }
        self.suspicious(&f);
    }

    /// A failure that was neither a typo nor familiar.
    fn suspicious(&mut self, f: &Pending) {
        let t = f.time;
        let name = short_hash(f.account_hash, f.unknown);
        let prefix = self.prefix_of(&f.source);
        let cfg = &self.config;
        let Some(s) = self.sources.get_mut(&f.source) else {
            return;
        };
        if s.suspicious == 0 {
            s.first_suspicious = t;
        }
        s.suspicious = s.suspicious.saturating_add(f.attempts);
        s.last_suspicious = t;
        if f.unknown {
            s.unknown = s.unknown.saturating_add(f.attempts);
        }
        if f.account.is_some() {
            s.accounts.insert(name);
            s.named = s.named.saturating_add(f.attempts);
        }
        if t - s.window_start > cfg.brute_force_window_secs {
            s.window_start = t;
            s.window_count = 0;
            s.window_named = 0;
        }
        s.window_count = s.window_count.saturating_add(f.attempts);
        if f.account.is_some() {
            s.window_named = s.window_named.saturating_add(f.attempts);
        }
        let mostly_failing = s.failure_share() >= cfg.min_failure_share;
        let src_hash = self.hash64(&f.source) as u32;
        if f.source.is_ipv6() {
            let p = self.prefixes.entry(prefix).or_default();
            if p.suspicious == 0 {
                p.first_suspicious = t;
            }
            p.suspicious = p.suspicious.saturating_add(f.attempts);
            p.last_suspicious = t;
            if f.account.is_some() {
                p.accounts.insert(name);
            }
            p.members.insert(src_hash);
        }

        if mostly_failing && self.sources.get(&f.source).is_some_and(|s| s.successes > 0) {
            // Sources that never succeeded were counted when they failed.
            let key = if f.account.is_some() {
                f.account_hash
            } else {
                self.hash64(&f.source)
            };
            self.site_count(t, f.source, key, f.account.is_some());
        }
        if let (Some(_), false) = (f.account.as_deref(), f.unknown) {
            let acct = self.accounts.entry(f.account_hash).or_default();
            if acct.attackers.len() == 0 {
                acct.first_suspicious = t;
            }
            if acct.attackers.insert(src_hash) {
                acct.sources.push(f.source);
            }
        }
        // Detection happens now (the typo window after the failure), not at its time.
        let now = self.now;
        if let (Some(c), false) = (
            self.sources
                .get(&f.source)
                .and_then(|s| s.verdict.as_ref())
                .map(|v| v.campaign),
            f.account.is_none(),
        ) {
            let camp = &mut self.campaigns[c];
            if !camp.archive && camp.names_tried.len() < 10_000_000 {
                camp.names_tried.insert(name);
            }
            camp.attempts += u64::from(f.attempts);
        }
        self.judge_source(f.source, now);
        if let (Some(a), false) = (f.account.as_deref(), f.unknown) {
            self.judge_account(a, f.account_hash, f.source, now);
        }
        if f.source.is_ipv6() {
            self.judge_prefix(prefix, now);
        }
    }

    /// Counts a suspicious failure on `name` (an account's hash, or for a failure with
    /// no user logged, the source's) in the site-wide detectors; may open a campaign.
    fn site_count(&mut self, t: i64, source: IpAddr, name: u64, named: bool) {
        self.roll_site(self.now);
        // An attacker already judged is handled; it must neither raise the baseline nor
        // set off an alarm by itself.
        if self
            .sources
            .get(&source)
            .is_some_and(|s| s.verdict.is_some())
        {
            return;
        }
        let (max_names, max_sources) = (self.config.max_accounts, self.config.max_sources);
        let site = &mut self.site;
        site.recent.push_back((t, source));
        while site.recent.front().is_some_and(|(rt, _)| *rt < t - 3600)
            || site.recent.len() > 100_000
        {
            site.recent.pop_front();
        }
        let fast = site.fast.add(name, source, max_names, max_sources);
        // The slow detector counts only failures whose user is known: over an hour, the
        // per-source stand-ins of user-less (Postfix) failures would make any trickle of
        // sources look like many names.
        let slow = named && site.slow.add(name, source, max_names, max_sources);
        if site.campaign.is_none() {
            if fast || slow {
                self.site.slow_open = !fast;
                self.open_distributed(self.now);
            } else if let Some(per_minute) = self.burst(t) {
                // A campaign ends as the detector that would have seen it says: a
                // burst faster than the per-minute detector's allowance is a loud one.
                let f = &self.site.fast;
                self.site.slow_open = per_minute <= f.baseline + f.allowance;
                self.open_distributed(self.now);
            }
        }
    }

    /// The burst detector: the distinct sources behind the suspicious failures of the
    /// last `burst_window_secs` (at most 1,024 looked at), against what the per-hour
    /// detector's baseline (at least one name an hour) makes likely in that time.
    /// Returns, when it alarms, the sources' rate per minute.
    fn burst(&self, t: i64) -> Option<f64> {
        let cfg = &self.config;
        // It needs a baseline: not before the per-hour detector has learned for two
        // hours (at the start every source is new, so every failure counts).
        if cfg.burst_window_secs <= 0 || self.first.is_none_or(|f| t - f < 2 * 3600) {
            return None;
        }
        let from = t - cfg.burst_window_secs;
        let mut recent: Vec<(IpAddr, i64)> = self
            .site
            .recent
            .iter()
            .rev()
            .take_while(|(rt, _)| *rt >= from)
            .take(1024)
            .map(|(rt, a)| (*a, *rt))
            .collect();
        if recent.len() < cfg.burst_min_sources as usize {
            return None;
        }
        let oldest = recent.last().map_or(t, |(_, rt)| *rt);
        recent.sort_unstable();
        recent.dedup_by_key(|(a, _)| *a);
        let k = recent.len();
        let expected = self.site.slow.baseline.max(1.0) * cfg.burst_window_secs as f64 / 3600.0;
        let alarm =
            k >= cfg.burst_min_sources as usize && site::poisson_tail(k, expected) < cfg.burst_p;
        alarm.then(|| k as f64 * 60.0 / (t - oldest).max(60) as f64)
    }

    /// Closes the detectors' buckets up to `t`, ending a campaign that went quiet.
    fn roll_site(&mut self, t: i64) {
        let open = self.site.campaign.is_some();
        let fast_quiet = self.site.fast.roll(t, open);
        let slow_quiet = self.site.slow.roll(t, open);
        let ended = if self.site.slow_open {
            slow_quiet
        } else {
            fast_quiet
        };
        if let (true, Some(c)) = (ended, self.site.campaign) {
            self.campaigns[c].open = false;
            self.site.campaign = None;
            self.site.fast.sum = 0.0;
            self.site.slow.sum = 0.0;
        }
    }

    fn open_distributed(&mut self, now: i64) {
        let id = self.new_campaign(Kind::PasswordSpray, true, now, now, now);
        self.site.campaign = Some(id);
        // Sources already active in the build-up are members too.
        let recent: Vec<IpAddr> = self.site.recent.iter().map(|(_, a)| *a).collect();
        for a in recent {
            self.judge_source(a, now);
        }
    }

    fn judge_source(&mut self, source: IpAddr, now: i64) {
        let cfg = &self.config;
        let Some(s) = self.sources.get(&source) else {
            return;
        };
        if let Some(v) = &s.verdict {
            // A probe taken into a distributed campaign on its first try may turn out to
            // be hammering one account: it is then a brute force of its own.
            let hammering = s.window_named >= cfg.brute_force_failures
                && s.accounts.len() <= cfg.brute_force_max_accounts;
            if hammering && v.kind != Kind::BruteForce && self.campaigns[v.campaign].distributed {
                let (first, last, window) = (s.first_suspicious, s.last_suspicious, s.window_named);
                let evidence = format!(
                    "{window} failures within {} s on {} account(s)",
                    cfg.brute_force_window_secs,
                    s.accounts.len()
                );
                let id = self.new_campaign(Kind::BruteForce, false, first, now, last);
                self.join(id, source, Kind::BruteForce, now, &evidence);
            }
            return;
        }
        if s.failure_share() < cfg.min_failure_share {
            return;
        }
        let (distinct, unknown, full) = (s.accounts.len(), s.unknown_names(), s.accounts.is_full());
        // A source that never logged in (or only into accounts it was a stranger to)
        // and tried a name that does not exist here, while a distributed campaign
        // runs, is probing: stealthy members try once. (One try on a real account is
        // judged only in hindsight, see `enrol_late`.)
        let probe = probing(s, false);
        // Brute force is judged on failures whose user is known: without it (Postfix
        // logs none) a spray cannot be told from one account being hammered.
        let window = s.window_named;
        let (first, last) = (s.first_suspicious, s.last_suspicious);
        let stuffing = source_stuffing(s, cfg);
        let open = self.site.campaign.filter(|&c| self.campaigns[c].open);
        let (kind, evidence) = if window >= cfg.brute_force_failures
            && distinct <= cfg.brute_force_max_accounts
        {
            (
                Kind::BruteForce,
                format!(
                    "{window} failures within {} s on {distinct} account(s)",
                    cfg.brute_force_window_secs
                ),
            )
        } else if let Some(c) = open
            && (distinct >= cfg.participant_accounts || probe)
            && last >= self.campaigns[c].start - 3600
        {
            let kind = if stuffing {
                Kind::CredentialStuffing
            } else {
                Kind::PasswordSpray
            };
            let evidence = format!(
                "{distinct} accounts tried during a distributed campaign, {unknown} of them unknown here"
            );
            self.join(c, source, kind, now, &evidence);
            return;
        } else if distinct >= cfg.stuffing_accounts && stuffing {
            (
                Kind::CredentialStuffing,
                format!("{distinct} names tried, {unknown} of them unknown here"),
            )
        } else if distinct >= cfg.spray_accounts {
            (
                Kind::PasswordSpray,
                format!(
                    "{distinct}{} distinct accounts tried",
                    if full { "+" } else { "" }
                ),
            )
        } else {
            return;
        };
        let id = self.new_campaign(kind, false, first, now, last);
        self.join(id, source, kind, now, &evidence);
    }

    fn new_campaign(
        &mut self,
        kind: Kind,
        distributed: bool,
        start: i64,
        detected_at: i64,
        end: i64,
    ) -> usize {
        self.campaigns.push(Campaign {
            kind,
            distributed,
            start,
            detected_at,
            end,
            open: true,
            archive: false,
            names_tried: HashSet::new(),
            attempts: 0,
        });
        let id = self.campaigns.len() - 1;
        self.found(Finding::Campaign {
            id,
            kind,
            distributed,
            start,
            detected_at,
        });
        id
    }

    /// Queues a finding, if findings are wanted.
    fn found(&mut self, f: Finding) {
        if self.emit {
            if self.findings.len() >= finding::MAX_FINDINGS {
                self.findings.pop_front();
                self.stats.findings_dropped += 1;
            }
            self.findings.push_back(f);
        }
    }

    /// Makes `source` an attacker in campaign `c`, judged at `t`.
    fn join(&mut self, c: usize, source: IpAddr, kind: Kind, t: i64, evidence: &str) {
        let Some(s) = self.sources.get_mut(&source) else {
            return;
        };
        s.verdict = Some(Verdict {
            kind,
            at: t,
            campaign: c,
            evidence: evidence.to_owned(),
        });
        let camp = &mut self.campaigns[c];
        camp.start = camp.start.min(s.first_suspicious);
        camp.end = camp.end.max(s.last_suspicious);
        camp.attempts += u64::from(s.suspicious);
        for h in s.accounts.iter() {
            if camp.names_tried.len() < 10_000_000 {
                camp.names_tried.insert(h);
            }
        }
        if self.emit {
            let wins = s.unfamiliar_wins.clone();
            self.found(Finding::Attacker {
                source,
                kind,
                at: t,
                evidence: evidence.to_owned(),
            });
            for (account, login_at) in wins {
                self.found(Finding::Compromised {
                    account: account.into(),
                    source,
                    kind,
                    login_at,
                    at: t.max(login_at),
                });
            }
        }
    }

    /// A /64 whose addresses together try many accounts is one rotating client.
    fn judge_prefix(&mut self, prefix: u64, t: i64) {
        let cfg = &self.config;
        let Some(p) = self.prefixes.get(&prefix) else {
            return;
        };
        if p.verdict.is_some() || p.members.len() < 2 {
            return;
        }
        let share = f64::from(p.failures) / f64::from((p.failures + p.successes).max(1));
        if share < cfg.min_failure_share {
            return;
        }
        let distinct = p.accounts.len();
        let members = p.members.len();
        let (first, last) = (p.first_suspicious, p.last_suspicious);
        let open = self.site.campaign.filter(|&c| self.campaigns[c].open);
        let c = match open {
            Some(c) if distinct >= cfg.participant_accounts => c,
            _ if distinct >= cfg.spray_accounts => {
                self.new_campaign(Kind::PasswordSpray, false, first, t, last)
            }
            _ => return,
        };
        let evidence = format!("{members} addresses in one /64 tried {distinct} accounts");
        if self.emit {
            let len = self.config.prefix_v6.clamp(1, 64);
            self.found(Finding::AttackerPrefix {
                network: IpAddr::V6(std::net::Ipv6Addr::from(u128::from(prefix) << 64)),
                len,
                kind: Kind::PasswordSpray,
                at: t,
                evidence: evidence.clone(),
            });
        }
        if let Some(p) = self.prefixes.get_mut(&prefix) {
            p.verdict = Some(Verdict {
                kind: Kind::PasswordSpray,
                at: t,
                campaign: c,
                evidence,
            });
        }
        let camp = &mut self.campaigns[c];
        camp.start = camp.start.min(first);
        camp.end = camp.end.max(last);
    }

    /// An account tried by many distinct suspicious sources that try little else is
    /// targeted; `source` is the one that just failed on it.
    fn judge_account(&mut self, account: &str, key: u64, source: IpAddr, now: i64) {
        let cfg = &self.config;
        let Some(acct) = self.accounts.get(&key) else {
            return;
        };
        if let Some(c) = acct.targeted {
            let focused = self.sources.get(&source).is_some_and(|s| {
                s.verdict.is_none()
                    && s.accounts.len() <= 2
                    && s.failure_share() >= cfg.min_failure_share
            });
            if focused {
                self.join(
                    c,
                    source,
                    Kind::Targeted,
                    now,
                    &format!("guessing at {account}, little else"),
                );
            }
            return;
        }
        let n = acct.attackers.len();
        // Checked again only as the count grows, so that this scan stays rare.
        if n < cfg.targeted_sources || n <= acct.checked_at {
            return;
        }
        let first = acct.first_suspicious;
        // The account keeps its first sources themselves: no scan of every source.
        let members: Vec<(IpAddr, bool)> = acct
            .sources
            .iter()
            .filter_map(|a| self.sources.get(a).map(|s| (*a, s)))
            .filter(|(_, s)| s.suspicious > 0 && s.last_suspicious >= first)
            .map(|(a, s)| {
                (
                    a,
                    s.verdict.is_none()
                        && s.accounts.len() <= 2
                        && s.failure_share() >= cfg.min_failure_share,
                )
            })
            .collect();
        let focused: Vec<IpAddr> = members
            .iter()
            .filter(|(_, f)| *f)
            .map(|(a, _)| *a)
            .collect();
        if let Some(a) = self.accounts.get_mut(&key) {
            a.checked_at = n + n / 2;
        }
        if members.is_empty() || (focused.len() as f64) < cfg.targeted_focus * members.len() as f64
        {
            return;
        }
        let id = self.new_campaign(Kind::Targeted, false, first, now, now);
        let h = self.name_hash(account);
        self.campaigns[id].names_tried.insert(h);
        if let Some(a) = self.accounts.get_mut(&key) {
            a.targeted = Some(id);
            a.name.get_or_insert_with(|| account.into());
        }
        for src in focused {
            self.join(
                id,
                src,
                Kind::Targeted,
                now,
                &format!("guessing at {account}, little else"),
            );
        }
    }

    /// Keeps every table within its cap, evicting the least telling entries.
    fn bound_tables(&mut self) {
        let cfg = &self.config;
        if self.sources.len() > cfg.max_sources {
            let before = self.sources.len();
            evict(
                &mut self.sources,
                cfg.max_sources,
                |s| s.verdict.is_none() && s.suspicious < 2,
                |s| s.last_seen,
            );
            self.stats.evicted += (before - self.sources.len()) as u64;
        }
        if self.prefixes.len() > cfg.max_prefixes {
            let before = self.prefixes.len();
            evict(
                &mut self.prefixes,
                cfg.max_prefixes,
                |p| p.verdict.is_none() && p.suspicious < 2,
                |p| p.last_suspicious,
            );
            self.stats.evicted += (before - self.prefixes.len()) as u64;
        }
        if self.accounts.len() > cfg.max_accounts {
            let before = self.accounts.len();
            evict(
                &mut self.accounts,
                cfg.max_accounts,
                |a| a.targeted.is_none() && !a.locked,
                |a| a.first_suspicious,
            );
            self.stats.evicted += (before - self.accounts.len()) as u64;
        }
        self.bound_campaigns();
    }

    /// Keeps the campaigns within `max_campaigns`. Every source judged on its own opens
    /// a campaign, so a year of the internet's SSH brute forcers would open hundreds of
    /// thousands. Over the cap, the oldest single-source campaigns (brute force, and
    /// spray or stuffing by one source) are retired into one archive per kind: their
    /// sources keep their verdicts and each is still reported as its own campaign, from
    /// what the source itself remembers (its accounts tried then count up to 32).
    /// Distributed and targeted campaigns are never retired.
    fn bound_campaigns(&mut self) {
        let cap = self.config.max_campaigns.max(8);
        if self.campaigns.len() <= cap.max(self.campaigns_checked) {
            return;
        }
        self.retire_campaigns(cap);
        // Distributed and targeted campaigns alone may fill the cap: then wait for a
        // tenth more before looking again.
        self.campaigns_checked = if self.campaigns.len() <= cap {
            0
        } else {
            self.campaigns.len() + cap / 10
        };
    }

    fn retire_campaigns(&mut self, cap: usize) {
        let retirable = |c: &Campaign| !c.distributed && !c.archive && c.kind != Kind::Targeted;
        let mut old: Vec<(i64, usize)> = self
            .campaigns
            .iter()
            .enumerate()
            .filter(|(_, c)| retirable(c))
            .map(|(i, c)| (c.end, i))
            .collect();
        old.sort_unstable();
        let excess = self.campaigns.len() - (cap - cap / 10);
        // Into which campaign each one goes: its kind's archive (made, when there is
        // none yet, of the first one retired of that kind).
        let mut into: HashMap<usize, usize> = HashMap::default();
        let mut archives: Vec<(Kind, usize)> = self
            .campaigns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.archive)
            .map(|(i, c)| (c.kind, i))
            .collect();
        for &(_, i) in &old {
            if into.len() >= excess {
                break;
            }
            let kind = self.campaigns[i].kind;
            match archives.iter().find(|(k, _)| *k == kind) {
                Some(&(_, a)) => {
                    into.insert(i, a);
                }
                None => {
                    let c = &mut self.campaigns[i];
                    c.archive = true;
                    c.names_tried = HashSet::default();
                    archives.push((kind, i));
                }
            }
        }
        if into.is_empty() {
            return;
        }
        for (&i, &a) in &into {
            let (start, end, detected, attempts) = {
                let c = &self.campaigns[i];
                (c.start, c.end, c.detected_at, c.attempts)
            };
            let arc = &mut self.campaigns[a];
            arc.start = arc.start.min(start);
            arc.end = arc.end.max(end);
            arc.detected_at = arc.detected_at.min(detected);
            arc.attempts = arc.attempts.saturating_add(attempts);
        }
        // New positions: the retired ones go, the rest close up.
        let mut moved = vec![usize::MAX; self.campaigns.len()];
        let mut next = 0;
        for (i, m) in moved.iter_mut().enumerate() {
            if !into.contains_key(&i) {
                *m = next;
                next += 1;
            }
        }
        for (&i, &a) in &into {
            moved[i] = moved[a];
        }
        let mut i = 0;
        self.campaigns.retain(|_| {
            i += 1;
            !into.contains_key(&(i - 1))
        });
        let verdicts = self
            .sources
            .values_mut()
            .filter_map(|s| s.verdict.as_mut())
            .chain(
                self.prefixes
                    .values_mut()
                    .filter_map(|p| p.verdict.as_mut()),
            );
        for v in verdicts {
            v.campaign = moved[v.campaign];
        }
        for a in self.accounts.values_mut() {
            if let Some(c) = a.targeted.as_mut() {
                *c = moved[*c];
            }
        }
        if let Some(c) = self.site.campaign.as_mut() {
            *c = moved[*c];
        }
        // Retired campaigns count as evicted entries.
        self.stats.evicted += into.len() as u64;
    }

    /// Ends the input: failures still in their typo window are judged, and campaigns
    /// take in the sources that took part before they were recognised.
    pub fn finish(&mut self) {
        while !self.pending.is_empty() {
            self.promote_one();
        }
        self.roll_site(self.now + 60);
        self.enrol_late();
    }

    /// Looking back over the whole input: sources focused on a targeted account, and
    /// sources with suspicious failures on several accounts while a distributed
    /// campaign ran (within an hour of its edges), join those campaigns.
    fn enrol_late(&mut self) {
        // One-try sources on accounts that turned out to be sprayed, whatever the order
        // in which they and the spray's members were judged.
        let mut lone: Vec<IpAddr> = Vec::new();
        for (key, acct) in &self.accounts {
            if acct.sources.is_empty() || !self.account_sprayed(*key) {
                continue;
            }
            lone.extend(acct.sources.iter().copied().filter(|a| {
                self.sources.get(a).is_some_and(|s| {
                    s.verdict.is_none()
                        && s.sprayed_hits == 0
                        && s.accounts.len() < self.config.participant_accounts
                })
            }));
        }
        for a in lone {
            if let Some(s) = self.sources.get_mut(&a) {
                s.sprayed_hits = 1;
            }
        }
        let cfg = self.config.clone();
        let targeted: Vec<(u32, usize)> = self
            .accounts
            .values()
            .filter_map(|a| {
                a.targeted
                    .zip(a.name.as_deref())
                    .map(|(c, name)| (self.name_hash(name), c))
            })
            .collect();
        let windows: Vec<(usize, i64, i64)> = self
            .campaigns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.distributed)
            .map(|(i, c)| (i, c.start - 3600, c.end.max(c.detected_at) + 3600))
            .collect();
        let mut joins: Vec<(usize, IpAddr, Kind, String)> = Vec::new();
        for (a, s) in &self.sources {
            if s.verdict.is_some() || s.suspicious == 0 || s.failure_share() < cfg.min_failure_share
            {
                continue;
            }
            if s.accounts.len() <= 2
                && let Some((_, c)) = targeted
                    .iter()
                    .find(|(h, _)| s.accounts.iter().any(|x| x == *h))
            {
                joins.push((
                    *c,
                    *a,
                    Kind::Targeted,
                    "guessing at a targeted account, little else (seen in hindsight)".into(),
                ));
                continue;
            }
            if (s.accounts.len() >= cfg.participant_accounts || probing(s, true))
                && let Some((c, _, _)) = windows
                    .iter()
                    .find(|(_, w0, w1)| s.first_suspicious <= *w1 && s.last_suspicious >= *w0)
            {
                let stuffing = source_stuffing(s, &cfg);
                let kind = if stuffing {
                    Kind::CredentialStuffing
                } else {
                    Kind::PasswordSpray
                };
                let evidence = format!(
                    "{} accounts tried while a distributed campaign ran (seen in hindsight)",
                    s.accounts.len()
                );
                joins.push((*c, *a, kind, evidence));
            }
        }
        let now = self.now;
        for (c, a, kind, evidence) in joins {
            self.join(c, a, kind, now, &evidence);
        }
    }

    /// Whether account `key` was sprayed: at least `probe_account_sources` of the
    /// sources that failed on it are judged members of a spray or
    /// stuffing that tried several accounts, and they are no small minority of its
    /// attackers (an account most of whose attackers try it alone is targeted, and its
    /// guessers belong to that). Reads at most the account's 32 first sources.
    fn account_sprayed(&self, key: u64) -> bool {
        let cfg = &self.config;
        let min = cfg.probe_account_sources;
        if min == 0 {
            return false;
        }
        let Some(acct) = self.accounts.get(&key) else {
            return false;
        };
        if acct.targeted.is_some() {
            return false;
        }
        let (mut total, mut sprayers) = (0u32, 0u32);
        for a in &acct.sources {
            let Some(s) = self.sources.get(a) else {
                continue;
            };
            total += 1;
            let member = s.accounts.len() >= cfg.participant_accounts
                && s.verdict.as_ref().is_some_and(|v| {
                    matches!(v.kind, Kind::PasswordSpray | Kind::CredentialStuffing)
                });
            sprayers += u32::from(member);
        }
        sprayers >= min && f64::from(sprayers) >= (1.0 - cfg.targeted_focus) * f64::from(total)
    }

    /// Entries held, per table: (sources, prefixes, accounts, pending).
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.sources.len(),
            self.prefixes.len(),
            self.accounts.len(),
            self.pending.len(),
        )
    }
}

/// A source that may be a stealthy member of a distributed campaign on the strength of
/// one failure: it tried a name unknown here (or, in `hindsight`, an account that was
/// sprayed: judged live, that would name a user who got their password wrong once and
/// right later), and it never logged in, or only into accounts it was a stranger to
/// and only before that failure (after it is a user who got their own name wrong
/// first), as an attacker moves on after a guess that worked.
fn probing(s: &state::SourceState, hindsight: bool) -> bool {
    let tried = s.unknown_names() >= 1 || (hindsight && s.sprayed_hits >= 1);
    let stranger = s.successes == 0
        || (s.unfamiliar_wins.len() >= s.successes as usize
            && s.unfamiliar_wins
                .iter()
                .all(|(_, t)| *t < s.first_suspicious));
    tried && stranger
}

/// Credential stuffing tries each leaked name about once, many of them unknown here; a
/// spray (or an SSH dictionary attack) goes back to the same names with more passwords.
/// `distinct` may be capped (a full set): then the attempt counts decide.
fn looks_like_stuffing(distinct: u32, unknown: u32, attempts: u32, cfg: &EngineConfig) -> bool {
    distinct > 0
        && f64::from(unknown) >= f64::from(distinct) * cfg.stuffing_unknown_share
        && f64::from(attempts) < f64::from(distinct) * 1.5
}

/// [`looks_like_stuffing`] for a source, whose name set stops at its cap.
fn source_stuffing(s: &state::SourceState, cfg: &EngineConfig) -> bool {
    if s.accounts.is_full() {
        f64::from(s.unknown) >= f64::from(s.named) * cfg.stuffing_unknown_share
    } else {
        looks_like_stuffing(s.accounts.len(), s.unknown_names(), s.named, cfg)
    }
}

/// Evicts down to 90 % of `cap`: first entries `expendable` says may go, oldest first
/// by `age`; then, if still over, the oldest of any.
fn evict<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    expendable: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> i64,
) {
    let target = cap - cap / 10;
    let mut order: Vec<(bool, i64, K)> = map
        .iter()
        .map(|(k, v)| (!expendable(v), age(v), k.clone()))
        .collect();
    order.sort_unstable_by_key(|a| (a.0, a.1));
    let excess = map.len().saturating_sub(target);
    for (_, _, k) in order.into_iter().take(excess) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests;
