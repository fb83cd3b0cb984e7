//! Cyrus IMAP/POP3: `badlogin:` failures and `login:` successes.
//!
//! `badlogin: CLIENTHOST plaintext U REASON` (LOGIN/USER+PASS) and `badlogin:
//! CLIENTHOST MECH [REASON]` (SASL AUTHENTICATE), `login: CLIENTHOST U MECH[+TLS] User
//! logged in SESSIONID=<…>` (`imap/imapd.c`, `imap/pop3d.c`). CLIENTHOST is `name
//! [ADDR]` or `[ADDR]`, written by the server before anything the client sent; the
//! address is the first `[…]` after the keyword.

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::text::user;
use crate::{Ctx, Line, Verdict};

/// Reads one message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    let (failed, rest) = if let Some(r) = msg.strip_prefix("badlogin: ") {
        (true, r)
    } else if let Some(r) = msg.strip_prefix("login: ") {
        (false, r)
    } else {
        return Verdict::Unrecognised;
    };
    let Some(open) = rest.find('[') else {
        return Verdict::Unrecognised;
    };
    let Some(close) = rest[open..].find(']').map(|c| open + c) else {
        return Verdict::Unrecognised;
    };
    let Some(addr) = address::parse(&rest[open + 1..close]) else {
        return Verdict::Unrecognised;
    };
    let after = rest[close + 1..].trim_start_matches(' ');
    let (outcome, name) = if failed {
        if let Some(r) = after.strip_prefix("plaintext ") {
            // The reason is the SASL library's text, starting with `SASL(`.
            let (u, why) = match r.find(" SASL(") {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, ""),
            };
            (Outcome::Failure(reason(why)), user(u))
        } else {
            (Outcome::Failure(reason(after)), None)
        }
    } else {
        let Some(end) = after.rfind(" User logged in") else {
            return Verdict::Unrecognised;
        };
        // `U MECH[+TLS]`: the mechanism is the last word.
        let who = &after[..end];
        let u = who.rsplit_once(' ').map_or("", |(u, _)| u);
        (Outcome::Success, user(u))
    };
    let protocol = match line.program.as_deref() {
        Some(p) if p.contains("pop3") => Some(Protocol::Pop3),
        Some(p) if p.contains("imap") => Some(Protocol::Imap),
        Some(p) if p.contains("sieve") => Some(Protocol::ManageSieve),
        _ => None,
    };
    let mut e = ctx.event(Service::Cyrus, outcome);
    e.protocol = protocol;
    e.source = Some(addr);
    e.user = name;
    out.push(e);
    Verdict::Recognised
}

/// The failure reason for Cyrus SASL's text.
fn reason(text: &str) -> Reason {
    if text.contains("user not found") {
        Reason::UnknownAccount
    } else if text.contains("expired") {
        Reason::Expired
    } else if text.contains("authentication failure")
        || text.contains("checkpass failed")
        || text.contains("incorrect")
        || text.contains("doesn't match")
    {
        Reason::BadPassword
    } else {
        Reason::Other
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, one, unrecognised};

    #[test]
    fn badlogins() {
        let cases = [
            (
                "cyrus/imap",
                "badlogin: localhost.localdomain [127.0.0.1] plaintext cyrus@localdomain SASL(-13): authentication failure: checkpass failed",
                "127.0.0.1",
                Reason::BadPassword,
                Some("cyrus@localdomain"),
            ),
            (
                "imapd",
                "badlogin: example.com [198.51.100.57] CRAM-MD5 [SASL(-13): authentication failure: incorrect digest response]",
                "198.51.100.57",
                Reason::BadPassword,
                None,
            ),
            (
                "imap",
                "badlogin: local-somehost[1.2.3.4] OTP [SASL(-13): authentication failure: External SSF not good enough]",
                "1.2.3.4",
                Reason::BadPassword,
                None,
            ),
            (
                "cyrus/imaps",
                "badlogin: serafinat.xxxxxx [1.2.3.4] plain [SASL(-13): user not found: user: pressy@derry property: cmusaslsecretPLAIN not found in sasldb]",
                "1.2.3.4",
                Reason::UnknownAccount,
                None,
            ),
            (
                "cyrus/pop3",
                "badlogin: [2001:db8::4] plaintext a b SASL(-13): authentication failure: checkpass failed",
                "2001:db8::4",
                Reason::BadPassword,
                Some("a b"),
            ),
        ];
        for (prog, msg, addr, reason, name) in cases {
            let e = one(parse, Some(prog), msg);
            assert_eq!(e.outcome, Outcome::Failure(reason), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.user.as_deref(), name, "{msg}");
        }
    }

    #[test]
    fn login_success() {
        let e = one(
            parse,
            Some("cyrus/imap"),
            "login: mail.example.com [192.0.2.8] alice@example.org PLAIN+TLS User logged in SESSIONID=<cyrus-1-2-3>",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("192.0.2.8"));
        assert_eq!(e.user.as_deref(), Some("alice@example.org"));
        assert_eq!(e.protocol, Some(Protocol::Imap));
    }

    #[test]
    fn names_never_move_the_address() {
        let e = one(
            parse,
            Some("imapd"),
            "badlogin: host [192.0.2.9] plaintext [6.6.6.6] SASL(-13): authentication failure",
        );
        assert_eq!(e.source, ip("192.0.2.9"));
        unrecognised(parse, Some("imapd"), "badlogin: host no address");
        unrecognised(parse, Some("imapd"), "badlogin: [1.2.3");
        unrecognised(parse, Some("imapd"), "something else");
    }
}
