//! Exchange's own SMTP Receive protocol log: the SMTP AUTH outcomes of its Receive
//! connectors (client submission on 587, the default frontend on 25).
//!
//! The log is a CSV file with W3C-style directives
//! (<https://learn.microsoft.com/exchange/mail-flow/connectors/protocol-logging>):
//!
//! ```text
//! #Software: Microsoft Exchange Server
//! #Version: 15.0.0.0
//! #Log-type: SMTP Receive Protocol Log
//! #Date: 2024-06-23T09:00:00.000Z
//! #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context
//! ```
//!
//! `date-time` is UTC (`yyyy-mm-ddThh:mm:ss.fffZ`); `session-id` is shared by every
//! line of one SMTP session; `remote-endpoint` is the client as `address:port`
//! (`[2001:db8::7]:51234` for IPv6); `event` is one character: `+` connect, `-`
//! disconnect, `>` sent to the client, `<` received from it, `*` information; `data`
//! is the command, the reply or the information, `context` says more. A field with a
//! comma or a quote is quoted, with `""` for a quote.
//!
//! An attempt is the client's `AUTH` command (`<,AUTH LOGIN`) and the server's reply to
//! it: `235 2.7.0 Authentication successful` a success, `535 5.7.3 Authentication
//! unsuccessful` (535 is RFC 4954's "authentication credentials invalid") a
//! `bad_password` failure. Exchange names the user only once the login succeeded, in
//! an information line (`*,CONTOSO\jsmith,authenticated`) before the 235; a failure
//! carries the client's address and no user name, because the log does not hold one
//! (the credentials it masks are all there is).
//!
//! Sessions with an `AUTH` awaiting its reply are held per `session-id`, at most
//! [`MAX_SESSIONS`]; a session's entry goes at its disconnect line, and the oldest go
//! first when the cap is reached. A reply with no `AUTH` seen in its session (a file
//! joined in the middle) still counts.
//!
//! Exchange's POP3 and IMAP4 protocol logs are read by [`crate::exchange_popimap`]. Other
//! Exchange logs (SMTP Send, message tracking, connectivity) carry no login outcome;
//! their lines are skipped.

use std::collections::{HashMap, VecDeque};

use portcullis_core::{Event, Origin, Outcome, Protocol, Reason, Service};

use crate::exchange::LineKind;
use crate::jsonlog::rfc3339;

/// Sessions with an `AUTH` awaiting its reply held at once.
pub const MAX_SESSIONS: usize = 65_536;

/// Which kind of Exchange log a file is, from its `#Software:` and `#Log-type:`
/// directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogKind {
    /// IIS (the default: any W3C file that says nothing else).
    #[default]
    Iis,
    /// Exchange's SMTP Receive protocol log.
    SmtpReceive,
    /// Exchange's POP3 or IMAP4 protocol log ([`crate::exchange_popimap`]).
    PopImap,
    /// Another Exchange log: nothing in it is read.
    OtherExchange,
}

impl LogKind {
    /// The kind a directive line announces, if it announces one.
    pub fn from_directive(line: &str) -> Option<LogKind> {
        let d = line.strip_prefix('#')?;
        if let Some(v) = d.strip_prefix("Software:") {
            let v = v.trim();
            return Some(if v.starts_with("Microsoft Exchange Server") {
                LogKind::OtherExchange
            } else {
                LogKind::Iis
            });
        }
        if let Some(v) = d.strip_prefix("Log-type:") {
            let v = v.trim();
            return Some(if v.eq_ignore_ascii_case("SMTP Receive Protocol Log") {
                LogKind::SmtpReceive
            } else if v.eq_ignore_ascii_case("POP3 Protocol Log")
                || v.eq_ignore_ascii_case("IMAP4 Protocol Log")
            {
                LogKind::PopImap
            } else {
                LogKind::OtherExchange
            });
        }
        // The POP3 and IMAP4 back ends' logs may start at their `#Fields:`: their
        // columns (`cIp`, `command`) are theirs alone.
        if let Some(v) = d.strip_prefix("Fields:") {
            return crate::exchange_popimap::is_popimap_fields(v).then_some(LogKind::PopImap);
        }
        None
    }
}

/// Where the fields are, from `#Fields:`.
#[derive(Debug, Clone, Copy)]
struct Columns {
    count: usize,
    time: Option<usize>,
    session: Option<usize>,
    remote: Option<usize>,
    event: Option<usize>,
    data: Option<usize>,
    context: Option<usize>,
}

/// The documented field order, used until a `#Fields:` line is seen.
const DEFAULT_FIELDS: &str = "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";

impl Columns {
    fn from_fields(fields: &str) -> Self {
        let (count, [time, session, remote, event, data, context]) = field_positions(
            fields,
            [
                "date-time",
                "session-id",
                "remote-endpoint",
                "event",
                "data",
                "context",
            ],
        );
        Columns {
            count,
            time,
            session,
            remote,
            event,
            data,
            context,
        }
    }
}

/// How many fields a protocol log's comma-separated `#Fields:` line names, and where
/// each of `names` (lower case) is among them, its case aside; the last wins if one
/// is named twice.
pub(crate) fn field_positions<const N: usize>(
    fields: &str,
    names: [&str; N],
) -> (usize, [Option<usize>; N]) {
    let mut count = 0;
    let mut at = [None; N];
    for (i, name) in fields.trim().split(',').enumerate() {
        count = i + 1;
        let name = name.trim().to_ascii_lowercase();
        if let Some(k) = names.iter().position(|n| *n == name) {
            at[k] = Some(i);
        }
    }
    (count, at)
}

/// Per-session state of a protocol log, keyed by its session id, at most
/// [`MAX_SESSIONS`] at once: the oldest entry goes first when the cap is reached.
#[derive(Debug)]
pub(crate) struct Held<V> {
    entries: HashMap<String, (V, u64)>,
    /// Insertion order, for eviction; stale pairs (replaced or removed entries) are
    /// skipped when they come up, and trimmed at twice the cap.
    order: VecDeque<(u64, String)>,
    next: u64,
}

impl<V> Default for Held<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }
}

impl<V> Held<V> {
    /// Holds `value` for `session`, replacing what it had.
    pub(crate) fn insert(&mut self, session: &str, value: V) {
        self.next += 1;
        let stamp = self.next;
        self.entries.insert(session.to_owned(), (value, stamp));
        self.order.push_back((stamp, session.to_owned()));
        while self.entries.len() > MAX_SESSIONS || self.order.len() > 2 * MAX_SESSIONS {
            let Some((stamp, id)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&id).is_some_and(|(_, s)| *s == stamp) {
                self.entries.remove(&id);
            }
        }
    }

    pub(crate) fn get_mut(&mut self, session: &str) -> Option<&mut V> {
        self.entries.get_mut(session).map(|(v, _)| v)
    }

    pub(crate) fn get(&self, session: &str) -> Option<&V> {
        self.entries.get(session).map(|(v, _)| v)
    }

    pub(crate) fn remove(&mut self, session: &str) -> Option<V> {
        self.entries.remove(session).map(|(v, _)| v)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Reads one SMTP Receive protocol log.
#[derive(Debug)]
pub struct SmtpReceiveLog {
    columns: Columns,
    /// Sessions with an `AUTH` awaiting its reply, with the user an information line
    /// named as authenticated.
    sessions: Held<Option<String>>,
}

impl Default for SmtpReceiveLog {
    fn default() -> Self {
        Self {
            columns: Columns::from_fields(DEFAULT_FIELDS),
            sessions: Held::default(),
        }
    }
}

/// The most fields a line may have (the log has nine).
const MAX_FIELDS: usize = 32;

impl SmtpReceiveLog {
    /// Reads one line (a directive or a CSV record), appending the event it completes.
    pub fn push(&mut self, line: &str, origin: &Origin, out: &mut Vec<Event>) -> LineKind {
        let line = match LineKind::record(line, |f| self.columns = Columns::from_fields(f)) {
            Ok(line) => line,
            Err(kind) => return kind,
        };
        let c = self.columns;
        let Some(f) = split_csv(line).filter(|f| f.len() == c.count) else {
            return LineKind::Malformed;
        };
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).map(String::as_str);
        let (Some(session), Some(event)) = (get(c.session), get(c.event)) else {
            return LineKind::Malformed;
        };
        let data = get(c.data).unwrap_or("");
        match event {
            "<" if is_auth_command(data) => {
                self.sessions.insert(session, None);
            }
            "*" if get(c.context).is_some_and(|x| x.eq_ignore_ascii_case("authenticated")) => {
                if let Some(user) = self.sessions.get_mut(session) {
                    *user = Some(data.to_owned()).filter(|u| !u.is_empty());
                }
            }
            ">" if data.starts_with("235 ") || data.starts_with("535 ") => {
                let Some(time) = get(c.time).and_then(rfc3339) else {
                    return LineKind::Malformed;
                };
                let user = self.sessions.remove(session).flatten();
                let success = data.starts_with("235 ");
                let outcome = if success {
                    Outcome::Success
                } else {
                    Outcome::Failure(Reason::BadPassword)
                };
                let mut e = Event::new(Service::Exchange, outcome);
                e.protocol = Some(Protocol::Smtp);
                e.time = Some(time);
                if let Some((addr, port)) = get(c.remote).and_then(endpoint) {
                    e.source = Some(addr);
                    e.port = Some(port).filter(|p| *p != 0);
                }
                // The name is the server's only once it accepted the login.
                e.user = if success { user } else { None };
                e.session = Some(session.to_owned());
                e.origin = origin.clone();
                out.push(e);
            }
            "-" => {
                self.sessions.remove(session);
            }
            _ => {}
        }
        LineKind::Request
    }

    /// Sessions held now.
    pub fn held(&self) -> usize {
        self.sessions.len()
    }
}

/// `AUTH LOGIN`, `AUTH PLAIN …`, `AUTH NTLM`, `AUTH GSSAPI`, any case.
fn is_auth_command(data: &str) -> bool {
    data.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("AUTH "))
        || data.eq_ignore_ascii_case("AUTH")
}

/// `203.0.113.7:51234` or `[2001:db8::7]:51234` → address and port.
pub(crate) fn endpoint(text: &str) -> Option<(std::net::IpAddr, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':').unwrap_or("0"))
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let addr = portcullis_core::address::parse(host)?;
    Some((addr, port.parse().ok()?))
}

/// Splits a CSV line: fields separated by commas, a quoted field (`"a, ""b"""`) may
/// hold commas and doubled quotes. `None` for an unterminated quote or too many fields.
pub(crate) fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::with_capacity(9);
    let mut chars = line.chars().peekable();
    loop {
        if fields.len() >= MAX_FIELDS {
            return None;
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(',') => {}
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Some(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests;
