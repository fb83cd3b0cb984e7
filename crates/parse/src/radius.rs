//! FreeRADIUS: `Login OK` and `Login incorrect`.
//!
//! With `auth = yes` in `radiusd.conf` (`log { … }`), FreeRADIUS writes `Auth: (N)
//! Login incorrect (MODULE: TEXT): [U] (from client NAS port P cli CLI)` and `Auth: (N)
//! Login OK: [U] (from client NAS port P cli CLI)` (`src/main/auth.c`,
//! `rad_authlog`/`auth_name`; 2.x has no `(N)`). `Invalid user` is logged when no module
//! knows the user. With `auth_badpass`/`auth_goodpass` the password follows the user as
//! `[U/PASSWORD]`: the name is cut at its first `/` so that a password never reaches an
//! event. CLI is the `Calling-Station-Id` the NAS sent: the client's address for a VPN
//! or dial-in NAS (the source), a MAC address for Wi-Fi (no source). `via TLS tunnel`
//! lines are the inner half of an EAP exchange whose outer half is logged too: they
//! make no event, so that one attempt counts once.

use portcullis_core::{Event, Outcome, Reason, Service};

use crate::text::{addr_port, rfind};
use crate::{Ctx, Line, Verdict};

/// Reads one message (`radius.log` after its stamp, or syslog's `radiusd` text).
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let mut msg: &str = &line.message;
    msg = msg.strip_prefix("Auth: ").unwrap_or(msg);
    if let Some(rest) = msg.strip_prefix('(')
        && let Some((n, rest)) = rest.split_once(") ")
        && n.bytes().all(|c| c.is_ascii_digit())
    {
        msg = rest;
    }
    let (outcome, rest) = if let Some(r) = msg.strip_prefix("Login OK") {
        (Outcome::Success, r)
    } else if let Some(r) = msg.strip_prefix("Login incorrect") {
        (Outcome::Failure(Reason::BadPassword), r)
    } else if let Some(r) = msg.strip_prefix("Invalid user") {
        (Outcome::Failure(Reason::UnknownAccount), r)
    } else {
        return Verdict::Unrecognised;
    };
    // The client part is the server's and ends the line: the last `] (from client `.
    let Some(tail_at) = rfind!(rest.as_bytes(), b"] (from client ") else {
        return Verdict::Unrecognised;
    };
    let Some(open) = rest[..tail_at].find(": [") else {
        return Verdict::Unrecognised;
    };
    let tail = &rest[tail_at + 15..];
    let Some(close) = tail.find(')') else {
        return Verdict::Unrecognised;
    };
    let client = &tail[..close];
    if client.ends_with(" via TLS tunnel") {
        return Verdict::Recognised;
    }
    let name = &rest[open + 3..tail_at];
    let name = name.split('/').next().unwrap_or_default();
    let mut e = ctx.event(Service::Radius, outcome);
    if let Some((_, cli)) = client.split_once(" cli ")
        && let Some((addr, port)) = addr_port(cli)
    {
        e.source = Some(addr);
        e.port = port;
    }
    e.user = (!name.is_empty()).then(|| name.to_owned());
    out.push(e);
    Verdict::Recognised
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn logins() {
        let e = one(
            parse,
            None,
            "Auth: (9) Login incorrect (pap: Cleartext password does not match \"known good\" password): [alice] (from client vpn-nas port 0 cli 192.0.2.77)",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("192.0.2.77"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e = one(
            parse,
            Some("radiusd"),
            "(3) Login OK: [bob] (from client localhost port 1 cli 2001:db8::7)",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("2001:db8::7"));
        let e = one(
            parse,
            None,
            "Auth: Login incorrect: [carol] (from client wlc port 1 cli 00-11-22-33-44-55)",
        );
        assert_eq!(e.source, None);
        assert_eq!(e.user.as_deref(), Some("carol"));
        let e = one(
            parse,
            None,
            "Auth: (1) Invalid user: [ghost] (from client nas port 0)",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::UnknownAccount));
    }

    #[test]
    fn passwords_never_reach_the_event() {
        let e = one(
            parse,
            None,
            "Auth: (2) Login incorrect: [dave/hunter2] (from client nas port 0 cli 192.0.2.8)",
        );
        assert_eq!(e.user.as_deref(), Some("dave"));
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    #[test]
    fn tunnels_and_forgeries() {
        none(
            parse,
            None,
            "Auth: (5) Login incorrect (mschap: MS-CHAP2-Response is incorrect): [eve] (from client ap port 0 via TLS tunnel)",
        );
        // A name that forges a client part: the server's, last, is read.
        let e = one(
            parse,
            None,
            "Auth: (6) Login incorrect: [x] (from client a port 0 cli 6.6.6.6)] (from client nas port 0 cli 192.0.2.9)",
        );
        assert_eq!(e.source, ip("192.0.2.9"));
        unrecognised(parse, None, "Auth: (6) Login incorrect: [x]");
        unrecognised(parse, None, "Ready to process requests");
    }
}
