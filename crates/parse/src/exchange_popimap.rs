//! Exchange's POP3 and IMAP4 protocol logs: the logins of its POP3 and IMAP4 services.
//!
//! Exchange 2013 and later write one CSV line per client command, with W3C-style
//! directives (Microsoft, "Protocol logging for POP3 and IMAP4"; the field names as the
//! files carry them):
//!
//! ```text
//! #Software: Microsoft Exchange Server
//! #Log-type: IMAP4 Protocol Log
//! #Fields: dateTime,sessionId,seqNumber,sIp,cIp,user,duration,rqsize,rpsize,command,parameters,context
//! ```
//!
//! `dateTime` is UTC (`2025-11-03T01:00:00.008Z`); `sessionId` is shared by every line
//! of one connection; `sIp` and `cIp` are the server's and the client's `address:port`;
//! `user` is the account once the session is logged in (empty before); `command` is the
//! client's command in lower case, `parameters` its arguments with the password masked
//! (`login,frank@contoso.test *****`), and `context` holds the server's answer as
//! `R=…`, quoted when it has spaces, then other `;`-separated items
//! (`R=OK;Msg="Proxy:EXCH01.contoso.test:1993:SSL;ProxySuccess"`,
//! `R="a2 NO LOGIN failed."`). Columns are found by name, so files with more or fewer
//! of them (`rqsize`, `rpsize`, a trailing `puid`) read the same.
//!
//! Microsoft documents the fields but not the form of the answer; what is read here
//! follows the logs as administrators' tools and published samples show them, and the
//! services' own replies: IMAP's tagged `OK`/`NO`/`BAD` (RFC 9051 section 7.1) with
//! Exchange's `NO LOGIN failed.` and `NO AUTHENTICATE failed.`, POP3's `+OK`/`-ERR`
//! (RFC 1939) with Exchange's `-ERR Logon failure: unknown user name or bad password.`
//!
//! An attempt is a login command and its answer on the same line: IMAP `login` and
//! `authenticate`, POP3 `pass`, `auth` and `apop`.
//! - `OK` (bare, as Exchange logs a success, or tagged) and `+OK` are successes.
//! - `NO` and `-ERR` answers that say the login failed (`failed`, `Logon failure`) are
//!   `bad_password` failures: Exchange does not tell a wrong password from an unknown
//!   name. Other refusals (`NO Server Unavailable.`, a `BAD` command) judged no password
//!   and are no attempt.
//! - The account is the `user` column when Exchange filled it, else the name the client
//!   gave: the first word of `login`'s parameters, or the name of the session's POP3
//!   `user` command (held per session, at most [`MAX_SESSIONS`], dropped at
//!   `CloseSession`). `authenticate` and `auth` failures carry no name: the mechanism's
//!   exchange is not logged.
//!
//! **Front end and back end.** Clients connect to the front end (ports 993/143 and
//! 995/110), which logs the client's address and proxies the session to a mailbox
//! server's back end (1993 and 1995), whose log (`IMAP4BE…`, `POP3BE…`) names the front
//! end as its client. Lines whose server port is 1993 or 1995 are therefore skipped: the
//! same login is in the front end's log with the real address.

use portcullis_core::{Event, Origin, Outcome, Protocol, Reason, Service};

use crate::exchange::LineKind;
pub use crate::exchange_smtp::MAX_SESSIONS;
use crate::exchange_smtp::{Held, endpoint, field_positions, split_csv};
use crate::jsonlog::rfc3339;
use crate::text::contains_ci;

/// Where the fields are, from `#Fields:`.
#[derive(Debug, Clone, Copy)]
struct Columns {
    count: usize,
    time: Option<usize>,
    session: Option<usize>,
    server: Option<usize>,
    client: Option<usize>,
    user: Option<usize>,
    command: Option<usize>,
    parameters: Option<usize>,
    context: Option<usize>,
}

/// The field order of Exchange 2013 and later, used until a `#Fields:` line is seen.
const DEFAULT_FIELDS: &str =
    "dateTime,sessionId,seqNumber,sIp,cIp,user,duration,rqsize,rpsize,command,parameters,context";

/// Whether a `#Fields:` value is a POP3 or IMAP4 protocol log's.
pub fn is_popimap_fields(fields: &str) -> bool {
    let c = Columns::from_fields(fields);
    c.client.is_some() && c.command.is_some() && c.context.is_some()
}

impl Columns {
    fn from_fields(fields: &str) -> Self {
        let (
            count,
            [
                time,
                session,
                server,
                client,
                user,
                command,
                parameters,
                context,
            ],
        ) = field_positions(
            fields,
            [
                "datetime",
                "sessionid",
                "sip",
                "cip",
                "user",
                "command",
                "parameters",
                "context",
            ],
        );
        Columns {
            count,
            time,
            session,
            server,
            client,
            user,
            command,
            parameters,
            context,
        }
    }
}

/// Reads one POP3 or IMAP4 protocol log.
#[derive(Debug)]
pub struct PopImapLog {
    columns: Columns,
    /// The name each POP3 session gave with `user`, for its `pass`.
    names: Held<String>,
}

impl Default for PopImapLog {
    fn default() -> Self {
        Self {
            columns: Columns::from_fields(DEFAULT_FIELDS),
            names: Held::default(),
        }
    }
}

/// The back ends' ports: their client is the front end, not the user.
const BACK_END_PORTS: [u16; 2] = [1993, 1995];

impl PopImapLog {
    /// Reads one line (a directive or a CSV record), appending the event it makes.
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
        let (Some(session), Some(command)) = (get(c.session), get(c.command)) else {
            return LineKind::Malformed;
        };
        let command = command.trim().to_ascii_lowercase();
        let parameters = get(c.parameters).unwrap_or("");
        let protocol = match command.as_str() {
            "user" => {
                if let Some(name) = first_word(parameters) {
                    self.names.insert(session, name.to_owned());
                }
                return LineKind::Request;
            }
            "closesession" => {
                self.names.remove(session);
                return LineKind::Request;
            }
            "login" | "authenticate" => Protocol::Imap,
            "pass" | "auth" | "apop" => Protocol::Pop3,
            _ => return LineKind::Request,
        };
        if get(c.server)
            .and_then(endpoint)
            .is_some_and(|(_, port)| BACK_END_PORTS.contains(&port))
        {
            return LineKind::Request;
        }
        let Some(success) = get(c.context).and_then(answer).and_then(judge) else {
            return LineKind::Request;
        };
        let Some(time) = get(c.time).and_then(rfc3339) else {
            return LineKind::Malformed;
        };
        let outcome = if success {
            Outcome::Success
        } else {
            Outcome::Failure(Reason::BadPassword)
        };
        let mut e = Event::new(Service::Exchange, outcome);
        e.protocol = Some(protocol);
        e.time = Some(time);
        if let Some((addr, port)) = get(c.client).and_then(endpoint) {
            e.source = Some(addr);
            e.port = Some(port).filter(|p| *p != 0);
        }
        let given = match command.as_str() {
            // `login NAME *****`, `apop NAME DIGEST`.
            "login" | "apop" => first_word(parameters).map(str::to_owned),
            "pass" => self.names.get(session).cloned(),
            // The mechanisms of `authenticate` and `auth` name none.
            _ => None,
        };
        e.user = get(c.user)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .or(given);
        e.session = Some(session.to_owned());
        e.origin = origin.clone();
        out.push(e);
        LineKind::Request
    }

    /// POP3 sessions whose `user` name is held now.
    pub fn held(&self) -> usize {
        self.names.len()
    }
}

/// The first argument of a command's parameters (an IMAP quoted string whole, without
/// its quotes); `None` when there is none or it is the masked password.
fn first_word(parameters: &str) -> Option<&str> {
    let word = match parameters.strip_prefix('"') {
        Some(quoted) => quoted.split_once('"')?.0,
        None => parameters.split(' ').next()?,
    };
    (!word.is_empty() && !word.bytes().all(|b| b == b'*')).then_some(word)
}

/// The server's answer in `context`: the value of its `R=` item, unquoted.
fn answer(context: &str) -> Option<&str> {
    let mut rest = context;
    loop {
        if let Some(value) = rest.strip_prefix("R=") {
            return Some(match value.strip_prefix('"') {
                // A quoted answer ends at its closing quote (it may hold `;`).
                Some(quoted) => quoted.split_once('"').map_or(quoted, |(a, _)| a),
                None => value.split_once(';').map_or(value, |(a, _)| a),
            });
        }
        // The next item; a quoted value may hold `;`, so skip quotes whole.
        let mut quoted = false;
        let next = rest.char_indices().find(|&(_, ch)| {
            if ch == '"' {
                quoted = !quoted;
            }
            ch == ';' && !quoted
        })?;
        rest = &rest[next.0 + 1..];
    }
}

/// Whether an answer is a success (`Some(true)`), a failed login (`Some(false)`) or
/// no judgement of a password (`None`).
fn judge(answer: &str) -> Option<bool> {
    let answer = answer.trim();
    let mut words = answer.split(' ');
    let first = words.next().unwrap_or("");
    // IMAP answers start with the command's tag; Exchange logs a success as a bare `OK`.
    let status = match first {
        "OK" | "+OK" | "-ERR" => first,
        _ => words.next().unwrap_or(""),
    };
    match status {
        "OK" | "+OK" => Some(true),
        "NO" | "-ERR" if says_login_failed(answer) => Some(false),
        _ => None,
    }
}

fn says_login_failed(answer: &str) -> bool {
    contains_ci(answer, "failed") || contains_ci(answer, "logon failure")
}

#[cfg(test)]
mod tests;
