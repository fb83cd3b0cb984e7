//! Login-process lines (`imap-login`, `pop3-login`, ...): the server's message with its
//! parenthesised verdict, then the key list (`user=<U>, method=M, rip=A, ...`) whose
//! user value is the client's text.

use crate::text::{find, find_iter, rfind};
use std::net::IpAddr;

use portcullis_core::{Reason, address};

/// Splits a login line at the `: ` that starts its key list (`user=<`, `rip=`, ...).
/// The part before is the server's own message, which the user cannot write into, so
/// the first such separator is the real one.
pub(super) fn split_keys(body: &str) -> Option<(&str, &str)> {
    const KEYS: [&str; 6] = ["user=<", "method=", "rip=", "lip=", "session=<", "mpid="];
    for i in find_iter!(body.as_bytes(), b": ") {
        let rest = &body[i + 2..];
        if KEYS.iter().any(|k| rest.starts_with(k)) {
            return Some((&body[..i], rest));
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoginKind {
    Success,
    /// `(auth failed, N attempts[ in S secs])`.
    Failed {
        attempts: u32,
        secs: Option<u32>,
    },
    Failure(Reason),
    /// `client didn't finish SASL auth`: an attempt only if a mechanism was chosen.
    AbortedIfMethod,
    NotAttempt,
    Unknown,
}

pub(super) fn classify_login(msg: &str) -> LoginKind {
    if msg == "Login" || msg == "Logged in" {
        return LoginKind::Success;
    }
    let b = msg.as_bytes();
    if let Some(i) = rfind!(b, b"(auth failed, ") {
        let rest = &msg[i + 14..];
        let (n, rest) = leading_number(rest);
        let Some(n) = n else {
            return LoginKind::Unknown;
        };
        let secs = rest
            .strip_prefix(" attempts in ")
            .or_else(|| rest.strip_prefix(" attempt in "))
            .and_then(|r| leading_number(r).0);
        return LoginKind::Failed {
            attempts: n.max(1),
            secs,
        };
    }
    const TABLE: &[(&[u8], LoginKind)] = &[
        (
            b"(tried to use disabled plaintext auth)",
            LoginKind::Failure(Reason::PlaintextRefused),
        ),
        (
            b"(tried to use disallowed plaintext auth)",
            LoginKind::Failure(Reason::PlaintextRefused),
        ),
        (
            b"(proxy dest auth failed)",
            LoginKind::Failure(Reason::BadPassword),
        ),
        (
            b"(client didn't finish SASL auth",
            LoginKind::AbortedIfMethod,
        ),
        (b"(auth aborted", LoginKind::Failure(Reason::Aborted)),
        (
            b"(disconnected while authenticating",
            LoginKind::AbortedIfMethod,
        ),
        (b"(no auth attempts", LoginKind::NotAttempt),
        (
            b"(disconnected before auth was ready",
            LoginKind::NotAttempt,
        ),
        (b"(disconnected during TLS handshake", LoginKind::NotAttempt),
        (b"(disconnected before greeting", LoginKind::NotAttempt),
        (
            b"(disconnected while finishing login",
            LoginKind::NotAttempt,
        ),
        (
            b"(tried to use unsupported auth mechanism",
            LoginKind::NotAttempt,
        ),
        (b"(internal failure", LoginKind::NotAttempt),
        (
            b"(auth process communication failure",
            LoginKind::NotAttempt,
        ),
        (b"(cert required", LoginKind::NotAttempt),
        (b"Maximum number of connections", LoginKind::NotAttempt),
        // Another mechanism the server refuses (fail2ban counts it; we keep it as a
        // failure without a password reason).
        (
            b"(tried to use disabled ",
            LoginKind::Failure(Reason::Other),
        ),
        (
            b"(tried to use disallowed ",
            LoginKind::Failure(Reason::Other),
        ),
    ];
    // Every marker starts with `(`: look only there (a searcher per marker per line
    // would cost more than the line).
    let opens: Vec<usize> = memchr::memchr_iter(b'(', b).collect();
    for (needle, kind) in TABLE {
        if opens.iter().any(|&i| b[i..].starts_with(needle)) {
            return *kind;
        }
    }
    LoginKind::Unknown
}

/// Login-process lines that are not attempts and carry no marker.
pub(super) fn is_login_noise(msg: &str) -> bool {
    [
        "Disconnected",
        "Aborted login",
        "Login aborted",
        "Connection closed",
        "Client has quit",
    ]
    .iter()
    .any(|p| msg.starts_with(p))
}

fn leading_number(s: &str) -> (Option<u32>, &str) {
    let end = s
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    (s[..end].parse().ok(), &s[end..])
}

/// The fields of a login line's key list, taken where the user's text cannot reach.
#[derive(Debug, Default)]
pub(super) struct LoginKeys<'a> {
    pub(super) user: Option<&'a str>,
    pub(super) has_method: bool,
    pub(super) addr: Option<IpAddr>,
    pub(super) port: Option<u16>,
    pub(super) session: Option<&'a str>,
}

impl<'a> LoginKeys<'a> {
    pub(super) fn parse(keys: &'a str) -> Self {
        let b = keys.as_bytes();
        let mut k = LoginKeys::default();
        // The server writes rip= after user=<...>, so the last rip= is the real one.
        let rip_key = if keys.starts_with("rip=") {
            rfind!(b, b", rip=").map_or(Some(0), |i| Some(i + 2))
        } else {
            rfind!(b, b", rip=").map(|i| i + 2)
        };
        let server_from = rip_key.unwrap_or(0);
        if let Some(r) = rip_key {
            k.addr = address::parse(field_value(&keys[r + 4..]));
        }
        let user_region = &keys[..server_from];
        if let Some(u) = user_region.strip_prefix("user=<") {
            if let Some(j) = rfind!(u.as_bytes(), b">, method=") {
                k.user = Some(&u[..j]);
                k.has_method = true;
            } else if let Some(j) = u.rfind('>') {
                k.user = Some(&u[..j]);
            }
        } else if user_region.starts_with("method=") {
            k.has_method = true;
        } else if rip_key.is_none() {
            // No rip: cannot tell the user from the server's fields; leave both unset.
            k.has_method = find!(b, b"method=").is_some();
        }
        let server = &keys[server_from..];
        let sb = server.as_bytes();
        if let Some(i) = rfind!(sb, b", rport=") {
            k.port = field_value(&server[i + 8..]).parse().ok();
        }
        if let Some(i) = rfind!(sb, b", session=<") {
            let s = &server[i + 11..];
            if let Some(j) = s.find('>') {
                k.session = Some(&s[..j]).filter(|s| !s.is_empty());
            }
        }
        k
    }
}

/// A key's value: up to the next `,` (or the end).
fn field_value(s: &str) -> &str {
    let end = s.find(',').unwrap_or(s.len());
    &s[..end]
}
