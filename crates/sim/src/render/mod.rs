//! Attempts and noise written as real log lines.
//!
//! Each attempt becomes the lines its server really writes: Dovecot's auth-worker
//! verdict and login-process summary (same session id), Postfix's SASL warning or
//! `sasl_username=` line between `connect` and `disconnect`, sshd's `Invalid user`,
//! `Failed password` and the close; Exchange's IIS requests for an OWA forms logon or
//! an ActiveSync request ([`exchange`]); an Entra ID sign-in record ([`entra`]); a
//! Windows 4624/4625 event as winlogbeat ships it ([`windows`]); OpenVPN's verdict
//! ([`openvpn`]); a Keycloak `LOGIN` or `LOGIN_ERROR` event ([`keycloak`]). Mail deliveries add the queue chatter that makes up most of a real
//! mail log. One module per service ([`noise`] for deliveries): a new format is a new
//! module and a `match` arm.

mod dovecot;
pub mod entra;
mod exchange;
pub mod exchange_imap;
pub mod keycloak;
mod noise;
mod openvpn;
mod postfix;
mod sshd;
mod windows;

use std::io::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::benign::Delivery;
use crate::scenario::{Format, Service, StampStyle};
use crate::{Attempt, Simulation, SlotOutput};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Writes a UTC time as `2017-06-23`, a separator, and `08:14:05` (with `.123` when
/// `millis`): the shape of IIS's `date time` (separator ` `) and of RFC 3339 (`T`).
pub(crate) fn utc(buf: &mut Vec<u8>, ms: i64, sep: char, millis: bool) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = portcullis_core::calendar::civil_from_days(days);
    let _ = write!(
        buf,
        "{y:04}-{mo:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60
    );
    if millis {
        let _ = write!(buf, ".{:03}", in_day % 1000);
    }
}

/// A GUID-shaped id from a tag (`8-4-4-4-12` lower-case hex), as Microsoft's logs
/// write correlation and request ids.
pub(crate) fn guid(tag: u64) -> String {
    let a = crate::rng::mix(tag ^ 0x6d1d);
    let b = crate::rng::mix(a);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Writes a stamp and the host: `Jun 23 09:14:05 mail01 ` or
/// `2017-06-23T09:14:05.123000+01:00 mail01 `.
fn stamp(buf: &mut Vec<u8>, ms: i64, zone: &TimeZone, style: StampStyle, host: &str) {
    let offset = zone
        .to_offset(Timestamp::from_millisecond(ms).unwrap_or_default())
        .seconds();
    let local = ms + i64::from(offset) * 1000;
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000);
    let (h, mi, s, frac) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let (y, mo, d) = portcullis_core::calendar::civil_from_days(days);
    let _ = match style {
        StampStyle::Rfc3164 => write!(
            buf,
            "{} {d:>2} {h:02}:{mi:02}:{s:02} {host} ",
            MONTHS[(mo - 1) as usize]
        ),
        StampStyle::Iso8601 => {
            let sign = if offset < 0 { '-' } else { '+' };
            let off = offset.unsigned_abs();
            write!(
                buf,
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}000{sign}{:02}:{:02} {host} ",
                off / 3600,
                off / 60 % 60
            )
        }
    };
}

pub(crate) const B64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A Dovecot-style session id (16 base64 characters).
pub fn session(tag: u64) -> String {
    let x = crate::rng::mix(tag ^ 0x5e55);
    (0..16)
        .map(|i| B64[((x.rotate_left(i * 4) ^ (tag >> i)) & 63) as usize] as char)
        .collect()
}

/// A Postfix queue id (10 upper-case hex digits).
pub(crate) fn queue_id(tag: u64) -> String {
    format!("{:010X}", crate::rng::mix(tag ^ 0x9) & 0xff_ffff_ffff)
}

pub(crate) fn pid(tag: u64, base: u64) -> u64 {
    base + crate::rng::mix(tag ^ base) % 30_000
}

/// The name an attempt shows in its log: SSH and OpenVPN (a directory's user name) log
/// the local part; Windows logs `DOMAIN\user`, and so does the ActiveSync profile of
/// half the phones; everything else the address.
pub fn shown_name(sim: &Simulation, a: &Attempt) -> String {
    let name = sim.name_of(a.target);
    let Some((local, domain)) = name.split_once('@') else {
        return name;
    };
    let windows = match (a.service, a.actor, a.target) {
        (Service::Rdp, ..) => true,
        (Service::Activesync, crate::Actor::Benign(_), crate::Target::Account(i)) => {
            sim.population.accounts[i as usize].netbios_name
        }
        _ => false,
    };
    match a.service {
        Service::Ssh | Service::Vpn => local.to_owned(),
        _ if windows => format!("{}\\{local}", netbios(domain)),
        _ => name,
    }
}

/// The NetBIOS name of the organisation's Windows domain: its mail domain's first label,
/// upper case, at most 15 characters.
pub fn netbios(domain: &str) -> String {
    let label = domain.split('.').next().unwrap_or(domain);
    label.chars().take(15).collect::<String>().to_uppercase()
}

/// Renders slot `k`, attempts and deliveries merged in time order.
pub(crate) fn slot(
    sim: &Simulation,
    k: usize,
    attempts: &[Attempt],
    deliveries: &[Delivery],
    out: &mut SlotOutput,
) {
    if k == 0 && sim.scenario.output.formats.contains(&Format::Exchange) {
        let buf = &mut out.files[Format::Exchange.index()];
        out.lines += exchange::header(buf, sim.start_ms);
    }
    if k == 0 && sim.scenario.output.formats.contains(&Format::ExchangeImap) {
        let buf = &mut out.files[Format::ExchangeImap.index()];
        out.lines += exchange_imap::header(buf, sim.start_ms);
    }
    let (mut i, mut j) = (0, 0);
    while i < attempts.len() || j < deliveries.len() {
        let take_attempt =
            j >= deliveries.len() || (i < attempts.len() && attempts[i].at_ms <= deliveries[j].0);
        if take_attempt {
            attempt(sim, &attempts[i], out);
            i += 1;
        } else {
            delivery(sim, &deliveries[j], out);
            j += 1;
        }
    }
}

/// Writes stamped lines of one attempt (or delivery) into one file's buffer.
pub(crate) struct Lines<'a> {
    buf: &'a mut Vec<u8>,
    count: &'a mut u64,
    at_ms: i64,
    zone: &'a TimeZone,
    style: StampStyle,
    host: &'a str,
}

impl Lines<'_> {
    /// One line: the stamp, the host, then `text`.
    pub(crate) fn line(&mut self, text: std::fmt::Arguments<'_>) {
        stamp(self.buf, self.at_ms, self.zone, self.style, self.host);
        let _ = self.buf.write_fmt(text);
        self.buf.push(b'\n');
        *self.count += 1;
    }
}

fn attempt(sim: &Simulation, a: &Attempt, out: &mut SlotOutput) {
    let o = &sim.scenario.output;
    let buf = &mut out.files[a.service.format().index()];
    let name = shown_name(sim, a);
    let server = sim.population.server;
    match a.service {
        Service::Owa | Service::Activesync => {
            out.lines +=
                exchange::attempt(buf, a, &name, server, &sim.scenario.organisation.domain);
            return;
        }
        Service::Entra => {
            out.lines += entra::attempt(buf, a, &name, sim.stopped_by_mfa(a));
            return;
        }
        Service::Rdp => {
            out.lines += windows::attempt(buf, a, &name, &o.host);
            return;
        }
        Service::Sso => {
            out.lines += keycloak::attempt(buf, a, &name, &sim.scenario.organisation.domain);
            return;
        }
        Service::ExchangeImap => {
            out.lines += exchange_imap::attempt(buf, a, &name, server);
            return;
        }
        _ => {}
    }
    let mut lines = Lines {
        buf,
        count: &mut out.lines,
        at_ms: a.at_ms,
        zone: &sim.zone,
        style: o.stamp,
        host: &o.host,
    };
    match a.service {
        Service::Imap | Service::Pop3 => dovecot::attempt(&mut lines, a, &name, server),
        Service::Smtp => postfix::attempt(&mut lines, a, &name),
        Service::Ssh => sshd::attempt(&mut lines, a, &name),
        Service::Vpn => openvpn::attempt(&mut lines, a, &name),
        Service::Owa
        | Service::Activesync
        | Service::Entra
        | Service::Rdp
        | Service::Sso
        | Service::ExchangeImap => {}
    }
}

fn delivery(sim: &Simulation, d: &Delivery, out: &mut SlotOutput) {
    let o = &sim.scenario.output;
    if !o.formats.contains(&Format::Mail) {
        return;
    }
    let (at_ms, account, tag) = *d;
    let mut lines = Lines {
        buf: &mut out.files[Format::Mail.index()],
        count: &mut out.lines,
        at_ms,
        zone: &sim.zone,
        style: o.stamp,
        host: &o.host,
    };
    noise::delivery(
        &mut lines,
        &sim.population.accounts[account as usize].name,
        tag,
        &o.host,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        let zone = TimeZone::get("Europe/London").unwrap();
        let ms = "2017-06-23T08:14:05.250Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        let mut b = Vec::new();
        stamp(&mut b, ms, &zone, StampStyle::Rfc3164, "mail01");
        assert_eq!(b, b"Jun 23 09:14:05 mail01 ");
        b.clear();
        stamp(&mut b, ms, &zone, StampStyle::Iso8601, "mail01");
        assert_eq!(b, b"2017-06-23T09:14:05.250000+01:00 mail01 ");
        b.clear();
        stamp(
            &mut b,
            ms - 22 * 86_400_000,
            &zone,
            StampStyle::Rfc3164,
            "h",
        );
        assert_eq!(b, b"Jun  1 09:14:05 h ");
    }

    #[test]
    fn ids_have_real_shapes() {
        assert_eq!(session(42).len(), 16);
        assert!(session(42).bytes().all(|c| B64.contains(&c)));
        assert_ne!(session(42), session(43));
        assert_eq!(queue_id(1).len(), 10);
    }
}
