//! Apache httpd: basic and digest authentication failures from the error log.
//!
//! httpd 2.2 writes `[Wed Jul 17 22:18:52 2013] [error] [client 127.0.0.1] text`;
//! 2.4 writes `[…] [auth_basic:error] [pid 17512:tid 1401] [client 127.0.0.1:51390]
//! AH01617: text` (`server/log.c`, `do_errorlog_default`), `[remote …]` instead of
//! `[client …]` for connection-level messages. The envelope takes the stamp off; this
//! module reads the bracketed fields, which httpd writes before any request text, and
//! takes the address only from them: the text after them holds the user name and the
//! URI, both the client's.
//!
//! Messages read (mod_authn_file / mod_auth_basic / mod_auth_digest / mod_authz_*):
//! `user U not found` (AH01618), `user U: authentication failure for "URI": Password
//! Mismatch` (AH01617), digest `user U: password mismatch` (AH01792) and ``user `U' in
//! realm `R' not found`` (AH01790), `client used wrong authentication scheme`
//! (AH01614), digest protocol errors (invalid qop, invalid nonce, realm mismatch,
//! unknown algorithm). An authorization failure of an authenticated user (`Authorization
//! of user U … failed`, AH01637; `user U: authorization failure`, AH01631) means the
//! password was right: a success. `client denied by server configuration` is an access
//! rule, not a login, and makes no event.

use portcullis_core::{Event, Outcome, Protocol, Reason, Service};

use crate::text::{addr_port, user};
use crate::{Ctx, Line, Verdict};

/// Reads one error-log message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let Some((peer, text)) = fields(&line.message) else {
        return Verdict::Unrecognised;
    };
    let text = strip_ah(text);
    // httpd 2.2's mod_auth_digest prefixes its messages with `Digest: `.
    let text = text.strip_prefix("Digest: ").unwrap_or(text);
    let (outcome, name) = if let Some(rest) = text.strip_prefix("user `") {
        // Digest: user `U' in realm `R' not found
        let Some(end) = rest.rfind("' in realm `") else {
            return Verdict::Unrecognised;
        };
        if !rest.contains("' not found") {
            return Verdict::Unrecognised;
        }
        (Outcome::Failure(Reason::UnknownAccount), user(&rest[..end]))
    } else if let Some(rest) = text.strip_prefix("user ") {
        if let Some(end) = rest.find(": authentication failure for \"") {
            (Outcome::Failure(Reason::BadPassword), user(&rest[..end]))
        } else if let Some(end) = rest.find(": password mismatch") {
            (Outcome::Failure(Reason::BadPassword), user(&rest[..end]))
        } else if let Some(end) = rest.find(": authorization failure for \"") {
            (Outcome::Success, user(&rest[..end]))
        } else if let Some(end) = rest.find(" not found") {
            (Outcome::Failure(Reason::UnknownAccount), user(&rest[..end]))
        } else {
            return Verdict::Unrecognised;
        }
    } else if let Some(rest) = text.strip_prefix("Authorization of user ") {
        let Some(end) = rest.find(" to access ") else {
            return Verdict::Unrecognised;
        };
        (Outcome::Success, user(&rest[..end]))
    } else if text.starts_with("client used wrong authentication scheme") {
        (Outcome::Failure(Reason::Other), None)
    } else if text.starts_with("invalid nonce") && text.contains("hash is not") {
        // A nonce this server did not issue: noise from a client or proxy that mangled
        // it, not a judged credential.
        return Verdict::Recognised;
    } else if text.starts_with("invalid qop")
        || text.starts_with("invalid nonce")
        || text.starts_with("realm mismatch")
        || text.starts_with("unknown algorithm")
    {
        // The client sent digest credentials the server refused before checking them.
        (Outcome::Failure(Reason::Other), None)
    } else if text.starts_with("client denied by server configuration")
        || text.contains("provided via SNI")
        || text.starts_with("No hostname was provided via SNI")
    {
        // Access rules and TLS name mismatches: no credentials were tried.
        return Verdict::Recognised;
    } else {
        return Verdict::Unrecognised;
    };
    let mut e = ctx.event(Service::Apache, outcome);
    e.protocol = Some(Protocol::Http);
    let (addr, port) = peer;
    e.source = Some(addr);
    e.port = port;
    e.user = name;
    out.push(e);
    Verdict::Recognised
}

/// A client's address and port.
type Peer = (std::net::IpAddr, Option<u16>);

/// The leading `[…]` fields: the peer from `[client …]`/`[remote …]` and the text after
/// the fields. `None` if the message does not open with httpd's fields, or they name no
/// peer.
fn fields(msg: &str) -> Option<(Peer, &str)> {
    let mut rest = msg;
    let mut peer = None;
    while let Some(inner) = rest.strip_prefix('[') {
        let value = inner
            .strip_prefix("client ")
            .or_else(|| inner.strip_prefix("remote "));
        let after = if let Some(value) = value {
            // The address may itself be in brackets: `[client [2001:db8::1]:51548]`.
            let end = value.find(' ').unwrap_or(value.len());
            let token = value[..end].strip_suffix(']')?;
            peer = Some(addr_port(token)?);
            &value[end..]
        } else {
            let close = inner.find(']')?;
            &inner[close + 1..]
        };
        rest = after.strip_prefix(' ').unwrap_or(after);
        if peer.is_some() {
            break;
        }
    }
    Some((peer?, rest))
}

/// Drops httpd 2.4's `AHnnnnn: ` message number.
fn strip_ah(text: &str) -> &str {
    let b = text.as_bytes();
    if b.len() > 9 && b.starts_with(b"AH") && b[2..7].iter().all(u8::is_ascii_digit) {
        if let Some(rest) = text[7..].strip_prefix(": ") {
            return rest;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn basic_and_digest_failures() {
        let cases = [
            (
                "[error] [client 194.228.20.113] user dsfasdf not found: /",
                "194.228.20.113",
                None,
                Reason::UnknownAccount,
                Some("dsfasdf"),
            ),
            (
                "[auth_basic:error] [pid 17512:tid 140123079128832] [client 127.0.0.1:51386] AH01618: user  not found: /basic/file/x.html",
                "127.0.0.1",
                Some(51386),
                Reason::UnknownAccount,
                None,
            ),
            (
                "[auth_basic:error] [pid 17512:tid 1] [client 127.0.0.1:51390] AH01617: user username: authentication failure for \"/basic/file\": Password Mismatch",
                "127.0.0.1",
                Some(51390),
                Reason::BadPassword,
                Some("username"),
            ),
            (
                "[error] [client 127.0.0.1] Digest: user username: password mismatch: /digest/x.html",
                "127.0.0.1",
                None,
                Reason::BadPassword,
                Some("username"),
            ),
            (
                "[auth_digest:error] [pid 1:tid 2] [client 127.0.0.1:51408] AH01790: user `user name' in realm `digest private area' not found: /d/",
                "127.0.0.1",
                Some(51408),
                Reason::UnknownAccount,
                Some("user name"),
            ),
            (
                "[error] [client 2001:db8::80da:af6b:8b2c] user test-ipv6 not found: /",
                "2001:db8::80da:af6b:8b2c",
                None,
                Reason::UnknownAccount,
                Some("test-ipv6"),
            ),
            (
                "[auth_basic:error] [pid 3175001:tid 1] [remote 192.0.2.111:35924] AH01618: user whatever not found: /admin",
                "192.0.2.111",
                Some(35924),
                Reason::UnknownAccount,
                Some("whatever"),
            ),
            (
                "[auth_basic:error] [pid 1:tid 2] [client 127.0.0.1:51396] AH01614: client used wrong authentication scheme: /basic/file",
                "127.0.0.1",
                Some(51396),
                Reason::Other,
                None,
            ),
            (
                "[auth_digest:error] [pid 24835:tid 1] [client 127.0.0.1:57052] AH01788: realm mismatch - got `so far away' but expected `digest private area'",
                "127.0.0.1",
                Some(57052),
                Reason::Other,
                None,
            ),
        ];
        for (msg, addr, port, reason, name) in cases {
            let e = one(parse, None, msg);
            assert_eq!(e.outcome, Outcome::Failure(reason), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.port, port, "{msg}");
            assert_eq!(e.user.as_deref(), name, "{msg}");
            assert_eq!(e.protocol, Some(Protocol::Http));
        }
    }

    #[test]
    fn authorization_failure_means_the_password_was_right() {
        let e = one(
            parse,
            None,
            "[authz_owner:error] [pid 1:tid 2] [client [2001:db8::1]:51548] AH01637: Authorization of user alice to access /x failed, reason: file owner dan does not match",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("2001:db8::1"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e = one(
            parse,
            Some("httpd"),
            "[authz_core:error] [pid 17484:tid 1] [client 127.0.0.1:51397] AH01631: user bob: authorization failure for \"/x\": ",
        );
        assert_eq!(e.outcome, Outcome::Success);
    }

    #[test]
    fn not_logins() {
        none(
            parse,
            None,
            "[authz_core:error] [pid 10691] [client 192.3.9.178:44271] AH01630: client denied by server configuration: /var/www/html/x",
        );
        none(
            parse,
            None,
            "[ssl:error] [pid 6586] [client 91.49.82.139:58028] AH02033: No hostname was provided via SNI for a name based virtual host",
        );
        none(
            parse,
            None,
            "[auth_digest:error] [pid 1:tid 2] [client 127.0.0.1:56964] AH01776: invalid nonce b9YA received - hash is not d42d",
        );
        unrecognised(
            parse,
            None,
            "[error] [client 192.168.33.1] File does not exist: /srv/http/site/[client 192.168.0.1] user root not found",
        );
        unrecognised(parse, None, "[error] no client here user x not found");
        unrecognised(parse, None, "[client 1.2.3.4");
        unrecognised(parse, None, "");
    }

    #[test]
    fn names_never_move_the_address() {
        let e = one(
            parse,
            None,
            "[error] [client 192.0.2.7] user [client 6.6.6.6] x not found: /[client 6.6.6.6]",
        );
        assert_eq!(e.source, ip("192.0.2.7"));
        assert_eq!(e.user.as_deref(), Some("[client 6.6.6.6] x"));
    }
}
