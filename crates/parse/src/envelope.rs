//! Line envelopes: the time stamp, host and program around a log message.
//!
//! PLACEHOLDER: the type below is final; the parsing is being written.

use std::borrow::Cow;

use portcullis_core::EventTime;

/// One log line with its envelope taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's time, if it carries one.
    pub time: Option<EventTime>,
    /// The logging host, if the envelope names one.
    pub host: Option<Cow<'a, str>>,
    /// The program tag without pid and colon: `sshd`, `postfix/submission/smtpd`,
    /// `dovecot`, `imap-login`, `auth-worker(304)`. `None` when the line has no tag the
    /// envelope could recognise.
    pub program: Option<Cow<'a, str>>,
    /// The pid from `program[pid]:`, if any.
    pub pid: Option<u32>,
    /// The text after the program tag (or after the host/stamp when there is no tag).
    /// Solaris `[ID 800047 auth.info] ` prefixes and `message repeated N times: [ … ]`
    /// wrappers are already removed.
    pub message: Cow<'a, str>,
}
