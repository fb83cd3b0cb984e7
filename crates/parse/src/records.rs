//! Splitting a JSON stream into records without parsing it, so that a multi-gigabyte
//! export is read in bounded memory.
//!
//! Exports come in four shapes: a JSON array (`Get-WinEvent | ConvertTo-Json`, the
//! Keycloak admin API), JSON lines (winlogbeat, Log Analytics exports), concatenated
//! objects, and a Graph page (`{"value": [...]}`, one top-level object). A record is a
//! top-level object or an object directly inside a top-level array; a Graph page is
//! therefore one record, which the JSON reader opens ([`crate::jsonlog`]). The
//! splitter tracks only strings, escapes and nesting; each record is copied out with the
//! line and byte offset where it begins, for evidence. A string running into a newline
//! (which JSON forbids) marks a record cut short, and reading resumes on the next line,
//! so one truncated JSON line costs only itself. A record longer than the cap is
//! skipped and counted; bytes that cannot start a record are skipped to the end of
//! their line and counted as malformed. Nothing here can panic on any input.

use crate::prefilter::Candidates;

/// The default cap on one record: a Graph page of 1,000 sign-ins fits.
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024 * 1024;

/// Splits a byte stream, fed in chunks of any size, into JSON records.
#[derive(Debug)]
pub struct RecordSplitter {
    max_record: usize,
    /// Inside a top-level `[`.
    top_array: bool,
    /// Inside a record: its nesting depth (at least 1).
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Skipping a malformed stretch up to the end of its line.
    junk: bool,
    /// The record being read is over the cap: its bytes are dropped.
    oversized: bool,
    buf: Vec<u8>,
    record_line: u64,
    record_offset: u64,
    /// The 1-based line of the next byte.
    line: u64,
    /// The stream offset of the next byte.
    offset: u64,
    /// The last byte seen was not a newline (for counting the last line).
    partial_line: bool,
}

impl Default for RecordSplitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD)
    }
}

impl RecordSplitter {
    /// A splitter that skips records longer than `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        Self {
            max_record,
            top_array: false,
            depth: 0,
            in_string: false,
            escape: false,
            junk: false,
            oversized: false,
            buf: Vec::new(),
            record_line: 0,
            record_offset: 0,
            line: 1,
            offset: 0,
            partial_line: false,
        }
    }

    /// Reads the next chunk and appends the records it completes to `out` (each with
    /// the line number and offset of its first byte), counting lines read, oversized
    /// and malformed records in `out.stats`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Candidates) {
        let mut i = 0;
        while i < bytes.len() {
            if self.depth > 0 {
                i = self.record_bytes(bytes, i, out);
                continue;
            }
            let b = bytes[i];
            match b {
                b'\n' => {
                    self.end_line(out);
                    self.junk = false;
                }
                _ if self.junk => {}
                b' ' | b'\t' | b'\r' => {}
                // A byte-order mark before the first value.
                0xef | 0xbb | 0xbf if self.offset + (i as u64) < 3 => {}
                b'[' if !self.top_array => self.top_array = true,
                b']' if self.top_array => self.top_array = false,
                b',' if self.top_array => {}
                b'{' => {
                    self.buf.clear();
                    self.oversized = false;
                    self.record_line = self.line;
                    self.record_offset = self.offset + i as u64;
                    // `record_bytes` takes the brace itself.
                    i = self.record_bytes(bytes, i, out);
                    continue;
                }
                _ => {
                    out.stats.malformed_records += 1;
                    self.junk = true;
                }
            }
            self.partial_line = b != b'\n';
            i += 1;
        }
        self.offset += bytes.len() as u64;
    }

    /// End of input: a record still open was cut short.
    pub fn finish(&mut self, out: &mut Candidates) {
        if self.depth > 0 {
            out.stats.malformed_records += 1;
            self.depth = 0;
            self.buf.clear();
        }
        if self.partial_line {
            out.stats.lines += 1;
            self.partial_line = false;
        }
    }

    fn end_line(&mut self, out: &mut Candidates) {
        self.line += 1;
        out.stats.lines += 1;
    }

    fn abort(&mut self, piece: &[u8], out: &mut Candidates) {
        for _ in memchr::memchr_iter(b'\n', piece) {
            self.end_line(out);
        }
        out.stats.malformed_records += 1;
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.oversized = false;
        self.buf.clear();
    }

    /// Reads record bytes from `bytes[from..]`; returns where it stopped (the end of
    /// the chunk or just after the record's closing brace).
    fn record_bytes(&mut self, bytes: &[u8], from: usize, out: &mut Candidates) -> usize {
        let mut j = from;
        let mut done = false;
        while j < bytes.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    j += 1;
                    continue;
                }
                match memchr::memchr3(b'"', b'\\', b'\n', &bytes[j..]) {
                    None => j = bytes.len(),
                    Some(k) => {
                        j += k;
                        match bytes[j] {
                            b'\\' => self.escape = true,
                            b'"' => self.in_string = false,
                            _ => {
                                // JSON strings hold no raw newline: the record was
                                // cut short (a truncated JSON line). Drop it and read
                                // on from the next line.
                                self.abort(&bytes[from..j], out);
                                return j;
                            }
                        }
                        j += 1;
                    }
                }
                continue;
            }
            match bytes[j] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        j += 1;
                        done = true;
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let piece = &bytes[from..j];
        for _ in memchr::memchr_iter(b'\n', piece) {
            self.end_line(out);
        }
        self.partial_line = piece.last().is_some_and(|b| *b != b'\n') || self.partial_line;
        if !self.oversized {
            if self.buf.len() + piece.len() > self.max_record {
                self.oversized = true;
                self.buf = Vec::new();
            } else {
                self.buf.extend_from_slice(piece);
            }
        }
        if done {
            if self.oversized {
                out.stats.oversized_lines += 1;
            } else {
                out.push(&self.buf, self.record_line, self.record_offset);
            }
            self.buf.clear();
            self.oversized = false;
            self.in_string = false;
            self.escape = false;
        }
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<(String, u64, u64)>, Candidates) {
        let mut s = RecordSplitter::new(max);
        let mut out = Candidates::default();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        let got = out
            .iter()
            .map(|(b, l, o)| (String::from_utf8_lossy(b).into_owned(), l, o))
            .collect();
        (got, out)
    }

    #[test]
    fn arrays_lines_and_pages() {
        let text = b"[\n  {\"a\": \"x}\\\"{\"},\n  {\"b\": [1, {\"c\": 2}]}\n]\n";
        let (got, out) = split(&[text], 1 << 20);
        assert_eq!(
            got,
            vec![
                ("{\"a\": \"x}\\\"{\"}".to_owned(), 2, 4),
                ("{\"b\": [1, {\"c\": 2}]}".to_owned(), 3, 22),
            ]
        );
        assert_eq!(out.stats.lines, 4);
        let (got, _) = split(&[b"{\"x\":1}\n{\"y\":2}{\"z\":3}\n"], 1 << 20);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].1, 2);
        let (got, _) = split(&[b"{\"value\":[{\"id\":1},{\"id\":2}]}"], 1 << 20);
        assert_eq!(got.len(), 1, "a Graph page is one record");
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let text: &[u8] = b"[{\"s\":\"a\\\\\"},{\"t\":\"\\\"]\"}]\n{\"u\":\"v\"}\n";
        let (whole, _) = split(&[text], 1 << 20);
        for cut in 0..text.len() {
            let (parts, _) = split(&[&text[..cut], &text[cut..]], 1 << 20);
            assert_eq!(parts, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&bytes, 1 << 20).0, whole);
    }

    #[test]
    fn junk_oversized_and_truncated_records_are_counted() {
        let (got, out) = split(
            &[b"garbage {\"no\":1}\n{\"ok\":1}\n{\"big\":\"0123456789\"}\n{\"a\":\"trunc\n{\"b\":2}\n{\"cut\":"],
            12,
        );
        assert_eq!(
            got,
            vec![
                ("{\"ok\":1}".to_owned(), 2, 17),
                ("{\"b\":2}".to_owned(), 5, 59)
            ]
        );
        assert_eq!(
            out.stats.malformed_records, 3,
            "garbage line, truncated line, cut record"
        );
        assert_eq!(out.stats.oversized_lines, 1);
    }
}
