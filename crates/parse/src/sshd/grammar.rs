//! The shapes of sshd's messages, taken apart without any connection state.
//!
//! Everything here is pure string work on one message. Where a shape embeds a username
//! the client chose (`invalid user X`, PAM's `ruser=`), the split is left to helpers that
//! the stateful layer calls with what it already knows about the connection, because the
//! text alone can be ambiguous on purpose.

use crate::text::{find_iter, rfind_iter};
use portcullis_core::Reason;

/// A peer as sshd logged it: the host text (an address or, with `UseDNS`, a name) and
/// the port when the version logs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peer<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
}

/// Who a `Failed`/`maximum authentication attempts` line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who<'a> {
    /// An existing account: one token, parsed already.
    Valid(&'a str),
    /// `invalid user X from …`: the text after `invalid user `, still joined to the
    /// peer because X may contain anything; split with [`split_invalid`].
    Invalid(&'a str),
    /// Solaris `<invalid username>`: no name logged.
    Unnamed,
}

/// One sshd message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Msg<'a> {
    /// `Accepted METHOD for USER from ADDR port N ssh2`.
    Accepted { user: &'a str, peer: Peer<'a> },
    /// `Failed METHOD for …`; for a valid user the peer is parsed.
    Failed {
        method: &'a str,
        who: Who<'a>,
        peer: Option<Peer<'a>>,
    },
    /// `maximum authentication attempts exceeded for …` (OpenSSH ≥ 6.8).
    MaxAttempts {
        who: Who<'a>,
        peer: Option<Peer<'a>>,
    },
    /// `Invalid user X from A[ port N]` / `Illegal user …`.
    InvalidUser { user: &'a str, peer: Peer<'a> },
    /// `User X [from A ]not allowed because …`.
    NotAllowed {
        user: &'a str,
        peer: Option<Peer<'a>>,
        reason: Reason,
    },
    /// `ROOT LOGIN REFUSED FROM A[ port N]`.
    RootRefused { peer: Peer<'a> },
    /// `error: PAM: <failure> for [illegal user ]X from H[ via V]` (sshd's own PAM
    /// verdict, FreeBSD/macOS).
    PamError {
        user: &'a str,
        peer: Peer<'a>,
        reason: Reason,
    },
    /// `pam_X(sshd:auth): authentication failure; … ruser=U rhost=H[  user=U]`.
    PamAuthFailure {
        user: Option<&'a str>,
        peer: Option<Peer<'a>>,
    },
    /// `Disconnecting…: Too many authentication failures…`: MaxAuthTries reached.
    TooMany {
        user: Option<&'a str>,
        peer: Option<Peer<'a>>,
    },
    /// `Received disconnect from A…: 3: …Auth fail`: the client says its login failed.
    ClientAuthFail { peer: Peer<'a> },
    /// The connection ended (closed, reset, disconnected, timed out).
    Close { peer: Option<Peer<'a>> },
    /// `Connection from A port N on …`: a new connection on this pid.
    Connect { peer: Peer<'a> },
    /// A line sshd writes that is not a login attempt.
    Noise,
}

/// Removes the wrappers some systems put around sshd's text: Solaris `[ID n fac.pri] `,
/// a `kernel:[ 1.2]:` stamp (seen in journal exports) and `error: `/`fatal: `.
fn strip_prefixes(mut m: &str) -> &str {
    if let Some(rest) = m.strip_prefix("[ID ")
        && let Some(i) = rest.find("] ")
    {
        m = &rest[i + 2..];
    }
    if let Some(rest) = m.strip_prefix("kernel:") {
        let mut rest = rest.trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix('[')
            && let Some(i) = r.find(']')
        {
            rest = &r[i + 1..];
        }
        m = rest
            .strip_prefix(':')
            .unwrap_or(rest)
            .trim_start_matches(' ');
    }
    for p in ["error: ", "fatal: "] {
        if let Some(rest) = m.strip_prefix(p) {
            m = rest;
        }
    }
    m
}

/// Removes trailing blanks and the `[preauth]`/`[net]` tag of the privilege-separated
/// child: it says which process wrote the line, nothing about the attempt.
fn strip_suffixes(m: &str) -> &str {
    let m = m.trim_end_matches([' ', '\r', '\n', '\t']);
    let m = m
        .strip_suffix(" [preauth]")
        .or_else(|| m.strip_suffix(" [net]"))
        .unwrap_or(m);
    m.trim_end_matches(' ')
}

/// Parses a port number; `None` for anything but 1–5 digits that fit a u16.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses ` from HOST[ port N][ ssh2|ssh1]` at the start of `s` and returns the peer and
/// whatever follows (empty, `: info`, or anything else: the caller decides).
pub(super) fn from_tail(s: &str) -> Option<(Peer<'_>, &str)> {
    let s = s.strip_prefix(" from ")?;
    let end = s.find(' ').unwrap_or(s.len());
    let host = &s[..end];
    if host.is_empty() {
        return None;
    }
    let mut rest = &s[end..];
    let mut p = None;
    if let Some(r) = rest.strip_prefix(" port ") {
        let e = r.find([' ', ':']).unwrap_or(r.len());
        p = Some(port(&r[..e])?);
        rest = &r[e..];
    }
    for proto in [" ssh2", " ssh1"] {
        if let Some(r) = rest.strip_prefix(proto)
            && (r.is_empty() || r.starts_with(':') || r.starts_with(' '))
        {
            rest = r;
            break;
        }
    }
    Some((Peer { host, port: p }, rest))
}

/// True if `rest` (what follows a peer) ends an auth line: nothing, or `: info`.
fn ends_auth_line(rest: &str) -> bool {
    rest.is_empty() || rest.starts_with(": ") || rest == ":"
}

/// True if sshd could have logged `host` as a peer: an address or a host name.
pub(super) fn plausible_host(host: &str) -> bool {
    portcullis_core::address::parse(host).is_some() || portcullis_core::address::is_host_name(host)
}

/// Splits `X from A[ port N][ ssh2][: info]` where X is a client-chosen name.
///
/// With the name the connection already announced (`Invalid user X`), exactly that
/// prefix is stripped. Otherwise every ` from ` is a candidate that must be followed by
/// the end of the line or `: `; a candidate equal to the address the connection is
/// known to come from wins, else the first one (the name comes before the real peer, and
/// the `: info` part after it may carry injected text too).
pub(super) fn split_invalid<'a>(
    text: &'a str,
    known_user: Option<&str>,
    known_host: Option<&str>,
) -> Option<(&'a str, Peer<'a>)> {
    if let Some(u) = known_user
        && let Some(rest) = text.strip_prefix(u)
        && let Some((peer, tail)) = from_tail(rest)
        && ends_auth_line(tail)
        && plausible_host(peer.host)
    {
        return Some((&text[..u.len()], peer));
    }
    let mut first = None;
    for i in find_iter!(text.as_bytes(), b" from ") {
        let Some((peer, tail)) = from_tail(&text[i..]) else {
            continue;
        };
        if !ends_auth_line(tail) || !plausible_host(peer.host) {
            continue;
        }
        let cand = (&text[..i], peer);
        if known_host.is_some_and(|h| h == peer.host) {
            return Some(cand);
        }
        if first.is_none() {
            first = Some(cand);
        }
    }
    first
}

/// Splits `X from A[ port N]` where the peer ends the line: the last such ` from ` wins,
/// since nothing the client sends can follow sshd's own peer text.
fn split_last_from(text: &str) -> Option<(&str, Peer<'_>)> {
    for i in rfind_iter!(text.as_bytes(), b" from ") {
        if let Some((peer, tail)) = from_tail(&text[i..])
            && tail.is_empty()
            && plausible_host(peer.host)
        {
            return Some((&text[..i], peer));
        }
    }
    None
}

/// `… HOST[ port N]` at the end of a line (closes): the peer is the last one or two
/// tokens. Returns the text before the peer too.
fn trailing_peer(text: &str) -> Option<(&str, Peer<'_>)> {
    let (head, last) = text.rsplit_once(' ').unwrap_or(("", text));
    if let Some(p) = port(last)
        && let Some(h) = head.strip_suffix(" port")
    {
        let (before, host) = h.rsplit_once(' ').unwrap_or(("", h));
        return plausible_host(host).then_some((
            before,
            Peer {
                host,
                port: Some(p),
            },
        ));
    }
    plausible_host(last).then_some((
        head,
        Peer {
            host: last,
            port: None,
        },
    ))
}

/// Parses the `Failed`/`maximum attempts` tail after `for `.
fn who_and_peer(s: &str) -> Option<(Who<'_>, Option<Peer<'_>>)> {
    if let Some(rest) = s.strip_prefix("invalid user ") {
        return Some((Who::Invalid(rest), None));
    }
    if let Some(rest) = s.strip_prefix("<invalid username>") {
        let (peer, _) = from_tail(rest)?;
        return Some((Who::Unnamed, Some(peer)));
    }
    // A valid account name is one token: sshd only logs it this way for accounts that
    // exist, so the client cannot put spaces into it.
    let end = s.find(' ').unwrap_or(s.len());
    let user = &s[..end];
    if let Some((peer, tail)) = from_tail(&s[end..])
        && ends_auth_line(tail)
    {
        return Some((Who::Valid(user), Some(peer)));
    }
    // Not the standard shape (a relay that rewrote it, e.g. `for user admin from`):
    // fall back to the careful split used for client-chosen names.
    let (user, peer) = split_invalid(s, None, None)?;
    Some((Who::Valid(user), Some(peer)))
}

/// `ruser=U rhost=H[  user=U]` of pam_unix and friends.
///
/// Only `ruser` and `user` carry client text (the attempted name). The split must give
/// a bare-token rhost followed by the end, or by `  user=W` where W equals U (or U is
/// empty, as older sshd left PAM_RUSER unset); the first such split wins.
fn pam_fields(s: &str) -> (Option<&str>, Option<&str>) {
    let Some(i) = s.find(" ruser=") else {
        // No ruser field at all: take a plain rhost token if there is one.
        let host = s
            .rfind(" rhost=")
            .map(|i| &s[i + 7..])
            .map(|h| h.split(' ').next().unwrap_or(""));
        return (None, host.filter(|h| !h.is_empty()));
    };
    let rest = &s[i + 7..];
    for j in find_iter!(rest.as_bytes(), b" rhost=") {
        let ruser = &rest[..j];
        let after = &rest[j + 7..];
        let hend = after.find(' ').unwrap_or(after.len());
        let host = &after[..hend];
        let tail = &after[hend..];
        let user = if tail.is_empty() {
            None
        } else if let Some(w) = tail
            .strip_prefix("  user=")
            .or_else(|| tail.strip_prefix(" user="))
        {
            if !ruser.is_empty() && w != ruser {
                continue;
            }
            Some(w)
        } else {
            continue;
        };
        let name = user
            .filter(|u| !u.is_empty())
            .or(Some(ruser).filter(|u| !u.is_empty()));
        return (name, Some(host).filter(|h| !h.is_empty()));
    }
    (None, None)
}

/// `Received disconnect from A[ port N]:CODE: TEXT`.
fn received_disconnect(s: &str) -> Msg<'_> {
    let end = s.find(' ').unwrap_or(s.len());
    let mut host = &s[..end];
    let mut rest = &s[end..];
    let mut p = None;
    if let Some(r) = rest.strip_prefix(" port ") {
        let e = r.find(':').unwrap_or(r.len());
        p = port(&r[..e]);
        rest = &r[e..];
    } else if let Some(h) = host.strip_suffix(':') {
        host = h;
        rest = &s[end - 1..];
    }
    if !plausible_host(host) {
        return Msg::Close { peer: None };
    }
    let peer = Peer { host, port: p };
    let rest = rest
        .strip_prefix(':')
        .unwrap_or(rest)
        .trim_start_matches(' ');
    let (code, text) = rest.split_once(':').unwrap_or((rest, ""));
    let text = text.trim_start_matches(' ');
    match code {
        "3" if text.ends_with("Auth fail") => Msg::ClientAuthFail { peer },
        // Code 14 (`No [supported ]authentication methods available`) means the client
        // had nothing it could try (typically a password-guessing bot meeting a server
        // that takes keys only): no credentials were tried, so it is an ordinary close,
        // and key failures held for the connection come out as failures then.
        _ => Msg::Close { peer: Some(peer) },
    }
}

/// `Disconnecting[ invalid|authenticating user X] A port N: REASON` and the old
/// `Disconnecting: REASON`.
fn disconnecting<'a>(s: &'a str, known_user: Option<&str>) -> Msg<'a> {
    if let Some(reason) = s.strip_prefix(": ") {
        return if let Some(r) = reason.strip_prefix("Too many authentication failures") {
            // Old form: `… failures for USER`, a valid account name (one token).
            let user = r
                .strip_prefix(" for ")
                .filter(|u| !u.is_empty() && !u.contains(' '));
            Msg::TooMany { user, peer: None }
        } else {
            Msg::Close { peer: None }
        };
    }
    let s = s.trim_start_matches(' ');
    // Drop the `<kind> user X ` part: exactly X when known, else let the peer search
    // below skip over it.
    let mut body = s;
    for kind in ["invalid user ", "authenticating user ", "user "] {
        if let Some(r) = s.strip_prefix(kind) {
            body = match known_user.and_then(|u| r.strip_prefix(u)) {
                Some(r2) if r2.starts_with(' ') => &r2[1..],
                _ => r,
            };
            break;
        }
    }
    // The peer is the first `HOST port N: ` whose host is plausible: the reason after
    // it may quote client text, the name before it is skipped when known.
    let mut found = None;
    for i in find_iter!(body.as_bytes(), b" port ") {
        let r = &body[i + 6..];
        let Some(e) = r.find(':') else { continue };
        let Some(p) = port(&r[..e]) else { continue };
        let head = &body[..i];
        let host = head.rsplit(' ').next().unwrap_or(head);
        if plausible_host(host) {
            found = Some((
                Peer {
                    host,
                    port: Some(p),
                },
                r[e..].trim_start_matches([':', ' ']),
            ));
            break;
        }
    }
    match found {
        Some((peer, reason)) if reason.starts_with("Too many authentication failures") => {
            Msg::TooMany {
                user: None,
                peer: Some(peer),
            }
        }
        Some((peer, _)) => Msg::Close { peer: Some(peer) },
        None => Msg::Close { peer: None },
    }
}

/// `User X from A not allowed because WHY` / `User X not allowed because WHY`.
fn not_allowed(s: &str) -> Option<Msg<'_>> {
    let i = s.rfind(" not allowed because ")?;
    let why = &s[i + 21..];
    let head = &s[..i];
    let reason = if why.starts_with("account is locked") {
        Reason::Locked
    } else {
        Reason::Disabled
    };
    match split_last_from(head) {
        Some((user, peer)) => Some(Msg::NotAllowed {
            user,
            peer: Some(peer),
            reason,
        }),
        None => Some(Msg::NotAllowed {
            user: head,
            peer: None,
            reason,
        }),
    }
}

/// `PAM: <what> for [illegal user ]X from H[ via V]`.
fn pam_error(s: &str) -> Option<Msg<'_>> {
    const SHAPES: [(&str, Reason); 5] = [
        ("Authentication failure for ", Reason::BadPassword),
        ("authentication failure for ", Reason::BadPassword),
        ("Authentication error for ", Reason::BadPassword),
        ("authentication error for ", Reason::BadPassword),
        (
            "User not known to the underlying authentication module for ",
            Reason::UnknownAccount,
        ),
    ];
    let found = SHAPES
        .iter()
        .find_map(|(p, r)| s.strip_prefix(p).map(|rest| (rest, *r)));
    let (mut rest, mut reason) = found?;
    if let Some(r) = rest.strip_prefix("illegal user ") {
        rest = r;
        reason = Reason::UnknownAccount;
    }
    // ` via V` names the server's own interface; it is one token at the very end.
    if let Some(i) = rest.rfind(" via ")
        && !rest[i + 5..].contains(' ')
    {
        rest = &rest[..i];
    }
    let (user, peer) = split_last_from(rest)?;
    Some(Msg::PamError { user, peer, reason })
}

/// Classifies one sshd message. `known_user` is the name this connection announced in
/// an earlier `Invalid user`/`not allowed` line, used to split later lines exactly.
/// `None` means the line is not one sshd writes that we know.
pub(super) fn classify<'a>(message: &'a str, known_user: Option<&str>) -> Option<Msg<'a>> {
    let m = strip_suffixes(strip_prefixes(message));
    let b = m.as_bytes();
    let first = *b.first()?;
    match first {
        b'A' => {
            if let Some(r) = m.strip_prefix("Accepted ") {
                let (_method, r) = r.split_once(" for ")?;
                let end = r.find(' ').unwrap_or(r.len());
                let (peer, tail) = from_tail(&r[end..])?;
                if !ends_auth_line(tail) {
                    return None;
                }
                return Some(Msg::Accepted {
                    user: &r[..end],
                    peer,
                });
            }
            if m.starts_with("Address ") && m.contains(" maps to ") {
                return Some(Msg::Noise);
            }
        }
        b'F' => {
            if let Some(r) = m.strip_prefix("Failed ") {
                let (method, r) = r.split_once(" for ")?;
                if method.contains(' ') {
                    return None;
                }
                let (who, peer) = who_and_peer(r)?;
                return Some(Msg::Failed { method, who, peer });
            }
        }
        b'I' => {
            if let Some(r) = m
                .strip_prefix("Invalid user ")
                .or_else(|| m.strip_prefix("Illegal user "))
            {
                let (user, peer) = split_last_from(r)?;
                return Some(Msg::InvalidUser { user, peer });
            }
        }
        b'U' => {
            if let Some(r) = m.strip_prefix("User ")
                && let Some(msg) = not_allowed(r)
            {
                return Some(msg);
            }
            if m.starts_with("Unable to negotiate") || m.starts_with("User child is on pid") {
                return Some(Msg::Noise);
            }
        }
        b'R' => {
            if let Some(r) = m.strip_prefix("ROOT LOGIN REFUSED FROM ") {
                let end = r.find(' ').unwrap_or(r.len());
                let host = &r[..end];
                let p = r[end..]
                    .strip_prefix(" port ")
                    .and_then(|x| port(x.split(' ').next().unwrap_or(x)));
                if !plausible_host(host) {
                    return None;
                }
                return Some(Msg::RootRefused {
                    peer: Peer { host, port: p },
                });
            }
            if let Some(r) = m.strip_prefix("Received disconnect from ") {
                return Some(received_disconnect(r));
            }
            if m.starts_with("Read from socket failed")
                || m.starts_with("Read error from remote host")
                || m.starts_with("Received signal")
                || m.starts_with("Received SIGHUP")
            {
                return Some(Msg::Close { peer: None });
            }
        }
        b'P' => {
            if let Some(r) = m.strip_prefix("PAM: ") {
                return pam_error(r).or(Some(Msg::Noise));
            }
            if m.starts_with("Postponed ")
                || m.starts_with("Partial ")
                || m.starts_with("PAM ")
                || m.starts_with("Protocol major versions differ")
            {
                return Some(Msg::Noise);
            }
        }
        b'C' => {
            if let Some(r) = m.strip_prefix("Connection from ") {
                let r = r.split_once(" on ").map_or(r, |(a, _)| a);
                let (_, peer) = trailing_peer(r)?;
                return Some(Msg::Connect { peer });
            }
            for p in ["Connection closed by ", "Connection reset by "] {
                if let Some(r) = m.strip_prefix(p) {
                    return Some(Msg::Close {
                        peer: trailing_peer(r).map(|(_, p)| p),
                    });
                }
            }
            if m.starts_with("Close session:") || m.starts_with("Corrupted MAC") {
                return Some(Msg::Noise);
            }
        }
        b'D' => {
            if let Some(r) = m.strip_prefix("Disconnected from ") {
                return Some(Msg::Close {
                    peer: trailing_peer(r).map(|(_, p)| p),
                });
            }
            if let Some(r) = m.strip_prefix("Disconnecting") {
                return Some(disconnecting(r, known_user));
            }
            if m.starts_with("Did not receive identification string") {
                return Some(Msg::Close { peer: None });
            }
        }
        b'T' => {
            if m.starts_with("Timeout before authentication") {
                return Some(Msg::Close { peer: None });
            }
            if m.starts_with("Transferred: ") {
                return Some(Msg::Noise);
            }
        }
        b'm' => {
            if let Some(r) = m.strip_prefix("maximum authentication attempts exceeded for ") {
                let (who, peer) = who_and_peer(r)?;
                return Some(Msg::MaxAttempts { who, peer });
            }
        }
        b'p' if m.starts_with("pam_") || m.starts_with("pam(") => {
            // pam_unix(sshd:auth), pam_sss(sshd:auth), …: only the module's
            // authentication failure is an attempt; session and account lines,
            // `check pass; user unknown` and the like are bookkeeping.
            if let Some(i) = m.find(":auth): authentication failure;") {
                let (user, host) = pam_fields(&m[i..]);
                let peer = host
                    .filter(|h| plausible_host(h))
                    .map(|host| Peer { host, port: None });
                return Some(Msg::PamAuthFailure { user, peer });
            }
            return Some(Msg::Noise);
        }
        _ => {}
    }
    const NOISE: [&str; 22] = [
        "kex_exchange_identification:",
        "kex_protocol_error",
        "banner exchange:",
        "Bad protocol version identification",
        "ssh_dispatch_run_fatal:",
        "input_userauth_request:",
        "SSH: Server;Ltype:",
        "no matching ",
        "reverse mapping checking",
        "refused connect from ",
        "Server listening on ",
        "Starting session:",
        "session opened for",
        "session closed for",
        "Exiting on signal",
        "Nasty PTR record",
        "drop connection #",
        "beginning MaxStartups",
        "exited MaxStartups",
        "srclimit_penalise",
        "Could not load host key",
        "Changed root directory",
    ];
    if NOISE.iter().any(|p| m.starts_with(p)) {
        return Some(Msg::Noise);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_fields_resist_injection() {
        let (u, h) = pam_fields(" ruser=rhost=1.2.3.4 rhost=192.0.2.10");
        assert_eq!((u, h), (Some("rhost=1.2.3.4"), Some("192.0.2.10")));
        let (u, h) = pam_fields(" ruser= rhost=192.0.2.112  user=root");
        assert_eq!((u, h), (Some("root"), Some("192.0.2.112")));
        let (u, h) = pam_fields(" ruser=x rhost=9.9.9.9 rhost=1.2.3.4");
        assert_eq!((u, h), (Some("x rhost=9.9.9.9"), Some("1.2.3.4")));
        // ruser and user both carry the same attacker text.
        let n = "x rhost=9.9.9.9";
        let line = format!(" ruser={n} rhost=1.2.3.4  user={n}");
        let (u, h) = pam_fields(&line);
        assert_eq!((u, h), (Some(n), Some("1.2.3.4")));
        // Only user= set (old sshd), carrying a fake rhost.
        let (u, h) = pam_fields(" ruser= rhost=1.2.3.4  user=x rhost=9.9.9.9");
        assert_eq!((u, h), (Some("x rhost=9.9.9.9"), Some("1.2.3.4")));
    }

    #[test]
    fn trailing_peers() {
        assert_eq!(
            trailing_peer("authenticating user test 127.0.0.1 port 12345 192.0.2.11 port 46039"),
            Some((
                "authenticating user test 127.0.0.1 port 12345",
                Peer {
                    host: "192.0.2.11",
                    port: Some(46039)
                }
            ))
        );
        assert_eq!(
            trailing_peer("192.0.2.5").map(|x| x.1.host),
            Some("192.0.2.5")
        );
    }
}
