//! A syslog load generator for the daemon's ingest benchmark (benches/daemon-ingest.sh).
//!
//! Sends Dovecot auth-failure lines, as a Dovecot logging to syslog puts them on the
//! wire (RFC 3164 with a priority, stamped now in UTC), over UDP (one datagram each) or
//! TCP (RFC 6587 octet counting), at a fixed paced rate for a bounded count or time:
//!
//! ```sh
//! cargo run --release -p portcullis-daemon --example syslog_load -- \
//!     --udp 127.0.0.1:5514 --rate 200000 --duration 30
//! cargo run --release -p portcullis-daemon --example syslog_load -- \
//!     --tcp 127.0.0.1:5514 --rate 0 --count 10000000 --addresses random
//! ```
//!
//! `--addresses pool` (the default) draws each line's address and user from a small
//! pool (`--sources`, `--users`): a realistic attack. `--addresses random` gives every
//! line a fresh random IPv4 or IPv6 address (`--ipv6-share`) and a fresh random user:
//! the memory attack, where every line is a source and a name the daemon has not seen.
//!
//! When done it prints one line of `key=value` pairs on stdout: what it sent, how long
//! it took, the rate reached, and UDP send errors (a datagram the kernel refused to
//! send is not counted as sent). The pacing is by the clock, not by the receiver: a
//! TCP receiver that reads slower than `--rate` slows the sender (back-pressure), and
//! the reported rate says so.
//!
//! The daemon's parse settings should read stamps in UTC (`[parse] timezone = "UTC"`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;

const USAGE: &str = "\
usage: syslog_load (--udp ADDR | --tcp ADDR) [--rate N] [--count N] [--duration SECS]
                   [--addresses pool|random] [--sources N] [--users N]
                   [--ipv6-share F] [--seed N] [--batch N]

  --rate N          events a second; 0: as fast as the receiver takes them (default 200000)
  --count N         stop after N events
  --duration SECS   stop after this long (default 10 when no --count)
  --addresses       pool: addresses and users drawn from a fixed pool (default);
                    random: a fresh random address and user name on every line
  --sources N       pool size of attacking addresses (default 1000)
  --users N         pool size of user names (default 5000)
  --ipv6-share F    share of IPv6 addresses, 0..1 (default 0.1)
  --seed N          random seed (default 1)
  --batch N         TCP: events written per write call at most (default 256)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addresses {
    Pool,
    Random,
}

#[derive(Debug)]
struct Options {
    transport: Transport,
    rate: u64,
    count: Option<u64>,
    duration: Option<Duration>,
    addresses: Addresses,
    sources: u64,
    users: u64,
    ipv6_share: f64,
    seed: u64,
    batch: usize,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut transport = None;
    let mut o = Options {
        transport: Transport::Udp(SocketAddr::from(([127, 0, 0, 1], 514))),
        rate: 200_000,
        count: None,
        duration: None,
        addresses: Addresses::Pool,
        sources: 1000,
        users: 5000,
        ipv6_share: 0.1,
        seed: 1,
        batch: 256,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = || -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag}: not a whole number: {value:?}"))
        };
        let addr = || -> Result<SocketAddr> {
            value
                .parse()
                .with_context(|| format!("{flag}: not an address:port: {value:?}"))
        };
        match flag.as_str() {
            "--udp" => transport = Some(Transport::Udp(addr()?)),
            "--tcp" => transport = Some(Transport::Tcp(addr()?)),
            "--rate" => o.rate = num()?,
            "--count" => o.count = Some(num()?),
            "--duration" => {
                let secs: f64 = value
                    .parse()
                    .with_context(|| format!("--duration: not seconds: {value:?}"))?;
                o.duration = Some(
                    Duration::try_from_secs_f64(secs)
                        .with_context(|| format!("--duration: out of range: {value:?}"))?,
                );
            }
            "--addresses" => {
                o.addresses = match value.as_str() {
                    "pool" => Addresses::Pool,
                    "random" => Addresses::Random,
                    _ => bail!("--addresses: pool or random, not {value:?}"),
                }
            }
            "--sources" => o.sources = num()?.max(1),
            "--users" => o.users = num()?.max(1),
            "--ipv6-share" => {
                o.ipv6_share = value
                    .parse()
                    .ok()
                    .filter(|f: &f64| (0.0..=1.0).contains(f))
                    .with_context(|| format!("--ipv6-share: a number from 0 to 1: {value:?}"))?;
            }
            "--seed" => o.seed = num()?,
            "--batch" => o.batch = usize::try_from(num()?.max(1)).unwrap_or(usize::MAX),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    o.transport = transport.with_context(|| format!("--udp or --tcp is required\n{USAGE}"))?;
    if o.count.is_none() && o.duration.is_none() {
        o.duration = Some(Duration::from_secs(10));
    }
    Ok(o)
}

/// SplitMix64: small, fast, and the same sequence for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// A public-looking IPv4 address: not 0/8, 10/8, 127/8 or multicast and above.
fn random_v4(rng: &mut Rng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(rng.next() as u32);
        let first = a.octets()[0];
        if !matches!(first, 0 | 10 | 127 | 224..=255) {
            return a;
        }
    }
}

/// A global unicast IPv6 address (2000::/3).
fn random_v6(rng: &mut Rng) -> Ipv6Addr {
    let bits = (u128::from(rng.next()) << 64) | u128::from(rng.next());
    Ipv6Addr::from((bits & !(0xe000u128 << 112)) | (0x2000u128 << 112))
}

/// Writes a user name of 6 to 13 lower-case letters and digits from 64 random bits:
/// distinct for every line in practice.
fn random_user(rng: &mut Rng, out: &mut String) {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = rng.next();
    let len = 6 + (v % 8) as usize;
    v /= 8;
    for _ in 0..len {
        out.push(ALPHABET[(v % 36) as usize] as char);
        v /= 36;
        if v == 0 {
            v = rng.next();
        }
    }
}

/// Makes the lines to send.
struct Lines {
    rng: Rng,
    addresses: Addresses,
    ipv6_share: f64,
    pool: Vec<std::net::IpAddr>,
    users: u64,
    /// `<PRI>Mmm dd hh:mm:ss`, rewritten when the second changes.
    stamp: String,
    stamp_second: i64,
    serial: u64,
    user: String,
}

impl Lines {
    fn new(o: &Options) -> Self {
        let mut rng = Rng(o.seed);
        let mut pool = Vec::new();
        if o.addresses == Addresses::Pool {
            for _ in 0..o.sources {
                pool.push(if rng.chance(o.ipv6_share) {
                    random_v6(&mut rng).into()
                } else {
                    random_v4(&mut rng).into()
                });
            }
        }
        Self {
            rng,
            addresses: o.addresses,
            ipv6_share: o.ipv6_share,
            pool,
            users: o.users,
            stamp: String::new(),
            stamp_second: i64::MIN,
            serial: 0,
            user: String::new(),
        }
    }

    /// Appends the next line (without a terminator) to `out`.
    fn next(&mut self, now: Timestamp, out: &mut Vec<u8>) {
        if now.as_second() != self.stamp_second {
            self.stamp_second = now.as_second();
            self.stamp.clear();
            // Facility mail (2), severity info (6): 2 * 8 + 6.
            let zoned = now.to_zoned(TimeZone::UTC);
            let _ = write!(self.stamp, "<22>{}", zoned.strftime("%b %e %H:%M:%S"));
        }
        self.user.clear();
        let rip = match self.addresses {
            Addresses::Random => {
                random_user(&mut self.rng, &mut self.user);
                if self.rng.chance(self.ipv6_share) {
                    random_v6(&mut self.rng).into()
                } else {
                    random_v4(&mut self.rng).into()
                }
            }
            Addresses::Pool => {
                let u = self.rng.below(self.users);
                let _ = write!(self.user, "user{u}");
                self.pool[self.rng.below(self.pool.len() as u64) as usize]
            }
        };
        self.serial += 1;
        // Dovecot's session ids are 16 base64 characters; a counter in hex is as long.
        let _ = write!(
            out,
            "{} mail01 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): \
             user=<{}>, method=PLAIN, rip={rip}, lip=10.0.0.1, session=<{:016x}>",
            self.stamp, self.user, self.serial
        );
    }
}

/// What was sent.
#[derive(Debug, Default)]
struct Sent {
    events: u64,
    bytes: u64,
    send_errors: u64,
}

/// Events due by `elapsed` at `rate` (0: unpaced, everything is due).
fn due(rate: u64, elapsed: Duration) -> u64 {
    if rate == 0 {
        u64::MAX
    } else {
        (elapsed.as_secs_f64() * rate as f64) as u64
    }
}

fn run(o: &Options) -> Result<(Sent, Duration)> {
    let mut lines = Lines::new(o);
    let limit = o.count.unwrap_or(u64::MAX);
    let mut sent = Sent::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    enum Sink {
        Udp(UdpSocket),
        Tcp(TcpStream),
    }
    let sink = match o.transport {
        Transport::Udp(addr) => {
            let bind = if addr.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let s = UdpSocket::bind(bind).context("cannot open a UDP socket")?;
            s.connect(addr)
                .with_context(|| format!("cannot address {addr}"))?;
            Sink::Udp(s)
        }
        Transport::Tcp(addr) => {
            let s =
                TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
            s.set_nodelay(true)?;
            Sink::Tcp(s)
        }
    };
    let started = Instant::now();
    let end = o.duration.map(|d| started + d);
    let mut frame = Vec::with_capacity(512);
    while sent.events < limit {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let behind = due(o.rate, now - started)
            .min(limit)
            .saturating_sub(sent.events);
        if behind == 0 {
            // Ahead of the pace: wait a little. Short sleeps keep the pace even.
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let stamp = Timestamp::now();
        match &sink {
            Sink::Udp(s) => {
                // A slice of the due events, then a look at the clock again.
                for _ in 0..behind.min(1024) {
                    buf.clear();
                    lines.next(stamp, &mut buf);
                    match s.send(&buf) {
                        Ok(_) => {
                            sent.events += 1;
                            sent.bytes += buf.len() as u64;
                        }
                        // ENOBUFS and the like: the kernel refused this one.
                        Err(_) => sent.send_errors += 1,
                    }
                    if sent.send_errors > 0 && sent.send_errors % 1_000_000 == 0 {
                        bail!("UDP: a million send errors; is anything listening?");
                    }
                }
            }
            Sink::Tcp(s) => {
                buf.clear();
                let n = behind.min(o.batch as u64);
                for _ in 0..n {
                    frame.clear();
                    lines.next(stamp, &mut frame);
                    // RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG.
                    let _ = write!(buf, "{} ", frame.len());
                    buf.extend_from_slice(&frame);
                }
                let mut w: &TcpStream = s;
                w.write_all(&buf)
                    .context("TCP: the receiver closed the connection")?;
                sent.events += n;
                sent.bytes += buf.len() as u64;
            }
        }
    }
    if let Sink::Tcp(s) = &sink {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    Ok((sent, started.elapsed()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("syslog_load: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok((sent, took)) => {
            let (transport, to) = match o.transport {
                Transport::Udp(a) => ("udp", a),
                Transport::Tcp(a) => ("tcp", a),
            };
            let mode = match o.addresses {
                Addresses::Pool => "pool",
                Addresses::Random => "random",
            };
            println!(
                "transport={transport} to={to} addresses={mode} target_rate={} sent={} \
                 bytes={} send_errors={} secs={:.3} rate={:.0}",
                o.rate,
                sent.events,
                sent.bytes,
                sent.send_errors,
                took.as_secs_f64(),
                sent.events as f64 / took.as_secs_f64().max(1e-9),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("syslog_load: {e:#}");
            ExitCode::FAILURE
        }
    }
}
