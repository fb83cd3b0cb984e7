//! The literal prefilter: which lines are worth parsing at all.
//!
//! Most lines of a mail server's log are deliveries and queue chatter. One
//! Aho-Corasick (SIMD Teddy) scan over a whole block of lines finds the few that
//! contain a literal every usable line has; only those are copied out, with their line
//! numbers and offsets, for the parsers. The scan needs no parser state, so it can run
//! on its own thread ahead of the parsing.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use std::sync::Arc;

use crate::driver::Stats;
use crate::reader::Block;
use crate::rules::Rules;

/// Literals one of which every line a service parser can use contains, and every line
/// that looks like authentication (so that unknown formats are still counted): the
/// service markers, and case-safe stems of the auth phrases (`uthentication` for
/// `Authentication failure` and `authentication failed`). A line with none of them is
/// not looked at further. They are chosen to miss the commonest noise of a mail log,
/// such as Postfix's `disconnect … auth=0/1` and `lost connection after AUTH`.
///
/// The order matters for speed, not for what is found. The SIMD (Teddy) searcher puts
/// literal `i` in bucket `7 - i % 8` (unless one with the same first nibbles is there
/// already: aho-corasick 1.1, `packed/teddy/generic.rs`) and flags a position when its
/// three bytes fit a bucket's nibble masks, the union over the bucket's literals; every
/// flag on a noise line is a verification that fails. This order was found by measuring instructions on
/// noise lines (callgrind, `benches/RESULTS.md`): about 40 % fewer than the order the
/// literals were written in. After adding or removing a literal, measure again.
const PREFILTER: &[&str] = &[
    "dovecot-auth",
    // OpenVPN `VERIFY ERROR`, `TLS Auth Error`, `Peer Connection Initiated`.
    "VERIFY ERROR",
    "assword",
    // Courier `LOGIN FAILED`, `LOGIN, user=`.
    "LOGIN",
    "uthentication",
    "TLS Auth Error",
    // Exim authenticated submissions (`A=driver:user`).
    " A=",
    // Roundcube `Login failed for`, `Failed login for`, `Successful login for`;
    // FreeRADIUS `Login OK`, `Login incorrect`.
    "Login ",
    "login for",
    "llegal user",
    "SASL",
    // Apache authorization and digest failures.
    "igest",
    "uthorization",
    "pam_unix",
    "pam(",
    // Exim failures.
    "authenticator failed",
    "sshd",
    "auth: ",
    "SOGoRootPage",
    "ccepted ",
    // nginx and Apache `… not found`.
    "not found",
    "nvalid user",
    "sasl",
    "auth-worker",
    // Dovecot's `imap-login: `, Cyrus' `login:` and `badlogin:`.
    "login: ",
    "Peer Connection Initiated",
    "auth(",
];

/// Lines a [`Prefilter`] picked, copied out of their blocks, and the counts of the
/// lines it read.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    bytes: Vec<u8>,
    /// (end in `bytes`, line number, stream offset) of each picked line.
    lines: Vec<(usize, u64, u64)>,
    /// Lines read, lines with NUL bytes and lines skipped for length; the other counts
    /// are the parser's.
    pub stats: Stats,
}

impl Candidates {
    /// Empties the batch (keeping its memory).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.lines.clear();
        self.stats = Stats::default();
    }

    /// Lines picked.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True if no line was picked.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes the batch can hold without growing (its memory, kept by [`Self::clear`]).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Bytes held.
    pub fn bytes_held(&self) -> usize {
        self.bytes.len()
    }

    /// (line, line number, offset) of each picked line, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64, u64)> {
        let mut start = 0;
        self.lines.iter().map(move |&(end, number, offset)| {
            let line = &self.bytes[start..end];
            start = end;
            (line, number, offset)
        })
    }

    pub(crate) fn push(&mut self, line: &[u8], number: u64, offset: u64) {
        self.bytes.extend_from_slice(line);
        self.lines.push((self.bytes.len(), number, offset));
    }
}

/// Picks the lines worth parsing.
#[derive(Debug, Clone)]
pub struct Prefilter {
    literals: AhoCorasick,
    /// Custom rules: a line one of them may match is a candidate too.
    rules: Option<Arc<Rules>>,
    /// Scratch: line ends of the current block.
    line_ends: Vec<usize>,
}

impl Default for Prefilter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prefilter {
    /// The prefilter for every service Portcullis parses.
    pub fn new() -> Self {
        let literals = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(PREFILTER)
            // A constant pattern set; building it cannot fail.
            .unwrap_or_else(|e| unreachable!("constant patterns: {e}"));
        Self {
            literals,
            rules: None,
            line_ends: Vec::new(),
        }
    }

    /// The prefilter for the built-in parsers and these custom rules.
    pub fn with_rules(rules: Arc<Rules>) -> Self {
        Self {
            rules: (!rules.is_empty()).then_some(rules),
            ..Self::new()
        }
    }

    /// Whether one line gets past the prefilter.
    pub fn is_candidate(&self, line: &[u8]) -> bool {
        self.literals.is_match(line) || self.rules.as_ref().is_some_and(|r| r.may_match(line))
    }

    /// Appends every line of the block to `out` (the documents whose every line is a
    /// record, such as W3C logs), counting like [`Self::scan`].
    pub fn take_all(&mut self, block: &Block<'_>, max_line: usize, out: &mut Candidates) {
        let bytes = block.bytes;
        let mut start = 0;
        let mut i = 0u64;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |n| start + n);
            let line = &bytes[start..end];
            out.stats.lines += 1;
            if line.len() > max_line {
                out.stats.oversized_lines += 1;
            } else {
                if memchr::memchr(0, line).is_some() {
                    out.stats.nul_lines += 1;
                }
                out.push(line, block.first_line + i, block.offset + start as u64);
            }
            i += 1;
            start = end + 1;
        }
    }

    /// Appends the block's candidate lines to `out` and counts the block's lines, lines
    /// with NUL bytes and lines longer than `max_line` (skipped).
    pub fn scan(&mut self, block: &Block<'_>, max_line: usize, out: &mut Candidates) {
        let bytes = block.bytes;
        let ends = &mut self.line_ends;
        ends.clear();
        ends.extend(memchr::memchr_iter(b'\n', bytes));
        if bytes.last().is_some_and(|b| *b != b'\n') {
            ends.push(bytes.len());
        }
        let ends = &self.line_ends;
        out.stats.lines += ends.len() as u64;
        let line_of = |pos: usize| ends.partition_point(|e| *e < pos);
        let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] + 1 };
        // Lines with NUL bytes (rare): count each once, unless skipped for length.
        let mut last_nul_line = usize::MAX;
        for p in memchr::memchr_iter(0, bytes) {
            let i = line_of(p);
            if i != last_nul_line {
                last_nul_line = i;
                if ends[i] - start_of(i) <= max_line {
                    out.stats.nul_lines += 1;
                }
            }
        }
        if let Some(rules) = &self.rules {
            // Custom rules: each line on its own (a regex set cannot skip ahead like
            // the literals).
            for (i, &end) in ends.iter().enumerate() {
                let start = start_of(i);
                let line = &bytes[start..end];
                if line.len() > max_line {
                    out.stats.oversized_lines += 1;
                } else if self.literals.is_match(line) || rules.may_match(line) {
                    out.push(
                        line,
                        block.first_line + i as u64,
                        block.offset + start as u64,
                    );
                }
            }
            return;
        }
        let mut from = 0;
        while from < bytes.len() {
            let Some(m) = self
                .literals
                .find(Input::new(bytes).span(from..bytes.len()))
            else {
                break;
            };
            let i = line_of(m.start());
            let (start, end) = (start_of(i), ends[i]);
            from = end + 1;
            let line = &bytes[start..end];
            if line.len() > max_line {
                out.stats.oversized_lines += 1;
            } else {
                out.push(
                    line,
                    block.first_line + i as u64,
                    block.offset + start as u64,
                );
            }
        }
        // Over-long lines the literals did not pick are counted too.
        for (i, &e) in ends.iter().enumerate() {
            let start = start_of(i);
            if e - start > max_line && !self.literals.is_match(&bytes[start..e]) {
                out.stats.oversized_lines += 1;
            }
        }
    }
}
