//! SOGo groupware: web logins.
//!
//! SOGo's `SOGoRootPage` logs `Login from 'ADDR' for user 'U' might not have worked -
//! password policy: P  grace: G  expire: E  bound: B` for a failed login and `successful
//! login from 'ADDR' for user 'U' - expire = E  grace = G` for a good one
//! (`UI/MainUI/SOGoRootPage.m`). P is the LDAP password-policy error
//! (draft-behera-ldap-password-policy: 0 password expired, 1 account locked, 65535
//! none).
//!
//! ADDR is the `X-Forwarded-For` header when there is one, else the peer: behind a
//! proxy it is a list (`192.0.2.16, 10.0.0.1`) whose leftmost entries the client wrote
//! itself. The source is the rightmost public address of the list (the one the
//! nearest proxy saw, skipping the organisation's own private proxies), or the
//! leftmost entry when all are private. The address comes before the user name, so a
//! name cannot move it.

use std::net::IpAddr;

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::text::{find, user};
use crate::{Ctx, Line, Verdict};

/// Reads one message (SOGo's own log file has `sogod [pid]: ` where syslog has a tag).
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    let Some(i) = find!(msg.as_bytes(), b"SOGoRootPage ") else {
        return Verdict::Unrecognised;
    };
    let text = &msg[i + 13..];
    let (failed, rest) = if let Some(r) = text.strip_prefix("Login from '") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("successful login from '") {
        (false, r)
    } else {
        return Verdict::Unrecognised;
    };
    let Some((addrs, rest)) = rest.split_once("' for user '") else {
        return Verdict::Unrecognised;
    };
    let Some(addr) = pick(addrs) else {
        return Verdict::Unrecognised;
    };
    let (name, outcome) = if failed {
        let Some(end) = rest.rfind("' might not have worked") else {
            return Verdict::Unrecognised;
        };
        let policy = rest[end..]
            .split_once("password policy: ")
            .and_then(|(_, p)| p.split(' ').next())
            .and_then(|p| p.parse::<u32>().ok());
        let reason = match policy {
            Some(0) => Reason::Expired,
            Some(1) => Reason::Locked,
            _ => Reason::BadPassword,
        };
        (&rest[..end], Outcome::Failure(reason))
    } else {
        let Some(end) = rest.rfind("' - expire") else {
            return Verdict::Unrecognised;
        };
        (&rest[..end], Outcome::Success)
    };
    let mut e = ctx.event(Service::Sogo, outcome);
    e.protocol = Some(Protocol::Http);
    e.source = Some(addr);
    e.user = user(name);
    out.push(e);
    Verdict::Recognised
}

/// The client in an `X-Forwarded-For`-style list; `None` if any entry is not an address.
fn pick(list: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = list
        .split(',')
        .map(|a| address::parse(a.trim()))
        .collect::<Option<_>>()?;
    addrs
        .iter()
        .rev()
        .find(|a| !internal(a))
        .or_else(|| addrs.first())
        .copied()
}

/// Loopback, private, link-local and unique-local addresses: the organisation's own
/// proxies.
fn internal(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Reason};

    use super::parse;
    use crate::testutil::{ip, one, unrecognised};

    #[test]
    fn failures_and_successes() {
        let e = one(
            parse,
            None,
            "sogod [26818]: SOGoRootPage Login from '173.194.44.31' for user 'hack0r' might not have worked - password policy: 65535  grace: -1  expire: -1  bound: 0",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("173.194.44.31"));
        assert_eq!(e.user.as_deref(), Some("hack0r"));
        let e = one(
            parse,
            Some("sogod"),
            "SOGoRootPage Login from '2001:db8::1' for user 'bob' might not have worked - password policy: 1  grace: -1  expire: -1  bound: 0",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::Locked));
        assert_eq!(e.source, ip("2001:db8::1"));
        let e = one(
            parse,
            Some("sogod"),
            "SOGoRootPage successful login from '192.0.2.4' for user 'alice' - expire = -1  grace = -1",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("alice"));
    }

    #[test]
    fn forwarded_lists() {
        let src = |addrs: &str| {
            one(
                parse,
                None,
                &format!("SOGoRootPage Login from '{addrs}' for user 'a' might not have worked - password policy: 65535  grace: -1  expire: -1  bound: 0"),
            )
            .source
        };
        assert_eq!(src("192.0.2.16, 10.0.0.1"), ip("192.0.2.16"));
        // The client forged the first entry; the proxy appended what it saw.
        assert_eq!(src("6.6.6.6, 192.0.2.16"), ip("192.0.2.16"));
        assert_eq!(src("10.1.2.3, 10.0.0.1"), ip("10.1.2.3"));
        unrecognised(
            parse,
            None,
            "SOGoRootPage Login from 'x, 10.0.0.1' for user 'a' might not have worked - password policy: 65535",
        );
    }

    #[test]
    fn names_never_move_the_address() {
        let e = one(
            parse,
            None,
            "SOGoRootPage Login from '192.0.2.5' for user 'x' for user 'y' from '6.6.6.6' might not have worked - password policy: 65535  grace: -1  expire: -1  bound: 0",
        );
        assert_eq!(e.source, ip("192.0.2.5"));
        assert_eq!(e.user.as_deref(), Some("x' for user 'y' from '6.6.6.6"));
        unrecognised(
            parse,
            None,
            "<0x0xb8537990[LDAPSource]> <NSException: 0xb87c3008> NAME:LDAPException REASON:operation bind failed: Invalid credentials (0x31)",
        );
    }
}
