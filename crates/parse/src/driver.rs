//! The parsing pipeline for one input stream: prefilter, envelope, service parser.
//!
//! Most lines of a mail server's log are deliveries and queue chatter, not logins. A
//! literal prefilter (Aho-Corasick, SIMD) rejects them before anything else is done;
//! the rest go through the envelope and are routed by program to a service parser.
//! The driver also canonicalises account names and keeps the counts that make gaps
//! visible: lines that look like authentication but that no parser understood.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use portcullis_core::{AccountRules, Event, Origin};

use crate::custom_json::CustomJson;
use crate::dovecot::Dovecot;
use crate::envelope::{EnvelopeConfig, EnvelopeReader};
use crate::exchange::{IisLog, LineKind};
use crate::exchange_popimap::PopImapLog;
use crate::exchange_smtp::{LogKind, SmtpReceiveLog};
use crate::format::InputFormat;
use crate::jsonlog::JsonLog;
use crate::postfix::Postfix;
use crate::prefilter::{Candidates, Prefilter};
use crate::rules::{RuleScratch, Rules};
use crate::sshd::Sshd;
use crate::text::find;
use crate::{
    Ctx, Line, Verdict, apache, courier, cyrus, exim, nginx, openvpn, pam, radius, roundcube, sogo,
};

/// What the parser needs to know about its input.
#[derive(Debug, Clone, Default)]
pub struct ParseConfig {
    /// Time zone and year rules for stamps.
    pub envelope: EnvelopeConfig,
    /// How user names become account names.
    pub accounts: AccountRules,
    /// The reader. The caller detects it ([`crate::format::detect`] on a file's first
    /// bytes, [`crate::format::detect_line`] on a stream's first line) and passes what
    /// it found; [`InputFormat::Auto`] reads syslog-style lines.
    pub format: InputFormat,
    /// Load balancers whose `X-Forwarded-For` is believed in W3C logs.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The configuration's custom JSON mappings, tried first on JSON records.
    pub json_formats: Arc<[CustomJson]>,
    /// Custom rules from the configuration, tried before the built-in parsers.
    pub rules: Option<Arc<Rules>>,
}

/// What the parser saw, for the summary on stderr and the report's `input` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines read.
    pub lines: u64,
    /// Events produced.
    pub events: u64,
    /// Attempts those events stand for.
    pub attempts: u64,
    /// Lines that look like authentication but that no parser understood.
    pub unparsed_auth_lines: u64,
    /// Lines that were not valid UTF-8 (read with replacement characters).
    pub non_utf8_lines: u64,
    /// Lines containing NUL bytes.
    pub nul_lines: u64,
    /// Lines skipped for exceeding the length cap (counted by the reader).
    pub oversized_lines: u64,
    /// Authentication lines with no time stamp Portcullis could read.
    pub undated_lines: u64,
    /// Records of a document format (W3C lines, JSON records) that could not be read:
    /// not matching their header, not JSON, cut short.
    pub malformed_records: u64,
}

impl Stats {
    /// Adds another stream's counts to these.
    pub fn add(&mut self, other: &Stats) {
        self.lines += other.lines;
        self.events += other.events;
        self.attempts += other.attempts;
        self.unparsed_auth_lines += other.unparsed_auth_lines;
        self.non_utf8_lines += other.non_utf8_lines;
        self.nul_lines += other.nul_lines;
        self.oversized_lines += other.oversized_lines;
        self.undated_lines += other.undated_lines;
        self.malformed_records += other.malformed_records;
    }
}

/// Which service parser a line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Dovecot,
    Postfix,
    Sshd,
    Openvpn,
    Nginx,
    Apache,
    Roundcube,
    Sogo,
    Exim,
    /// Courier or Cyrus: both log as `imapd`, `pop3d`…; the message tells which.
    Mailstore,
    Radius,
    /// Any other program: only `pam_unix` failures are read.
    Other,
}

/// By program tag; lines without one (a server's own log file) by their message.
fn route(program: Option<&str>, message: &str) -> Route {
    let Some(p) = program else {
        return sniff(message);
    };
    if p.starts_with("sshd") {
        Route::Sshd
    } else if p.starts_with("postfix") {
        Route::Postfix
    } else if p.starts_with("dovecot") || p.ends_with("-login") || p.starts_with("auth") {
        Route::Dovecot
    } else if p.starts_with("openvpn") || p.starts_with("ovpn-") {
        Route::Openvpn
    } else if p.starts_with("nginx") {
        Route::Nginx
    } else if p.starts_with("httpd") || p.starts_with("apache") {
        Route::Apache
    } else if p.starts_with("roundcube") {
        Route::Roundcube
    } else if p.starts_with("sogo") {
        Route::Sogo
    } else if p.starts_with("exim") {
        Route::Exim
    } else if p.starts_with("courier")
        || p.starts_with("cyrus/")
        || p.starts_with("imapd")
        || p.starts_with("pop3d")
        || matches!(p, "imap" | "imaps" | "pop3" | "pop3s" | "lmtpunix")
    {
        Route::Mailstore
    } else if p.starts_with("radiusd") || p.starts_with("freeradius") {
        Route::Radius
    } else {
        Route::Other
    }
}

/// The parser for a line with no program tag. Dovecot's own log files and 2.4's
/// `auth(user,addr,…)<session>:` prefixes are the default; the others are told apart by
/// how their own log files begin.
fn sniff(msg: &str) -> Route {
    let b = msg.as_bytes();
    match b.first() {
        Some(b'[') => {
            // Exim: `[pid] …`; nginx: `[error] 2865#0: …`; Apache: `[error] [client …`,
            // `[auth_basic:error]`.
            let Some((inside, rest)) = msg[1..].split_once("] ") else {
                return Route::Apache;
            };
            return if inside.bytes().all(|c| c.is_ascii_digit()) {
                Route::Exim
            } else if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                Route::Nginx
            } else {
                Route::Apache
            };
        }
        Some(b'<') => return Route::Roundcube,
        _ => {}
    }
    if msg.starts_with("IMAP Error: ")
        || msg.starts_with("FAILED login for ")
        || msg.starts_with("Failed login for ")
        || msg.starts_with("Successful login for ")
    {
        Route::Roundcube
    } else if msg.starts_with("Auth: ") {
        Route::Radius
    } else if msg.starts_with("sogod ") {
        Route::Sogo
    } else if find!(b, b" authenticator failed for ").is_some()
        || (find!(b, b" <= ").is_some() && find!(b, b" A=").is_some())
    {
        Route::Exim
    } else if find!(b, b"TLS Auth Error: ").is_some()
        || find!(b, b"] Peer Connection Initiated with ").is_some()
        || find!(b, b" VERIFY ERROR: ").is_some()
    {
        Route::Openvpn
    } else {
        Route::Dovecot
    }
}

/// Reads one input stream into events.
#[derive(Debug)]
pub struct LogParser {
    envelope: EnvelopeReader,
    accounts: AccountRules,
    dovecot: Dovecot,
    postfix: Postfix,
    sshd: Sshd,
    format: InputFormat,
    iis: IisLog,
    /// What the W3C-style file's directives said it is.
    w3c_kind: LogKind,
    smtp_receive: SmtpReceiveLog,
    pop_imap: PopImapLog,
    json: JsonLog,
    rules: Option<Arc<Rules>>,
    /// Capture slots for the custom rules.
    rule_scratch: RuleScratch,
    prefilter: Prefilter,
    auth_looking: AhoCorasick,
    stats: Stats,
    /// Scratch for [`Self::push_block`].
    scratch: Candidates,
}

/// Phrases that mark a line as being about authentication, for counting what no
/// parser understood (matched case-insensitively).
const AUTH_LOOKING: &[&str] = &[
    "auth fail",
    "authentication fail",
    "authentication error",
    "failed password",
    "invalid user",
    "illegal user",
    "password mismatch",
    "unknown user",
    "accepted ",
    "login: ",
    "sasl_username",
    "aborted login",
    "login aborted",
    "pam_authenticate",
    "invalid credentials",
    "login failed",
    "failed login",
    "login incorrect",
    "badlogin",
    "authenticator failed",
    "not authenticated",
    "verification failed",
];

impl LogParser {
    /// A parser for one stream.
    pub fn new(config: ParseConfig) -> Self {
        let build = |pats: &[&str], nocase: bool| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(nocase)
                .match_kind(MatchKind::LeftmostFirst)
                .build(pats)
                // The pattern sets are constants; building them cannot fail.
                .unwrap_or_else(|e| unreachable!("constant patterns: {e}"))
        };
        Self {
            envelope: EnvelopeReader::new(config.envelope),
            accounts: config.accounts,
            dovecot: Dovecot::new(),
            postfix: Postfix::new(),
            sshd: Sshd::new(),
            format: config.format,
            iis: IisLog::new(config.trusted_proxies),
            w3c_kind: LogKind::default(),
            smtp_receive: SmtpReceiveLog::default(),
            pop_imap: PopImapLog::default(),
            json: JsonLog::new(config.format, config.json_formats),
            prefilter: match &config.rules {
                Some(r) => Prefilter::with_rules(r.clone()),
                None => Prefilter::new(),
            },
            rule_scratch: config
                .rules
                .as_ref()
                .map(|r| r.scratch())
                .unwrap_or_default(),
            rules: config.rules,
            auth_looking: build(AUTH_LOOKING, true),
            stats: Stats::default(),
            scratch: Candidates::default(),
        }
    }

    /// Whether a line gets past the prefilter (and so is parsed at all).
    pub fn is_candidate(&self, line: &[u8]) -> bool {
        self.prefilter.is_candidate(line)
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Moves the year-inference reference ("now" for a live stream); see
    /// [`crate::envelope::EnvelopeReader::set_reference`].
    pub fn set_reference(&mut self, now: jiff::Timestamp) {
        self.envelope.set_reference(now);
    }

    /// Records lines the reader skipped for length (they were read, and skipped).
    pub fn count_oversized(&mut self, n: u64) {
        self.stats.lines += n;
        self.stats.oversized_lines += n;
    }

    /// The reader in use.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// Reads one line (without its `\n`) and appends the events it completes to `out`.
    /// Correlating parsers may complete events of earlier lines here. In a JSON format
    /// each line is one record (JSON lines).
    pub fn push(&mut self, raw: &[u8], origin: &Origin, out: &mut Vec<Event>) {
        self.stats.lines += 1;
        match self.format {
            InputFormat::Syslog | InputFormat::Auto => {
                self.count_nul(raw);
                if self.prefilter.is_candidate(raw) {
                    self.parse_line(raw, origin, out);
                }
            }
            InputFormat::W3c => {
                self.count_nul(raw);
                self.parse_record(raw, origin, out);
            }
            _ => {
                // A JSON record holding a NUL byte is malformed (RFC 8259 allows control
                // characters neither in strings, unescaped, nor between tokens), so
                // only a malformed one needs looking at, and a record read whole is
                // not scanned a second time.
                let malformed = self.stats.malformed_records;
                self.parse_record(raw, origin, out);
                if self.stats.malformed_records != malformed {
                    self.count_nul(raw);
                }
            }
        }
    }

    fn count_nul(&mut self, raw: &[u8]) {
        if memchr::memchr(0, raw).is_some() {
            self.stats.nul_lines += 1;
        }
    }

    /// Reads a block of whole lines ([`crate::Block`]): the same as [`Self::push`] on
    /// each line, but the prefilter runs once over the block, so a line that contains
    /// none of its literals costs only its share of two SIMD scans. `max_line`: lines
    /// longer than this are skipped and counted.
    pub fn push_block(
        &mut self,
        block: &crate::Block<'_>,
        file: Option<&Arc<str>>,
        max_line: usize,
        out: &mut Vec<Event>,
    ) {
        let mut picked = std::mem::take(&mut self.scratch);
        picked.clear();
        self.prefilter.scan(block, max_line, &mut picked);
        self.push_candidates(&picked, file, out);
        self.scratch = picked;
    }

    /// Reads lines a [`Prefilter`] picked (perhaps on another thread), and takes over
    /// its counts of the lines it read.
    pub fn push_candidates(
        &mut self,
        picked: &Candidates,
        file: Option<&Arc<str>>,
        out: &mut Vec<Event>,
    ) {
        self.stats.add(&picked.stats);
        let mut origin = Origin {
            file: file.cloned(),
            line: 0,
            offset: 0,
        };
        let syslog = matches!(self.format, InputFormat::Syslog | InputFormat::Auto);
        for (line, number, offset) in picked.iter() {
            origin.line = number;
            origin.offset = offset;
            if syslog {
                self.parse_line(line, &origin, out);
            } else {
                self.parse_record(line, &origin, out);
            }
        }
    }

    /// One W3C line or one JSON record.
    fn parse_record(&mut self, raw: &[u8], origin: &Origin, out: &mut Vec<Event>) {
        let first = out.len();
        if self.format == InputFormat::W3c {
            let text = match std::str::from_utf8(raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => {
                    self.stats.non_utf8_lines += 1;
                    String::from_utf8_lossy(raw)
                }
            };
            // Each header block says `#Software:`, then (Exchange) `#Log-type:`.
            if let Some(kind) = LogKind::from_directive(text.trim_start_matches('\u{feff}')) {
                self.w3c_kind = kind;
            }
            let kind = match self.w3c_kind {
                LogKind::Iis => self.iis.push(&text, None, origin, out),
                LogKind::SmtpReceive => self.smtp_receive.push(&text, origin, out),
                LogKind::PopImap => self.pop_imap.push(&text, origin, out),
                LogKind::OtherExchange => LineKind::Request,
            };
            if kind == LineKind::Malformed {
                self.stats.malformed_records += 1;
            }
        } else if !raw.iter().all(u8::is_ascii_whitespace) {
            let counts = self.json.push(raw, origin, out);
            self.stats.malformed_records += counts.malformed;
            self.stats.unparsed_auth_lines += counts.unknown;
        }
        self.finish_events(&mut out[first..]);
    }

    fn parse_line(&mut self, raw: &[u8], origin: &Origin, out: &mut Vec<Event>) {
        let text = match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                self.stats.non_utf8_lines += 1;
                String::from_utf8_lossy(raw)
            }
        };
        let env = self.envelope.read(&text);
        let line = env.line;
        let first = out.len();
        let verdict = self.dispatch(&line, env.repeat, origin, out);
        if verdict == Verdict::Unrecognised && self.auth_looking.is_match(line.message.as_bytes()) {
            self.stats.unparsed_auth_lines += 1;
            if line.time.is_none() {
                self.stats.undated_lines += 1;
            }
        }
        self.finish_events(&mut out[first..]);
    }

    /// End of input: events still pending in correlating parsers are emitted.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let first = out.len();
        self.dovecot.flush(out);
        self.postfix.flush(out);
        self.sshd.flush(out);
        self.iis.flush(out);
        self.finish_events(&mut out[first..]);
    }

    fn dispatch(
        &mut self,
        line: &Line<'_>,
        repeat: u32,
        origin: &Origin,
        out: &mut Vec<Event>,
    ) -> Verdict {
        let ctx = Ctx {
            time: line.time,
            host: line.host.as_deref(),
            origin,
        };
        let first = out.len();
        let mut verdict = Verdict::Unrecognised;
        let route = route(line.program.as_deref(), &line.message);
        // `message repeated N times`: the same line N times, so correlation state moves
        // as it would have; identical events of this line are then merged into one.
        for _ in 0..repeat {
            let ruled = match &self.rules {
                Some(r) => r.parse_with(&mut self.rule_scratch, line, &ctx, out),
                None => None,
            };
            verdict = match ruled {
                Some(v) => v,
                None => match route {
                    Route::Dovecot => self.dovecot.parse(line, &ctx, out),
                    Route::Postfix => self.postfix.parse(line, &ctx, out),
                    Route::Sshd => self.sshd.parse(line, &ctx, out),
                    Route::Openvpn => openvpn::parse(line, &ctx, out),
                    Route::Nginx => nginx::parse(line, &ctx, out),
                    Route::Apache => apache::parse(line, &ctx, out),
                    Route::Roundcube => roundcube::parse(line, &ctx, out),
                    Route::Sogo => sogo::parse(line, &ctx, out),
                    Route::Exim => exim::parse(line, &ctx, out),
                    Route::Mailstore => {
                        let m: &str = &line.message;
                        if m.starts_with("badlogin: ") || m.starts_with("login: ") {
                            cyrus::parse(line, &ctx, out)
                        } else {
                            courier::parse(line, &ctx, out)
                        }
                    }
                    Route::Radius => radius::parse(line, &ctx, out),
                    Route::Other => Verdict::Unrecognised,
                },
            };
            // `pam_unix` failures of programs no parser claims the line for.
            if verdict == Verdict::Unrecognised {
                verdict = pam::parse(line, &ctx, out);
            }
            if verdict == Verdict::Unrecognised {
                break;
            }
        }
        if repeat > 1 {
            merge_repeats(out, first);
        }
        verdict
    }

    fn finish_events(&mut self, events: &mut [Event]) {
        for e in events {
            if e.account.is_none() {
                e.account = e.user.as_deref().and_then(|u| self.accounts.canonical(u));
            }
            self.stats.events += 1;
            self.stats.attempts += u64::from(e.attempts);
        }
    }
}

/// Merges events appended since `first` that differ only in `attempts`, adding those up.
fn merge_repeats(out: &mut Vec<Event>, first: usize) {
    let mut tail: Vec<Event> = out.drain(first..).collect();
    let mut merged: Vec<Event> = Vec::with_capacity(tail.len().min(8));
    for e in tail.drain(..) {
        match merged.iter_mut().find(|m| {
            Event {
                attempts: e.attempts,
                ..(*m).clone()
            } == e
        }) {
            Some(m) => m.attempts = m.attempts.saturating_add(e.attempts),
            None => merged.push(e),
        }
    }
    out.extend(merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_program() {
        let r = |p| route(Some(p), "");
        assert_eq!(r("sshd"), Route::Sshd);
        assert_eq!(r("sshd-session"), Route::Sshd);
        assert_eq!(r("postfix/submission/smtpd"), Route::Postfix);
        assert_eq!(r("postfix-incoming/smtpd"), Route::Postfix);
        assert_eq!(r("dovecot"), Route::Dovecot);
        assert_eq!(r("imap-login"), Route::Dovecot);
        assert_eq!(r("auth-worker(304)"), Route::Dovecot);
        assert_eq!(r("ovpn-server"), Route::Openvpn);
        assert_eq!(r("httpd/backend1"), Route::Apache);
        assert_eq!(r("apache2"), Route::Apache);
        assert_eq!(r("exim4"), Route::Exim);
        assert_eq!(r("cyrus/imaps"), Route::Mailstore);
        assert_eq!(r("imapd-ssl"), Route::Mailstore);
        assert_eq!(r("courieresmtpd"), Route::Mailstore);
        assert_eq!(r("radiusd"), Route::Radius);
        assert_eq!(r("kernel"), Route::Other);
    }

    #[test]
    fn routes_untagged_lines_by_their_shape() {
        let s = |m| route(None, m);
        assert_eq!(
            s("auth: passwd-file(a,1.2.3.4): unknown user"),
            Route::Dovecot
        );
        assert_eq!(
            s("[error] 2865#0: *1 user \"x\" was not found"),
            Route::Nginx
        );
        assert_eq!(
            s("[error] [client 1.2.3.4] user x not found"),
            Route::Apache
        );
        assert_eq!(
            s("[auth_basic:error] [pid 1] [client 1.2.3.4:5] AH01618: x"),
            Route::Apache
        );
        assert_eq!(
            s("<3z506z6r> IMAP Error: Login failed for a from 1.2.3.4"),
            Route::Roundcube
        );
        assert_eq!(
            s("Failed login for a from 1.2.3.4 in session x (error: 0)"),
            Route::Roundcube
        );
        assert_eq!(
            s("Auth: (1) Login OK: [a] (from client b port 0)"),
            Route::Radius
        );
        assert_eq!(
            s("sogod [1]: SOGoRootPage Login from '1.2.3.4'"),
            Route::Sogo
        );
        assert_eq!(
            s("login authenticator failed for (x) [1.2.3.4]: 535 y"),
            Route::Exim
        );
        assert_eq!(
            s("[7513] plain authenticator failed for (x) [1.2.3.4]: 535 y"),
            Route::Exim
        );
        assert_eq!(
            s("1.2.3.4:5 TLS Auth Error: Auth Username/Password verification failed for peer"),
            Route::Openvpn
        );
    }

    #[test]
    fn prefilter_rejects_noise_and_counts_lines() {
        let mut p = LogParser::new(ParseConfig::default());
        let mut out = Vec::new();
        let origin = Origin::default();
        p.push(
            b"Jun 12 08:58:35 mx postfix/qmgr[1]: 4F2B: removed",
            &origin,
            &mut out,
        );
        p.push(b"\0\0 garbage \xff", &origin, &mut out);
        assert!(out.is_empty());
        assert_eq!(p.stats().lines, 2);
        assert_eq!(p.stats().nul_lines, 1);
        assert_eq!(p.stats().unparsed_auth_lines, 0);
    }

    /// JSON records are looked at for NUL bytes only when malformed, which every record
    /// holding one is; the counts are those of looking at every record.
    #[test]
    fn nul_bytes_in_json_records_are_counted() {
        let mut p = LogParser::new(ParseConfig {
            format: InputFormat::Json,
            ..ParseConfig::default()
        });
        let mut out = Vec::new();
        let origin = Origin::default();
        for record in [
            &b"{\"type\":\"LOGIN\",\"a\":\"\\u0000\"}"[..],
            b"{\"type\":\"LO\0GIN\"}",
            b"{\"type\":\"LOGIN\"}\0",
            b"\0",
            b"{\"type\":",
        ] {
            p.push(record, &origin, &mut out);
        }
        let s = p.stats();
        assert_eq!(s.lines, 5);
        assert_eq!(s.nul_lines, 3);
        assert_eq!(s.malformed_records, 4);
    }

    #[test]
    fn unknown_auth_lines_are_counted() {
        let mut p = LogParser::new(ParseConfig::default());
        let mut out = Vec::new();
        p.push(
            b"Jun 12 08:58:35 mx someauthd[1]: authentication failure for bob",
            &Origin::default(),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(p.stats().unparsed_auth_lines, 1);
    }
}
