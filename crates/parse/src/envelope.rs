//! Line envelopes: the time stamp, host and program around a log message.
//!
//! The same sshd message reaches Portcullis wrapped in many ways, depending on which
//! syslog daemon, journal or log file wrote it. This module takes the wrapping apart
//! and hands the service parsers a [`Line`]. Recognised stamps:
//!
//! | shape | example |
//! | --- | --- |
//! | RFC 3164 (BSD syslog), `journalctl -o short`/`short-precise` | `Feb 25 14:34:10 belka sshd[31602]: …` |
//! | RFC 3164 with a priority, as sent on the wire | `<38>Feb 25 14:34:10 belka sshd[31602]: …` |
//! | RFC 5424 | `<38>1 2019-07-08T17:40:16.954167-04:00 host sshd 57915 - - …` |
//! | rsyslog high-precision ISO-8601, `journalctl -o short-iso` | `2015-04-16T18:02:50.321974+00:00 host sshd[2716]: …` |
//! | year-first local time (Dovecot's own log file) | `2013-08-11 03:56:40 auth-worker(default): …` |
//! | TAI64N (daemontools `multilog`) | `@400000004c91b044077a9e94 imap-login: …` |
//! | journald export (`journalctl -o json`) | `{"__REALTIME_TIMESTAMP":"…","MESSAGE":"…",…}` |
//! | slash date, local time (nginx's error log) | `2012/04/09 11:53:29 [error] 2865#0: …` |
//! | `ctime` in brackets (Apache's error log) | `[Thu Jul 11 01:21:41.123456 2013] [auth_basic:error] …` |
//! | `ctime` and ` : ` (FreeRADIUS' `radius.log`) | `Tue Mar 10 14:30:56 2020 : Auth: (5) Login OK: …` |
//! | `[dd-Mon-yyyy hh:mm:ss ±zzzz]:` (Roundcube's own logs) | `[10-May-2015 13:02:52 -0400]: Failed login for …` |
//! | no stamp at all (journal text without time) | `srv sshd[13709]: …` |
//!
//! Stamps without an offset are read in the configured time zone; year-less RFC 3164
//! stamps get their year from [`YearRule`].

use std::borrow::Cow;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use portcullis_core::EventTime;
use serde_json::Value;

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

/// A line and how many times the logger says it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enveloped<'a> {
    /// The line.
    pub line: Line<'a>,
    /// `N` from rsyslog's `message repeated N times: [ … ]`, else 1.
    pub repeat: u32,
    /// Which stamp the line had.
    pub stamp: Stamp,
}

/// The kind of time stamp a line carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// `Mmm dd hh:mm:ss`, year-less.
    Rfc3164,
    /// RFC 5424.
    Rfc5424,
    /// ISO-8601 / RFC 3339 with an offset.
    Iso8601,
    /// `YYYY-MM-DD hh:mm:ss` local time.
    YearFirst,
    /// `@4000…` TAI64N label.
    Tai64n,
    /// `YYYY/MM/DD hh:mm:ss` local time (nginx).
    Slash,
    /// `Www Mmm dd hh:mm:ss yyyy` local time, bare or in brackets (Apache, FreeRADIUS,
    /// OpenVPN's `--log` file).
    Ctime,
    /// `[dd-Mon-yyyy hh:mm:ss ±zzzz]:` (Roundcube).
    DayMonthYear,
    /// A journald JSON record.
    Journald,
    /// No stamp recognised.
    None,
}

/// Where year-less RFC 3164 stamps get their year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearRule {
    /// The first line is in this year; later lines move to the next year when the month
    /// falls back by half a year or more (December → January).
    Fixed(i16),
    /// Each line takes the latest year that does not put it more than a day after this
    /// instant (the file's modification time, or now for a stream): the last lines of a
    /// file were written before the file was last modified.
    Reference(Timestamp),
}

/// How to read stamps.
#[derive(Debug, Clone)]
pub struct EnvelopeConfig {
    /// Zone for stamps that carry no offset.
    pub time_zone: TimeZone,
    /// Year for year-less stamps.
    pub year: YearRule,
}

impl Default for EnvelopeConfig {
    /// The system's zone, and years inferred against the present moment (a live
    /// stream's lines are not in the future).
    fn default() -> Self {
        Self {
            time_zone: TimeZone::system(),
            year: YearRule::Reference(Timestamp::now()),
        }
    }
}

/// Repeats beyond this are clamped: one line must not stand for unbounded work.
pub const MAX_REPEAT: u32 = 100_000;

/// Reads envelopes; keeps the little state year inference needs.
#[derive(Debug, Clone)]
pub struct EnvelopeReader {
    config: EnvelopeConfig,
    /// For [`YearRule::Fixed`]: the year and month of the latest line placed.
    current: Option<(i16, i8)>,
    /// For [`YearRule::Reference`]: the latest instant a line may have, and its year.
    limit: Option<(Timestamp, i16)>,
    /// The offset of the last local hour seen, when the whole hour has that one offset.
    hour_offset: Option<((Date, i8), Offset)>,
}

impl EnvelopeReader {
    /// A reader with this configuration.
    pub fn new(config: EnvelopeConfig) -> Self {
        let limit = match config.year {
            YearRule::Fixed(_) => None,
            YearRule::Reference(r) => Some(Self::limit_of(r, &config.time_zone)),
        };
        Self {
            config,
            current: None,
            limit,
            hour_offset: None,
        }
    }

    fn limit_of(reference: Timestamp, zone: &TimeZone) -> (Timestamp, i16) {
        let limit = reference
            .saturating_add(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::MAX);
        (limit, limit.to_zoned(zone.clone()).year())
    }

    /// Moves the [`YearRule::Reference`] instant (a live stream's "now") forward, so
    /// that a reader running for months still places year-less stamps in the right
    /// year. No effect with [`YearRule::Fixed`].
    pub fn set_reference(&mut self, reference: Timestamp) {
        if let YearRule::Reference(r) = &mut self.config.year {
            *r = reference;
            self.limit = Some(Self::limit_of(reference, &self.config.time_zone));
        }
    }

    /// Takes one line (without its line terminator) apart. Never fails: a line with no
    /// recognisable stamp comes back with `time: None` and [`Stamp::None`].
    pub fn read<'a>(&mut self, raw: &'a str) -> Enveloped<'a> {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.starts_with('{') {
            if let Some(e) = self.journald(raw) {
                return e;
            }
        }
        let (rest, pri) = strip_priority(raw);
        if pri && let Some(after) = rest.strip_prefix("1 ") {
            if let Some(e) = self.rfc5424(after) {
                return e;
            }
        }
        let (time, stamp, rest) = self.stamp(rest);
        // Web servers' and RADIUS' own log files: no host or program tag follows, and
        // their `[error]` must not be taken for one.
        let (host, program, pid, message) =
            if matches!(stamp, Stamp::Slash | Stamp::Ctime | Stamp::DayMonthYear) {
                (None, None, None, rest)
            } else {
                split_tag(rest)
            };
        finish(
            time,
            stamp,
            host.map(Cow::Borrowed),
            program.map(Cow::Borrowed),
            pid,
            Cow::Borrowed(message),
        )
    }

    fn stamp<'a>(&mut self, s: &'a str) -> (Option<EventTime>, Stamp, &'a str) {
        let b = s.as_bytes();
        if b.first() == Some(&b'@')
            && let Some((t, rest)) = tai64n(s)
        {
            let offset = self.config.time_zone.to_offset(t);
            return (Some(EventTime { instant: t, offset }), Stamp::Tai64n, rest);
        }
        if b.len() >= 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'/' {
            // nginx's error log: `YYYY/MM/DD hh:mm:ss`, local time.
            if let Some((dt, after)) = slash_datetime(s)
                && let Some(t) = self.local(dt)
            {
                return (Some(t), Stamp::Slash, skip_space(after));
            }
        }
        if b.first() == Some(&b'[') {
            if let Some((dt, rest)) = s[1..].split_once(']').and_then(|(inner, rest)| {
                let (dt, tail) = ctime(inner)?;
                tail.is_empty().then_some((dt, rest))
            }) && let Some(t) = self.local(dt)
            {
                return (Some(t), Stamp::Ctime, skip_space(rest));
            }
            if let Some((t, rest)) = day_month_year(&s[1..]) {
                return (Some(t), Stamp::DayMonthYear, rest);
            }
        }
        if b.len() >= 24
            && b[3] == b' '
            && b[7] == b' '
            && let Some((dt, rest)) = ctime(s)
            && let Some(rest) = rest.strip_prefix(" : ").or_else(|| rest.strip_prefix(' '))
            && let Some(t) = self.local(dt)
        {
            return (Some(t), Stamp::Ctime, rest);
        }
        if b.len() >= 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
            if let Some((dt, after)) = civil_datetime(s) {
                if let Some((offset, rest)) = parse_offset(after) {
                    if let Ok(instant) = offset.to_timestamp(dt) {
                        return (
                            Some(EventTime { instant, offset }),
                            Stamp::Iso8601,
                            skip_space(rest),
                        );
                    }
                } else if let Some(t) = self.local(dt) {
                    return (Some(t), Stamp::YearFirst, skip_space(after));
                }
            }
        }
        if let Some((month, day, time, rest)) = bsd_stamp(s)
            && let Some(t) = self.year_less(month, day, time)
        {
            return (Some(t), Stamp::Rfc3164, rest);
        }
        (None, Stamp::None, s)
    }

    fn local(&mut self, dt: DateTime) -> Option<EventTime> {
        // Consecutive lines mostly fall in the same local hour, and a zone's offset
        // changes (at most) at an hour's edge: reuse the hour's offset when the whole
        // hour has one.
        let hour = (dt.date(), dt.hour());
        if let Some((cached, offset)) = self.hour_offset
            && cached == hour
        {
            return Some(EventTime {
                instant: offset.to_timestamp(dt).ok()?,
                offset,
            });
        }
        let zone = &self.config.time_zone;
        let instant = zone.to_ambiguous_timestamp(dt).compatible().ok()?;
        let offset = zone.to_offset(instant);
        let edge = |m: i8, s: i8| {
            let t = dt
                .with()
                .minute(m)
                .second(s)
                .subsec_nanosecond(0)
                .build()
                .ok()?;
            let ambiguous = zone.to_ambiguous_timestamp(t);
            // A gap or fold inside the hour: no single offset.
            let ts = ambiguous.unambiguous().ok()?;
            Some(zone.to_offset(ts))
        };
        self.hour_offset =
            (edge(0, 0) == Some(offset) && edge(59, 59) == Some(offset)).then_some((hour, offset));
        Some(EventTime { instant, offset })
    }

    fn year_less(&mut self, month: i8, day: i8, time: Time) -> Option<EventTime> {
        match self.config.year {
            YearRule::Fixed(first) => {
                let (mut year, last_month) = self.current.unwrap_or((first, month));
                let line_year = if month + 6 <= last_month {
                    year += 1;
                    year
                } else if month >= last_month + 6 {
                    // A straggler from before the turn of the year.
                    year - 1
                } else {
                    year
                };
                if line_year == year {
                    self.current = Some((year, month));
                }
                self.local(Date::new(line_year, month, day).ok()?.to_datetime(time))
            }
            YearRule::Reference(_) => {
                let (limit, ref_year) = self.limit?;
                // Feb 29 walks back to the latest leap year that keeps it in the past.
                for year in (ref_year - 8..=ref_year).rev() {
                    let Ok(date) = Date::new(year, month, day) else {
                        continue;
                    };
                    let t = self.local(date.to_datetime(time))?;
                    if t.instant <= limit {
                        return Some(t);
                    }
                }
                None
            }
        }
    }

    fn rfc5424<'a>(&mut self, s: &'a str) -> Option<Enveloped<'a>> {
        // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
        let (ts, rest) = s.split_once(' ')?;
        let time = if ts == "-" {
            None
        } else {
            let (dt, after) = civil_datetime(ts)?;
            let (offset, tail) = parse_offset(after)?;
            if !tail.is_empty() {
                return None;
            }
            Some(EventTime {
                instant: offset.to_timestamp(dt).ok()?,
                offset,
            })
        };
        let (host, rest) = rest.split_once(' ')?;
        let (app, rest) = rest.split_once(' ')?;
        let (procid, rest) = rest.split_once(' ')?;
        let (_msgid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let msg = skip_structured_data(rest)?;
        let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
        let nil = |v: &'a str| (v != "-").then_some(Cow::Borrowed(v));
        Some(finish(
            time,
            Stamp::Rfc5424,
            nil(host),
            nil(app),
            procid.parse().ok(),
            Cow::Borrowed(msg),
        ))
    }

    fn journald<'a>(&mut self, raw: &'a str) -> Option<Enveloped<'a>> {
        let Value::Object(rec) = serde_json::from_str::<Value>(raw).ok()? else {
            return None;
        };
        let text = |k: &str| match rec.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            // journald exports non-UTF-8 fields as arrays of bytes.
            Some(Value::Array(a)) => {
                let bytes: Vec<u8> = a
                    .iter()
                    .filter_map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        };
        let message = text("MESSAGE")?;
        let time = text("__REALTIME_TIMESTAMP")
            .and_then(|us| us.parse::<i64>().ok())
            .and_then(|us| Timestamp::from_microsecond(us).ok())
            .map(|instant| EventTime {
                instant,
                offset: self.config.time_zone.to_offset(instant),
            });
        let program = text("SYSLOG_IDENTIFIER").or_else(|| text("_COMM"));
        let pid = text("SYSLOG_PID")
            .or_else(|| text("_PID"))
            .and_then(|p| p.parse().ok());
        Some(finish(
            time,
            Stamp::Journald,
            text("_HOSTNAME").map(Cow::Owned),
            program.map(Cow::Owned),
            pid,
            Cow::Owned(message),
        ))
    }
}

/// Unwraps the message (`[ID …]`, `message repeated`) and builds the result.
fn finish<'a>(
    time: Option<EventTime>,
    stamp: Stamp,
    host: Option<Cow<'a, str>>,
    program: Option<Cow<'a, str>>,
    pid: Option<u32>,
    message: Cow<'a, str>,
) -> Enveloped<'a> {
    let (message, repeat) = match message {
        Cow::Borrowed(m) => {
            let (m, n) = unwrap_message(m);
            (Cow::Borrowed(m), n)
        }
        Cow::Owned(m) => {
            let (inner, n) = unwrap_message(&m);
            let inner = inner.to_owned();
            (Cow::Owned(inner), n)
        }
    };
    Enveloped {
        line: Line {
            time,
            host,
            program,
            pid,
            message,
        },
        repeat,
        stamp,
    }
}

/// Strips `message repeated N times: [ … ]` (rsyslog) and a Solaris `[ID n fac.lvl] `.
fn unwrap_message(m: &str) -> (&str, u32) {
    let mut repeat = 1;
    let mut m = m;
    if let Some(rest) = m.strip_prefix("message repeated ")
        && let Some((n, rest)) = rest.split_once(" times: [")
        && let Ok(n) = n.parse::<u32>()
        && let Some(inner) = rest.strip_suffix(']')
    {
        repeat = n.clamp(1, MAX_REPEAT);
        m = inner.strip_prefix(' ').unwrap_or(inner);
    }
    if let Some(rest) = m.strip_prefix("[ID ")
        && let Some((id, rest)) = rest.split_once("] ")
        && !id.contains('[')
    {
        m = rest;
    }
    (m, repeat)
}

/// Removes a leading `<PRI>`; says whether there was one.
fn strip_priority(s: &str) -> (&str, bool) {
    let b = s.as_bytes();
    if b.first() == Some(&b'<') {
        let digits = b[1..]
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if (1..=3).contains(&digits) && b.get(1 + digits) == Some(&b'>') {
            return (&s[2 + digits..], true);
        }
    }
    (s, false)
}

fn skip_space(s: &str) -> &str {
    s.trim_start_matches(' ')
}

fn digits(b: &[u8]) -> Option<i32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0')))
}

/// `hh:mm:ss[.frac]` at the start of `s`; returns the time and the rest.
fn clock(s: &str) -> Option<(Time, &str)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    let mut end = 8;
    let mut nanos = 0i32;
    if matches!(b.get(8), Some(b'.' | b',')) {
        let n = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = &b[9..9 + n.min(9)];
        nanos = digits(frac)? * 10i32.pow(9 - frac.len() as u32);
        end = 9 + n;
    }
    // A leap second (:60) is read as :59.999999999 rather than refused.
    let (sec, nanos) = if sec == 60 {
        (59, 999_999_999)
    } else {
        (sec, nanos)
    };
    let t = Time::new(h as i8, m as i8, sec as i8, nanos).ok()?;
    Some((t, &s[end..]))
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.frac]` at the start of `s`.
fn civil_datetime(s: &str) -> Option<(DateTime, &str)> {
    dated(s, b'-', |c| matches!(c, b'T' | b' '))
}

/// `YYYY/MM/DD hh:mm:ss` at the start of `s` (nginx's `ngx_cached_err_log_time`).
fn slash_datetime(s: &str) -> Option<(DateTime, &str)> {
    dated(s, b'/', |c| c == b' ')
}

/// A year-first date with `sep` between its parts, a byte `mid` accepts, then a clock.
fn dated(s: &str, sep: u8, mid: impl Fn(u8) -> bool) -> Option<(DateTime, &str)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != sep || b[7] != sep || !mid(b[10]) {
        return None;
    }
    let date = Date::new(
        digits(&b[0..4])? as i16,
        digits(&b[5..7])? as i8,
        digits(&b[8..10])? as i8,
    )
    .ok()?;
    let (time, rest) = clock(&s[11..])?;
    Some((date.to_datetime(time), rest))
}

/// `Www Mmm dd hh:mm:ss[.frac] yyyy` at the start of `s`, as `ctime(3)` writes it (and
/// Apache's `ap_recent_ctime_ex`, with microseconds in 2.4). The weekday is not
/// checked against the date: it is redundant.
fn ctime(s: &str) -> Option<(DateTime, &str)> {
    let b = s.as_bytes();
    if b.len() < 24 || b[3] != b' ' || !b[..3].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let (month, day, time, rest) = bsd_stamp(&s[4..])?;
    let rb = rest.as_bytes();
    if rb.len() < 4 {
        return None;
    }
    let year = digits(&rb[..4])? as i16;
    let date = Date::new(year, month, day).ok()?;
    Some((date.to_datetime(time), &rest[4..]))
}

/// `dd-Mon-yyyy hh:mm:ss ±zzzz]:` (after the `[`), Roundcube's default `log_date_format`
/// (`d-M-Y H:i:s O`, PHP's `date()`).
fn day_month_year(s: &str) -> Option<(EventTime, &str)> {
    let b = s.as_bytes();
    if b.len() < 27 || b[2] != b'-' || b[6] != b'-' || b[11] != b' ' {
        return None;
    }
    let day = digits(&b[..2])? as i8;
    let month = MONTHS.iter().position(|m| m[..] == b[3..6])? as i8 + 1;
    let year = digits(&b[7..11])? as i16;
    let (time, rest) = clock(&s[12..])?;
    let rest = rest.strip_prefix(' ')?;
    let (offset, rest) = parse_offset(rest)?;
    let rest = rest.strip_prefix(']')?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let dt = Date::new(year, month, day).ok()?.to_datetime(time);
    let instant = offset.to_timestamp(dt).ok()?;
    Some((EventTime { instant, offset }, skip_space(rest)))
}

/// `Z`, `±hh:mm` or `±hhmm` at the start of `s`.
fn parse_offset(s: &str) -> Option<(Offset, &str)> {
    let b = s.as_bytes();
    match b.first()? {
        b'Z' | b'z' => Some((Offset::UTC, &s[1..])),
        sign @ (b'+' | b'-') => {
            let (h, m, len) = if b.len() >= 6 && b[3] == b':' {
                (digits(&b[1..3])?, digits(&b[4..6])?, 6)
            } else if b.len() >= 5 && b[1..5].iter().all(u8::is_ascii_digit) {
                (digits(&b[1..3])?, digits(&b[3..5])?, 5)
            } else {
                return None;
            };
            if !(h < 24 && m < 60) {
                return None;
            }
            let secs = (h * 3600 + m * 60) * if *sign == b'-' { -1 } else { 1 };
            Some((Offset::from_seconds(secs).ok()?, &s[len..]))
        }
        _ => None,
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss[.frac] ` (day space- or zero-padded, or a single digit).
fn bsd_stamp(s: &str) -> Option<(i8, i8, Time, &str)> {
    let b = s.as_bytes();
    if b.len() < 14 || b[3] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| m[..] == b[..3])? as i8 + 1;
    let mut i = 4;
    if b[i] == b' ' {
        i += 1;
    }
    let day_len = b[i..]
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_digit())
        .count();
    let day = digits(&b[i..i + day_len])? as i8;
    i += day_len;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let (time, rest) = clock(&s[i + 1..])?;
    let rest = match rest.as_bytes().first() {
        None => rest,
        Some(b' ') => &rest[1..],
        Some(_) => return None,
    };
    Some((month, day, time, rest))
}

/// `@` + 24 hex digits: a TAI64N label.
fn tai64n(s: &str) -> Option<(Timestamp, &str)> {
    let hex = s.get(1..25)?;
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let secs = u64::from_str_radix(&hex[..16], 16).ok()?;
    let nanos = u32::from_str_radix(&hex[16..], 16).ok()?;
    // libtai labels second s of the Unix epoch as 2^62 + 10 + s (TAI was 10 s ahead of
    // UTC in 1972); leap seconds since then are not tracked, as daemontools does not.
    let unix = i64::try_from(secs.checked_sub((1u64 << 62) + 10)?).ok()?;
    let t = Timestamp::new(
        unix,
        i32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?,
    )
    .ok()?;
    Some((t, skip_space(&s[25..])))
}

/// Skips RFC 5424 STRUCTURED-DATA (`-` or `[id k="v"]…`) and the space after it.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Splits `[host ]program[pid]: message`. Returns (host, program, pid, message); when
/// no tag is found, the whole text is the message.
fn split_tag(s: &str) -> (Option<&str>, Option<&str>, Option<u32>, &str) {
    let (first, after_first) = split_token(s);
    if let Some((program, pid)) = tag(first) {
        return (None, Some(program), pid, after_first);
    }
    if is_host(first) {
        let (second, after_second) = split_token(after_first);
        if let Some((program, pid)) = tag(second) {
            return (Some(first), Some(program), pid, after_second);
        }
    }
    (None, None, None, s)
}

fn split_token(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((tok, rest)) => (tok, rest.strip_prefix(' ').unwrap_or(rest)),
        None => (s, ""),
    }
}

fn is_host(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 255
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'%'))
}

/// `name[pid]:`, `name:`, `name(arg):`, `[name]:` or `[name]` → (name, pid).
fn tag(t: &str) -> Option<(&str, Option<u32>)> {
    if let Some(inner) = t.strip_prefix('[') {
        let name = inner
            .strip_suffix("]:")
            .or_else(|| inner.strip_suffix(']'))?;
        return is_name(name).then_some((name, None));
    }
    let t = t.strip_suffix(':')?;
    if let Some(open) = t.find('[') {
        let pid = t[open + 1..].strip_suffix(']')?.parse().ok()?;
        let name = &t[..open];
        return is_name(name).then_some((name, Some(pid)));
    }
    if let Some(open) = t.find('(') {
        // `auth-worker(304)`, `auth(default)`: a Dovecot process with its id.
        let arg = t[open + 1..].strip_suffix(')')?;
        let ok = arg
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
        return (ok && is_name(&t[..open])).then_some((t, None));
    }
    is_name(t).then_some((t, None))
}

fn is_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.as_bytes()[0].is_ascii_alphabetic()
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@'))
}

#[cfg(test)]
mod tests;
