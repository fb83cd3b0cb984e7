//! Exim: SMTP AUTH failures and authenticated submissions from the main log.
//!
//! - `NAME authenticator failed for HOST: 535 Incorrect authentication data
//!   (set_id=U)` (`smtp_in.c`): HOST is Exim's `host_and_ident`, `[name ][(helo) ][ADDR]
//!   [:PORT][ I=[LOCAL]:PORT][ Ci=N]`; the `set_id` is the client's user name.
//! - `ID <= SENDER … H=HOST … A=NAME:U …`: a message accepted from a client that
//!   authenticated as U (`A=` is logged only after AUTH succeeded): a success.
//!
//! The address is the last `[…]` of HOST before ` I=`: the HELO name the client chose
//! comes before it, the set_id after the SMTP code. Exim refuses HELO names with spaces
//! or brackets unless `helo_accept_junk_hosts` says otherwise.

use std::net::IpAddr;

use portcullis_core::{Event, Outcome, Protocol, Reason, Service};

use crate::text::{addr_port, find, user};
use crate::{Ctx, Line, Verdict};

/// Reads one main-log message (stamp removed by the envelope; a journal line may repeat
/// it, and a `[pid] ` may precede the text).
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg = skip_prefixes(&line.message);
    if let Some(i) = find!(msg.as_bytes(), b" authenticator failed for ") {
        return failure(&msg[i + 26..], ctx, out);
    }
    if find!(msg.as_bytes(), b" <= ").is_some()
        && let Some(a) = find!(msg.as_bytes(), b" A=")
    {
        let Some(h) = find!(msg.as_bytes(), b" H=") else {
            // A local submission: no client address.
            return Verdict::Recognised;
        };
        let host = &msg[h + 3..];
        let host = host.find(" P=").map_or(host, |e| &host[..e]);
        let host = host.find(" I=[").map_or(host, |e| &host[..e]);
        let Some((addr, port)) = last_bracket(host) else {
            return Verdict::Recognised;
        };
        let value = &msg[a + 3..];
        let value = value.split(' ').next().unwrap_or_default();
        let name = value.split_once(':').map(|(_, u)| u);
        let mut e = ctx.event(Service::Exim, Outcome::Success);
        e.protocol = Some(Protocol::Smtp);
        e.source = Some(addr);
        e.port = port;
        e.user = name.and_then(user);
        out.push(e);
        return Verdict::Recognised;
    }
    Verdict::Unrecognised
}

fn failure(rest: &str, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    // HOST ends at the first `: NNN ` (the SMTP reply).
    let b = rest.as_bytes();
    let Some(end) = (0..b.len().saturating_sub(5)).find(|&i| {
        b[i] == b':'
            && b[i + 1] == b' '
            && b[i + 2..i + 5].iter().all(u8::is_ascii_digit)
            && b.get(i + 5).is_none_or(|c| *c == b' ')
    }) else {
        return Verdict::Unrecognised;
    };
    let host = &rest[..end];
    let host = host.find(" I=[").map_or(host, |i| &host[..i]);
    let Some((addr, port)) = last_bracket(host) else {
        return Verdict::Unrecognised;
    };
    let reply = &rest[end + 2..];
    let outcome = if reply.starts_with("435") || reply.starts_with("454") {
        // `Unable to authenticate at present`: the server's fault, nothing was judged.
        return Verdict::Recognised;
    } else if reply.starts_with("535") {
        Outcome::Failure(Reason::BadPassword)
    } else {
        Outcome::Failure(Reason::Other)
    };
    let name = reply
        .strip_suffix(')')
        .and_then(|r| r.split_once(" (set_id=").map(|(_, u)| u));
    let mut e = ctx.event(Service::Exim, outcome);
    e.protocol = Some(Protocol::Smtp);
    e.source = Some(addr);
    e.port = port;
    e.user = name.and_then(user);
    out.push(e);
    Verdict::Recognised
}

/// `[ADDR]` or `[ADDR]:PORT`, the last bracketed address of `host`.
fn last_bracket(host: &str) -> Option<(IpAddr, Option<u16>)> {
    let open = host.rfind('[')?;
    let close = open + host[open..].find(']')?;
    let (addr, _) = addr_port(&host[open..=close])?;
    let port = host[close + 1..]
        .strip_prefix(':')
        .and_then(|p| p.split(' ').next())
        .and_then(|p| p.parse().ok());
    Some((addr, port))
}

/// Drops a repeated `YYYY-MM-DD hh:mm:ss ` stamp (journald lines) and a `[pid] `.
fn skip_prefixes(msg: &str) -> &str {
    let mut m = msg;
    let b = m.as_bytes();
    // `YYYY-MM-DD hh:mm:ss ` (all ASCII, so slicing after it is on a char boundary).
    if b.len() > 20
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[19] == b' '
    {
        m = &m[20..];
    }
    if let Some(rest) = m.strip_prefix('[')
        && let Some((pid, rest)) = rest.split_once("] ")
        && pid.bytes().all(|c| c.is_ascii_digit())
    {
        m = rest;
    }
    m
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn authenticator_failures() {
        let cases = [
            (
                "login authenticator failed for rrcs-24-106-174-74.se.biz.rr.com ([192.168.2.33]) [24.106.174.74]: 535 Incorrect authentication data (set_id=brian)",
                "24.106.174.74",
                None,
                Some("brian"),
            ),
            (
                "login authenticator failed for (ylmf-pc) [120.196.140.45]: 535 Incorrect authentication data: 1 Time(s)",
                "120.196.140.45",
                None,
                None,
            ),
            (
                "[13314] auth_plain authenticator failed for (rom182) [193.254.202.35]:41556 I=[10.0.0.1]:25: 535 Incorrect authentication data (set_id=webmaster)",
                "193.254.202.35",
                Some(41556),
                Some("webmaster"),
            ),
            (
                "dovecot_login authenticator failed for (User) [2001:db8::37]:21298 I=[2001:db8::1]:465 Ci=30416: 535 Incorrect authentication data (set_id=a b@example.com)",
                "2001:db8::37",
                Some(21298),
                Some("a b@example.com"),
            ),
            (
                "2021-07-17 23:20:49 plain_server authenticator failed for ([192.0.2.17]) [192.0.2.27]: 535 Incorrect authentication data",
                "192.0.2.27",
                None,
                None,
            ),
        ];
        for (msg, addr, port, name) in cases {
            let e = one(parse, Some("exim"), msg);
            assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.port, port, "{msg}");
            assert_eq!(e.user.as_deref(), name, "{msg}");
            assert_eq!(e.protocol, Some(Protocol::Smtp));
        }
    }

    #[test]
    fn set_id_never_moves_the_address() {
        let e = one(
            parse,
            None,
            "login authenticator failed for (x) [192.0.2.1]: 535 Incorrect authentication data (set_id=a) [6.6.6.6]: 535 x (set_id=b)",
        );
        assert_eq!(e.source, ip("192.0.2.1"));
    }

    #[test]
    fn authenticated_submission_is_a_success() {
        let e = one(
            parse,
            Some("exim"),
            "1ahr79-0006jK-G9 <= alice@example.org H=(laptop) [192.0.2.44]:51234 I=[192.0.2.1]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:alice@example.org S=1234 id=x@y",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("192.0.2.44"));
        assert_eq!(e.user.as_deref(), Some("alice@example.org"));
        unrecognised(
            parse,
            Some("exim"),
            "1ahr79-0006jK-G9 <= bob@example.org H=mx [192.0.2.45] P=esmtps S=1234",
        );
    }

    #[test]
    fn not_logins() {
        none(
            parse,
            None,
            "plain authenticator failed for (x) [192.0.2.2]: 435 Unable to authenticate at present",
        );
        unrecognised(
            parse,
            None,
            "SMTP protocol error in \"AUTH LOGIN\" H=(ylmf-pc) [45.32.34.167]:60723 I=[172.89.0.6]:587 AUTH command used when not advertised",
        );
        unrecognised(
            parse,
            None,
            "login authenticator failed for (x) 1.2.3.4: 535 y",
        );
        unrecognised(parse, None, "login authenticator failed for ");
        // A stamp-like prefix with a multi-byte character where a digit should be.
        unrecognised(
            parse,
            None,
            "2024-03-21 19:26:0\u{fffd} x authenticator failed for ",
        );
    }
}
