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
//! [`LogParser`] drives both layers for one input stream and counts what it could not
//! use. [`LineReader`] splits a byte stream into capped lines and blocks of lines;
//! [`Prefilter`] picks from a block the few lines worth parsing (on any thread).
//!
//! This crate does not open files, decompress or print: the binary does. Usernames are
//! attacker-controlled text; no parser lets one move the extracted source address.
#![deny(missing_docs)]

pub mod apache;
pub mod courier;
pub mod cyrus;
pub mod dovecot;
pub mod driver;
pub mod envelope;
pub mod exim;
pub mod nginx;
pub mod openvpn;
pub mod pam;
pub mod postfix;
pub mod prefilter;
pub mod radius;
pub mod reader;
pub mod roundcube;
pub mod rules;
pub mod sogo;
pub mod sshd;
#[cfg(test)]
mod testutil;
mod text;

pub use driver::{LogParser, ParseConfig, Stats};
pub use envelope::{EnvelopeConfig, EnvelopeReader, Line, YearRule};
pub use prefilter::{Candidates, Prefilter};
pub use reader::{Block, LineReader, RawLine};
pub use rules::{RuleConfig, RuleError, Rules};

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
