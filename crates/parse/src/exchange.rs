//! Login attempts in IIS W3C logs, with Exchange Server's doors recognised.
//!
//! Exchange's client access services log every HTTP request in the IIS W3C log
//! (`W3SVC1`); what a request means depends on its path:
//!
//! - **OWA forms logon**: the form posts to `/owa/auth.owa`, which answers `302` both
//!   when the password is right and when it is wrong; the redirect of a failure goes to
//!   `/owa/auth/logon.aspx?...&reason=2` (the logon page showing "user name or password
//!   incorrect"). The POST is held for a short while (by event time) per client
//!   address: the client's `reason=2` logon page makes it a failure, an authenticated
//!   OWA request (`cs-username` set) a success. A POST nothing followed (a script that
//!   does not follow redirects) becomes a failure with reason `other` when it expires.
//! - **ActiveSync** (`/Microsoft-Server-ActiveSync`), **EWS** (`/EWS/`), **MAPI over
//!   HTTP** (`/mapi/`), **RPC over HTTP** (`/rpc/`), **Autodiscover**, **OAB**, **ECP**
//!   and remote **PowerShell**: HTTP authentication on every request. A `401` with a
//!   user name is a failed login; a `401` without one is the server's challenge (or an
//!   NTLM handshake step) unless `sc-win32-status` says the logon failed; any other
//!   status with a user name is an authenticated request, a success.
//! - **Any other IIS site**: the same rule, reported as service `iis`.
//!
//! `sc-win32-status` gives the reason: 1326 (`ERROR_LOGON_FAILURE`) a bad password,
//! 1909 locked, 1331 disabled, 1330 and 1907 password expired, 1793 account expired,
//! 1327 account restriction (disabled here); Win32 error codes:
//! <https://learn.microsoft.com/windows/win32/debug/system-error-codes--1300-1699->.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use portcullis_core::{Event, EventTime, Origin, Outcome, Protocol, Reason, Service, address};

use crate::w3c::{self, Columns, Fields};

/// How long (event time) an OWA logon POST waits for the request that tells its outcome.
const OWA_WAIT_SECS: i64 = 60;
/// Most OWA logon POSTs held at once; beyond it the oldest is settled early.
const MAX_PENDING: usize = 65_536;

/// What a line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A directive (`#Fields:` and the others).
    Directive,
    /// A request line (whether or not it was a login).
    Request,
    /// A line that does not fit the current header, or whose date or time is unreadable.
    Malformed,
}

impl LineKind {
    /// A W3C-style line's record, or what the line is when it holds none: a directive
    /// (a `#Fields:` one handed to `fields` first) or a blank line. Shared by the IIS
    /// reader and Exchange's own protocol logs.
    pub(crate) fn record(line: &str, fields: impl FnOnce(&str)) -> Result<&str, LineKind> {
        match w3c::classify(line) {
            w3c::Line::Fields(f) => {
                fields(f);
                Err(LineKind::Directive)
            }
            w3c::Line::Directive => Err(LineKind::Directive),
            w3c::Line::Blank => Err(LineKind::Request),
            w3c::Line::Record(line) => Ok(line),
        }
    }
}

/// An OWA forms logon waiting for its outcome.
#[derive(Debug, Clone)]
struct Pending {
    event: Event,
    at: i64,
}

/// Reads one W3C stream.
#[derive(Debug)]
pub struct IisLog {
    columns: Columns,
    trusted_proxies: Vec<ipnet::IpNet>,
    pending: HashMap<IpAddr, Pending>,
    /// Addresses in the order their POST arrived (entries may be stale).
    order: VecDeque<(i64, IpAddr)>,
}

/// Which door a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// `POST /owa/auth.owa`.
    OwaLogon,
    /// `/owa/auth/logon.aspx` (and the rest of `/owa/auth/`): anonymous pages.
    OwaLogonPage,
    /// Any other OWA page: a session's requests.
    Owa,
    /// Exchange's per-request-authenticated services.
    Exchange,
    /// Not Exchange.
    Other,
}

fn door(method: Option<&str>, stem: &str) -> Door {
    let lower = |p: &str| {
        stem.len() >= p.len() && stem.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    if lower("/owa/") || stem.eq_ignore_ascii_case("/owa") {
        if lower("/owa/auth.owa") {
            return if method.is_some_and(|m| m.eq_ignore_ascii_case("POST")) {
                Door::OwaLogon
            } else {
                Door::OwaLogonPage
            };
        }
        if lower("/owa/auth/") {
            return Door::OwaLogonPage;
        }
        return Door::Owa;
    }
    const EXCHANGE: [&str; 8] = [
        "/microsoft-server-activesync",
        "/ews/",
        "/mapi/",
        "/rpc/",
        "/autodiscover/",
        "/oab/",
        "/ecp/",
        "/powershell",
    ];
    if EXCHANGE.iter().any(|p| lower(p)) {
        Door::Exchange
    } else {
        Door::Other
    }
}

/// The failure reason a Win32 status gives, if it is a logon failure.
fn win32_reason(code: Option<&str>) -> Option<Reason> {
    Some(match code? {
        "1326" => Reason::BadPassword,
        "1909" => Reason::Locked,
        "1331" | "1327" => Reason::Disabled,
        "1330" | "1907" | "1793" => Reason::Expired,
        _ => return None,
    })
}

impl IisLog {
    /// A reader with IIS's default columns until a `#Fields:` directive says otherwise.
    pub fn new(trusted_proxies: Vec<ipnet::IpNet>) -> Self {
        Self {
            columns: Columns::iis_default(),
            trusted_proxies,
            pending: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Reads one line, appending the events it completes.
    pub fn push(
        &mut self,
        line: &str,
        host: Option<&str>,
        origin: &Origin,
        out: &mut Vec<Event>,
    ) -> LineKind {
        let line = match LineKind::record(line, |f| self.columns = Columns::from_fields(f)) {
            Ok(line) => line,
            Err(kind) => return kind,
        };
        let mut f = Fields::default();
        let c = self.columns;
        let c = &c;
        if !f.split(line, c.count) {
            return LineKind::Malformed;
        }
        let instant = match (f.get(c.date), f.get(c.time)) {
            (Some(d), Some(t)) => match w3c::timestamp(d, t) {
                Some(i) => Some(i),
                None => return LineKind::Malformed,
            },
            _ => None,
        };
        let now = instant.map(|i| i.as_second());
        if let Some(now) = now {
            self.expire(now, out);
        }
        let Some(status) = f.get(c.status).and_then(|s| s.parse::<u16>().ok()) else {
            return LineKind::Request;
        };
        let stem = f.get(c.stem).unwrap_or("");
        let method = f.get(c.method);
        let user = f.get(c.username);
        let source = w3c::client_address(
            f.get(c.client_ip).and_then(address::parse),
            f.get(c.forwarded_for),
            &self.trusted_proxies,
        );
        let make = |service: Service, outcome: Outcome| {
            let mut e = Event::new(service, outcome);
            e.time = instant.map(EventTime::utc);
            e.protocol = Some(Protocol::Http);
            e.source = source;
            e.port = f.get(c.client_port).and_then(|p| p.parse().ok());
            e.user = user.map(|u| u.replace('+', " "));
            e.host = f.get(c.computer).or(host).map(str::to_owned);
            e.origin = origin.clone();
            e
        };
        let win32 = f.get(c.win32_status);
        match door(method, stem) {
            Door::OwaLogon => {
                let Some(a) = source else {
                    return LineKind::Request;
                };
                let e = make(Service::Exchange, Outcome::Failure(Reason::Other));
                self.hold(a, e, now.unwrap_or(0), out);
            }
            Door::OwaLogonPage => {
                let failed = f
                    .get(c.query)
                    .is_some_and(|q| q.split('&').any(|kv| kv == "reason=2"));
                if failed
                    && let Some(a) = source
                    && let Some(mut p) = self.pending.remove(&a)
                {
                    p.event.outcome = Outcome::Failure(Reason::BadPassword);
                    out.push(p.event);
                }
            }
            Door::Owa => {
                if user.is_some()
                    && status < 400
                    && let Some(a) = source
                    && let Some(mut p) = self.pending.remove(&a)
                {
                    p.event.outcome = Outcome::Success;
                    if p.event.user.is_none() {
                        p.event.user = user.map(|u| u.replace('+', " "));
                    }
                    out.push(p.event);
                }
            }
            d @ (Door::Exchange | Door::Other) => {
                let service = if d == Door::Exchange {
                    Service::Exchange
                } else {
                    Service::Iis
                };
                if status == 401 {
                    let reason = win32_reason(win32);
                    if user.is_some() || reason.is_some() {
                        out.push(make(
                            service,
                            Outcome::Failure(reason.unwrap_or(Reason::Other)),
                        ));
                    }
                } else if user.is_some() {
                    out.push(make(service, Outcome::Success));
                }
            }
        }
        LineKind::Request
    }

    /// Holds an OWA logon POST; a POST already held for the address is settled first.
    fn hold(&mut self, a: IpAddr, e: Event, at: i64, out: &mut Vec<Event>) {
        if let Some(old) = self.pending.remove(&a) {
            out.push(old.event);
        }
        while self.pending.len() >= MAX_PENDING {
            let Some((t, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&oldest).is_some_and(|p| p.at == t)
                && let Some(p) = self.pending.remove(&oldest)
            {
                out.push(p.event);
            }
        }
        self.pending.insert(a, Pending { event: e, at });
        self.order.push_back((at, a));
    }

    /// Settles the OWA logons nothing answered within the wait: failures, reason
    /// `other`.
    fn expire(&mut self, now: i64, out: &mut Vec<Event>) {
        while let Some(&(t, a)) = self.order.front() {
            if t > now - OWA_WAIT_SECS {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&a).is_some_and(|p| p.at == t)
                && let Some(p) = self.pending.remove(&a)
            {
                out.push(p.event);
            }
        }
        if self.order.len() > 4 * MAX_PENDING {
            // Stale entries of settled POSTs: drop them.
            let pending = &self.pending;
            self.order
                .retain(|(t, a)| pending.get(a).is_some_and(|p| p.at == *t));
        }
    }

    /// End of input: every held OWA logon is settled.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        let mut held: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        held.sort_by_key(|p| (p.at, p.event.origin.offset));
        out.extend(held.into_iter().map(|p| p.event));
        self.order.clear();
    }
}

#[cfg(test)]
mod tests;
