//! Attempts and noise written as real log lines.
//!
//! Each attempt becomes the lines its server really writes: Dovecot's auth-worker
//! verdict and login-process summary (same session id), Postfix's SASL warning or
//! `sasl_username=` line between `connect` and `disconnect`, sshd's `Invalid user`,
//! `Failed password` and the close. Mail deliveries add the queue chatter that makes up
//! most of a real mail log. One module per service ([`dovecot`], [`postfix`], [`sshd`],
//! and [`noise`] for deliveries): a new format is a new module and a `match` arm.

mod dovecot;
mod noise;
mod postfix;
mod sshd;

use std::io::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::benign::Delivery;
use crate::scenario::{Service, StampStyle};
use crate::{Attempt, Simulation, SlotOutput};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

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
pub(crate) fn session(tag: u64) -> String {
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

/// The name an attempt shows in its log: SSH logs the local part.
pub fn shown_name(sim: &Simulation, a: &Attempt) -> String {
    let name = sim.name_of(a.target);
    match (a.service, name.split_once('@')) {
        (Service::Ssh, Some((local, _))) => local.to_owned(),
        _ => name,
    }
}

/// Renders a slot, attempts and deliveries merged in time order.
pub(crate) fn slot(
    sim: &Simulation,
    attempts: &[Attempt],
    deliveries: &[Delivery],
    out: &mut SlotOutput,
) {
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
    let buf = match a.service {
        Service::Ssh => &mut out.ssh,
        _ => &mut out.mail,
    };
    let mut lines = Lines {
        buf,
        count: &mut out.lines,
        at_ms: a.at_ms,
        zone: &sim.zone,
        style: o.stamp,
        host: &o.host,
    };
    let name = shown_name(sim, a);
    match a.service {
        Service::Imap | Service::Pop3 => {
            dovecot::attempt(&mut lines, a, &name, sim.population.server)
        }
        Service::Smtp => postfix::attempt(&mut lines, a, &name),
        Service::Ssh => sshd::attempt(&mut lines, a, &name),
    }
}

fn delivery(sim: &Simulation, d: &Delivery, out: &mut SlotOutput) {
    let o = &sim.scenario.output;
    let (at_ms, account, tag) = *d;
    let mut lines = Lines {
        buf: &mut out.mail,
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
