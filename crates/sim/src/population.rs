//! The organisation's people and the addresses they log in from.
//!
//! Shared addresses are what make benign traffic hard to tell from an attack: an office
//! NAT gateway carries thousands of users' logins (and their typos), a carrier's CGNAT
//! address dozens of phones. The population is drawn once per seed; who logs in when is
//! drawn per slot in [`crate::benign`].

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::rng::{self, purpose};
use crate::scenario::Scenario;

/// What kind of benign source an address is, for the truth and for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// An office NAT gateway shared by everyone in the office.
    OfficeGateway,
    /// A VPN concentrator's public address.
    VpnGateway,
    /// A mobile carrier's CGNAT address shared by dozens of phones.
    Cgnat,
    /// A user's home address.
    Home,
    /// A hotel or roaming address of a travelling user.
    Traveller,
    /// A device still holding an old password, retrying from its user's home.
    StaleDevice,
}

impl SourceKind {
    /// The name used in `truth.json` and by `portcullis eval`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OfficeGateway => "office_gateway",
            SourceKind::VpnGateway => "vpn_gateway",
            SourceKind::Cgnat => "cgnat",
            SourceKind::Home => "home",
            SourceKind::Traveller => "traveller",
            SourceKind::StaleDevice => "stale_device",
        }
    }
}

/// One account and its owner's places.
#[derive(Debug, Clone)]
pub struct Account {
    /// `local@domain`.
    pub name: String,
    /// If the password is the n-th of the attackers' common list: Some(n).
    pub weak_round: Option<u32>,
    /// The owner's home address.
    pub home: IpAddr,
    /// The owner's carrier CGNAT pool.
    pub pool: u32,
    /// Which office gateway the owner's desk is behind.
    pub office: u32,
    /// Also logs in over SSH.
    pub ssh: bool,
    /// Enrolled in a second factor (Entra ID asks for it after the password).
    pub mfa: bool,
    /// Its phone's ActiveSync profile names it `DOMAIN\user` rather than by UPN.
    pub netbios_name: bool,
    /// A trip: (from ms, to ms, hotel address).
    pub trip: Option<(i64, i64, IpAddr)>,
    /// A password change: (changed at ms, other devices updated at ms).
    pub reset: Option<(i64, i64)>,
}

/// A device retrying with an old password.
#[derive(Debug, Clone, Copy)]
pub struct StaleDevice {
    /// Whose.
    pub account: u32,
    /// First retry, ms.
    pub from_ms: i64,
    /// Its owner fixes it, ms.
    pub to_ms: i64,
    /// Retry period, ms.
    pub period_ms: i64,
}

/// Everyone and every shared address.
#[derive(Debug, Clone)]
pub struct Population {
    /// The accounts.
    pub accounts: Vec<Account>,
    /// Office NAT gateways.
    pub office: Vec<IpAddr>,
    /// VPN gateways.
    pub vpn: Vec<IpAddr>,
    /// CGNAT pools.
    pub cgnat: Vec<Vec<IpAddr>>,
    /// Stale devices.
    pub stale: Vec<StaleDevice>,
    /// The mail server's own address (Dovecot's `lip=`).
    pub server: IpAddr,
    /// Every address handed out so far, so that no two roles share one.
    pub(crate) used: HashSet<IpAddr>,
}

const FIRST: &[&str] = &[
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "chris",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "sandra",
    "mark",
    "margaret",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenneth",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "melissa",
    "george",
    "deborah",
    "timothy",
    "stephanie",
    "ronald",
    "rebecca",
    "jason",
    "sharon",
    "edward",
    "laura",
    "jeffrey",
    "cynthia",
    "ryan",
    "amy",
    "jacob",
    "kathleen",
    "gary",
    "angela",
    "nicholas",
    "helen",
    "eric",
    "anna",
    "jonathan",
    "brenda",
    "stephen",
    "pamela",
    "larry",
    "emma",
    "justin",
    "nicole",
    "scott",
    "samantha",
    "brandon",
    "katherine",
    "benjamin",
    "christine",
    "samuel",
    "debra",
    "gregory",
    "rachel",
    "alexander",
    "carolyn",
    "patrick",
    "janet",
    "frank",
    "maria",
    "raymond",
    "olivia",
    "jack",
    "heather",
    "dennis",
    "diane",
    "jerry",
    "julie",
];

const LAST: &[&str] = &[
    "smith",
    "jones",
    "taylor",
    "brown",
    "williams",
    "wilson",
    "johnson",
    "davies",
    "patel",
    "robinson",
    "wright",
    "thompson",
    "evans",
    "walker",
    "white",
    "roberts",
    "green",
    "hall",
    "thomas",
    "clarke",
    "jackson",
    "wood",
    "harris",
    "edwards",
    "turner",
    "martin",
    "cooper",
    "hill",
    "ward",
    "hughes",
    "moore",
    "clark",
    "king",
    "harrison",
    "lewis",
    "baker",
    "lee",
    "allen",
    "morris",
    "khan",
    "scott",
    "watson",
    "davis",
    "parker",
    "james",
    "bennett",
    "young",
    "phillips",
    "richardson",
    "mitchell",
    "bailey",
    "carter",
    "cook",
    "singh",
    "shaw",
    "bell",
    "collins",
    "morgan",
    "kelly",
    "begum",
    "miller",
    "cox",
    "hussain",
    "marshall",
    "simpson",
    "price",
    "anderson",
    "adams",
    "wilkinson",
    "ali",
    "ahmed",
    "foster",
    "ellis",
    "murphy",
    "chapman",
    "mason",
    "gray",
    "richards",
    "webb",
    "griffiths",
    "hunt",
    "palmer",
    "campbell",
    "holmes",
    "mills",
    "rogers",
    "barnes",
    "knight",
    "matthews",
    "barker",
    "powell",
    "stevens",
    "kaur",
    "fisher",
    "butler",
    "dixon",
    "russell",
    "harvey",
    "pearson",
    "graham",
];

/// Local part number `i` of a deterministic name sequence (`first.last`, then
/// `first.last2`, …).
pub fn local_part(i: u32) -> String {
    let n = (FIRST.len() * LAST.len()) as u32;
    let (round, k) = (i / n, i % n);
    let first = FIRST[(k % FIRST.len() as u32) as usize];
    let last = LAST[(k / FIRST.len() as u32) as usize];
    if round == 0 {
        format!("{first}.{last}")
    } else {
        format!("{first}.{last}{}", round + 1)
    }
}

/// How common the attackers' list's passwords are among weak accounts: the first
/// entries (`Password1`, `Summer2017`, …) account for most (password popularity is
/// Zipf-like; see docs/simulate.md).
const WEAK_ROUND_WEIGHTS: &[f64] = &[0.30, 0.20, 0.14, 0.10, 0.08, 0.06, 0.05, 0.04, 0.03];

impl Population {
    /// Draws everyone for a scenario and seed.
    pub fn draw(s: &Scenario, seed: u64, start_ms: i64, end_ms: i64) -> Self {
        let mut rng = rng::stream(seed, &[purpose::POPULATION]);
        let mut used = HashSet::new();
        let b = &s.benign;
        let org_net = public_v4(&mut rng, &mut used) & 0xffff_ff00;
        let mut in_org = |i: u32| {
            let a = IpAddr::V4(Ipv4Addr::from(org_net | (10 + i)));
            used.insert(a);
            a
        };
        let office: Vec<IpAddr> = (0..b.office_gateways.min(100)).map(&mut in_org).collect();
        let vpn: Vec<IpAddr> = (0..b.vpn_gateways.min(100))
            .map(|i| in_org(100 + i))
            .collect();
        let server = in_org(200);
        let cgnat = (0..b.cgnat_pools)
            .map(|_| {
                let net = public_v4(&mut rng, &mut used) & 0xffff_ff00;
                (0..b.cgnat_pool_size.min(250))
                    .map(|i| {
                        let a = IpAddr::V4(Ipv4Addr::from(net | (1 + i)));
                        used.insert(a);
                        a
                    })
                    .collect()
            })
            .collect();
        let n = s.organisation.accounts;
        let mut vip: Vec<String> = s
            .organisation
            .vip
            .iter()
            .map(|v| format!("{v}@{}", s.organisation.domain))
            .collect();
        vip.retain(|v| !v.is_empty());
        let mut accounts: Vec<Account> = (0..n)
            .map(|i| {
                let name = match vip.get(i as usize) {
                    Some(v) => v.clone(),
                    None => format!("{}@{}", local_part(i), s.organisation.domain),
                };
                let is_vip = (i as usize) < vip.len();
                let weak_round = (!is_vip && rng.random_bool(s.organisation.weak_share))
                    .then(|| pick_weighted(&mut rng, WEAK_ROUND_WEIGHTS));
                let home = if rng.random_bool(b.ipv6_share) {
                    public_v6(&mut rng, &mut used)
                } else {
                    IpAddr::V4(Ipv4Addr::from(public_v4(&mut rng, &mut used)))
                };
                Account {
                    name,
                    weak_round,
                    home,
                    pool: rng.random_range(0..b.cgnat_pools),
                    office: rng.random_range(0..b.office_gateways.clamp(1, 100)),
                    ssh: false,
                    // Hashed rather than drawn, so that the stream (and every scenario
                    // written before these existed) is unchanged.
                    mfa: rng::unit(rng::hash(seed, &[purpose::POPULATION, 1, u64::from(i)]))
                        < s.organisation.mfa_share,
                    netbios_name: rng::hash(seed, &[purpose::POPULATION, 2, u64::from(i)]) % 2 == 0,
                    trip: None,
                    reset: None,
                }
            })
            .collect();
        let span = end_ms - start_ms;
        let mut order: Vec<u32> = (0..n).collect();
        order.shuffle(&mut rng);
        for &i in order.iter().take(s.organisation.ssh_users as usize) {
            accounts[i as usize].ssh = true;
        }
        order.shuffle(&mut rng);
        let travellers = (f64::from(n) * b.travellers).round() as usize;
        for &i in order.iter().take(travellers) {
            let from = start_ms + rng.random_range(0..span.max(1));
            let hotel = IpAddr::V4(Ipv4Addr::from(public_v4(&mut rng, &mut used)));
            accounts[i as usize].trip =
                Some((from, from + rng.random_range(6..48) * 3_600_000, hotel));
        }
        if let Some(r) = &b.reset {
            order.shuffle(&mut rng);
            let at = start_ms + r.at.as_millis() as i64;
            for &i in order.iter().take((f64::from(n) * r.share).round() as usize) {
                let changed = at + rng.random_range(0..8 * 3_600_000);
                let fixed = changed + rng.random_range(10 * 60_000..3 * 3_600_000);
                accounts[i as usize].reset = Some((changed, fixed));
            }
        }
        order.shuffle(&mut rng);
        let period_ms = b.stale_retry.as_millis() as i64;
        let stale = order
            .iter()
            .take(b.stale_devices as usize)
            .map(|&account| {
                let from_ms = start_ms + rng.random_range(0..span.max(1));
                let jitter = rng.random_range(0.8..1.2);
                StaleDevice {
                    account,
                    from_ms,
                    to_ms: from_ms + b.stale_for.as_millis() as i64,
                    period_ms: ((period_ms as f64) * jitter) as i64,
                }
            })
            .collect();
        Self {
            accounts,
            office,
            vpn,
            cgnat,
            stale,
            server,
            used,
        }
    }

    /// The index of an account by name.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.accounts
            .iter()
            .position(|a| a.name == name)
            .map(|i| i as u32)
    }

    /// A fresh public IPv4 address nobody else has.
    pub(crate) fn fresh_v4(&mut self, rng: &mut ChaCha8Rng) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(public_v4(rng, &mut self.used)))
    }

    /// A fresh IPv6 /64 nobody else has (its first 64 bits).
    pub(crate) fn fresh_v6_prefix(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        loop {
            let p = v6_prefix(rng);
            if self
                .used
                .insert(IpAddr::V6(Ipv6Addr::from(u128::from(p) << 64)))
            {
                return p;
            }
        }
    }
}

fn pick_weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> u32 {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i as u32;
        }
        x -= w;
    }
    weights.len() as u32 - 1
}

/// A random globally routable IPv4 address (not private, reserved, documentation,
/// shared, loopback, link-local or multicast), not yet used.
fn public_v4(rng: &mut ChaCha8Rng, used: &mut HashSet<IpAddr>) -> u32 {
    loop {
        let a: u32 = rng.random();
        let ip = Ipv4Addr::from(a);
        let [o1, o2, o3, _] = ip.octets();
        let reserved = o1 == 0
            || o1 == 10
            || o1 == 127
            || o1 >= 224
            || (o1 == 100 && (64..128).contains(&o2))
            || (o1 == 169 && o2 == 254)
            || (o1 == 172 && (16..32).contains(&o2))
            || (o1 == 192 && o2 == 168)
            || (o1 == 192 && o2 == 0 && (o3 == 0 || o3 == 2))
            || (o1 == 198 && (o2 == 18 || o2 == 19))
            || (o1 == 198 && o2 == 51 && o3 == 100)
            || (o1 == 203 && o2 == 0 && o3 == 113);
        // Avoid .0 and .255 hosts, which look odd in logs.
        let host = a & 0xff;
        if !reserved && host != 0 && host != 255 && used.insert(IpAddr::V4(ip)) {
            return a;
        }
    }
}

/// The first 64 bits of an address in 2001:db8::/32 (the documentation prefix: IPv6
/// clients here are clearly synthetic).
fn v6_prefix(rng: &mut ChaCha8Rng) -> u64 {
    (0x2001_0db8u64 << 32) | u64::from(rng.random::<u32>())
}

fn public_v6(rng: &mut ChaCha8Rng, used: &mut HashSet<IpAddr>) -> IpAddr {
    loop {
        let iid: u64 = rng.random::<u64>() | 1;
        let a = IpAddr::V6(Ipv6Addr::from(
            (u128::from(v6_prefix(rng)) << 64) | u128::from(iid),
        ));
        if used.insert(a) {
            return a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let names: HashSet<String> = (0..25_000).map(local_part).collect();
        assert_eq!(names.len(), 25_000);
    }

    #[test]
    fn addresses_are_public_and_unique() {
        let mut rng = rng::stream(1, &[9]);
        let mut used = HashSet::new();
        for _ in 0..10_000 {
            let a = Ipv4Addr::from(public_v4(&mut rng, &mut used));
            assert!(
                !a.is_private() && !a.is_loopback() && !a.is_documentation() && !a.is_multicast(),
                "{a}"
            );
        }
        assert_eq!(used.len(), 10_000);
    }
}
