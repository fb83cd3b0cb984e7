//! A JSON record parsed sparsely onto a flat tape of values borrowed from its bytes.
//!
//! The JSON readers look at a few keys of large records (an Entra sign-in of ~1 KB
//! gives six values). Parsing a record into a `serde_json::Value` builds every kept
//! value as an owned `String` in a `BTreeMap`, then frees it all again, and serde's
//! generic machinery costs more per token than the reading does. Here only the object
//! keys a [`Keys`] names are kept, at every depth; the rest of the record is checked as
//! JSON by a scanner made for skipping, and never built. Its strings are scanned
//! sixteen bytes a step (the private `jsonstr` module); the compact shapes
//! `"key":value` and `,"` are taken with one look, and whitespace is skipped only where
//! there is some.
//!
//! The kept values are written in pre-order onto a [`Tape`] ([`tape`]): one small
//! `Copy` entry each, strings as byte ranges of the record, containers with the index
//! one past their contents so that stepping over a sibling is one look, and each
//! object's kept keys listed together in a table beside the entries, so that a lookup
//! reads a few keys and nothing else. A tree of vectors would allocate for every
//! object and array of every record and free them all again (for a winlogbeat event,
//! a tenth of the work); the tape's vectors are cleared and reused from record to
//! record, with one buffer for unescaped strings and one vector for numbers beside
//! them, so that a usual record allocates nothing.
//!
//! What is accepted is exactly what `serde_json::from_slice` accepts when it skips the
//! same keys (RFC 8259 with `serde_json`'s limits): strings that are kept (and every
//! key) must be UTF-8, skipped ones need only be well formed (no control characters,
//! valid escapes); kept containers nest at most 127 deep, skipped ones without limit.
//! Kept strings with escapes and kept numbers are handed to `serde_json` itself, so
//! their values are its values. A differential property test holds the two together.
//!
//! The readers are written once against [`JsonNode`], a by-value view that both the
//! tape's [`Node`] and `&serde_json::Value` implement, so they read a value parsed
//! elsewhere (a whole `Value`) exactly as they read a record parsed here.

pub mod tape;

use serde::de::{DeserializeSeed, Visitor};
use serde_json::{Number, Value};

use crate::jsonstr::next_special;
pub use tape::{Doc, Items, Members, Node, Tape};
use tape::{Entry, Member};

/// What the JSON readers need of a parsed value: a handle copied freely, whose text
/// lives as long as `'t`.
pub trait JsonNode<'t>: Copy {
    /// The items of an array, in order.
    type Items: Iterator<Item = Self>;
    /// The member `key` of an object (the last one, if the key is repeated); `None`
    /// for anything that is not an object.
    fn get(self, key: &str) -> Option<Self>;
    /// The text of a string.
    fn as_str(self) -> Option<&'t str>;
    /// The number, if this is one.
    fn as_number(self) -> Option<&'t Number>;
    /// The items of an array.
    fn items(self) -> Option<Self::Items>;
    /// Whether this is an object.
    fn is_object(self) -> bool;
    /// How many different keys an object has, counting no further than `limit + 1`.
    fn object_keys_up_to(self, limit: usize) -> Option<usize>;
}

impl<'t> JsonNode<'t> for &'t Value {
    type Items = std::slice::Iter<'t, Value>;

    fn get(self, key: &str) -> Option<Self> {
        Value::get(self, key)
    }

    fn as_str(self) -> Option<&'t str> {
        Value::as_str(self)
    }

    fn as_number(self) -> Option<&'t Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    fn items(self) -> Option<Self::Items> {
        Value::as_array(self).map(|items| items.iter())
    }

    fn is_object(self) -> bool {
        Value::is_object(self)
    }

    fn object_keys_up_to(self, limit: usize) -> Option<usize> {
        Some(self.as_object()?.len().min(limit.saturating_add(1)))
    }
}

/// Which object keys a [`Tape`] keeps: a fixed list and a few more.
///
/// Every key of a record is looked up here, so the lookup is a hash table: one hash of
/// the key's length and three of its bytes, and (almost always) one comparison at most.
/// A long chain of byte-string comparisons cost a tenth of a winlogbeat record's time.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The kept keys, without repeats.
    keys: Vec<Box<[u8]>>,
    /// Open addressing: `1 + ` the index in `keys` of the key whose hash leads here
    /// (or to a slot before it), 0 for none. At most a quarter of the slots are used,
    /// so a search ends soon at an empty one.
    slots: Box<[u32]>,
    /// `32 - log2(slots.len())`: the hash's top bits pick a slot.
    shift: u32,
}

impl Keys {
    /// The keys of `builtin` and those of `extra`.
    pub fn new(builtin: &[&str], extra: impl IntoIterator<Item = Box<str>>) -> Self {
        let mut keys: Vec<Box<[u8]>> = builtin
            .iter()
            .map(|k| Box::from(k.as_bytes()))
            .chain(extra.into_iter().map(|k| k.into_boxed_bytes()))
            .collect();
        keys.sort();
        keys.dedup();
        let bits = (keys.len() * 4)
            .next_power_of_two()
            .max(64)
            .trailing_zeros();
        let mut slots = vec![0u32; 1 << bits].into_boxed_slice();
        let shift = 32 - bits;
        let mask = slots.len() - 1;
        for (i, k) in keys.iter().enumerate() {
            let mut s = Self::slot(k, shift);
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            // Fewer keys than slots, and slots fit in memory: no wrap.
            slots[s] = i as u32 + 1;
        }
        Self { keys, slots, shift }
    }

    /// Where the search for `key` starts.
    #[inline(always)]
    fn slot(key: &[u8], shift: u32) -> usize {
        let byte = |b: Option<&u8>| u32::from(b.copied().unwrap_or(0));
        let h = (key.len() as u32)
            ^ (byte(key.first()) << 8)
            ^ (byte(key.get(key.len() / 2)) << 16)
            ^ (byte(key.last()) << 24);
        (h.wrapping_mul(0x9E37_79B1) >> shift) as usize
    }

    // Inlined: called once for every key of every record, from one place.
    #[inline(always)]
    fn keeps(&self, key: &[u8]) -> bool {
        let mask = self.slots.len() - 1;
        let mut s = Self::slot(key, self.shift);
        loop {
            match self.slots[s] {
                0 => return false,
                i => {
                    if same_bytes(&self.keys[i as usize - 1], key) {
                        return true;
                    }
                }
            }
            s = (s + 1) & mask;
        }
    }
}

/// `a == b` for the short byte strings keys are, compared eight bytes a step inline
/// (a slice comparison is a call to `memcmp`, which costs more than a key's bytes).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        // Four to seven bytes: the first four and the last four; fewer: each byte is
        // the first, the middle or the last.
        return match (a.first_chunk::<4>(), b.first_chunk::<4>()) {
            (Some(x), Some(y)) => x == y && a.last_chunk::<4>() == b.last_chunk::<4>(),
            _ => a.iter().zip(b).all(|(x, y)| x == y),
        };
    }
    // Eight bytes a step; the last step ends at the end, overlapping the one before.
    let (mut x, mut y) = (a, b);
    while let (Some((p, rx)), Some((q, ry))) =
        (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
    {
        if p != q {
            return false;
        }
        if rx.len() <= 8 {
            return a.last_chunk::<8>() == b.last_chunk::<8>();
        }
        (x, y) = (rx, ry);
    }
    true
}

/// A record that is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Tape {
    /// Parses one record onto the tape (replacing the last one); [`Malformed`] if it is
    /// not JSON (the skipped parts are checked too).
    pub fn parse<'t>(&'t mut self, record: &'t [u8], keys: &Keys) -> Result<Doc<'t>, Malformed> {
        self.clear();
        // Offsets on the tape are `u32`, and address the record and the text after it
        // (no longer than the record). A record longer than half of `u32::MAX` cannot
        // be addressed there, and no log record is that long (the record splitter caps
        // them far lower): it is refused as malformed rather than read wrong.
        let Some(base) = u32::try_from(record.len())
            .ok()
            .filter(|n| *n <= u32::MAX / 2)
        else {
            return Err(Malformed);
        };
        // Almost every record is UTF-8 as a whole: checked once, its strings need no
        // check of their own, and they are read from it in place.
        let text = std::str::from_utf8(record).ok();
        let mut s = Scanner {
            b: record,
            text,
            i: 0,
            keys,
            frames: Frames::default(),
            tape: self,
        };
        s.whitespace();
        s.value(MAX_DEPTH)?;
        s.whitespace();
        if s.i != record.len() {
            return Err(Malformed);
        }
        Ok(Doc {
            entries: &self.entries,
            members: &self.members,
            record: text.unwrap_or(""),
            base,
            text: &self.text,
            numbers: &self.numbers,
        })
    }
}

/// `serde_json`'s recursion limit: kept containers nest at most one less deep.
const MAX_DEPTH: u32 = 128;

type Scan<T> = Result<T, Malformed>;

struct Scanner<'a, 'k> {
    b: &'a [u8],
    /// The record as text, if it is all UTF-8.
    text: Option<&'a str>,
    i: usize,
    keys: &'k Keys,
    /// Open containers of the value being skipped.
    frames: Frames,
    /// Where kept values go.
    tape: &'k mut Tape,
}

/// The open containers of a skipped value, one bit each (set for an object): the
/// first 64 levels in a word, so that no record of usual depth allocates; deeper ones
/// (skipped values nest without limit, as in `serde_json`) in a vector.
#[derive(Default)]
struct Frames {
    depth: usize,
    low: u64,
    deep: Vec<bool>,
}

impl Frames {
    #[inline(always)]
    fn clear(&mut self) {
        self.depth = 0;
        self.deep.clear();
    }

    #[inline(always)]
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            let bit = 1u64 << self.depth;
            self.low = if object {
                self.low | bit
            } else {
                self.low & !bit
            };
        } else {
            self.deep.push(object);
        }
        self.depth += 1;
    }

    #[inline(always)]
    fn pop(&mut self) {
        if self.depth > 64 {
            self.deep.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// The innermost open container: `Some(true)` for an object, `None` if none is.
    #[inline(always)]
    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d @ 1..=64 => Some(self.low & (1 << (d - 1)) != 0),
            _ => self.deep.last().copied(),
        }
    }
}

impl<'a> Scanner<'a, '_> {
    /// The entry of a string without escapes, `b[from..to]` (`from` and `to` are at
    /// ASCII bytes): read in place when the record is UTF-8, else checked and copied.
    #[inline(always)]
    fn plain(&mut self, from: usize, to: usize) -> Scan<Entry> {
        if self.text.is_some() {
            // The record's length was checked to fit.
            return Ok(Entry::Str {
                from: from as u32,
                to: to as u32,
            });
        }
        let s = std::str::from_utf8(&self.b[from..to]).map_err(|_| Malformed)?;
        let from = self.tape.text.len();
        self.tape.text.push_str(s);
        Ok(self.text_entry(from))
    }

    /// The entry of the tape's text from `from` to its end.
    fn text_entry(&self, from: usize) -> Entry {
        // The text follows the record in the strings' offsets. It is no longer than
        // the record (unescaping never lengthens a string), whose length was checked
        // to leave room for both.
        let base = self.b.len();
        Entry::Str {
            from: (base + from) as u32,
            to: (base + self.tape.text.len()) as u32,
        }
    }

    /// The bytes of a string entry (none if it is not one, which cannot happen).
    fn entry_bytes(&self, from: u32, to: u32) -> &[u8] {
        let (from, to) = (from as usize, to as usize);
        let bytes = match from.checked_sub(self.b.len()) {
            Some(f) => self
                .tape
                .text
                .as_bytes()
                .get(f..to.saturating_sub(self.b.len())),
            None => self.b.get(from..to),
        };
        bytes.unwrap_or_default()
    }

    /// Appends a kept value's entry.
    #[inline(always)]
    fn put(&mut self, entry: Entry) {
        self.tape.entries.push(entry);
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, want: u8) -> Scan<()> {
        if self.peek() == Some(want) {
            self.i += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// A kept value at `self.i` (after whitespace), onto the tape.
    fn value(&mut self, depth: u32) -> Scan<()> {
        let entry = match self.peek().ok_or(Malformed)? {
            b'{' => return self.object(depth - 1),
            b'[' => return self.array(depth - 1),
            b'"' => self.string()?,
            b't' => self.literal(b"true").map(|()| Entry::Bool(true))?,
            b'f' => self.literal(b"false").map(|()| Entry::Bool(false))?,
            b'n' => self.literal(b"null").map(|()| Entry::Null)?,
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                // `serde_json` reads the number, so its value (integer or float,
                // rounding) is the one a `Value` would hold.
                let n: Number =
                    serde_json::from_slice(&self.b[start..self.i]).map_err(|_| Malformed)?;
                // No more numbers than bytes in the record, whose length fits.
                let at = self.tape.numbers.len() as u32;
                self.tape.numbers.push(n);
                Entry::Number(at)
            }
            _ => return Err(Malformed),
        };
        self.put(entry);
        Ok(())
    }

    /// Opens a kept container: its entry, whose end [`Scanner::close_array`] or
    /// [`Scanner::close_object`] sets.
    #[inline(always)]
    fn open(&mut self, entry: Entry) -> usize {
        self.put(entry);
        self.tape.entries.len() - 1
    }

    /// Closes the array opened at `at`: its end is the next entry's index (no more
    /// entries than bytes in the record, whose length fits).
    #[inline(always)]
    fn close_array(&mut self, at: usize) {
        let next = self.tape.entries.len() as u32;
        if let Some(Entry::Array { end }) = self.tape.entries.get_mut(at) {
            *end = next;
        }
    }

    /// Closes the object opened at `at`, whose members are those open from `first`:
    /// they move to the table of members, together.
    #[inline(always)]
    fn close_object(&mut self, at: usize, first: usize) {
        let next = self.tape.entries.len() as u32;
        let tape = &mut *self.tape;
        let listed = tape.members.len() as u32;
        let kept = tape.pending.get(first..).unwrap_or_default();
        tape.members.extend_from_slice(kept);
        let n = kept.len() as u32;
        tape.pending.truncate(first);
        if let Some(Entry::Object {
            end,
            members,
            count,
        }) = tape.entries.get_mut(at)
        {
            *end = next;
            *members = listed;
            *count = n;
        }
    }

    fn object(&mut self, depth: u32) -> Scan<()> {
        if depth == 0 {
            return Err(Malformed);
        }
        self.i += 1;
        let at = self.open(Entry::Object {
            end: 0,
            members: 0,
            count: 0,
        });
        // This object's members are listed from here on, after those of the objects
        // it is in; those of the objects in it come and go in between.
        let first = self.tape.pending.len();
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.close_object(at, first);
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(Malformed);
            }
            let start = self.i;
            let end = next_special(self.b, start + 1);
            let key = if self.b.get(end) == Some(&b'"') {
                // The usual key: no escapes. Most are skipped; they need only be UTF-8,
                // which an ASCII key is without a closer look.
                self.i = end + 1;
                let raw = &self.b[start + 1..end];
                if self.text.is_none() && !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
                    return Err(Malformed);
                }
                if self.keys.keeps(raw) {
                    Some(self.plain(start + 1, end)?)
                } else {
                    None
                }
            } else {
                // Unescaped onto the tape's text, and taken off again if not kept.
                let text = self.tape.text.len();
                let key = self.string()?;
                let Entry::Str { from, to } = key else {
                    return Err(Malformed);
                };
                if self.keys.keeps(self.entry_bytes(from, to)) {
                    Some(key)
                } else {
                    self.tape.text.truncate(text);
                    None
                }
            };
            self.colon()?;
            match key {
                Some(Entry::Str { from, to }) => {
                    let value = self.tape.entries.len() as u32;
                    self.value(depth)?;
                    self.tape.pending.push(Member {
                        from,
                        len: to - from,
                        value,
                    });
                }
                Some(_) => return Err(Malformed),
                // Most skipped values are strings.
                None if self.peek() == Some(b'"') => self.skip_string_from(self.i + 1)?,
                None => self.skip()?,
            }
            if self.ended(b'}')? {
                self.close_object(at, first);
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: u32) -> Scan<()> {
        if depth == 0 {
            return Err(Malformed);
        }
        self.i += 1;
        let at = self.open(Entry::Array { end: 0 });
        self.whitespace();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.close_array(at);
            return Ok(());
        }
        loop {
            self.value(depth)?;
            if self.ended(b']')? {
                self.close_array(at);
                return Ok(());
            }
        }
    }

    /// After a kept member or item: `true` at the container's end (`close`, taken),
    /// `false` after a comma (taken, with the whitespace after it).
    #[inline(always)]
    fn ended(&mut self, close: u8) -> Scan<bool> {
        // The compact shape: a comma right after the value, a string right after it.
        if self.peek() == Some(b',') && self.b.get(self.i + 1) == Some(&b'"') {
            self.i += 1;
            return Ok(false);
        }
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.whitespace();
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(Malformed),
        }
    }

    /// A kept string or a key at `self.i` (its opening quote): UTF-8, in place when it
    /// has no escapes, unescaped onto the tape's text when it has.
    fn string(&mut self) -> Scan<Entry> {
        let start = self.i;
        let j = next_special(self.b, start + 1);
        match self.b.get(j) {
            Some(b'"') => {
                self.i = j + 1;
                self.plain(start + 1, j)
            }
            Some(b'\\') => {
                self.skip_string_from(j)?;
                // Escapes (and surrogate pairs, and UTF-8) as `serde_json` reads them,
                // appended to the tape's text rather than to a string of their own.
                let from = self.tape.text.len();
                let mut de = serde_json::Deserializer::from_slice(&self.b[start..self.i]);
                let read = AppendStr(&mut self.tape.text)
                    .deserialize(&mut de)
                    .and_then(|()| de.end());
                if read.is_err() {
                    self.tape.text.truncate(from);
                    return Err(Malformed);
                }
                Ok(self.text_entry(from))
            }
            _ => Err(Malformed),
        }
    }

    /// Skips a string's rest from `j` (inside it) to after its closing quote, checking
    /// escapes and control characters but not UTF-8, as `serde_json` skips one.
    #[inline(always)]
    fn skip_string_from(&mut self, mut j: usize) -> Scan<()> {
        loop {
            j = next_special(self.b, j);
            match self.b.get(j) {
                Some(b'"') => {
                    self.i = j + 1;
                    return Ok(());
                }
                Some(b'\\') => match self.b.get(j + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u') => {
                        let hex = self.b.get(j + 2..j + 6).ok_or(Malformed)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Malformed);
                        }
                        j += 6;
                    }
                    _ => return Err(Malformed),
                },
                _ => return Err(Malformed),
            }
        }
    }

    /// A number's grammar (RFC 8259 section 6), from `self.i`.
    fn number(&mut self) -> Scan<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                // A leading zero is a number of its own: `01` is not JSON.
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(Malformed);
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Malformed),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(Malformed);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(Malformed);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// Skips one value at `self.i` (after whitespace), however deep, without
    /// recursion and without building anything.
    fn skip(&mut self) -> Scan<()> {
        self.frames.clear();
        loop {
            // A value.
            match self.peek().ok_or(Malformed)? {
                b'"' => self.skip_string_from(self.i + 1)?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    self.whitespace();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        self.frames.push(open == b'{');
                        if open == b'{' {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                _ => return Err(Malformed),
            }
            // After a value: a comma and the next one, or the ends of containers.
            loop {
                let Some(object) = self.frames.last() else {
                    return Ok(());
                };
                let open = if object { b'{' } else { b'[' };
                // The compact shape first: `,"` in an object, `,` and a value in an array.
                if self.peek() == Some(b',') && self.b.get(self.i + 1) == Some(&b'"') {
                    self.i += 1;
                    if open == b'{' {
                        self.skip_key()?;
                    }
                    break;
                }
                self.whitespace();
                match (open, self.peek()) {
                    (_, Some(b',')) => {
                        self.i += 1;
                        self.whitespace();
                        if open == b'{' {
                            self.skip_key()?;
                        }
                        break;
                    }
                    (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                        self.i += 1;
                        self.frames.pop();
                    }
                    _ => return Err(Malformed),
                }
            }
        }
    }

    /// Skips `"key":` and the whitespace after it. Like `serde_json`, the keys of a
    /// skipped object are not checked for UTF-8.
    #[inline(always)]
    fn skip_key(&mut self) -> Scan<()> {
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        self.skip_string_from(self.i + 1)?;
        self.colon()
    }

    /// Skips the `:` after a key and the whitespace around it; the compact shape
    /// `"key":value` is one look.
    #[inline(always)]
    fn colon(&mut self) -> Scan<()> {
        match self.b.get(self.i..self.i + 2) {
            Some([b':', next]) if !matches!(next, b' ' | b'\n' | b'\t' | b'\r') => {
                self.i += 1;
                Ok(())
            }
            _ => {
                self.whitespace();
                self.eat(b':')?;
                self.whitespace();
                Ok(())
            }
        }
    }
}

/// Reads a JSON string as `serde_json` does, appending its text to a buffer.
struct AppendStr<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendStr<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(names: &'static [&'static str]) -> Keys {
        Keys::new(&[], names.iter().map(|k| Box::from(*k)))
    }

    /// A record parsed onto a fresh tape, as a `Value`.
    fn parsed(record: &[u8], keys: &Keys) -> Result<Value, Malformed> {
        let mut tape = Tape::new();
        tape.parse(record, keys).map(|d| Value::from(d.root()))
    }

    #[test]
    fn keeps_only_the_named_keys_at_every_depth() {
        let k = keys(&["type", "time", "details", "username", "Value"]);
        let rec = br#"{"type":"LOGIN","big":{"x":[1,2,{"y":"z"}]},"t\u0069me":5,"details":{"username":"u","auth_method":"x"}}"#;
        assert_eq!(
            parsed(rec, &k).unwrap(),
            json!({"type": "LOGIN", "time": 5, "details": {"username": "u"}})
        );
        let mut tape = Tape::new();
        let d = tape.parse(rec, &k).unwrap();
        assert!(
            matches!(
                d.root().get("type").and_then(Node::entry),
                Some(Entry::Str { from: 9, to: 14 })
            ),
            "strings without escapes are read in place"
        );
        assert_eq!(d.text, "time", "only the escaped key is copied");
        assert_eq!(
            parsed(b"[1,{\"a\":2,\"Value\":3}]", &k).unwrap(),
            json!([1, {"Value": 3}])
        );
        assert_eq!(parsed(b" 42 ", &k).unwrap(), json!(42));
    }

    /// The hash table keeps exactly its keys: each of many, and none of the keys that
    /// differ from one by a byte, a length, or only past the bytes the hash reads.
    #[test]
    fn keys_keep_exactly_their_keys() {
        let listed: Vec<String> = (0..300)
            .map(|i| format!("k{i}{}", "x".repeat(i % 7)))
            .chain(["", "a", "Value", "#text", "@timestamp", "é"].map(String::from))
            .collect();
        let k = Keys::new(
            &["fixed", "Value"],
            listed.iter().map(|s| Box::from(s.as_str())),
        );
        for key in listed.iter().map(String::as_str).chain(["fixed"]) {
            assert!(k.keeps(key.as_bytes()), "{key:?}");
        }
        for key in &listed {
            let b = key.as_bytes();
            let mut near: Vec<Vec<u8>> = vec![[b, b"x"].concat(), [b"x", b].concat()];
            for i in 0..b.len() {
                let mut m = b.to_vec();
                m[i] ^= 0x20;
                near.push(m);
                near.push([&b[..i], &b[i + 1..]].concat());
            }
            for n in near {
                let kept = listed.iter().any(|l| l.as_bytes() == n) || n == b"fixed";
                assert_eq!(k.keeps(&n), kept, "{:?}", String::from_utf8_lossy(&n));
            }
        }
        assert!(
            !Keys::new(&[], []).keeps(b"a"),
            "an empty table keeps nothing"
        );
    }

    #[test]
    fn skipped_parts_are_still_checked() {
        let k = keys(&["type"]);
        for bad in [
            &br#"{"type":"LOGIN","big":{"x":[1,}}"#[..],
            br#"{"type":"LOGIN","big":"a"#,
            br#"{"type":"LOGIN"} x"#,
            br#"{"type":"LOGIN""#,
            b"",
        ] {
            assert!(parsed(bad, &k).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn repeated_keys_read_as_in_a_map() {
        let k = keys(&["a", "b"]);
        let mut tape = Tape::new();
        let d = tape.parse(br#"{"a":1,"b":2,"a":3,"a":4}"#, &k).unwrap();
        let d = d.root();
        assert_eq!(d.get("a").and_then(JsonNode::as_number), Some(&4.into()));
        assert_eq!(d.object_keys_up_to(3), Some(2));
        assert_eq!(
            d.object_keys_up_to(1),
            Some(2),
            "stops counting past the limit"
        );
        let v = json!({"a": 1, "b": 2, "c": 3});
        assert_eq!(v.object_keys_up_to(1), Some(2));
        assert_eq!(json!([1]).object_keys_up_to(3), None);
    }

    #[test]
    fn node_views_agree_with_serde_json() {
        let k = keys(&["s", "n", "f", "a", "o", "z", "t"]);
        let rec = br#"{"s":"x\"y","n":-7,"f":1.5,"a":[1,"2"],"o":{},"z":null,"t":true}"#;
        let mut tape = Tape::new();
        let d = tape.parse(rec, &k).unwrap();
        let d = d.root();
        let v: Value = serde_json::from_slice(rec).unwrap();
        assert_eq!(Value::from(d), v);
        for key in ["s", "n", "f", "a", "o", "z", "t", "missing"] {
            let (a, b) = (d.get(key), v.get(key));
            assert_eq!(a.is_some(), b.is_some(), "{key}");
            assert_eq!(a.and_then(JsonNode::as_str), b.and_then(Value::as_str));
            assert_eq!(
                a.and_then(JsonNode::as_number),
                b.and_then(JsonNode::as_number)
            );
            assert_eq!(
                a.is_some_and(JsonNode::is_object),
                b.is_some_and(Value::is_object)
            );
            assert_eq!(
                a.and_then(JsonNode::items).map(Iterator::count),
                b.and_then(JsonNode::items).map(Iterator::count)
            );
            assert_eq!(a.and_then(Node::as_bool), b.and_then(Value::as_bool));
            assert_eq!(a.is_some_and(Node::is_null), b.is_some_and(Value::is_null));
        }
    }

    /// The reference: `serde_json` skipping the same keys (the way records were
    /// parsed before the scanner).
    mod reference {
        use std::borrow::Cow;

        use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
        use serde_json::Value;

        use super::super::Keys;

        pub fn parse(record: &[u8], keys: &Keys) -> Option<Value> {
            let mut de = serde_json::Deserializer::from_slice(record);
            let v = Seed(keys).deserialize(&mut de).ok()?;
            de.end().ok()?;
            Some(v)
        }

        #[derive(Clone, Copy)]
        struct Seed<'k>(&'k Keys);

        impl<'de> DeserializeSeed<'de> for Seed<'_> {
            type Value = Value;

            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                d.deserialize_any(self)
            }
        }

        struct Key<'a>(Cow<'a, str>);

        impl<'de> serde::Deserialize<'de> for Key<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl<'de> Visitor<'de> for Visit {
                    type Value = Key<'de>;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a key")
                    }

                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Borrowed(v)))
                    }

                    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Owned(v.to_owned())))
                    }
                }
                d.deserialize_str(Visit)
            }
        }

        impl<'de> Visitor<'de> for Seed<'_> {
            type Value = Value;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                // A vector, not a map, so that repeated keys are compared too.
                let mut members = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if self.0.keeps(key.as_bytes()) {
                        members.push(Value::Array(vec![
                            Value::String(key.into_owned()),
                            map.next_value_seed(self)?,
                        ]));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(serde_json::json!({ "object": members }))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element_seed(self)? {
                    items.push(item);
                }
                Ok(Value::Array(items))
            }

            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(v.into())
            }

            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
        }
    }

    /// A value of the tape in the reference's shape (objects as lists of pairs,
    /// repeated keys included).
    fn pairs(n: Node<'_>) -> Value {
        if let Some(items) = n.items() {
            return Value::Array(items.map(pairs).collect());
        }
        match n.members() {
            Some(m) => json!({ "object": m
                .map(|(k, v)| json!([k, pairs(v)]))
                .collect::<Vec<_>>() }),
            None => Value::from(n),
        }
    }

    fn same_as_reference(record: &[u8], keys: &Keys) -> Result<(), String> {
        let mut tape = Tape::new();
        let ours = tape.parse(record, keys).ok().map(|d| pairs(d.root()));
        let theirs = reference::parse(record, keys);
        if ours == theirs {
            Ok(())
        } else {
            Err(format!(
                "{:?}: scanner {ours:?}, serde_json {theirs:?}",
                String::from_utf8_lossy(record)
            ))
        }
    }

    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let k = keys(&["a", "é", "k\"", "Value"]);
        let cases: &[&[u8]] = &[
            br#"{"a":"x\ud83d\ude00y","b":"\ud83d"}"#,
            br#"{"a":"\ud83d"}"#,
            br#"{"b":"\u12G4"}"#,
            br#"{"b":"\q"}"#,
            b"{\"b\":\"\xff\xfe\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"\xff\":1}",
            b"{\"b\":{\"\xff\":1}}",
            b"{\"b\":\"tab\there\"}",
            br#"{"a":1e400}"#,
            br#"{"b":1e400}"#,
            br#"{"a":-0,"b":-0.0e-0}"#,
            br#"{"a":01}"#,
            br#"{"b":01}"#,
            br#"{"b":1.}"#,
            br#"{"b":.5}"#,
            br#"{"b":-}"#,
            br#"{"a":18446744073709551616,"Value":-9223372036854775809}"#,
            br#"{"a":1.7976931348623157e308}"#,
            br#"{"b":[1,2,],"a":1}"#,
            br#"{"a":1,}"#,
            br#"{"b":{"c":1,}}"#,
            br#"{"b":{,}}"#,
            br#"{"b":[,]}"#,
            br#"{"b":{"c"}}"#,
            br#"{"b":{"c":}}"#,
            br#"{"b":[}"#,
            br#"{"b":{]}"#,
            br#"{"\u00e9":true,"k\"":null,"a":[{"a":{"a":[]}}]}"#,
            "{\"é\":tru}".as_bytes(),
            br#"{"b":nul}"#,
            b" \t\r\n{\"a\" : [ 1 , 2 ] } \n",
            b"{\"a\":1}\x0c",
            b"\xef\xbb\xbf{\"a\":1}",
            b"",
            b"   ",
            b"{",
            b"\"a\"",
            b"[\"a\",\"b\\\"\"]",
        ];
        for case in cases {
            same_as_reference(case, &k).unwrap();
        }
    }

    /// Keys and values whose ends, escapes, control bytes and multi-byte characters
    /// fall at every place around the string scanner's 16-byte blocks and the end of
    /// the record.
    #[test]
    fn strings_across_block_ends_agree_with_serde_json() {
        let k = keys(&["a", "Value", "é"]);
        let endings: &[&[u8]] = &[
            b"",
            b"\\\"",
            b"\\\\",
            b"\\u00e9",
            b"\\ud83d\\ude00",
            b"\\",
            b"\\x",
            b"\\u12",
            b"\x00",
            b"\x1f",
            b"\n",
            b"\x7f",
            "é".as_bytes(),
            "文".as_bytes(),
            b"\xc3",
            b"\xff",
        ];
        for pad in 0..40 {
            let fill = vec![b'x'; pad];
            for end in endings {
                for key in [&b"a"[..], b"zz"] {
                    let mut value = fill.clone();
                    value.extend_from_slice(end);
                    // As a kept or skipped value, as a key, and at the record's end.
                    let cases = [
                        [&b"{\""[..], key, b"\":\"", &value, b"\",\"b\":1}"].concat(),
                        [&b"{\""[..], key, b"\":\"", &value, b"\"}"].concat(),
                        [&b"{\"b\":{\""[..], &value, b"\":2},\"", key, b"\":3}"].concat(),
                        [&b"{\""[..], &value, b"\":\"", &value, b"\"}"].concat(),
                        [&b"[\""[..], &value, b"\"]"].concat(),
                        [&b"\""[..], &value, b"\""].concat(),
                        // Cut short: the record ends inside the string.
                        [&b"{\""[..], key, b"\":\"", &value].concat(),
                    ];
                    for case in &cases {
                        same_as_reference(case, &k).unwrap();
                    }
                }
            }
        }
    }

    /// The compact shape (`"key":value,`) has its own fast path; every separator of a
    /// record in turn gets whitespace or a stray byte instead.
    #[test]
    fn compact_and_spaced_separators_agree_with_serde_json() {
        let k = keys(&["a", "Value"]);
        let template = r#"{"a"@:@"x"@,@"b"@:@{"c"@:@1@,@"d"@:@[1@,@"e"@,@{}@,@[]@,@{"f":2}]@}@,@"Value"@:@{"a"@:@true@,@"zz"@:@null}@,@"b"@:@"y"@}"#;
        let gaps = template.matches('@').count();
        for fill in ["", " ", "\n\t", "\r "] {
            same_as_reference(template.replace('@', fill).as_bytes(), &k).unwrap();
        }
        for gap in 0..gaps {
            for odd in [" ", "\n", " \t ", "x", ",", "}", "]", ":", "\"", "\x00"] {
                let mut n = 0;
                let text: String = template
                    .chars()
                    .map(|c| {
                        if c != '@' {
                            return c.to_string();
                        }
                        n += 1;
                        if n - 1 == gap {
                            odd.to_owned()
                        } else {
                            String::new()
                        }
                    })
                    .collect();
                same_as_reference(text.as_bytes(), &k).unwrap();
            }
        }
    }

    #[test]
    fn nesting_limit_as_serde_json() {
        let k = keys(&["a"]);
        for depth in [126, 127, 128, 129, 5000] {
            let kept = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            same_as_reference(kept.as_bytes(), &k).unwrap();
            let skipped = format!("{{\"b\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            same_as_reference(skipped.as_bytes(), &k).unwrap();
            assert!(parsed(skipped.as_bytes(), &k).is_ok(), "skipped: no limit");
        }
    }

    /// Skipped containers are tracked a bit each in one word for the first 64 levels
    /// and in a vector past them: the ends of each agree at every depth around the
    /// boundary, objects and arrays alternating so a wrong bit shows.
    #[test]
    fn skipped_nesting_around_the_word_boundary_agrees_with_serde_json() {
        let k = keys(&["a"]);
        for depth in 60..70 {
            for closing_right in [true, false] {
                let (mut open, mut close) = (String::new(), String::new());
                for level in 0..depth {
                    if level % 2 == 0 {
                        open.push_str("{\"x\":");
                        close.insert(0, '}');
                    } else {
                        open.push('[');
                        close.insert(0, ']');
                    }
                }
                if !closing_right {
                    // The innermost closer swapped for the other kind.
                    let c = close.remove(0);
                    close.insert(0, if c == '}' { ']' } else { '}' });
                }
                let rec = format!("{{\"b\":{open}1{close},\"a\":2}}");
                same_as_reference(rec.as_bytes(), &k).unwrap();
                assert_eq!(parsed(rec.as_bytes(), &k).is_ok(), closing_right, "{depth}");
            }
        }
    }

    use proptest::prelude::*;

    /// JSON text built from pieces that exercise the grammar: kept and skipped keys,
    /// escapes, numbers of every form, nesting.
    fn json_text() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
            "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
            "\"([a-zé\\\\\"/ ]|\\\\[nrt\"\\\\/bf]|\\\\u[0-9a-fA-F]{4}|\\\\ud83d\\\\ude00){0,8}\"",
        ];
        scalar.prop_recursive(4, 48, 6, |inner| {
            let key = prop_oneof![
                Just("a"),
                Just("b"),
                Just("Value"),
                Just("\\u0061"),
                Just("zz")
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key, inner), 0..5).prop_map(|members| {
                    let m: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{{}}}", m.join(","))
                }),
            ]
        })
    }

    /// `bytes` with each edit made in turn: a byte inserted (0), removed (1) or
    /// replaced (2) at a place.
    fn edited(mut bytes: Vec<u8>, edits: Vec<(prop::sample::Index, u8, u8)>) -> Vec<u8> {
        for (at, byte, how) in edits {
            let i = at.index(bytes.len() + 1);
            match how {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => {}
            }
        }
        bytes
    }

    proptest! {
        /// Byte strings of every length around the eight-byte steps, alike or differing
        /// in one byte anywhere.
        #[test]
        fn same_bytes_is_equality(
            a in prop::collection::vec(any::<u8>(), 0..40),
            at in any::<prop::sample::Index>(),
            flip in 1u8..,
            cut in 0usize..3,
        ) {
            prop_assert!(same_bytes(&a, &a.clone()));
            let mut b = a.clone();
            if !b.is_empty() {
                b[at.index(a.len())] ^= flip;
                prop_assert!(!same_bytes(&a, &b));
                prop_assert!(!same_bytes(&b, &a));
            }
            let short = &a[..a.len().saturating_sub(cut)];
            prop_assert_eq!(same_bytes(&a, short), a.as_slice() == short);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn agrees_with_serde_json(
            text in json_text(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..3),
        ) {
            let k = keys(&["a", "Value"]);
            let bytes = edited(text.into_bytes(), edits);
            prop_assert_eq!(same_as_reference(&bytes, &k), Ok(()));
        }

        /// One tape reads record after record, of every shape and some malformed, as
        /// `serde_json` does each on its own.
        #[test]
        fn a_reused_tape_agrees_with_serde_json(
            texts in prop::collection::vec(json_text(), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let k = keys(&["a", "Value"]);
            let mut tape = Tape::new();
            for (i, text) in texts.iter().enumerate() {
                let mut bytes = text.clone().into_bytes();
                if i == 0 {
                    // A record cut short leaves a part of itself on the tape.
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                let ours = tape.parse(&bytes, &k).ok().map(|d| pairs(d.root()));
                prop_assert_eq!(ours, reference::parse(&bytes, &k));
            }
        }

        /// The same records in the compact shape, which takes the scanner's fast paths.
        #[test]
        fn agrees_with_serde_json_compact(
            text in json_text(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..3),
        ) {
            let k = keys(&["a", "Value"]);
            let bytes = edited(text.replace(" : ", ":").into_bytes(), edits);
            prop_assert_eq!(same_as_reference(&bytes, &k), Ok(()));
        }
    }
}
