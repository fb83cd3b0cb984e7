//! Reading one line of input: the forms of the Pwned Passwords download and plain
//! password lists. Pure: bytes in, a hash and a count (or a reason to skip) out.

use crate::hash::{Hash, HashKind, decode_hex, nibble};

/// How the lines of one input are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineForm {
    /// `HASH:COUNT` (or a bare `HASH`, count 1): the single-file download.
    Hash(HashKind),
    /// `SUFFIX:COUNT` in a file named by the 5-digit prefix (a 20-bit number).
    Suffix(HashKind, u32),
    /// One password per line, hashed with the kind given.
    Plain(HashKind),
}

impl LineForm {
    /// The hash kind the lines give.
    pub fn kind(self) -> HashKind {
        match self {
            LineForm::Hash(k) | LineForm::Suffix(k, _) | LineForm::Plain(k) => k,
        }
    }
}

/// What one line gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A hash and how often it was seen.
    Record(Hash, u32),
    /// An empty line: skipped, counted apart from malformed ones.
    Empty,
    /// A line that is not of the expected form: skipped and counted.
    Malformed,
}

/// Reads one line (without its `\n`; a trailing `\r` is dropped here).
pub fn parse_line(line: &[u8], form: LineForm) -> Line {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match form {
        LineForm::Plain(kind) => {
            if line.is_empty() {
                return Line::Empty;
            }
            match kind.hash_password(line) {
                Some(h) => Line::Record(h, 1),
                None => Line::Malformed,
            }
        }
        LineForm::Hash(kind) => {
            let line = line.trim_ascii();
            if line.is_empty() {
                return Line::Empty;
            }
            let (hex, count) = split_count(line);
            let mut bytes = [0u8; 20];
            match count {
                Some(count) if decode_hex(hex, &mut bytes[..kind.byte_len()]) => {
                    Line::Record(Hash(bytes), count)
                }
                _ => Line::Malformed,
            }
        }
        LineForm::Suffix(kind, prefix) => {
            let line = line.trim_ascii();
            if line.is_empty() {
                return Line::Empty;
            }
            let (hex, count) = split_count(line);
            if hex.len() + 5 != kind.hex_len() {
                return Line::Malformed;
            }
            let mut full = [0u8; 40];
            full[..5].copy_from_slice(&prefix_hex(prefix));
            full[5..5 + hex.len()].copy_from_slice(hex);
            let mut bytes = [0u8; 20];
            match count {
                Some(count)
                    if decode_hex(&full[..kind.hex_len()], &mut bytes[..kind.byte_len()]) =>
                {
                    Line::Record(Hash(bytes), count)
                }
                _ => Line::Malformed,
            }
        }
    }
}

/// Splits `HEX:COUNT`; a bare `HEX` counts once. The count is `None` when it is not a
/// positive decimal number; counts past `u32::MAX` saturate.
fn split_count(line: &[u8]) -> (&[u8], Option<u32>) {
    let Some(colon) = line.iter().position(|&c| c == b':') else {
        return (line, Some(1));
    };
    let (hex, digits) = (&line[..colon], &line[colon + 1..]);
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return (hex, None);
    }
    let value = digits.iter().fold(0u64, |v, &d| {
        v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    match value {
        0 => (hex, None),
        v => (hex, Some(u32::try_from(v).unwrap_or(u32::MAX))),
    }
}

/// The five upper-case hex digits of a 20-bit prefix.
pub fn prefix_hex(prefix: u32) -> [u8; 5] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = [0u8; 5];
    for (i, o) in out.iter_mut().enumerate() {
        *o = DIGITS[((prefix >> (16 - 4 * i)) & 15) as usize];
    }
    out
}

/// Five hexadecimal digits (either case) as a 20-bit prefix.
pub fn parse_prefix(text: &[u8]) -> Option<u32> {
    if text.len() != 5 {
        return None;
    }
    text.iter()
        .try_fold(0u32, |v, &c| Some((v << 4) | u32::from(nibble(c)?)))
}

/// The prefix a per-prefix file of the download is named by: `0A1B2` or `0A1B2.txt`.
pub fn prefix_of_file_name(name: &str) -> Option<u32> {
    let stem = name.split('.').next().unwrap_or(name);
    parse_prefix(stem.as_bytes())
}

/// What the first lines of an input look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Whole hashes of this kind, with or without counts.
    Hashes(HashKind),
    /// Hash suffixes (35 or 27 hex digits) of this kind.
    Suffixes(HashKind),
    /// Anything else: a password list.
    Plain,
}

/// Looks at the first (up to 64) non-empty lines of `head`: when at least half of them
/// are hex hashes of one length (followed by nothing or by `:` and digits), the input
/// is a hash list of that length; a few damaged lines do not turn it into a password
/// list (they are counted as malformed when read).
pub fn sniff(head: &[u8]) -> Sniffed {
    // The last piece may be a cut line when head is a prefix of the input.
    let complete = match head.iter().rposition(|&c| c == b'\n') {
        Some(end) => &head[..end],
        None => head,
    };
    let mut lengths = [0usize; 4]; // 40, 32, 35, 27 digits
    let mut seen = 0;
    for line in complete
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).trim_ascii())
        .filter(|l| !l.is_empty())
        .take(64)
    {
        seen += 1;
        let (hex, digits) = match line.iter().position(|&c| c == b':') {
            Some(colon) => (&line[..colon], &line[colon + 1..]),
            None => (line, &b""[..]),
        };
        if !hex.iter().all(u8::is_ascii_hexdigit) || !digits.iter().all(u8::is_ascii_digit) {
            continue;
        }
        if let Some(slot) = [40, 32, 35, 27].iter().position(|&l| l == hex.len()) {
            lengths[slot] += 1;
        }
    }
    let Some((slot, &most)) = lengths.iter().enumerate().max_by_key(|(_, n)| **n) else {
        return Sniffed::Plain;
    };
    if most == 0 || most * 2 < seen {
        return Sniffed::Plain;
    }
    match slot {
        0 => Sniffed::Hashes(HashKind::Sha1),
        1 => Sniffed::Hashes(HashKind::Ntlm),
        2 => Sniffed::Suffixes(HashKind::Sha1),
        _ => Sniffed::Suffixes(HashKind::Ntlm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{ntlm, sha1};

    const PASSWORD_SHA1: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";

    fn record(line: &str, form: LineForm) -> Option<(Hash, u32)> {
        match parse_line(line.as_bytes(), form) {
            Line::Record(h, c) => Some((h, c)),
            _ => None,
        }
    }

    #[test]
    fn hash_lines_lf_and_crlf() {
        let want = Some((Hash::new(&sha1(b"password")), 10_434_004));
        let form = LineForm::Hash(HashKind::Sha1);
        assert_eq!(record(&format!("{PASSWORD_SHA1}:10434004"), form), want);
        assert_eq!(record(&format!("{PASSWORD_SHA1}:10434004\r"), form), want);
        let lower = PASSWORD_SHA1.to_ascii_lowercase();
        assert_eq!(record(&format!("{lower}:10434004"), form), want);
        assert_eq!(
            record(PASSWORD_SHA1, form),
            Some((Hash::new(&sha1(b"password")), 1))
        );
    }

    #[test]
    fn malformed_hash_lines() {
        let form = LineForm::Hash(HashKind::Sha1);
        for bad in [
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD:3", // 39 digits
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8X:3", // 41
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FDG:3", // not hex
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:", // no count
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:-1",
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:0",
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1x",
            "8846F7EAEE8FB117AD06BDD830B7586C:1", // NTLM in a SHA-1 index
        ] {
            assert_eq!(parse_line(bad.as_bytes(), form), Line::Malformed, "{bad}");
        }
        assert_eq!(parse_line(b"", form), Line::Empty);
        assert_eq!(parse_line(b"\r", form), Line::Empty);
    }

    #[test]
    fn huge_counts_saturate() {
        let line = format!("{PASSWORD_SHA1}:99999999999999999999");
        assert_eq!(
            record(&line, LineForm::Hash(HashKind::Sha1)).map(|r| r.1),
            Some(u32::MAX)
        );
    }

    #[test]
    fn ntlm_lines() {
        let form = LineForm::Hash(HashKind::Ntlm);
        assert_eq!(
            record("8846F7EAEE8FB117AD06BDD830B7586C:3", form),
            Some((Hash::new(&ntlm("password")), 3))
        );
        let suffix = LineForm::Suffix(HashKind::Ntlm, parse_prefix(b"8846F").unwrap());
        assert_eq!(
            record("7EAEE8FB117AD06BDD830B7586C:3\r", suffix),
            Some((Hash::new(&ntlm("password")), 3))
        );
    }

    #[test]
    fn suffix_lines() {
        let form = LineForm::Suffix(HashKind::Sha1, parse_prefix(b"5baa6").unwrap());
        assert_eq!(
            record("1E4C9B93F3F0682250B6CF8331B7EE68FD8:7", form),
            Some((Hash::new(&sha1(b"password")), 7))
        );
        assert_eq!(
            parse_line(PASSWORD_SHA1.as_bytes(), form),
            Line::Malformed,
            "a whole hash in a prefix file"
        );
    }

    #[test]
    fn plain_lines() {
        let form = LineForm::Plain(HashKind::Sha1);
        assert_eq!(
            record("password\r", form),
            Some((Hash::new(&sha1(b"password")), 1))
        );
        assert_eq!(
            record(" pass word ", form),
            Some((Hash::new(&sha1(b" pass word ")), 1)),
            "spaces are part of a password"
        );
        assert_eq!(parse_line(b"", form), Line::Empty);
        let ntlm_form = LineForm::Plain(HashKind::Ntlm);
        assert_eq!(
            record("password", ntlm_form),
            Some((Hash::new(&ntlm("password")), 1))
        );
        assert_eq!(parse_line(b"\xff\xfe", ntlm_form), Line::Malformed);
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix(b"00000"), Some(0));
        assert_eq!(parse_prefix(b"fffff"), Some(0xFFFFF));
        assert_eq!(parse_prefix(b"FFFFG"), None);
        assert_eq!(parse_prefix(b"FFFF"), None);
        assert_eq!(&prefix_hex(0x5BAA6), b"5BAA6");
        assert_eq!(prefix_of_file_name("0A1B2.txt"), Some(0x0A1B2));
        assert_eq!(prefix_of_file_name("0A1B2"), Some(0x0A1B2));
        assert_eq!(prefix_of_file_name("README.md"), None);
    }

    #[test]
    fn sniffing() {
        let sha = format!("{PASSWORD_SHA1}:3\r\n{PASSWORD_SHA1}:4\r\n");
        assert_eq!(sniff(sha.as_bytes()), Sniffed::Hashes(HashKind::Sha1));
        assert_eq!(
            sniff(b"8846F7EAEE8FB117AD06BDD830B7586C:1\n"),
            Sniffed::Hashes(HashKind::Ntlm)
        );
        assert_eq!(
            sniff(b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:7\n"),
            Sniffed::Suffixes(HashKind::Sha1)
        );
        assert_eq!(sniff(b"password\n123456\n"), Sniffed::Plain);
        assert_eq!(sniff(b"deadbeef\npassword\n"), Sniffed::Plain);
        let damaged = format!("{PASSWORD_SHA1}:3\nnot a hash\n{PASSWORD_SHA1}:0\n");
        assert_eq!(sniff(damaged.as_bytes()), Sniffed::Hashes(HashKind::Sha1));
        let mostly_words = format!("{PASSWORD_SHA1}\npassword\n123456\n");
        assert_eq!(sniff(mostly_words.as_bytes()), Sniffed::Plain);
        assert_eq!(sniff(b""), Sniffed::Plain);
    }
}
