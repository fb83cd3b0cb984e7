//! Splitting a byte stream into capped lines.
//!
//! Logs are read in large blocks and split with `memchr`, so a line costs no copy and
//! no allocation. A line longer than the cap is skipped whole without ever being held
//! in memory, and counted: an attacker who makes a server log a megabyte of username
//! must not make Portcullis buffer it.

use std::io::{self, Read};

/// Default cap on one line: far above any real authentication line.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

const BLOCK: usize = 256 * 1024;

/// One line as read: its bytes without the terminator, its 1-based number and the byte
/// offset of its start within the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The bytes, without `\n` (a `\r` before it is left for the envelope to strip).
    pub bytes: &'a [u8],
    /// 1-based line number.
    pub number: u64,
    /// Offset of the line's first byte.
    pub offset: u64,
}

/// A run of whole lines as read: every line ends with `\n`, except a last line at the
/// end of the stream that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// The bytes of the lines.
    pub bytes: &'a [u8],
    /// 1-based number of the first line.
    pub first_line: u64,
    /// Stream offset of the first line.
    pub offset: u64,
}

/// Reads lines from any `Read`, with a cap on line length.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    max_line: usize,
    number: u64,
    /// Stream offset of `buf[start]`.
    offset: u64,
    oversized: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader with the default line cap.
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, DEFAULT_MAX_LINE)
    }

    /// A reader that skips (and counts) lines longer than `max_line` bytes.
    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        let max_line = max_line.max(1);
        Self {
            inner,
            buf: vec![0; BLOCK.max(max_line + 1)],
            start: 0,
            end: 0,
            eof: false,
            max_line,
            number: 0,
            offset: 0,
            oversized: 0,
        }
    }

    /// Lines skipped because they were longer than the cap.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// The next run of whole lines, or `None` at the end of the stream.
    ///
    /// Lines that do not fit the buffer (longer than the cap and than a block) are
    /// skipped and counted here; shorter lines over the cap come through, and the
    /// caller skips and counts them ([`crate::LogParser::push_block`] does).
    pub fn next_block(&mut self) -> io::Result<Option<Block<'_>>> {
        let mut skipping = false;
        loop {
            let held = &self.buf[self.start..self.end];
            if skipping {
                if let Some(i) = memchr::memchr(b'\n', held) {
                    // The rest of an over-long line, dropped.
                    self.start += i + 1;
                    self.offset += i as u64 + 1;
                    self.number += 1;
                    self.oversized += 1;
                    skipping = false;
                    continue;
                }
            } else if let Some(i) = memchr::memrchr(b'\n', held) {
                let block = Block {
                    bytes: &self.buf[self.start..self.start + i + 1],
                    first_line: self.number + 1,
                    offset: self.offset,
                };
                self.number += memchr::memchr_iter(b'\n', block.bytes).count() as u64;
                self.offset += i as u64 + 1;
                self.start += i + 1;
                return Ok(Some(block));
            }
            if self.eof {
                if self.start == self.end {
                    if skipping {
                        self.number += 1;
                        self.oversized += 1;
                    }
                    return Ok(None);
                }
                let (s, e) = (self.start, self.end);
                let block = Block {
                    bytes: &self.buf[s..e],
                    first_line: self.number + 1,
                    offset: self.offset,
                };
                self.number += 1;
                self.offset += (e - s) as u64;
                self.start = e;
                if skipping {
                    self.oversized += 1;
                    return Ok(None);
                }
                return Ok(Some(block));
            }
            self.refill(&mut skipping)?;
        }
    }

    /// No newline in what is held: if it is already over the cap, drop it (the line is
    /// skipped up to its newline); else move it to the front. Then read more.
    fn refill(&mut self, skipping: &mut bool) -> io::Result<()> {
        if self.end - self.start > self.max_line {
            self.offset += (self.end - self.start) as u64;
            self.start = 0;
            self.end = 0;
            *skipping = true;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.fill()
    }

    fn fill(&mut self) -> io::Result<()> {
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }

    /// The next line, or `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        let mut skipping = false;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                let line_offset = self.offset;
                self.start += i + 1;
                self.offset += i as u64 + 1;
                self.number += 1;
                if skipping {
                    self.oversized += 1;
                    skipping = false;
                    continue;
                }
                if i > self.max_line {
                    self.oversized += 1;
                    continue;
                }
                return Ok(Some(RawLine {
                    bytes: &self.buf[line_start..line_start + i],
                    number: self.number,
                    offset: line_offset,
                }));
            }
            if self.eof {
                if self.start == self.end {
                    if skipping {
                        self.number += 1;
                        self.oversized += 1;
                    }
                    return Ok(None);
                }
                // A last line without a terminator.
                let (s, e) = (self.start, self.end);
                let line_offset = self.offset;
                self.offset += (e - s) as u64;
                self.start = e;
                self.number += 1;
                if skipping || e - s > self.max_line {
                    self.oversized += 1;
                    return Ok(None);
                }
                return Ok(Some(RawLine {
                    bytes: &self.buf[s..e],
                    number: self.number,
                    offset: line_offset,
                }));
            }
            self.refill(&mut skipping)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, to exercise block edges.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn collect(input: &[u8], max: usize, chunk: usize) -> (Vec<(Vec<u8>, u64, u64)>, u64) {
        let mut r = LineReader::with_max_line(Dribble(input, chunk), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.bytes.to_vec(), l.number, l.offset));
        }
        (out, r.oversized())
    }

    #[test]
    fn numbers_and_offsets() {
        for chunk in [1, 3, 1 << 20] {
            let (lines, over) = collect(b"ab\n\ncd\r\nlast", 100, chunk);
            assert_eq!(over, 0);
            assert_eq!(
                lines,
                vec![
                    (b"ab".to_vec(), 1, 0),
                    (b"".to_vec(), 2, 3),
                    (b"cd\r".to_vec(), 3, 4),
                    (b"last".to_vec(), 4, 8)
                ]
            );
        }
    }

    #[test]
    fn oversized_lines_are_skipped_and_counted() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * BLOCK + 17));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 40));
        for chunk in [7, 4096, 1 << 22] {
            let (lines, over) = collect(&input, 32, chunk);
            assert_eq!(over, 2, "chunk {chunk}");
            let after_offset = 6 + 3 * BLOCK as u64 + 17 + 1;
            assert_eq!(
                lines,
                vec![
                    (b"short".to_vec(), 1, 0),
                    (b"after".to_vec(), 3, after_offset)
                ]
            );
        }
    }

    fn collect_blocks(input: &[u8], max: usize, chunk: usize) -> (Vec<(Vec<u8>, u64, u64)>, u64) {
        let mut r = LineReader::with_max_line(Dribble(input, chunk), max);
        let mut lines = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            let (mut n, mut off) = (b.first_line, b.offset);
            for l in b.bytes.split_inclusive(|c| *c == b'\n') {
                let text = l.strip_suffix(b"\n").unwrap_or(l);
                if text.len() <= max {
                    lines.push((text.to_vec(), n, off));
                }
                n += 1;
                off += l.len() as u64;
            }
        }
        (lines, r.oversized())
    }

    #[test]
    fn blocks_agree_with_lines() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * BLOCK + 17));
        input.extend(b"\nafter\n\nab\r\n");
        input.extend(std::iter::repeat_n(b'y', 40));
        input.extend(b"\nlast");
        for chunk in [1, 7, 4096, 1 << 22] {
            for max in [32, 100] {
                let (lines, over) = collect(&input, max, chunk);
                let (blocks, block_over) = collect_blocks(&input, max, chunk);
                assert_eq!(blocks, lines, "chunk {chunk} max {max}");
                // Lines over the cap that fit a block are left to the caller.
                assert!(
                    block_over <= over && over - block_over <= 1,
                    "chunk {chunk} max {max}"
                );
            }
        }
    }

    #[test]
    fn binary_and_nul_bytes_pass_through() {
        let (lines, _) = collect(b"\0\xff\xfe\n\x1b[31m\n", 100, 2);
        assert_eq!(lines[0].0, b"\0\xff\xfe");
        assert_eq!(lines[1].0, b"\x1b[31m");
    }
}
