//! The W3C extended log file format as IIS writes it.
//!
//! The `#Fields:` directive names the columns of the lines that follow, and may change
//! in the middle of a file (IIS writes a new header when logging restarts with other
//! fields); every other directive is ignored. Fields are separated by spaces; IIS writes
//! `-` for an empty field and `+` for a space inside one. `date` and `time` are UTC.
//! Format: <https://www.w3.org/TR/WD-logfile.html>; IIS field names:
//! <https://learn.microsoft.com/windows/win32/http/w3c-logging>.
//!
//! A file whose header was not seen (a daemon resuming in the middle of a file) is read
//! with IIS's default field set, which is also Exchange's.
//!
//! Behind a load balancer `c-ip` is the balancer; the client is in a logged
//! `X-Forwarded-For` header (IIS "custom fields"), which is believed only when `c-ip`
//! is one of the configured trusted proxies, read from the right past every trusted
//! hop ([`client_address`]).

use std::net::IpAddr;

use jiff::Timestamp;
use portcullis_core::address;

/// IIS's default W3C fields (and Exchange's), used until a `#Fields:` line is seen.
pub const DEFAULT_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// One line of a W3C-style log (IIS, or Exchange's own CSV logs, which use the same
/// directives), with its `\r` and byte-order mark removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `#Fields:` and the field names after it.
    Fields(&'a str),
    /// Any other directive.
    Directive,
    /// An empty or blank line.
    Blank,
    /// A data line.
    Record(&'a str),
}

/// Tells a directive, a blank line and a data line apart.
pub fn classify(line: &str) -> Line<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    if let Some(d) = line.strip_prefix('#') {
        return match d.strip_prefix("Fields:") {
            Some(fields) => Line::Fields(fields),
            None => Line::Directive,
        };
    }
    if line.trim().is_empty() {
        Line::Blank
    } else {
        Line::Record(line)
    }
}

/// Where the fields Portcullis reads are, in the current header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    /// How many fields a line has.
    pub count: usize,
    /// `date`.
    pub date: Option<usize>,
    /// `time`.
    pub time: Option<usize>,
    /// `c-ip`.
    pub client_ip: Option<usize>,
    /// `c-port` (not an IIS field, but other W3C writers log it).
    pub client_port: Option<usize>,
    /// `cs-username`.
    pub username: Option<usize>,
    /// `cs-method`.
    pub method: Option<usize>,
    /// `cs-uri-stem`.
    pub stem: Option<usize>,
    /// `cs-uri-query`.
    pub query: Option<usize>,
    /// `sc-status`.
    pub status: Option<usize>,
    /// `sc-substatus`.
    pub substatus: Option<usize>,
    /// `sc-win32-status`.
    pub win32_status: Option<usize>,
    /// `s-computername`.
    pub computer: Option<usize>,
    /// A logged `X-Forwarded-For` request header, however the custom field is named
    /// (`X-Forwarded-For`, `cs(X-Forwarded-For)`).
    pub forwarded_for: Option<usize>,
}

impl Columns {
    /// The columns of a `#Fields:` directive's value.
    pub fn from_fields(fields: &str) -> Self {
        let mut c = Columns::default();
        for (i, name) in fields.split_ascii_whitespace().enumerate() {
            c.count = i + 1;
            let slot = match name.to_ascii_lowercase().as_str() {
                "date" => &mut c.date,
                "time" => &mut c.time,
                "c-ip" => &mut c.client_ip,
                "c-port" => &mut c.client_port,
                "cs-username" => &mut c.username,
                "cs-method" => &mut c.method,
                "cs-uri-stem" => &mut c.stem,
                "cs-uri-query" => &mut c.query,
                "sc-status" => &mut c.status,
                "sc-substatus" => &mut c.substatus,
                "sc-win32-status" => &mut c.win32_status,
                "s-computername" => &mut c.computer,
                "x-forwarded-for" | "cs(x-forwarded-for)" | "x_forwarded_for" => {
                    &mut c.forwarded_for
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(i);
            }
        }
        c
    }

    /// IIS's defaults.
    pub fn iis_default() -> Self {
        Self::from_fields(DEFAULT_FIELDS)
    }
}

/// Most fields a line may have (IIS logs at most about 30).
pub const MAX_FIELDS: usize = 64;

/// One data line split into its fields (borrowed; no allocation).
#[derive(Debug)]
pub struct Fields<'a> {
    values: [&'a str; MAX_FIELDS],
    len: usize,
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Self {
            values: [""; MAX_FIELDS],
            len: 0,
        }
    }
}

impl<'a> Fields<'a> {
    /// Splits `line`; false if it does not have exactly `count` fields.
    pub fn split(&mut self, line: &'a str, count: usize) -> bool {
        self.len = 0;
        for v in line.split_ascii_whitespace() {
            if self.len == count || self.len == MAX_FIELDS {
                return false;
            }
            self.values[self.len] = v;
            self.len += 1;
        }
        self.len == count
    }

    /// The value of column `i`; `None` for a missing column or IIS's `-`.
    pub fn get(&self, i: Option<usize>) -> Option<&'a str> {
        let i = i?;
        let v = *self.values[..self.len].get(i)?;
        (v != "-").then_some(v)
    }
}

/// The instant of a line's `date` and `time` (`2017-06-23` and `08:14:05` or
/// `08:14:05.123`), which the W3C format defines as UTC.
pub fn timestamp(date: &str, time: &str) -> Option<Timestamp> {
    let d = date.as_bytes();
    let t = time.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() < 8 || t[2] != b':' || t[5] != b':'
    {
        return None;
    }
    let num = |s: &[u8]| -> Option<i32> {
        s.iter().try_fold(0i32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i32::from(b - b'0'))
        })
    };
    let year = i16::try_from(num(&d[..4])?).ok()?;
    let month = i8::try_from(num(&d[5..7])?).ok()?;
    let day = i8::try_from(num(&d[8..])?).ok()?;
    let hour = i8::try_from(num(&t[..2])?).ok()?;
    let minute = i8::try_from(num(&t[3..5])?).ok()?;
    let second = i8::try_from(num(&t[6..8])?).ok()?;
    let nanos = match t.get(8) {
        None => 0,
        Some(b'.') => {
            let frac = &t[9..];
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            num(frac)? * 10i32.pow(9 - frac.len() as u32)
        }
        Some(_) => return None,
    };
    let dt = jiff::civil::DateTime::new(year, month, day, hour, minute, second, nanos).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The client's address: `c-ip`, or when `c-ip` is a trusted proxy, the rightmost
/// address of `X-Forwarded-For` that is not a trusted proxy itself (each hop appends the
/// address it received from, so anything left of the first untrusted hop may be forged
/// by the client). A header that cannot be read leaves `c-ip`.
pub fn client_address(
    c_ip: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let direct = c_ip?;
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if trusted.is_empty() || !is_trusted(&direct) {
        return Some(direct);
    }
    let Some(header) = forwarded_for else {
        return Some(direct);
    };
    let mut last = direct;
    for hop in header.rsplit(',') {
        let Some(a) = hop_address(hop) else {
            return Some(last);
        };
        if !is_trusted(&a) {
            return Some(a);
        }
        last = a;
    }
    Some(last)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5`,
/// `[2001:db8::1]:443`); IIS writes spaces as `+`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches(|c: char| c == '+' || c == ' ' || c == '"');
    if let Some(a) = address::parse(hop) {
        return Some(a);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return address::parse(rest.split_once(']')?.0);
    }
    let (host, port) = hop.rsplit_once(':')?;
    (port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':'))
        .then(|| address::parse(host))
        .flatten()
}

#[cfg(test)]
mod tests;
