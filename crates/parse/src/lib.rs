//! Portcullis' log readers.
//!
//! Turns raw log lines into normalised login [`Event`]s. Two layers, like the logs
//! themselves:
//!
//! 1. [`envelope`]: the line's wrapping, whatever wrote it: RFC 3164 and RFC 5424
//!    syslog, rsyslog ISO-8601 stamps, year-first stamps, TAI64N, journald JSON and
//!    `journalctl -o short`, `message repeated N times`. It yields a [`Line`]: time,
//!    host, program, pid and message.
//! 2. One module per service ([`dovecot`], [`postfix`], [`sshd`], [`openvpn`],
//!    [`nginx`], [`apache`], [`roundcube`], [`sogo`], [`exim`], [`courier`], [`cyrus`],
//!    [`pam`] for `pam_unix` lines of any other program, [`radius`]) that reads a
//!    [`Line`]'s message and emits events; lines are routed by program tag, or by their
//!    shape when a server's own log file has none. [`rules`] adds the configuration's
//!    own regular expressions. Services that log one attempt on several
//!    lines (Dovecot's auth and login processes, sshd's PAM and sshd lines) correlate
//!    them here, with bounded state, so one attempt counts once.
//!
//! Documents that are not syslog-style lines have their own readers: W3C extended logs
//! from IIS with Exchange's doors ([`w3c`], [`exchange`]), Exchange's SMTP Receive
//! protocol log ([`exchange_smtp`]), and JSON records
//! ([`records`] splits them, [`jsonlog`] routes each by shape, [`jsondoc`] parses it
//! sparsely, [`rfc3339`] reads their times) from Entra ID
//! ([`entra`]), Windows ([`windows`]), Keycloak ([`keycloak`]) or a custom mapping
//! of the configuration ([`custom_json`]). Windows event log files (`.evtx`) become
//! such records too ([`eventlog`]). [`format`] tells them apart from a file's first
//! bytes.
//!
//! [`LogParser`] drives both layers for one input stream and counts what it could not
//! use. [`LineReader`] splits a byte stream into capped lines and blocks of lines;
//! [`Prefilter`] picks from a block the few lines worth parsing (on any thread).
//!
//! This crate does not open files, decompress or print: the binary does. Usernames are
//! attacker-controlled text; no parser lets one move the extracted source address.
#![deny(missing_docs)]

pub mod apache;
pub mod courier;
pub mod custom_json;
pub mod cyrus;
pub mod dovecot;
pub mod driver;
pub mod entra;
pub mod envelope;
pub mod eventlog;
pub mod exchange;
pub mod exchange_popimap;
pub mod exchange_smtp;
pub mod exim;
pub mod format;
pub mod jsondoc;
pub mod jsonlog;
mod jsonstr;
pub mod keycloak;
pub mod nginx;
pub mod openvpn;
pub mod pam;
pub mod postfix;
pub mod prefilter;
pub mod radius;
pub mod reader;
pub mod records;
pub mod rfc3339;
pub mod roundcube;
pub mod rules;
pub mod sogo;
pub mod sshd;
#[cfg(test)]
mod testutil;
mod text;
pub mod w3c;
pub mod windows;

pub use custom_json::{CustomJson, CustomJsonSpec};
pub use driver::{LogParser, ParseConfig, Stats};
pub use envelope::{EnvelopeConfig, EnvelopeReader, Line, YearRule};
pub use format::InputFormat;
pub use prefilter::{Candidates, Prefilter};
pub use reader::{Block, LineReader, RawLine};
pub use records::RecordSplitter;
pub use rules::{RuleConfig, RuleError, RuleScratch, Rules};

use portcullis_core::{Event, EventTime, Origin, Outcome, Service};

/// What a service parser learns about one line besides its message: passed to every
/// service parser so that the events it builds carry time, host and origin.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The line's time, if it has one.
    pub time: Option<EventTime>,
    /// The logging host, if the envelope names one.
    pub host: Option<&'a str>,
    /// Where the line was read.
    pub origin: &'a Origin,
}

impl Ctx<'_> {
    /// A new event stamped with this line's time, host and origin.
    pub fn event(&self, service: Service, outcome: Outcome) -> Event {
        let mut e = Event::new(service, outcome);
        e.time = self.time;
        e.host = self.host.map(str::to_owned);
        e.origin = self.origin.clone();
        e
    }
}

/// Whether a service parser knew what a line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The parser understood the line: it emitted events, updated its state, or knows
    /// the line is not a login attempt (a connect, a session close, a delivery).
    Recognised,
    /// The parser does not know this line. If it looks like authentication, the driver
    /// counts it as an unparsed auth line so that gaps are visible.
    Unrecognised,
}

/// Reading whole fixture documents through the real pipeline, for the format tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use portcullis_core::Event;

    use crate::{
        Candidates, InputFormat, LogParser, ParseConfig, Prefilter, RecordSplitter, Stats,
    };

    /// Reads `text` as `format` after blanking its `//` header lines (so that line
    /// numbers stay those of the file), the way `portcullis events` does.
    pub fn read(text: &str, config: ParseConfig) -> (Vec<Event>, Stats) {
        let format = config.format;
        let blanked: String = text
            .lines()
            .map(|l| if l.starts_with("//") { "" } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let mut picked = Candidates::default();
        if format.is_json() {
            let mut s = RecordSplitter::default();
            s.push(blanked.as_bytes(), &mut picked);
            s.finish(&mut picked);
        } else {
            let mut reader = crate::LineReader::new(blanked.as_bytes());
            let mut pre = Prefilter::new();
            while let Ok(Some(block)) = reader.next_block() {
                if format == InputFormat::W3c {
                    pre.take_all(&block, 1 << 16, &mut picked);
                } else {
                    pre.scan(&block, 1 << 16, &mut picked);
                }
            }
        }
        let mut p = LogParser::new(config);
        let mut out = Vec::new();
        let file: Arc<str> = Arc::from("fixture");
        p.push_candidates(&picked, Some(&file), &mut out);
        p.finish(&mut out);
        (out, *p.stats())
    }

    /// A configuration reading `format`.
    pub fn config(format: InputFormat) -> ParseConfig {
        ParseConfig {
            format,
            ..ParseConfig::default()
        }
    }

    /// One expected row of [`rows`]: line, user, source and outcome.
    pub fn row(line: u64, user: &str, source: &str, what: &str) -> (u64, String, String, String) {
        (line, user.to_owned(), source.to_owned(), what.to_owned())
    }

    /// (line, user, source, outcome, reason) of each event, for compact assertions.
    pub fn rows(events: &[Event]) -> Vec<(u64, String, String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.origin.line,
                    e.user.clone().unwrap_or_default(),
                    e.source.map(|a| a.to_string()).unwrap_or_default(),
                    match e.outcome.reason() {
                        Some(r) => r.to_string(),
                        None => match e.second_factor {
                            Some(f) => format!("success/{f}"),
                            None => "success".to_owned(),
                        },
                    },
                )
            })
            .collect()
    }
}
