//! Which reader a log needs: syslog-style lines, a W3C extended log (IIS, Exchange),
//! JSON records (Entra ID sign-ins, Windows events, Keycloak, custom mappings) or a
//! Windows `.evtx` file.
//!
//! [`detect`] looks at the first bytes of a file, so that `portcullis events` and
//! `analyze` need no flag: EVTX files begin with their magic, W3C logs with a `#`
//! directive, JSON documents with `[` or `{`. JSON lines written by `journalctl -o
//! json` are syslog lines in a JSON envelope and keep going to the line parsers.
//! An operator can force a reader with [`InputFormat::from_name`] (`--input-format`).

use std::fmt;

/// The reader for one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputFormat {
    /// Decide from the first bytes ([`detect`]), or for a stream fed line by line, from
    /// its first line.
    #[default]
    Auto,
    /// Log lines in a syslog, ISO-8601, TAI64N or journald envelope, read by the
    /// service parsers (Dovecot, Postfix, sshd, ...).
    Syslog,
    /// A W3C extended log file as IIS writes it; Exchange's doors are recognised.
    W3c,
    /// JSON records (an array, a Graph `{"value": [...]}` page, JSON lines or
    /// concatenated objects); each record's shape picks its reader.
    Json,
    /// JSON records read as Entra ID sign-ins only.
    Entra,
    /// JSON records read as Windows Security events only.
    Windows,
    /// JSON records read as Keycloak events only.
    Keycloak,
    /// A Windows XML event log file (`.evtx`).
    Evtx,
}

impl InputFormat {
    /// Every value.
    pub const ALL: &'static [InputFormat] = &[
        InputFormat::Auto,
        InputFormat::Syslog,
        InputFormat::W3c,
        InputFormat::Json,
        InputFormat::Entra,
        InputFormat::Windows,
        InputFormat::Keycloak,
        InputFormat::Evtx,
    ];

    /// The name used on the command line and in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Syslog => "syslog",
            InputFormat::W3c => "w3c",
            InputFormat::Json => "json",
            InputFormat::Entra => "entra",
            InputFormat::Windows => "windows",
            InputFormat::Keycloak => "keycloak",
            InputFormat::Evtx => "evtx",
        }
    }

    /// The format with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.as_str() == name)
    }

    /// True for the formats whose units are JSON records rather than lines.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            InputFormat::Json
                | InputFormat::Entra
                | InputFormat::Windows
                | InputFormat::Keycloak
                | InputFormat::Evtx
        )
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The magic bytes of an EVTX file header ("ElfFile\0").
pub const EVTX_MAGIC: &[u8] = b"ElfFile\0";

/// How many bytes [`detect`] wants to see: the first line, up to this.
pub const DETECT_BYTES: usize = 64 * 1024;

/// Picks the reader for a file from its first bytes (at least its first line, or the
/// whole file if shorter). Never returns [`InputFormat::Auto`].
pub fn detect(head: &[u8]) -> InputFormat {
    if head.starts_with(EVTX_MAGIC) {
        return InputFormat::Evtx;
    }
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let rest = &head[start..];
    let first_line = match memchr::memchr(b'\n', rest) {
        Some(n) => &rest[..n],
        None => rest,
    };
    match rest.first() {
        Some(b'#') if is_w3c_directive(first_line) => InputFormat::W3c,
        Some(b'[') => InputFormat::Json,
        Some(b'{') if is_journald(first_line) => InputFormat::Syslog,
        Some(b'{') => InputFormat::Json,
        _ => InputFormat::Syslog,
    }
}

/// Picks the reader for a stream fed line by line from its first non-empty line.
pub fn detect_line(line: &[u8]) -> InputFormat {
    match detect(line) {
        InputFormat::Evtx => InputFormat::Syslog,
        f => f,
    }
}

/// `#Software:`, `#Version:`, `#Date:`, `#Fields:`, `#Start-Date:`, `#End-Date:`,
/// `#Remark:`: the directives of the W3C draft (https://www.w3.org/TR/WD-logfile.html).
pub(crate) fn is_w3c_directive(line: &[u8]) -> bool {
    const DIRECTIVES: [&[u8]; 7] = [
        b"#Software:",
        b"#Version:",
        b"#Date:",
        b"#Fields:",
        b"#Start-Date:",
        b"#End-Date:",
        b"#Remark:",
    ];
    DIRECTIVES.iter().any(|d| line.starts_with(d))
}

/// A `journalctl -o json` line: its own envelope, read by the syslog path.
fn is_journald(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"__REALTIME_TIMESTAMP\"").is_some()
        || memchr::memmem::find(line, b"\"__CURSOR\"").is_some()
        || memchr::memmem::find(line, b"\"MESSAGE\"").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_kind() {
        assert_eq!(detect(b"ElfFile\0\0\0\0"), InputFormat::Evtx);
        assert_eq!(
            detect(b"#Software: Microsoft Internet Information Services 10.0\r\n"),
            InputFormat::W3c
        );
        assert_eq!(
            detect(b"\xef\xbb\xbf#Fields: date time c-ip\n"),
            InputFormat::W3c
        );
        assert_eq!(detect(b"[\n  {\"Id\": 4625}"), InputFormat::Json);
        assert_eq!(detect(b"{\"value\":[{\"id\":\"1\"}]}"), InputFormat::Json);
        assert_eq!(detect(b"  \n{\"type\":\"LOGIN\"}\n"), InputFormat::Json);
        assert_eq!(
            detect(b"{\"__CURSOR\":\"s=1\",\"MESSAGE\":\"Failed password\"}\n"),
            InputFormat::Syslog
        );
        assert_eq!(
            detect(b"Jun 12 08:58:35 mx sshd[1]: Failed password for root"),
            InputFormat::Syslog
        );
        // A comment that is no W3C directive is not taken for one.
        assert_eq!(detect(b"# just a comment\n"), InputFormat::Syslog);
        assert_eq!(detect(b""), InputFormat::Syslog);
        assert_eq!(detect_line(b"ElfFile\0"), InputFormat::Syslog);
    }

    #[test]
    fn names_round_trip() {
        for f in InputFormat::ALL {
            assert_eq!(InputFormat::from_name(f.as_str()), Some(*f));
        }
        assert_eq!(InputFormat::from_name("xml"), None);
    }
}
