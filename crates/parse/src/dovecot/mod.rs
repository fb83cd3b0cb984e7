//! Dovecot (2.2, 2.3, 2.4): login-process and auth-process lines.
//!
//! Dovecot reports one login attempt up to three times: the auth process (`sql(...)`,
//! `pam(...)`, 2.4 `auth(...)<session>`) logs each failure with its precise reason,
//! PAM's `pam_unix(dovecot:auth)` may log it too, and the login process (`imap-login`,
//! `pop3-login`, ...) logs the connection's total when it closes (`auth failed, 3
//! attempts`). Auth-side lines emit their events at once and are remembered in a
//! bounded [`correlate`] table; the login line then adds only the attempts not yet
//! counted, so one attempt counts once.
//!
//! The same lines reach us in several envelopes (syslog `dovecot: imap-login: ...`,
//! Dovecot's own log file with the process as program, no recognisable program at
//! all), so the process name is looked for in the program and, failing that, at the
//! start of the message.
//!
//! User names are attacker-controlled and logged raw: they may contain `, rip=`,
//! `,1.2.3.4)`, `>`, anything. Addresses are therefore taken from positions the user
//! cannot reach: the last `rip=` of a login line (server fields follow the user), the
//! right-hand fields of an auth prefix, and for `pam_unix` the one split of the line
//! that is consistent with PAM's format.

mod auth;
mod correlate;
mod login;
#[cfg(test)]
pub(crate) mod tests;

use crate::text::find;
use portcullis_core::{Event, Outcome, Protocol, Reason, Service};

use crate::{Ctx, Line, Verdict};
use auth::{
    AuthClass, classify_auth, cut_password, pam_unix_fields, parse_auth_prefix, times_suffix,
};
use correlate::{Probe, Reporter, Table};
use login::{LoginKeys, LoginKind, classify_login, is_login_noise, split_keys};

/// Extra seconds allowed around a login line's `in S secs` when matching auth lines
/// without a session id.
const WINDOW_SLACK: i64 = 5;
/// Window used when the login line does not say how long the connection lasted.
const DEFAULT_WINDOW: i64 = 60;
/// How far apart PAM's own line and Dovecot's `pam(...)` line may be (PAM's fail delay
/// sits between them).
const PAM_PAIR_WINDOW: i64 = 10;

/// Dovecot parser with its correlation state; one per input stream.
#[derive(Debug, Default)]
pub struct Dovecot {
    table: Table,
}

/// Log level words Dovecot puts before a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Debug,
    Info,
    Other,
}

impl Dovecot {
    /// A parser with an empty correlation table.
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    fn with_cap(cap: usize) -> Self {
        Self {
            table: Table::with_cap(cap),
        }
    }

    /// Reads one line routed to Dovecot, appending any events to `out`.
    ///
    /// Returns [`Verdict::Unrecognised`] for lines this parser does not know, so that
    /// the driver can count auth-looking lines nobody understood.
    pub fn parse(&mut self, line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
        let secs = ctx.time.map(|t| t.instant.as_second());
        self.table.tick(secs);
        let program = line.program.as_deref();
        // `dovecot` is the master process wrapping the real process name in the message.
        let mut process = program.filter(|p| !(*p == "dovecot" || p.starts_with("dovecot[")));
        let mut body: &str = &line.message;
        loop {
            if let Some(rest) = body.strip_prefix("dovecot: ") {
                body = rest;
                continue;
            }
            if process.is_none() {
                if let Some((p, rest)) = split_process(body) {
                    process = Some(p);
                    body = rest;
                    continue;
                }
            }
            break;
        }
        let (mut level, mut body) = strip_level(body);
        // `conn unix:auth-worker (pid=..,uid=..): auth-worker<55>: ` (2.3 worker requests).
        if let Some(rest) = strip_worker_conn(body) {
            body = rest;
            let (l, b) = strip_level(body);
            level = level.or(l);
            body = b;
        }
        if let Some(proto) = process.and_then(login_protocol) {
            return self.login(proto, body, ctx, secs, out);
        }
        if process.is_some_and(|p| !is_auth_process(p)) {
            return Verdict::Unrecognised;
        }
        if let Some(rest) = body.strip_prefix("pam_unix(dovecot:auth): ") {
            return self.pam_unix(rest, ctx, secs, out);
        }
        self.auth(body, level, ctx, secs, out)
    }

    /// Ends the stream. Auth-side events are emitted as they are read, so nothing is
    /// pending; the correlation table is dropped.
    pub fn flush(&mut self, _out: &mut Vec<Event>) {
        self.table.clear();
    }

    /// A login-process line: `Disconnected (auth failed, 2 attempts): user=<..>, ...`.
    fn login(
        &mut self,
        proto: Protocol,
        body: &str,
        ctx: &Ctx<'_>,
        secs: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Verdict {
        let Some((msg, keys)) = split_keys(body) else {
            return if is_login_noise(body) {
                Verdict::Recognised
            } else {
                Verdict::Unrecognised
            };
        };
        let kind = classify_login(msg);
        let kind = match kind {
            LoginKind::Unknown => {
                return if is_login_noise(msg) {
                    Verdict::Recognised
                } else {
                    Verdict::Unrecognised
                };
            }
            LoginKind::NotAttempt => return Verdict::Recognised,
            k => k,
        };
        let k = LoginKeys::parse(keys);
        let mut outcome = match kind {
            LoginKind::Success => Outcome::Success,
            LoginKind::Failed { .. } => Outcome::Failure(Reason::BadPassword),
            LoginKind::Failure(r) => Outcome::Failure(r),
            LoginKind::AbortedIfMethod => {
                if !k.has_method {
                    return Verdict::Recognised;
                }
                Outcome::Failure(Reason::Aborted)
            }
            LoginKind::Unknown | LoginKind::NotAttempt => return Verdict::Recognised,
        };
        let mut attempts = 1;
        if let LoginKind::Failed {
            attempts: n,
            secs: window,
        } = kind
        {
            let user_lower = k.user.map(str::to_lowercase);
            let probe = Probe {
                session: k.session,
                addr: k.addr,
                user: user_lower.as_deref(),
                time: secs,
                window: window.map_or(DEFAULT_WINDOW, i64::from) + WINDOW_SLACK,
            };
            let counted = self.table.take(&probe);
            if counted >= n {
                return Verdict::Recognised;
            }
            attempts = n - counted;
            outcome = Outcome::Failure(Reason::BadPassword);
        }
        if outcome == Outcome::Success {
            if let Some(s) = k.session {
                self.table.forget_session(s);
            }
        }
        let mut e = ctx.event(Service::Dovecot, outcome);
        e.protocol = Some(proto);
        e.source = k.addr;
        e.port = k.port;
        e.user = k.user.filter(|u| !u.is_empty()).map(str::to_owned);
        e.session = k.session.map(str::to_owned);
        e.attempts = attempts;
        out.push(e);
        Verdict::Recognised
    }

    /// `pam_unix(dovecot:auth): authentication failure; ... ruser=U rhost=A[  user=U]`.
    fn pam_unix(
        &mut self,
        rest: &str,
        ctx: &Ctx<'_>,
        secs: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Verdict {
        let Some(fields) = rest.strip_prefix("authentication failure; ") else {
            // `check pass; user unknown` and friends come with an `authentication
            // failure` line for the same attempt.
            return Verdict::Recognised;
        };
        let Some((user, addr)) = pam_unix_fields(fields) else {
            return Verdict::Unrecognised;
        };
        let mut e = ctx.event(Service::Dovecot, Outcome::Failure(Reason::BadPassword));
        e.source = Some(addr);
        let user = (!user.is_empty()).then(|| user.to_owned());
        if let Some(u) = &user {
            self.table
                .insert(secs, None, addr, &u.to_lowercase(), 1, Reporter::PamModule);
        }
        e.user = user;
        out.push(e);
        Verdict::Recognised
    }

    /// An auth-process line: `passdb(user,addr[,<session>]): text` or 2.4
    /// `auth(user,addr,sasl:mech)<session>: Info: passdb: text`.
    fn auth(
        &mut self,
        body: &str,
        level: Option<Level>,
        ctx: &Ctx<'_>,
        secs: Option<i64>,
        out: &mut Vec<Event>,
    ) -> Verdict {
        let Some(p) = parse_auth_prefix(body) else {
            return Verdict::Unrecognised;
        };
        let (tail_level, tail) = strip_level(p.tail);
        // Debug lines echo queries and fields that may repeat the user's text; failures
        // are logged at info level or above, so debug lines are never trusted.
        if level == Some(Level::Debug) || tail_level == Some(Level::Debug) {
            return Verdict::Recognised;
        }
        let core = cut_password(tail);
        let reason = match classify_auth(core) {
            AuthClass::Failure(r) => r,
            AuthClass::NotAttempt => return Verdict::Recognised,
            AuthClass::Unknown => {
                let lvl = level.or(tail_level);
                return if lvl.is_some_and(|l| l == Level::Other) {
                    Verdict::Recognised
                } else {
                    Verdict::Unrecognised
                };
            }
        };
        let attempts = times_suffix(core).unwrap_or(1);
        let user = (!p.user.is_empty() && p.user != "?").then_some(p.user);
        let user_lower = user.map(str::to_lowercase);
        if p.name == "pam" {
            let probe = Probe {
                session: p.session,
                addr: Some(p.addr),
                user: user_lower.as_deref(),
                time: secs,
                window: PAM_PAIR_WINDOW,
            };
            if self.table.claim_pam_module(&probe) {
                return Verdict::Recognised;
            }
        }
        if user_lower.is_some() || p.session.is_some() {
            self.table.insert(
                secs,
                p.session,
                p.addr,
                user_lower.as_deref().unwrap_or(""),
                attempts,
                Reporter::Dovecot,
            );
        }
        let mut e = ctx.event(Service::Dovecot, Outcome::Failure(reason));
        e.source = Some(p.addr);
        e.user = user.map(str::to_owned);
        e.session = p.session.map(str::to_owned);
        e.attempts = attempts;
        out.push(e);
        Verdict::Recognised
    }
}

/// The process named at the start of a message (`imap-login: ...`, `auth-worker(304):
/// ...`, `auth(default): ...`), if the first `: ` ends a plausible process name. A 2.4
/// `auth(user,addr,sasl:x)<id>:` prefix is not a process name (it holds a comma) and is
/// left for [`parse_auth_prefix`].
fn split_process(msg: &str) -> Option<(&str, &str)> {
    let i = find!(msg.as_bytes(), b": ")?;
    let name = &msg[..i];
    is_process_name(name).then(|| (name, &msg[i + 2..]))
}

fn is_process_name(name: &str) -> bool {
    let b = name.as_bytes();
    let base_len = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
        .unwrap_or(b.len());
    if base_len == 0 {
        return false;
    }
    let rest = &b[base_len..];
    match rest {
        [] => true,
        [b'(', inner @ .., b')'] | [b'<', inner @ .., b'>'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        }
        _ => false,
    }
}

fn strip_level(s: &str) -> (Option<Level>, &str) {
    for (word, level) in [
        ("Info: ", Level::Info),
        ("Debug: ", Level::Debug),
        ("Error: ", Level::Other),
        ("Warning: ", Level::Other),
        ("Fatal: ", Level::Other),
        ("Panic: ", Level::Other),
    ] {
        if let Some(rest) = s.strip_prefix(word) {
            return (Some(level), rest);
        }
    }
    (None, s)
}

/// Strips `conn unix:auth-worker (uid=143): auth-worker<13247>: ` (server text).
fn strip_worker_conn(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("conn ")?;
    let i = find!(rest.as_bytes(), b"): ")?;
    let rest = &rest[i + 3..];
    let (name, rest) = split_process(rest)?;
    name.starts_with("auth-worker").then_some(rest)
}

fn login_protocol(process: &str) -> Option<Protocol> {
    let name = process.strip_suffix("-login")?;
    Some(match name {
        "imap" => Protocol::Imap,
        "pop3" => Protocol::Pop3,
        "submission" => Protocol::Smtp,
        "managesieve" => Protocol::ManageSieve,
        "lmtp" => Protocol::Lmtp,
        _ => return None,
    })
}

fn is_auth_process(p: &str) -> bool {
    p.starts_with("auth") || p.starts_with("dovecot-auth")
}
