//! Courier: IMAP/POP3 logins (`imapd`, `pop3d`, `imapd-ssl`, `courierpop3login`…) and
//! ESMTP AUTH failures (`courieresmtpd`).
//!
//! - `LOGIN FAILED, user=U, ip=[ADDR][, port=[P]]`, `LOGIN FAILED, method=M, ip=[ADDR]`
//!   and `LOGIN, user=U, ip=[ADDR], port=[P], protocol=IMAP` (courier-imap's
//!   `imaplogin.c`/`pop3login.c`, optionally prefixed `INFO: `). The user comes before
//!   the address, so the address is read from the last `, ip=[`: only the server's
//!   `port`/`protocol` fields may follow it.
//! - `error,relay=ADDR,[port=P,]msg="535 Authentication failed.",cmd: …`
//!   (`courieresmtpd`), the relay first. Other `error,relay=` lines are recipient and
//!   relay rejections, not logins.

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::text::{rfind, user};
use crate::{Ctx, Line, Verdict};

/// Reads one message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    let msg = msg.strip_prefix("INFO: ").unwrap_or(msg);
    if let Some(rest) = msg.strip_prefix("error,relay=") {
        return smtp(rest, ctx, out);
    }
    let (outcome, fields) = if let Some(f) = msg.strip_prefix("LOGIN FAILED, ") {
        (Outcome::Failure(Reason::BadPassword), f)
    } else if let Some(f) = msg.strip_prefix("LOGIN, ") {
        (Outcome::Success, f)
    } else {
        return Verdict::Unrecognised;
    };
    let Some(at) = rfind!(fields.as_bytes(), b"ip=[") else {
        return Verdict::Unrecognised;
    };
    if at != 0 && !fields[..at].ends_with(", ") {
        return Verdict::Unrecognised;
    }
    let rest = &fields[at + 4..];
    let Some(close) = rest.find(']') else {
        return Verdict::Unrecognised;
    };
    let Some(addr) = address::parse(&rest[..close]) else {
        return Verdict::Unrecognised;
    };
    let tail = &rest[close + 1..];
    if !(tail.is_empty() || tail.starts_with(", ")) {
        return Verdict::Unrecognised;
    }
    let port = tail
        .split_once("port=[")
        .and_then(|(_, p)| p.split_once(']'))
        .and_then(|(p, _)| p.parse().ok());
    let head = fields[..at].strip_suffix(", ").unwrap_or_default();
    let name = head.strip_prefix("user=").and_then(user);
    let protocol = match line.program.as_deref() {
        Some(p) if p.contains("pop3") => Some(Protocol::Pop3),
        Some(p) if p.contains("imap") => Some(Protocol::Imap),
        _ => None,
    };
    let mut e = ctx.event(Service::Courier, outcome);
    e.protocol = protocol;
    e.source = Some(addr);
    e.port = port;
    e.user = name;
    out.push(e);
    Verdict::Recognised
}

fn smtp(rest: &str, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let Some((relay, fields)) = rest.split_once(',') else {
        return Verdict::Unrecognised;
    };
    let Some(addr) = address::parse(relay) else {
        return Verdict::Unrecognised;
    };
    let (port, fields) = match fields.strip_prefix("port=").and_then(|f| f.split_once(',')) {
        Some((p, f)) => (p.parse().ok(), f),
        None => (None, fields),
    };
    if !fields.starts_with("msg=\"535 ") {
        // Recipient and relay rejections, `ident=`/`from=` lines: not logins.
        return Verdict::Recognised;
    }
    let mut e = ctx.event(Service::Courier, Outcome::Failure(Reason::BadPassword));
    e.protocol = Some(Protocol::Smtp);
    e.source = Some(addr);
    e.port = port;
    out.push(e);
    Verdict::Recognised
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn logins() {
        let e = one(
            parse,
            Some("imapd"),
            "LOGIN FAILED, user=sales@example.com, ip=[::ffff:1.2.3.4]",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("1.2.3.4"));
        assert_eq!(e.user.as_deref(), Some("sales@example.com"));
        assert_eq!(e.protocol, Some(Protocol::Imap));
        let e = one(
            parse,
            Some("courierpop3login"),
            "LOGIN FAILED, method=PLAIN, ip=[2001:db8::4]",
        );
        assert_eq!(e.source, ip("2001:db8::4"));
        assert_eq!(e.user, None);
        assert_eq!(e.protocol, Some(Protocol::Pop3));
        let e = one(
            parse,
            Some("imapd"),
            "LOGIN FAILED, user=tester, ip=[::ffff:192.0.2.5], port=[255]",
        );
        assert_eq!(e.port, Some(255));
        let e = one(
            parse,
            Some("imapd-ssl"),
            "INFO: LOGIN, user=alice, ip=[::ffff:192.0.2.6], port=[4312], protocol=IMAP",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.source, ip("192.0.2.6"));
    }

    #[test]
    fn names_never_move_the_address() {
        let e = one(
            parse,
            Some("imapd"),
            "LOGIN FAILED, user=x, ip=[6.6.6.6], ip=[::ffff:192.0.2.7]",
        );
        assert_eq!(e.source, ip("192.0.2.7"));
        assert_eq!(e.user.as_deref(), Some("x, ip=[6.6.6.6]"));
        unrecognised(
            parse,
            Some("imapd"),
            "LOGIN FAILED, user=x, ip=[::ffff:192.0.2.7]junk",
        );
    }

    #[test]
    fn esmtp() {
        let e = one(
            parse,
            Some("courieresmtpd"),
            "error,relay=::ffff:192.0.2.3,port=43632,msg=\"535 Authentication failed.\",cmd: AUTH LOGIN x",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("192.0.2.3"));
        assert_eq!(e.port, Some(43632));
        assert_eq!(e.protocol, Some(Protocol::Smtp));
        none(
            parse,
            Some("courieresmtpd"),
            "error,relay=::ffff:1.2.3.4,from=<>,to=<>: 550 User unknown.",
        );
        unrecognised(
            parse,
            Some("courieresmtpd"),
            "error,relay=nonsense,msg=\"535 x\"",
        );
    }
}
