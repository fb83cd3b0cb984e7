//! Fast JSON for events.
//!
//! `portcullis events` writes one JSON object per attempt, hundreds of thousands a
//! second; through `serde_json` most of that time goes to formatting addresses and
//! times. [`JsonWriter`] writes exactly the bytes `serde_json::to_string(&event)`
//! would (a test holds it to that), with the date and time of the latest second cached
//! because consecutive events mostly share it.

use std::io::Write as _;
use std::net::IpAddr;

use crate::event::{Event, EventTime};

/// Writes events as JSON lines; keeps a small cache of the last time stamp.
#[derive(Debug, Default)]
pub struct JsonWriter {
    /// (Unix second, offset seconds) of the cached stamp, and its text up to the seconds
    /// (`2017-06-23T09:14:05`).
    last: Option<(i64, i32, [u8; 19])>,
}

impl JsonWriter {
    /// A writer with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `e` as one JSON object (no newline).
    pub fn write(&mut self, e: &Event, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if let Some(t) = &e.time {
            key(out, "time");
            out.push(b'"');
            self.time(t, out);
            out.push(b'"');
        }
        key(out, "service");
        quoted_plain(out, e.service.as_str());
        if let Some(p) = e.protocol {
            key(out, "protocol");
            quoted_plain(out, p.as_str());
        }
        if let Some(a) = &e.source {
            key(out, "source");
            out.push(b'"');
            address(out, a);
            out.push(b'"');
        }
        if let Some(n) = &e.source_name {
            key(out, "source_name");
            string(out, n);
        }
        if let Some(p) = e.port {
            key(out, "port");
            number(out, u64::from(p));
        }
        if let Some(u) = &e.user {
            key(out, "user");
            string(out, u);
        }
        if let Some(a) = &e.account {
            key(out, "account");
            string(out, a);
        }
        key(out, "outcome");
        quoted_plain(out, e.outcome.as_str());
        if let Some(r) = e.outcome.reason() {
            key(out, "reason");
            quoted_plain(out, r.as_str());
        }
        if let Some(f) = e.second_factor {
            key(out, "second_factor");
            quoted_plain(out, f.as_str());
        }
        key(out, "attempts");
        number(out, u64::from(e.attempts));
        if let Some(s) = &e.session {
            key(out, "session");
            string(out, s);
        }
        if let Some(h) = &e.host {
            key(out, "host");
            string(out, h);
        }
        if let Some(f) = &e.origin.file {
            key(out, "file");
            string(out, f);
        }
        key(out, "line");
        number(out, e.origin.line);
        key(out, "offset");
        number(out, e.origin.offset);
        out.push(b'}');
    }

    fn time(&mut self, t: &EventTime, out: &mut Vec<u8>) {
        let offset = t.offset.seconds();
        let second = t.instant.as_second();
        let nanos = t.instant.subsec_nanosecond();
        // Offsets with seconds (historical local mean time) and years outside
        // 0000-9999 are rare: let jiff write those.
        if offset % 60 != 0
            || !(-62_167_219_200..253_402_300_800).contains(&(second + i64::from(offset)))
            || nanos < 0
        {
            let _ = write!(out, "{t}");
            return;
        }
        let head = match self.last {
            Some((s, o, head)) if s == second && o == offset => head,
            _ => {
                let head = civil_head(second + i64::from(offset));
                self.last = Some((second, offset, head));
                head
            }
        };
        out.extend_from_slice(&head);
        if nanos != 0 {
            let mut digits = [0u8; 9];
            let mut n = nanos as u32;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
            out.push(b'.');
            out.extend_from_slice(&digits[..len]);
        }
        let (sign, abs) = if offset < 0 {
            (b'-', -offset)
        } else {
            (b'+', offset)
        };
        out.push(sign);
        two(out, (abs / 3600) as u32);
        out.push(b':');
        two(out, (abs / 60 % 60) as u32);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a local Unix second.
fn civil_head(local: i64) -> [u8; 19] {
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = crate::calendar::civil_from_days(days);
    let (m, d) = (i64::from(m), i64::from(d));
    let mut h = [0u8; 19];
    let put = |h: &mut [u8; 19], at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            h[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut h, 0, y, 4);
    h[4] = b'-';
    put(&mut h, 5, m, 2);
    h[7] = b'-';
    put(&mut h, 8, d, 2);
    h[10] = b'T';
    put(&mut h, 11, secs / 3600, 2);
    h[13] = b':';
    put(&mut h, 14, secs / 60 % 60, 2);
    h[16] = b':';
    put(&mut h, 17, secs % 60, 2);
    h
}

fn two(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn number(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn address(out: &mut Vec<u8>, a: &IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, u64::from(*o));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// A string known to need no escaping (the fixed vocabulary).
fn quoted_plain(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// A JSON string, escaped as `serde_json` escapes: `"` `\` and control characters;
/// everything else (DEL, non-ASCII) as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use jiff::tz::Offset;

    use super::*;
    use crate::event::{Origin, Outcome, Protocol, Reason, Service};

    fn via_serde(e: &Event) -> String {
        serde_json::to_string(e).unwrap()
    }

    fn ours(w: &mut JsonWriter, e: &Event) -> String {
        let mut out = Vec::new();
        w.write(e, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_bytes_as_serde() {
        let mut w = JsonWriter::new();
        let mut e = Event::new(Service::Dovecot, Outcome::Failure(Reason::BadPassword));
        assert_eq!(ours(&mut w, &e), via_serde(&e));
        e.protocol = Some(Protocol::Imap);
        e.source = Some("2001:db8::1".parse().unwrap());
        e.source_name = Some("a\"b\\c".into());
        e.port = Some(65535);
        e.user = Some("x\u{1b}[31m\n\t\r\u{8}\u{c}\u{7f}é\u{0}\"".into());
        e.account = Some("ö".into());
        e.session = Some("Ab3+/".into());
        e.host = Some("mail01".into());
        e.origin = Origin {
            file: Some("dir/mail.log".into()),
            line: u64::MAX,
            offset: 0,
        };
        e.attempts = 4_000_000_000;
        for (ts, off) in [
            ("2017-06-23T08:14:05Z", 3600),
            ("2017-06-23T08:14:05.25Z", 3600),
            ("2017-06-23T08:14:05.000000001Z", -4 * 3600 - 1800),
            ("1969-12-31T23:59:59.5Z", 0),
            ("2000-02-29T23:59:59Z", 5 * 3600 + 45 * 60),
            ("9999-12-30T00:00:00Z", 0),
            ("0001-01-01T00:00:00Z", 561),
        ] {
            let instant: Timestamp = ts.parse().unwrap();
            e.time = Some(EventTime {
                instant,
                offset: Offset::from_seconds(off).unwrap(),
            });
            // Twice: the second time from the cache.
            assert_eq!(ours(&mut w, &e), via_serde(&e), "{ts} {off}");
            assert_eq!(ours(&mut w, &e), via_serde(&e), "{ts} {off}");
        }
        e.source = Some("203.0.113.7".parse().unwrap());
        e.outcome = Outcome::Success;
        assert_eq!(ours(&mut w, &e), via_serde(&e));
        e.second_factor = Some(crate::SecondFactor::Failed);
        assert_eq!(ours(&mut w, &e), via_serde(&e));
    }

    #[test]
    fn every_control_character() {
        let mut w = JsonWriter::new();
        let mut e = Event::new(Service::Sshd, Outcome::Success);
        e.user = Some((0u8..=0x7f).map(char::from).collect());
        assert_eq!(ours(&mut w, &e), via_serde(&e));
    }
}
