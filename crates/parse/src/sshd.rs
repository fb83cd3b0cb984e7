//! OpenSSH `sshd` / `sshd-session`: login attempts from sshd's log lines.
//!
//! sshd often logs one attempt on several lines: `Invalid user X` when the client names
//! an unknown account and then `Failed password for invalid user X`; a PAM module's
//! `authentication failure` and then sshd's `Failed password`. This module correlates
//! those lines by sshd pid (one pid serves one connection) so that one attempt counts
//! once, with a bounded table of connections: at most [`MAX_CONNS`] entries, and
//! attempts left open for more than two minutes of log time are emitted on their own.
//!
//! Connection-level lines (connects, disconnects, key-exchange failures of scanners)
//! are recognised but are not login attempts: Portcullis counts password guessing, not
//! port scanning.
//!
//! Usernames are attacker-controlled: the client can put ` from 1.2.3.4 port 22 ssh2`
//! into one. [`grammar`] splits such lines so that the address is always the one sshd
//! wrote, using what the connection announced earlier when it can.

mod grammar;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::{Ctx, Line, Verdict};
use grammar::{Msg, Peer, Who};

/// At most this many connections are tracked; the oldest is closed (its pending attempts
/// emitted) to make room.
pub const MAX_CONNS: usize = 65_536;

/// An attempt still pending after this much log time is emitted: sshd's own
/// `LoginGraceTime` is 120 s, so a connection cannot still be authenticating by then.
const PENDING_SECS: i64 = 120;

/// What a pending attempt is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `Invalid user`, `not allowed`, `ROOT LOGIN REFUSED`: the client named an account
    /// it cannot log in to. The first `Failed` line of the connection is the same
    /// attempt; if none follows, the probe itself is the attempt.
    Gate,
    /// A PAM module's `authentication failure`: sshd's `Failed` line for it follows, or
    /// another module succeeds and sshd logs `Accepted` (fail2ban gh-2070).
    Pam,
    /// sshd's own `error: PAM: …` verdict: the whole stack failed; a `Failed` line may
    /// follow for the same attempt, `Accepted` cannot undo it.
    PamError,
    /// `Failed publickey` for an existing account: clients offer every key they have, so
    /// this is only a failure if no key is accepted on the connection.
    Key,
    /// The MaxAuthTries cut-off when no failure was logged before it.
    Extra,
}

/// An attempt waiting for the line that completes, consumes or cancels it.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    /// The user the attempt named, for matching (also in `event.user`).
    user: Option<String>,
    /// The event as built at its own line (its time and origin).
    event: Event,
    /// True while the event has no source because the line did not name one.
    needs_peer: bool,
}

/// What is known about one sshd pid (one connection).
#[derive(Debug)]
struct Conn {
    /// Distinguishes this connection from earlier ones that had the same pid.
    serial: u64,
    /// The peer as sshd logged it, once a line named it.
    host: Option<String>,
    port: Option<u16>,
    /// The name announced by `Invalid user`/`not allowed`/`ROOT LOGIN REFUSED`, used to
    /// split later lines that repeat it and for their failure reason.
    user: Option<String>,
    reason: Reason,
    /// True once a failed attempt was logged (emitted or pending) for this connection.
    failed: bool,
    pending: Vec<Pending>,
    /// Event time of the latest line on this pid.
    last: Option<Timestamp>,
    /// True while the connection has an entry in the expiry queue.
    armed: bool,
}

impl Conn {
    fn new(serial: u64) -> Self {
        Self {
            serial,
            host: None,
            port: None,
            user: None,
            reason: Reason::UnknownAccount,
            failed: false,
            pending: Vec::new(),
            last: None,
            armed: false,
        }
    }

    /// Records the peer and completes attempts that were waiting for it.
    fn learn_peer(&mut self, peer: Option<Peer<'_>>) {
        let Some(peer) = peer else { return };
        if self.host.is_some() {
            return;
        }
        self.host = Some(peer.host.to_owned());
        self.port = peer.port;
        for p in self.pending.iter_mut().filter(|p| p.needs_peer) {
            set_peer(&mut p.event, Some(peer));
            p.needs_peer = false;
        }
    }

    fn peer(&self) -> Option<Peer<'_>> {
        self.host.as_deref().map(|host| Peer {
            host,
            port: self.port,
        })
    }

    fn push(&mut self, kind: Kind, user: Option<&str>, event: Event) {
        let needs_peer = event.source.is_none() && event.source_name.is_none();
        let mut p = Pending {
            kind,
            user: user.map(str::to_owned),
            event,
            needs_peer,
        };
        if needs_peer && let Some(peer) = self.peer() {
            set_peer(&mut p.event, Some(peer));
            p.needs_peer = false;
        }
        self.pending.push(p);
    }

    /// Removes the first pending attempt of `kind` that `pick` accepts.
    fn take(&mut self, pick: impl Fn(&Pending) -> bool) -> Option<Pending> {
        let i = self.pending.iter().position(pick)?;
        Some(self.pending.remove(i))
    }

    fn has(&self, kind: Kind) -> bool {
        self.pending.iter().any(|p| p.kind == kind)
    }

    fn drain_into(&mut self, out: &mut Vec<Event>) {
        out.extend(self.pending.drain(..).map(|p| p.event));
    }
}

/// The serial of a connection that cannot exist (see [`Sshd::conn`]).
fn serial_never_used() -> u64 {
    u64::MAX
}

/// Sets `source` (an address) or `source_name` (a host name) from what sshd logged.
fn set_peer(e: &mut Event, peer: Option<Peer<'_>>) {
    let Some(peer) = peer else { return };
    if let Some(ip) = address::parse(peer.host) {
        e.source = Some(ip);
        e.source_name = None;
    } else if address::is_host_name(peer.host) {
        e.source_name = Some(peer.host.to_owned());
    }
    e.port = peer.port.or(e.port);
}

/// A new sshd event for the current line.
fn event(ctx: &Ctx<'_>, outcome: Outcome, user: Option<&str>, peer: Option<Peer<'_>>) -> Event {
    let mut e = ctx.event(Service::Sshd, outcome);
    e.protocol = Some(Protocol::Ssh);
    e.user = user.map(str::to_owned);
    set_peer(&mut e, peer);
    e
}

/// Reads sshd lines into login events; see the module documentation.
#[derive(Debug)]
pub struct Sshd {
    conns: HashMap<u32, Conn>,
    /// Connections in creation order, for evicting the oldest; may hold stale entries.
    order: VecDeque<(u32, u64)>,
    /// (time, pid, serial) to look at once log time passes `time + PENDING_SECS`.
    expiry: VecDeque<(Timestamp, u32, u64)>,
    next_serial: u64,
    /// The latest event time seen: expiry follows the log's clock, never the wall clock.
    now: Option<Timestamp>,
    cap: usize,
}

impl Default for Sshd {
    fn default() -> Self {
        Self::with_capacity(MAX_CONNS)
    }
}

impl Sshd {
    /// A parser with an empty connection table.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_capacity(cap: usize) -> Self {
        Self {
            conns: HashMap::new(),
            order: VecDeque::new(),
            expiry: VecDeque::new(),
            next_serial: 0,
            now: None,
            cap: cap.max(1),
        }
    }

    /// One line whose program is sshd / sshd-session (the driver routes by program;
    /// `line.pid` is the sshd pid).
    pub fn parse(&mut self, line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
        let t = ctx.time.map(|t| t.instant);
        if let Some(t) = t {
            self.advance(t, out);
        }
        let known_user = line
            .pid
            .and_then(|p| self.conns.get(&p))
            .and_then(|c| c.user.as_deref());
        let Some(msg) = grammar::classify(&line.message, known_user) else {
            return Verdict::Unrecognised;
        };
        match line.pid {
            Some(pid) => self.with_pid(pid, t, msg, ctx, out),
            None => Self::alone(msg, ctx, out),
        }
    }

    /// End of input: pending attempts that were never closed become events.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        let mut conns: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        conns.sort_by_key(|c| c.serial);
        for mut c in conns {
            c.drain_into(out);
        }
        self.order.clear();
        self.expiry.clear();
    }

    /// A line without pid cannot be tied to others: each attempt stands alone.
    fn alone(msg: Msg<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
        let fail = |r| Outcome::Failure(r);
        match msg {
            Msg::Accepted { user, peer } => {
                out.push(event(ctx, Outcome::Success, Some(user), Some(peer)))
            }
            Msg::Failed { method, who, peer } => {
                let Some((user, peer, reason)) = resolve(who, peer, None) else {
                    return Verdict::Unrecognised;
                };
                // The `none` method is the client asking which methods exist; only
                // for an unknown account does it say anything (the probe).
                if method != "none" || reason != Reason::BadPassword {
                    out.push(event(ctx, fail(reason), user, Some(peer)));
                }
            }
            Msg::MaxAttempts { who, peer } => {
                let Some((user, peer, reason)) = resolve(who, peer, None) else {
                    return Verdict::Unrecognised;
                };
                out.push(event(ctx, fail(reason), user, Some(peer)));
            }
            Msg::InvalidUser { user, peer } => {
                out.push(event(
                    ctx,
                    fail(Reason::UnknownAccount),
                    Some(user),
                    Some(peer),
                ));
            }
            Msg::NotAllowed { user, peer, reason } => {
                out.push(event(ctx, fail(reason), Some(user), peer))
            }
            Msg::RootRefused { peer } => {
                out.push(event(ctx, fail(Reason::Disabled), Some("root"), Some(peer)))
            }
            Msg::PamError { user, peer, reason } => {
                out.push(event(ctx, fail(reason), Some(user), Some(peer)))
            }
            Msg::PamAuthFailure { user, peer } => {
                out.push(event(ctx, fail(Reason::BadPassword), user, peer))
            }
            Msg::TooMany { user, peer } => {
                out.push(event(ctx, fail(Reason::BadPassword), user, peer))
            }
            Msg::ClientAuthFail { peer } => {
                out.push(event(ctx, fail(Reason::BadPassword), None, Some(peer)))
            }
            Msg::Close { .. } | Msg::Connect { .. } | Msg::Noise => {}
        }
        Verdict::Recognised
    }

    fn with_pid(
        &mut self,
        pid: u32,
        t: Option<Timestamp>,
        msg: Msg<'_>,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) -> Verdict {
        let fail = |r| Outcome::Failure(r);
        match msg {
            Msg::Noise => {
                if let Some(c) = self.conns.get_mut(&pid) {
                    c.last = t.or(c.last);
                }
            }
            Msg::Connect { peer } => {
                // A new connection on a pid we know: the old one (pid reuse) is over.
                self.close(pid, out);
                self.conn(pid, t, out).learn_peer(Some(peer));
            }
            Msg::Close { peer } => {
                if let Some(c) = self.conns.get_mut(&pid) {
                    c.learn_peer(peer);
                    self.close(pid, out);
                }
            }
            Msg::Accepted { user, peer } => {
                let c = self.conn(pid, t, out);
                c.learn_peer(Some(peer));
                // The latest PAM failures for this user were overridden by another
                // module (pam_unix fails, pam_ldap succeeds: gh-2070) and rejected keys
                // were a client trying its keys in turn. Earlier failures, and those for
                // another user, were real attempts.
                while let Some(p) = c.pending.last()
                    && matches!(p.kind, Kind::Pam | Kind::Key)
                    && p.user.as_deref().is_none_or(|u| u == user)
                {
                    c.pending.pop();
                }
                c.pending
                    .retain(|p| !(p.kind == Kind::Key && p.user.as_deref() == Some(user)));
                c.drain_into(out);
                out.push(event(ctx, Outcome::Success, Some(user), Some(peer)));
            }
            Msg::Failed { method, who, peer } => {
                let c = self.conn(pid, t, out);
                let Some((user, peer, reason)) = resolve(who, peer, Some(c)) else {
                    return Verdict::Unrecognised;
                };
                c.learn_peer(Some(peer));
                let valid = matches!(who, Who::Valid(_));
                if method == "none" {
                    // Every client starts with `none` to learn the methods. For an
                    // unknown account it is the probe, when no `Invalid user` line said so.
                    if !valid && c.user.is_none() {
                        c.user = user.map(str::to_owned);
                        c.reason = reason;
                        c.push(Kind::Gate, user, event(ctx, fail(reason), user, Some(peer)));
                    }
                    return Verdict::Recognised;
                }
                c.failed = true;
                if valid && method == "publickey" {
                    c.push(Kind::Key, user, event(ctx, fail(reason), user, Some(peer)));
                    return Verdict::Recognised;
                }
                // This line is the attempt the earlier gate and PAM lines announced.
                c.take(|p| p.kind == Kind::Gate);
                c.take(|p| {
                    matches!(p.kind, Kind::Pam | Kind::PamError)
                        && (p.user.is_none() || user.is_none() || p.user.as_deref() == user)
                });
                out.push(event(ctx, fail(reason), user, Some(peer)));
            }
            Msg::MaxAttempts { who, peer } => {
                let c = self.conn(pid, t, out);
                let Some((user, peer, reason)) = resolve(who, peer, Some(c)) else {
                    return Verdict::Unrecognised;
                };
                c.learn_peer(Some(peer));
                // The attempts before the cut-off were logged already, each on its own
                // line; only when none was (publickey failures below INFO) is the
                // cut-off itself the evidence of an attempt.
                if !c.failed {
                    c.failed = true;
                    c.take(|p| p.kind == Kind::Gate);
                    out.push(event(ctx, fail(reason), user, Some(peer)));
                }
            }
            Msg::InvalidUser { user, peer } => {
                self.gate(pid, t, user, Some(peer), Reason::UnknownAccount, ctx, out)
            }
            Msg::NotAllowed { user, peer, reason } => {
                self.gate(pid, t, user, peer, reason, ctx, out)
            }
            Msg::RootRefused { peer } => {
                self.gate(pid, t, "root", Some(peer), Reason::Disabled, ctx, out)
            }
            Msg::PamError { user, peer, reason } => {
                let c = self.conn(pid, t, out);
                c.learn_peer(Some(peer));
                c.failed = true;
                c.push(
                    Kind::PamError,
                    Some(user),
                    event(ctx, fail(reason), Some(user), Some(peer)),
                );
            }
            Msg::PamAuthFailure { user, peer } => {
                let c = self.conn(pid, t, out);
                c.learn_peer(peer);
                c.failed = true;
                c.push(
                    Kind::Pam,
                    user,
                    event(ctx, fail(Reason::BadPassword), user, peer),
                );
            }
            Msg::TooMany { user, peer } => {
                let c = self.conn(pid, t, out);
                c.learn_peer(peer);
                if !c.failed && !c.has(Kind::Gate) {
                    c.failed = true;
                    let e = event(ctx, fail(Reason::BadPassword), user, c.peer());
                    if c.host.is_none() {
                        // Old sshd names no peer here; the close line that follows
                        // does. Keep the connection open until then.
                        c.push(Kind::Extra, user, e);
                        return Verdict::Recognised;
                    }
                    out.push(e);
                }
                self.close(pid, out);
            }
            Msg::ClientAuthFail { peer } => {
                self.client_gave_up(pid, t, peer, Reason::BadPassword, ctx, out)
            }
        }
        Verdict::Recognised
    }

    /// `Invalid user`, `not allowed`, `ROOT LOGIN REFUSED`: the connection names an
    /// account it cannot use; the attempt waits for the `Failed` line that repeats it.
    #[allow(clippy::too_many_arguments)]
    fn gate(
        &mut self,
        pid: u32,
        t: Option<Timestamp>,
        user: &str,
        peer: Option<Peer<'_>>,
        reason: Reason,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) {
        let c = self.conn(pid, t, out);
        c.learn_peer(peer);
        // A second announcement on one connection: the first one stands on its own.
        if let Some(old) = c.take(|p| p.kind == Kind::Gate) {
            out.push(old.event);
        }
        c.user = Some(user.to_owned());
        c.reason = reason;
        c.push(
            Kind::Gate,
            Some(user),
            event(ctx, Outcome::Failure(reason), Some(user), peer),
        );
    }

    /// The client disconnected saying its authentication failed (or it had no method
    /// left). If sshd logged the failures itself, this adds nothing.
    fn client_gave_up(
        &mut self,
        pid: u32,
        t: Option<Timestamp>,
        peer: Peer<'_>,
        reason: Reason,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) {
        let c = self.conn(pid, t, out);
        c.learn_peer(Some(peer));
        if !c.failed && !c.has(Kind::Gate) {
            let user = c.user.clone();
            out.push(event(
                ctx,
                Outcome::Failure(reason),
                user.as_deref(),
                Some(peer),
            ));
        }
        self.close(pid, out);
    }

    /// The connection on `pid` ended: what it left pending were attempts.
    fn close(&mut self, pid: u32, out: &mut Vec<Event>) {
        if let Some(mut c) = self.conns.remove(&pid) {
            c.drain_into(out);
        }
    }

    /// The connection for `pid`, created if new (evicting the oldest when full).
    fn conn(&mut self, pid: u32, t: Option<Timestamp>, out: &mut Vec<Event>) -> &mut Conn {
        if !self.conns.contains_key(&pid) {
            while self.conns.len() >= self.cap {
                let Some((old, serial)) = self.order.pop_front() else {
                    break;
                };
                if self.conns.get(&old).is_some_and(|c| c.serial == serial) {
                    self.close(old, out);
                }
            }
            let serial = self.next_serial;
            self.next_serial += 1;
            self.order.push_back((pid, serial));
            if self.order.len() > 4 * self.cap {
                let conns = &self.conns;
                self.order
                    .retain(|(p, s)| conns.get(p).is_some_and(|c| c.serial == *s));
            }
            self.conns.insert(pid, Conn::new(serial));
        }
        let mut arm = None;
        if let Some(t) = t
            && let Some(c) = self.conns.get_mut(&pid)
        {
            c.last = Some(t);
            if !c.armed {
                c.armed = true;
                arm = Some((t, c.serial));
            }
        }
        if let Some((t, serial)) = arm {
            self.expiry.push_back((t, pid, serial));
            if self.expiry.len() > 4 * self.cap {
                let conns = &self.conns;
                self.expiry
                    .retain(|(_, p, s)| conns.get(p).is_some_and(|c| c.serial == *s));
            }
        }
        // Present: inserted above when missing.
        self.conns
            .entry(pid)
            .or_insert_with(|| Conn::new(serial_never_used()))
    }

    /// Log time moved to `t`: emit attempts pending for longer than [`PENDING_SECS`]
    /// and forget connections idle that long.
    fn advance(&mut self, t: Timestamp, out: &mut Vec<Event>) {
        let now = self.now.map_or(t, |n| n.max(t));
        self.now = Some(now);
        let Ok(cutoff) = now.checked_sub(SignedDuration::from_secs(PENDING_SECS)) else {
            return;
        };
        while let Some(&(at, pid, serial)) = self.expiry.front() {
            if at >= cutoff {
                break;
            }
            self.expiry.pop_front();
            let Some(c) = self.conns.get_mut(&pid) else {
                continue;
            };
            if c.serial != serial {
                continue;
            }
            let mut keep = Vec::new();
            for p in c.pending.drain(..) {
                match p.event.time {
                    Some(et) if et.instant >= cutoff => keep.push(p),
                    _ => out.push(p.event),
                }
            }
            c.pending = keep;
            let next = c
                .pending
                .iter()
                .filter_map(|p| p.event.time.map(|x| x.instant))
                .min();
            match (next, c.last) {
                (Some(n), _) => self.expiry.push_back((n, pid, serial)),
                (None, Some(l)) if l >= cutoff => self.expiry.push_back((l, pid, serial)),
                _ => {
                    // Idle for the whole window with nothing pending: forget it.
                    self.close(pid, out);
                }
            }
        }
    }

    #[cfg(test)]
    fn table_len(&self) -> usize {
        self.conns.len()
    }
}

/// The user, peer and failure reason of a `Failed`/`maximum attempts` line, using what
/// the connection announced earlier to split a client-chosen name exactly.
fn resolve<'a>(
    who: Who<'a>,
    peer: Option<Peer<'a>>,
    conn: Option<&Conn>,
) -> Option<(Option<&'a str>, Peer<'a>, Reason)> {
    let announced = conn.and_then(|c| c.user.as_deref());
    let reason_for = |u: Option<&str>, default| match (conn, announced) {
        (Some(c), Some(a)) if u.is_none_or(|u| u == a) => c.reason,
        _ => default,
    };
    match who {
        Who::Valid(u) => {
            let reason = match (conn, announced) {
                // `ROOT LOGIN REFUSED` then `Failed password for root`.
                (Some(c), Some(a)) if a == u => c.reason,
                _ => Reason::BadPassword,
            };
            Some((Some(u), peer?, reason))
        }
        Who::Invalid(text) => {
            let (u, p) =
                grammar::split_invalid(text, announced, conn.and_then(|c| c.host.as_deref()))?;
            Some((Some(u), p, reason_for(Some(u), Reason::UnknownAccount)))
        }
        Who::Unnamed => Some((None, peer?, reason_for(None, Reason::UnknownAccount))),
    }
}
