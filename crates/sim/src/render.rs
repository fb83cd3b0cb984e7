//! Attempts and noise written as real log lines.
//!
//! Each attempt becomes the lines its server really writes: Dovecot's auth-worker
//! verdict and login-process summary (same session id), Postfix's SASL warning or
//! `sasl_username=` line between `connect` and `disconnect`, sshd's `Invalid user`,
//! `Failed password` and the close. Mail deliveries add the queue chatter that makes up
//! most of a real mail log. One module per format keeps a new format one function away.

use std::io::Write;
use std::net::IpAddr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use portcullis_core::{Outcome, Reason};

use crate::benign::Delivery;
use crate::scenario::{Service, StampStyle};
use crate::{Attempt, Simulation, SlotOutput, Target};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
    let (y, mo, d) = civil(days);
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A Dovecot-style session id (16 base64 characters).
fn session(tag: u64) -> String {
    let x = crate::rng::mix(tag ^ 0x5e55);
    (0..16)
        .map(|i| B64[((x.rotate_left(i * 4) ^ (tag >> i)) & 63) as usize] as char)
        .collect()
}

/// A Postfix queue id (10 upper-case hex digits).
fn queue_id(tag: u64) -> String {
    format!("{:010X}", crate::rng::mix(tag ^ 0x9) & 0xff_ffff_ffff)
}

fn pid(tag: u64, base: u64) -> u64 {
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

fn attempt(sim: &Simulation, a: &Attempt, out: &mut SlotOutput) {
    let o = &sim.scenario.output;
    let name = shown_name(sim, a);
    let ip = a.source;
    let lip = sim.population.server;
    let (buf, lines) = match a.service {
        Service::Ssh => (&mut out.ssh, &mut out.lines),
        _ => (&mut out.mail, &mut out.lines),
    };
    let mut line = |buf: &mut Vec<u8>, text: std::fmt::Arguments<'_>| {
        stamp(buf, a.at_ms, &sim.zone, o.stamp, &o.host);
        let _ = buf.write_fmt(text);
        buf.push(b'\n');
        *lines += 1;
    };
    match a.service {
        Service::Imap | Service::Pop3 => {
            let proto = if a.service == Service::Imap {
                "imap"
            } else {
                "pop3"
            };
            let sid = session(a.tag);
            match a.outcome {
                Outcome::Success => line(
                    buf,
                    format_args!(
                        "dovecot: {proto}-login: Login: user=<{name}>, method=PLAIN, rip={ip}, lip={lip}, mpid={}, TLS, session=<{sid}>",
                        pid(a.tag, 2000)
                    ),
                ),
                Outcome::Failure(reason) => {
                    let verdict = if reason == Reason::UnknownAccount {
                        "unknown user"
                    } else {
                        "Password mismatch"
                    };
                    line(
                        buf,
                        format_args!(
                            "dovecot: auth-worker({}): sql({name},{ip},<{sid}>): {verdict}",
                            pid(a.tag, 900)
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "dovecot: {proto}-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{name}>, method=PLAIN, rip={ip}, lip={lip}, TLS, session=<{sid}>"
                        ),
                    );
                }
            }
        }
        Service::Smtp => {
            let p = pid(a.tag, 5000);
            let rdns = "unknown";
            line(
                buf,
                format_args!("postfix/submission/smtpd[{p}]: connect from {rdns}[{ip}]"),
            );
            match a.outcome {
                Outcome::Success => {
                    line(
                        buf,
                        format_args!(
                            "postfix/submission/smtpd[{p}]: {}: client={rdns}[{ip}], sasl_method=PLAIN, sasl_username={name}",
                            queue_id(a.tag)
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "postfix/submission/smtpd[{p}]: disconnect from {rdns}[{ip}] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6"
                        ),
                    );
                }
                Outcome::Failure(_) => {
                    line(
                        buf,
                        format_args!(
                            "postfix/submission/smtpd[{p}]: warning: {rdns}[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "postfix/submission/smtpd[{p}]: disconnect from {rdns}[{ip}] ehlo=1 auth=0/1 quit=1 commands=2/3"
                        ),
                    );
                }
            }
        }
        Service::Ssh => {
            let p = pid(a.tag, 10_000);
            let port = a.port;
            match (a.outcome, a.target) {
                (Outcome::Success, _) => {
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: Accepted password for {name} from {ip} port {port} ssh2"
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: pam_unix(sshd:session): session opened for user {name}(uid=1000) by (uid=0)"
                        ),
                    );
                }
                (Outcome::Failure(_), Target::Unknown(..)) => {
                    line(
                        buf,
                        format_args!("sshd[{p}]: Invalid user {name} from {ip} port {port}"),
                    );
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: Failed password for invalid user {name} from {ip} port {port} ssh2"
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: Connection closed by invalid user {name} {ip} port {port} [preauth]"
                        ),
                    );
                }
                (Outcome::Failure(_), Target::Account(_)) => {
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: Failed password for {name} from {ip} port {port} ssh2"
                        ),
                    );
                    line(
                        buf,
                        format_args!(
                            "sshd[{p}]: Connection closed by authenticating user {name} {ip} port {port} [preauth]"
                        ),
                    );
                }
            }
        }
    }
}

/// An address for a sending mail server (no login is ever made from it).
fn sender(tag: u64) -> IpAddr {
    let x = crate::rng::mix(tag ^ 0x3a11);
    let first = [23u8, 40, 52, 64, 74, 91, 104, 136, 148, 185, 209, 212][(x % 12) as usize];
    IpAddr::from([
        first,
        (x >> 8) as u8,
        (x >> 16) as u8,
        1 + (x >> 24) as u8 % 250,
    ])
}

fn delivery(sim: &Simulation, d: &Delivery, out: &mut SlotOutput) {
    let o = &sim.scenario.output;
    let (at, account, tag) = *d;
    let name = &sim.population.accounts[account as usize].name;
    let ip = sender(tag);
    let qid = queue_id(tag);
    let (p, c, q, l) = (
        pid(tag, 5000),
        pid(tag, 7000),
        pid(tag, 800),
        pid(tag, 8000),
    );
    let sid = session(tag);
    let msgid = format!("{:016x}", crate::rng::mix(tag));
    let size = 2_000 + crate::rng::mix(tag ^ 7) % 200_000;
    let host = &o.host;
    let buf = &mut out.mail;
    for text in [
        format!("postfix/smtpd[{p}]: connect from mail.sender.example[{ip}]"),
        format!("postfix/smtpd[{p}]: {qid}: client=mail.sender.example[{ip}]"),
        format!("postfix/cleanup[{c}]: {qid}: message-id=<{msgid}@sender.example>"),
        format!(
            "postfix/qmgr[{q}]: {qid}: from=<news@sender.example>, size={size}, nrcpt=1 (queue active)"
        ),
        format!(
            "postfix/smtpd[{p}]: disconnect from mail.sender.example[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        ),
        format!(
            "postfix/lmtp[{l}]: {qid}: to=<{name}>, relay={host}[private/dovecot-lmtp], delay=0.12, delays=0.05/0.01/0.02/0.04, dsn=2.0.0, status=sent (250 2.0.0 <{name}> {sid} Saved)"
        ),
        format!(
            "dovecot: lmtp({name})<{l}><{sid}>: msgid=<{msgid}@sender.example>: saved mail to INBOX"
        ),
        format!("postfix/qmgr[{q}]: {qid}: removed"),
    ] {
        stamp(buf, at, &sim.zone, o.stamp, host);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        out.lines += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(17_340), (2017, 6, 23));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

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
