//! Auth-process lines: `passdb(user,addr[,<session>]): text`, 2.4
//! `auth(user,addr,sasl:mech)<session>: Info: passdb: text`, and PAM's own
//! `pam_unix(dovecot:auth)` field list. The user field is the client's text, so each
//! prefix is parsed from the side the user cannot reach.

use crate::text::{contains_ci, find, find_iter};
use std::net::IpAddr;

use portcullis_core::{Reason, address};

/// An auth-process line's prefix, parsed from the right.
#[derive(Debug)]
pub(super) struct AuthPrefix<'a> {
    pub(super) name: &'a str,
    pub(super) user: &'a str,
    pub(super) addr: IpAddr,
    pub(super) session: Option<&'a str>,
    pub(super) tail: &'a str,
}

/// How far left of a candidate `)` the right-hand fields (address, `master`,
/// `<session>`, `sasl:mech`) can reach; bounds the work on hostile lines.
const FIELDS_REACH: usize = 256;

/// The passdb drivers (and 2.4's generic `auth`) whose prefixes carry auth verdicts.
const PASSDB_NAMES: &[&str] = &[
    "auth",
    "passwd-file",
    "passwd",
    "pam",
    "sql",
    "ldap",
    "shadow",
    "checkpassword",
    "static",
    "bsdauth",
    "vpopmail",
    "lua",
    "oauth2",
    "dict",
    "krb5",
    "sia",
];

/// Parses `name(user,addr[,master][,<session>])[<session>]: tail`.
///
/// The user may contain `)`, `,` and `: `, so every `)` followed by `: ` or `<id>: ` is
/// a candidate end; the last candidate whose right-hand fields hold an address wins,
/// because the text after the real prefix is the server's. The one exception, a logged
/// password (`(given password: ...)`), always follows the real prefix, so a candidate
/// whose fields contain it is past the real end.
pub(super) fn parse_auth_prefix(body: &str) -> Option<AuthPrefix<'_>> {
    let open = body.find('(')?;
    let name = &body[..open];
    // Only auth-side prefixes: a mail process (`imap(user)<pid><session>:`) or anything
    // else with a parenthesised argument is not an auth verdict.
    if !PASSDB_NAMES.contains(&name) {
        return None;
    }
    let inner = &body[open + 1..];
    let ib = inner.as_bytes();
    let mut best = None;
    for j in memchr::memchr_iter(b')', ib) {
        let rest = &inner[j + 1..];
        let (session2, tail) = if let Some(t) = rest.strip_prefix(": ") {
            (None, t)
        } else if let Some(r) = rest.strip_prefix('<') {
            let Some(end) = r.find(">: ") else { continue };
            let id = &r[..end];
            if id.is_empty() || !id.bytes().all(is_session_byte) {
                continue;
            }
            (Some(id), &r[end + 3..])
        } else {
            continue;
        };
        let args = &inner[..j];
        if find!(args.as_bytes(), b"given password").is_some() {
            break;
        }
        if let Some((user, addr, session)) = split_args(args) {
            best = Some(AuthPrefix {
                name,
                user,
                addr,
                session: session2.or(session),
                tail,
            });
        }
    }
    best
}

fn is_session_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// `user,addr[,master][,<session>][,sasl:mech]` from the right.
fn split_args(args: &str) -> Option<(&str, IpAddr, Option<&str>)> {
    let floor = args.len().saturating_sub(FIELDS_REACH);
    let mut rest = args;
    let mut session = None;
    for _ in 0..5 {
        let comma = rest.as_bytes()[floor.min(rest.len())..]
            .iter()
            .rposition(|&c| c == b',')
            .map(|i| i + floor.min(rest.len()))?;
        let field = &rest[comma + 1..];
        let head = &rest[..comma];
        if let Some(id) = field.strip_prefix('<').and_then(|f| f.strip_suffix('>')) {
            if session.is_some() || !id.bytes().all(is_session_byte) {
                return None;
            }
            session = Some(id).filter(|s| !s.is_empty());
        } else if field.is_empty() || field == "master" || field.starts_with("sasl:") {
            // Empty trailing field (`ldap(dog,1.2.3.4,)`), master login, 2.4 mechanism.
        } else {
            return address::parse(field).map(|a| (head, a, session));
        }
        rest = head;
    }
    None
}

/// The server's text before a logged password (`(given password: ...)`, `(SHA1 of
/// given password: ...)`): the password is the client's text and is never classified.
pub(super) fn cut_password(tail: &str) -> &str {
    match find!(tail.as_bytes(), b"given password") {
        Some(i) => {
            let head = &tail[..i];
            head.rfind('(').map_or(head, |p| &head[..p]).trim_end()
        }
        None => tail,
    }
}

/// `...: 2 Time(s)` (a summariser's repeat count).
pub(super) fn times_suffix(core: &str) -> Option<u32> {
    let s = core.trim_end().strip_suffix(" Time(s)")?;
    // By bytes: the character before the count may be several bytes long, and the
    // byte after its last one is where the digits begin.
    let start = s
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    s[start..].parse().ok().filter(|&n: &u32| n > 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthClass {
    Failure(Reason),
    NotAttempt,
    Unknown,
}

pub(super) fn classify_auth(core: &str) -> AuthClass {
    // Server-side faults: the client's password was never judged.
    for p in [
        "cannot retrieve authentication info",
        "system error",
        "module is unknown",
        "critical error",
        "query failed",
        "connection lost",
        "internal error",
        "timed out",
        "temporary failure",
    ] {
        if contains_ci(core, p) {
            return AuthClass::NotAttempt;
        }
    }
    for (p, r) in [
        ("expired", Reason::Expired),
        ("no longer valid; new one required", Reason::Expired),
        ("new authentication token required", Reason::Expired),
        ("disabled", Reason::Disabled),
        ("locked", Reason::Locked),
        ("pam_acct_mgmt() failed", Reason::Disabled),
        ("unknown user", Reason::UnknownAccount),
        ("user not known", Reason::UnknownAccount),
        ("user not found", Reason::UnknownAccount),
        ("no such user", Reason::UnknownAccount),
        ("password mismatch", Reason::BadPassword),
        ("invalid credentials", Reason::BadPassword),
        ("pam_authenticate() failed", Reason::BadPassword),
        ("authentication failure", Reason::BadPassword),
        ("login failed", Reason::BadPassword),
    ] {
        if contains_ci(core, p) {
            return AuthClass::Failure(r);
        }
    }
    AuthClass::Unknown
}

/// Splits PAM's `logname= uid=0 euid=0 tty=dovecot ruser=R rhost=H[  user=U]`.
///
/// Dovecot sets PAM's ruser and user to the same login name, which the client chose and
/// which may contain ` rhost=` and `  user=`. Of all the ways to cut the line at a
/// ` rhost=`, only the real one leaves a tail that is empty or exactly `  user=R` (or,
/// with an empty ruser, `  user=...`). If the consistent cuts disagree on the address,
/// nothing is trusted.
pub(super) fn pam_unix_fields(fields: &str) -> Option<(&str, IpAddr)> {
    let i = find!(fields.as_bytes(), b"ruser=")?;
    if i > 0 && fields.as_bytes()[i - 1] != b' ' {
        return None;
    }
    let after = &fields[i + 6..];
    let mut found: Option<(&str, IpAddr)> = None;
    for p in find_iter!(after.as_bytes(), b" rhost=") {
        let ruser = &after[..p];
        let rest = &after[p + 7..];
        let end = rest.find(' ').unwrap_or(rest.len());
        let Some(addr) = address::parse(&rest[..end]) else {
            continue;
        };
        let tail = &rest[end..];
        let user_tail = tail
            .strip_prefix("  user=")
            .or_else(|| tail.strip_prefix(" user="));
        let consistent = tail.trim().is_empty()
            || user_tail.is_some_and(|u| u.trim_end() == ruser)
            || (ruser.is_empty() && user_tail.is_some());
        if !consistent {
            continue;
        }
        let user = if ruser.is_empty() {
            user_tail.unwrap_or("").trim_end()
        } else {
            ruser
        };
        match found {
            Some((_, a)) if a != addr => return None,
            Some(_) => {}
            None => found = Some((user, addr)),
        }
    }
    found
}
