//! nginx: HTTP basic authentication failures from the error log.
//!
//! nginx writes `2012/04/09 11:53:29 [error] 2865#0: *66647 TEXT, client: ADDR, server:
//! NAME, request: "…", host: "…"` (`ngx_log_error_core`, then
//! `ngx_http_log_error`/`ngx_http_log_error_handler` append the context). TEXT is
//! `user "U" was not found in "FILE"` or `user "U": password mismatch`
//! (`ngx_http_auth_basic_module.c`), or `PAM: user 'U' - not authenticated: REASON`
//! (the third-party `ngx_http_auth_pam_module`).
//!
//! The user name comes before `, client:` and the request line and Host header after
//! it, all chosen by the client, and nginx escapes none of them: a name can carry a
//! whole forged `, client: 6.6.6.6, server: x` tail. So the address is taken only when
//! every `, client: ADDR, server: ` in the line names the same address; a line that
//! names two is not attributed to either (it is counted as not understood).

use std::net::IpAddr;

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::text::{find_iter, user};
use crate::{Ctx, Line, Verdict};

/// Reads one error-log message (the envelope has taken the stamp off; a journal line
/// may still carry it, after the program tag).
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    // `[level] PID#TID: *CID TEXT`; anything before the `[` is a second stamp or tag.
    let Some(open) = msg.find('[') else {
        return Verdict::Unrecognised;
    };
    let Some((level, rest)) = msg[open + 1..].split_once("] ") else {
        return Verdict::Unrecognised;
    };
    if !level.bytes().all(|c| c.is_ascii_lowercase()) {
        return Verdict::Unrecognised;
    }
    let Some((pid, text)) = rest.split_once(": ") else {
        return Verdict::Unrecognised;
    };
    if !pid.bytes().all(|c| c.is_ascii_digit() || c == b'#') {
        return Verdict::Unrecognised;
    }
    // `*CID ` connection number.
    let text = match text.strip_prefix('*').and_then(|t| t.split_once(' ')) {
        Some((cid, t)) if cid.bytes().all(|c| c.is_ascii_digit()) => t,
        _ => text,
    };
    if text.starts_with("SSL_do_handshake() failed") || text.starts_with("SSL_read() failed") {
        // TLS noise from scanners: no credentials were sent.
        return Verdict::Recognised;
    }
    let kind = if text.starts_with("user \"") {
        Kind::Basic
    } else if text.starts_with("PAM: user '") {
        Kind::Pam
    } else {
        return Verdict::Unrecognised;
    };
    let Some((addr, first, last)) = client(text) else {
        return Verdict::Unrecognised;
    };
    // The name may repeat the real tail; the text before the first or the last
    // `, client:` is the message.
    let Some((outcome, name)) =
        message(kind, &text[..first]).or_else(|| message(kind, &text[..last]))
    else {
        return Verdict::Unrecognised;
    };
    let mut e = ctx.event(Service::Nginx, outcome);
    e.protocol = Some(Protocol::Http);
    e.source = Some(addr);
    e.user = name;
    out.push(e);
    Verdict::Recognised
}

/// The outcome and user of the text before `, client:`.
fn message(kind: Kind, before: &str) -> Option<(Outcome, Option<String>)> {
    match kind {
        Kind::Basic => {
            let body = &before[6..];
            if let Some(u) = body.strip_suffix("\": password mismatch") {
                Some((Outcome::Failure(Reason::BadPassword), user(u)))
            } else {
                let end = body.rfind("\" was not found in \"")?;
                Some((Outcome::Failure(Reason::UnknownAccount), user(&body[..end])))
            }
        }
        Kind::Pam => {
            let body = &before[11..];
            let end = body.rfind("' - not authenticated: ")?;
            let why = &body[end + 23..];
            let reason = if why.contains("User not known") {
                Reason::UnknownAccount
            } else {
                Reason::BadPassword
            };
            Some((Outcome::Failure(reason), user(&body[..end])))
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Basic,
    Pam,
}

/// The client address and where its first and last `, client: ` start, if every `,
/// client: ADDR, server: ` of the text names the same address.
fn client(text: &str) -> Option<(IpAddr, usize, usize)> {
    let mut found: Option<(IpAddr, usize, usize)> = None;
    for at in find_iter!(text.as_bytes(), b", client: ") {
        let rest = &text[at + 10..];
        let Some((token, _)) = rest.split_once(", server: ") else {
            continue;
        };
        let Some(addr) = address::parse(token) else {
            continue;
        };
        match &mut found {
            None => found = Some((addr, at, at)),
            Some((a, _, last)) if *a == addr => *last = at,
            Some(_) => return None,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Protocol, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn failures() {
        let cases = [
            (
                "[error] 2865#0: *66647 user \"xyz\" was not found in \"/var/www/.htpasswd\", client: 192.0.43.10, server: www.myhost.com, request: \"GET / HTTP/1.1\", host: \"www.myhost.com\"",
                "192.0.43.10",
                Reason::UnknownAccount,
                Some("xyz"),
            ),
            (
                "[error] 30708#0: *3 user \"scriben dio\": password mismatch, client: 10.0.2.2, server: , request: \"GET / HTTP/1.1\", host: \"localhost:8443\"",
                "10.0.2.2",
                Reason::BadPassword,
                Some("scriben dio"),
            ),
            (
                "[error] 23141#23141: *24470 PAM: user 'username' - not authenticated: Authentication failure, client: 192.0.2.120, server: webdav, request: \"GET / HTTP/2.0\"",
                "192.0.2.120",
                Reason::BadPassword,
                Some("username"),
            ),
            (
                "2023/12/09 21:35:20 [error] 983478#983478: *3 user \"fake\" was not found in \"/h\", client: 2001:db8::5, server: host.example.com",
                "2001:db8::5",
                Reason::UnknownAccount,
                Some("fake"),
            ),
        ];
        for (msg, addr, reason, name) in cases {
            let e = one(parse, Some("nginx"), msg);
            assert_eq!(e.outcome, Outcome::Failure(reason), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.user.as_deref(), name, "{msg}");
            assert_eq!(e.protocol, Some(Protocol::Http));
        }
    }

    #[test]
    fn forged_client_fields_are_not_believed() {
        // The name forges a whole tail with another address: two addresses, no event.
        unrecognised(
            parse,
            None,
            "[error] 30708#0: *3 user \"test\": password mismatch, client: 127.0.0.1, server: test, request: \"GET / HTTP/1.1\", host: \"localhost:8443\"\": was not found in \"/etc/nginx/.htpasswd\", client: 192.0.2.2, server: , request: \"GET / HTTP/1.1\", host: \"localhost:8443\"",
        );
        // A forged tail in the Host header, after the real one: same rule.
        unrecognised(
            parse,
            None,
            "[error] 1#0: *3 user \"a\": password mismatch, client: 192.0.2.9, server: , request: \"GET / HTTP/1.1\", host: \"x, client: 6.6.6.6, server: y\"",
        );
        // The same address twice is unambiguous.
        let e = one(
            parse,
            None,
            "[error] 1#0: *3 user \"a, client: 192.0.2.9, server: \": password mismatch, client: 192.0.2.9, server: ",
        );
        assert_eq!(e.source, ip("192.0.2.9"));
    }

    #[test]
    fn not_logins() {
        none(
            parse,
            None,
            "[crit] 76952#76952: *2454307 SSL_do_handshake() failed (SSL: error:1408F0C6:SSL routines:ssl3_get_record:packet length too long) while SSL handshaking, client: 142.93.180.14, server: 0.0.0.0:443",
        );
        unrecognised(
            parse,
            None,
            "[error] 76952#76952: *5645766 connect() failed (111: Connection refused) while connecting to upstream, client: 5.126.32.148, server: www.google.de",
        );
        unrecognised(parse, None, "[error] 1#0: *3 user \"a\": password mismatch");
        unrecognised(parse, None, "[error");
        unrecognised(parse, None, "");
    }
}
