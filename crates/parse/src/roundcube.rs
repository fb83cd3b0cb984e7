//! Roundcube webmail: login failures and successes.
//!
//! Roundcube logs through its own files (`logs/errors`, `logs/userlogins`) or syslog.
//! Lines read (`rcmail::log_login`, `rcube_imap::connect`):
//! - `Failed login for U from ADDR in session S (error: N)` and `Successful login for U
//!   (ID: N) from ADDR in session S` (userlogins);
//! - `IMAP Error: Login failed for U [against HOST] from ADDR[(X-Real-IP: …)]. REPLY in
//!   FILE on line N (METHOD URI)` (errors), and the old `FAILED login for U from ADDR`.
//!
//! A `<sessid> ` prefix (1.1+) is skipped. The user name comes before ` from ADDR` and the
//! IMAP server's reply and the request URI after it; all three can carry a forged
//! ` from 6.6.6.6.`. The address is taken only where every ` from ADDR` that ends like
//! Roundcube's (`.`, `(`, ` in session`, or the end of the line) names the same
//! address; otherwise the line is not attributed (and is counted as not understood).

use std::net::IpAddr;

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::text::{find_iter, user};
use crate::{Ctx, Line, Verdict};

/// Reads one message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let mut msg: &str = &line.message;
    if let Some(rest) = msg.strip_prefix('<')
        && let Some((id, rest)) = rest.split_once("> ")
        && id.bytes().all(|c| c.is_ascii_alphanumeric())
    {
        msg = rest;
    }
    let (outcome, body) = if let Some(b) = msg.strip_prefix("IMAP Error: Login failed for ") {
        (Outcome::Failure(Reason::BadPassword), b)
    } else if let Some(b) = msg.strip_prefix("Failed login for ") {
        (Outcome::Failure(Reason::BadPassword), b)
    } else if let Some(b) = msg.strip_prefix("FAILED login for ") {
        (Outcome::Failure(Reason::BadPassword), b)
    } else if let Some(b) = msg.strip_prefix("Successful login for ") {
        (Outcome::Success, b)
    } else {
        return Verdict::Unrecognised;
    };
    let Some((addr, at)) = source(body) else {
        return Verdict::Unrecognised;
    };
    let outcome = match (outcome, error_code(body)) {
        // RCMAIL_ERROR_STORAGE (-2): the IMAP server could not be asked.
        (Outcome::Failure(_), Some(-2)) => return Verdict::Recognised,
        (Outcome::Failure(_), Some(c)) if c > 0 => Outcome::Failure(Reason::Other),
        (o, _) => o,
    };
    let mut name = &body[..at];
    if let Some(i) = name.rfind(" against ") {
        name = &name[..i];
    }
    if outcome == Outcome::Success
        && let Some(i) = name.rfind(" (ID: ")
    {
        name = &name[..i];
    }
    let mut e = ctx.event(Service::Roundcube, outcome);
    e.protocol = Some(Protocol::Http);
    e.source = Some(addr);
    e.user = user(name);
    out.push(e);
    Verdict::Recognised
}

/// The address and where its ` from ` starts, if every plausible ` from ADDR` names the
/// same address.
fn source(body: &str) -> Option<(IpAddr, usize)> {
    let mut found: Option<(IpAddr, usize)> = None;
    for at in find_iter!(body.as_bytes(), b" from ") {
        let rest = &body[at + 6..];
        let len = rest
            .bytes()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':'))
            .count();
        let mut token = &rest[..len];
        let mut after = &rest[len..];
        if let Some(t) = token.strip_suffix('.') {
            token = t;
            after = &rest[len - 1..];
        }
        let ends_well = after.is_empty()
            || after.starts_with('(')
            || after.starts_with(" in session ")
            || after == "."
            || after.starts_with(". ");
        if !ends_well {
            continue;
        }
        let Some(addr) = address::parse(token) else {
            continue;
        };
        match found {
            None => found = Some((addr, at)),
            Some((a, _)) if a == addr => {}
            Some(_) => return None,
        }
    }
    found
}

/// `N` of a trailing `(error: N)`.
fn error_code(body: &str) -> Option<i32> {
    body.strip_suffix(')')?
        .rsplit_once("(error: ")?
        .1
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn failures_and_successes() {
        let cases = [
            (
                "FAILED login for user1 from 192.0.43.10",
                "192.0.43.10",
                "user1",
            ),
            (
                "IMAP Error: Login failed for sales@example.com from 10.1.1.47",
                "10.1.1.47",
                "sales@example.com",
            ),
            (
                "IMAP Error: Login failed for admin from 1.2.3.4. AUTHENTICATE PLAIN: A0002 NO Login failed. in /usr/share/roundcube/program/include/rcube_imap.php on line 205 (POST /wmail/?_task=login&_action=login)",
                "1.2.3.4",
                "admin",
            ),
            (
                "Failed login for foo.bar-admin@some-thing.example.com from 1.2.3.4 in session 2z506z6rvddstv6k7jz08hxo27 (error: 0)",
                "1.2.3.4",
                "foo.bar-admin@some-thing.example.com",
            ),
            (
                "<j2pncet8> IMAP Error: Login failed for user@example.com from 192.0.2.2(X-Real-IP: 192.0.2.3,X-Forwarded-For: 192.0.2.4). AUTHENTICATE PLAIN: Authentication failed. in /r/rcube_imap.php on line 197 (POST /?_task=login)",
                "192.0.2.2",
                "user@example.com",
            ),
            (
                "<3z506z6r> IMAP Error: Login failed for admin@example.com against localhost from 2001:db8::4. AUTHENTICATE PLAIN: Authentication failed. in /r/rcube_imap.php on line 221 (POST /?_task=login)",
                "2001:db8::4",
                "admin@example.com",
            ),
        ];
        for (msg, addr, name) in cases {
            let e = one(parse, Some("roundcube"), msg);
            assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.user.as_deref(), Some(name), "{msg}");
            assert_eq!(e.protocol, Some(Protocol::Http));
        }
        let e = one(
            parse,
            None,
            "Successful login for alice@example.org (ID: 12) from 192.0.2.50 in session abc123",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("alice@example.org"));
        assert_eq!(e.source, ip("192.0.2.50"));
    }

    #[test]
    fn storage_errors_are_not_attempts() {
        none(
            parse,
            None,
            "Failed login for bob from 192.0.2.1 in session abc (error: -2)",
        );
        let e = one(
            parse,
            None,
            "Failed login for bob from 192.0.2.1 in session abc (error: 4)",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::Other));
    }

    #[test]
    fn forged_addresses_in_names_and_replies() {
        // ` from 127.0.0.1 ` is followed by more text: not where Roundcube ends one.
        let e = one(
            parse,
            None,
            "IMAP Error: Login failed for admin from 127.0.0.1 from 1.2.3.4. AUTHENTICATE PLAIN: A0002 NO Login failed. user=admin from 127.0.0.1 in /r.php on line 205 (POST /)",
        );
        assert_eq!(e.source, ip("1.2.3.4"));
        assert_eq!(e.user.as_deref(), Some("admin from 127.0.0.1"));
        // Two places that both end like Roundcube's: not attributed.
        unrecognised(
            parse,
            None,
            "IMAP Error: Login failed for admin from 127.0.0.1. from 1.2.3.4. AUTHENTICATE PLAIN: A0002 NO Login failed. in /r.php on line 205 (POST /)",
        );
        unrecognised(parse, None, "IMAP Error: Login failed for admin");
        unrecognised(parse, None, "Something else");
    }
}
