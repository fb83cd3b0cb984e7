//! One record read from its substitution values, without rendering it: is it a login,
//! and if so, its fields as the JSON the rendering path would give [`crate::windows`].
//!
//! A record of a Security log is a fragment header and one template instance: the
//! template's definition (inline the first time a chunk uses it, by offset after that)
//! and the instance data, a count, a descriptor (size, type) per value and the values
//! one after another (libyal's "Windows XML Event Log (EVTX) format", "Template
//! instance", "Template definition", "Template instance data" and "Value types").
//!
//! The descriptors are checked as the `evtx` crate reads them, so that the values lie
//! where it would find them: known types, the sizes of fixed-size types, an even size
//! for UTF-16 strings, a SID's size from its sub-authority count; arrays and handles
//! are left to it. The event id is read first, with the descriptors before it, and a
//! record that is not a login stops there. A login record has every descriptor and
//! value checked and must end where its values do, and its fields are written as JSON in the
//! shape the crate renders (`Event.System.EventID`,
//! `Event.System.TimeCreated.#attributes.SystemTime`, `Event.System.Computer`,
//! `Event.EventData.<Name>`), with each value as the crate writes it: integers as
//! numbers, hexadecimal integers as `0x…` text, UTF-16 strings up to their first NUL
//! with unpaired surrogates as U+FFFD, FILETIMEs as RFC 3339 times. Anything else is
//! [`Outcome::Render`]: the crate renders that record.

use std::ops::Range;
use std::rc::Rc;

use std::io::Write as _;

use super::LOGIN_IDS;
use super::known::Known;
use super::template::{self, Data, Fields, Nested, Plan, Source};
use super::u32_at;
use crate::windows::EVTX_DATA_FIELDS;

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// No login: nothing to hand on.
    Skip,
    /// A login record, written as JSON at this range of the output.
    Login(Range<usize>),
    /// The fast path cannot read it: it is to be rendered.
    Render,
}

/// Value types (libyal, "Value types").
mod ty {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const ANSI_STRING: u8 = 0x02;
    pub const INT8: u8 = 0x03;
    pub const UINT8: u8 = 0x04;
    pub const INT16: u8 = 0x05;
    pub const UINT16: u8 = 0x06;
    pub const INT32: u8 = 0x07;
    pub const UINT32: u8 = 0x08;
    pub const INT64: u8 = 0x09;
    pub const UINT64: u8 = 0x0a;
    pub const REAL32: u8 = 0x0b;
    pub const REAL64: u8 = 0x0c;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const SIZE_T: u8 = 0x10;
    pub const FILETIME: u8 = 0x11;
    pub const SYSTIME: u8 = 0x12;
    pub const SID: u8 = 0x13;
    pub const HEX_INT32: u8 = 0x14;
    pub const HEX_INT64: u8 = 0x15;
    pub const BIN_XML: u8 = 0x21;
}

/// Token types that open a record's stream.
const FRAGMENT_HEADER: u8 = 0x0f;
const TEMPLATE_INSTANCE: u8 = 0x0c;

/// One substitution value: where it lies in the chunk, and its type.
#[derive(Debug, Clone, Copy)]
struct Value {
    at: usize,
    size: usize,
    ty: u8,
}

/// The templates of one chunk, each read once, and those of earlier chunks.
#[derive(Debug, Default)]
pub(super) struct Templates {
    plans: Vec<(u32, Rc<Plan>)>,
    nested: Vec<(u32, Rc<Nested>)>,
    known_plans: Known<Plan>,
    known_nested: Known<Nested>,
    /// Definitions read (the others were known).
    pub read: u64,
}

impl Templates {
    /// Forgets the chunk's templates (their offsets mean nothing in the next one); the
    /// known ones are kept.
    pub fn clear(&mut self) {
        self.plans.clear();
        self.nested.clear();
    }

    fn plan(&mut self, chunk: &[u8], offset: u32) -> Rc<Plan> {
        cached(
            &mut self.plans,
            &mut self.known_plans,
            &mut self.read,
            chunk,
            offset,
            template::plan,
        )
    }

    fn nested(&mut self, chunk: &[u8], offset: u32) -> Rc<Nested> {
        cached(
            &mut self.nested,
            &mut self.known_nested,
            &mut self.read,
            chunk,
            offset,
            template::nested,
        )
    }
}

/// The reading of the definition at `offset`: the chunk's, else a known one, else
/// made by `read`. A chunk holds few templates (a few dozen), so a scan is quicker
/// than hashing.
fn cached<T>(
    entries: &mut Vec<(u32, Rc<T>)>,
    known: &mut Known<T>,
    count: &mut u64,
    chunk: &[u8],
    offset: u32,
    read: impl FnOnce(&[u8], u32) -> (T, Option<template::Names>),
) -> Rc<T> {
    if let Some((_, t)) = entries.iter().find(|(o, _)| *o == offset) {
        return Rc::clone(t);
    }
    let t = known.find(chunk, offset).unwrap_or_else(|| {
        *count += 1;
        let (t, names) = read(chunk, offset);
        let t = Rc::new(t);
        if let Some(names) = names {
            known.keep(chunk, offset, &names, &t);
        }
        t
    });
    entries.push((offset, Rc::clone(&t)));
    t
}

/// Reads records of a chunk; keeps its scratch between them.
#[derive(Debug, Default)]
pub(super) struct RecordReader {
    pub templates: Templates,
    values: Vec<Value>,
    nested: Vec<Value>,
}

impl RecordReader {
    /// Reads the record whose Binary XML is `binxml` of `chunk`, writing a login
    /// record's JSON to `out`.
    pub fn read(&mut self, chunk: &[u8], binxml: Range<usize>, out: &mut Vec<u8>) -> Outcome {
        self.decide(chunk, binxml, out).unwrap_or(Outcome::Render)
    }

    fn decide(&mut self, chunk: &[u8], binxml: Range<usize>, out: &mut Vec<u8>) -> Option<Outcome> {
        let mut instance = Instance::read(chunk, &binxml)?;
        let plan = self.templates.plan(chunk, instance.def);
        // The values up to the event id's are enough to find it where the crate does.
        let at = usize::from(plan.event_id?);
        self.values.clear();
        instance.values(chunk, at + 1, &mut self.values)?;
        let id = self.values[at];
        if id.ty != ty::UINT16 || id.size != 2 {
            return None;
        }
        let id = u16::from_le_bytes([chunk[id.at], chunk[id.at + 1]]);
        if !LOGIN_IDS.contains(&u32::from(id)) {
            return Some(Outcome::Skip);
        }
        instance.values(chunk, instance.count, &mut self.values)?;
        instance.ends(chunk)?;
        let fields = plan.fields.as_ref()?;
        // The event data, and the value that holds it if it is nested.
        let mut holder = None;
        let nested;
        let data: (&[Value], &[Source]) = match &fields.data {
            Data::Here(sources) => (&self.values, sources),
            Data::Nested(i) => {
                let v = *self.values.get(usize::from(*i))?;
                holder = Some(usize::from(*i));
                match v.ty {
                    ty::NULL => (&[], &[]),
                    ty::BIN_XML if v.size == 0 => (&[], &[]),
                    ty::BIN_XML => {
                        let def = read_values(chunk, &(v.at..v.at + v.size), &mut self.nested)?;
                        nested = self.templates.nested(chunk, def);
                        match &*nested {
                            Nested::EventData(sources) => (&self.nested, sources),
                            Nested::Nothing => (&[], &[]),
                            Nested::Unknown => return None,
                        }
                    }
                    _ => return None,
                }
            }
        };
        let all_readable = |values: &[Value], holder: Option<usize>| {
            values
                .iter()
                .enumerate()
                .all(|(i, v)| Some(i) == holder || readable(chunk, v))
        };
        if !all_readable(&self.values, holder) || !all_readable(data.0, None) {
            return None;
        }
        let start = out.len();
        if write_login(chunk, &self.values, id, fields, data, out).is_none() {
            out.truncate(start);
            return None;
        }
        Some(Outcome::Login(start..out.len()))
    }
}

/// Reads the template instance that is the whole single-instance stream at `stream` of
/// `chunk` into `values` (where each value lies); the template's offset.
fn read_values(chunk: &[u8], stream: &Range<usize>, values: &mut Vec<Value>) -> Option<u32> {
    let mut instance = Instance::read(chunk, stream)?;
    values.clear();
    instance.values(chunk, instance.count, values)?;
    instance.ends(chunk)?;
    Some(instance.def)
}

/// A template instance whose values are being read.
struct Instance {
    /// The template definition's offset.
    def: u32,
    /// How many values it has.
    count: usize,
    /// The next descriptor and the next value.
    descriptor: usize,
    value: usize,
    /// Descriptors read.
    read: usize,
    /// The end of the stream it is.
    end: usize,
}

impl Instance {
    /// The instance that a single-instance stream is: a fragment header, then the
    /// instance (the crate's single-instance records).
    fn read(chunk: &[u8], stream: &Range<usize>) -> Option<Instance> {
        let bytes = chunk.get(stream.clone())?;
        if !(bytes.len() > 5 && bytes[0] == FRAGMENT_HEADER && bytes[4] == TEMPLATE_INSTANCE) {
            return None;
        }
        // Unknown byte, template identifier, definition offset.
        let mut at = stream.start + 6 + 4;
        let def = u32_at(chunk, at)?;
        at += 4;
        if def as usize == at {
            // The definition is here: skip its header and data.
            let size = u32_at(chunk, at + 20)? as usize;
            at = at.checked_add(template::HEADER_SIZE + size)?;
        }
        let count = u32_at(chunk, at)? as usize;
        at += 4;
        if count > chunk.len().saturating_sub(at) / 4 {
            return None;
        }
        Some(Instance {
            def,
            count,
            descriptor: at,
            value: at + count * 4,
            read: 0,
            end: stream.end,
        })
    }

    /// Reads the descriptors up to the `upto`th into `values`, checking each.
    fn values(&mut self, chunk: &[u8], upto: usize, values: &mut Vec<Value>) -> Option<()> {
        if upto > self.count {
            return None;
        }
        while self.read < upto {
            let d = &chunk[self.descriptor..self.descriptor + 4];
            let size = usize::from(u16::from_le_bytes([d[0], d[1]]));
            let ty = d[2];
            let bytes = chunk.get(self.value..self.value + size)?;
            if !read_as_sized(ty, bytes) {
                return None;
            }
            values.push(Value {
                at: self.value,
                size,
                ty,
            });
            self.value += size;
            self.descriptor += 4;
            self.read += 1;
        }
        Some(())
    }

    /// Whether what follows the instance, once all its values are read, ends the stream.
    fn ends(&self, chunk: &[u8]) -> Option<()> {
        match chunk.get(self.value..self.end) {
            Some([] | [0x00, ..]) | None => Some(()),
            Some(_) => None,
        }
    }
}

/// Whether the crate reads a value of type `ty` in exactly the descriptor's `bytes`, so
/// that the next value starts where the sizes say.
fn read_as_sized(ty: u8, bytes: &[u8]) -> bool {
    let n = bytes.len();
    match ty {
        ty::NULL | ty::ANSI_STRING | ty::BINARY | ty::BIN_XML => true,
        ty::STRING => n % 2 == 0,
        ty::INT8 | ty::UINT8 => n == 1,
        ty::INT16 | ty::UINT16 => n == 2,
        ty::INT32 | ty::UINT32 | ty::REAL32 | ty::BOOL | ty::HEX_INT32 => n == 4,
        ty::INT64 | ty::UINT64 | ty::REAL64 | ty::FILETIME | ty::HEX_INT64 => n == 8,
        ty::GUID | ty::SYSTIME => n == 16,
        ty::SIZE_T => n == 4 || n == 8,
        ty::SID => n >= 8 && n == 8 + 4 * usize::from(bytes[1]),
        // Handles, XML and arrays: left to the crate.
        _ => false,
    }
}

/// Whether the crate reads this value of a login record as it stands: nested Binary
/// XML is built (and may fail), ANSI text is decoded by a code page.
fn readable(chunk: &[u8], v: &Value) -> bool {
    match v.ty {
        ty::BIN_XML => v.size == 0,
        ty::ANSI_STRING => chunk[v.at..v.at + v.size].is_ascii(),
        _ => true,
    }
}

/// Writes the record as the rendering path's JSON, with the fields the reader reads:
/// `data` is the event data's values and where each field comes from (none if it has
/// no event data).
fn write_login(
    chunk: &[u8],
    values: &[Value],
    id: u16,
    fields: &Fields,
    data: (&[Value], &[Source]),
    out: &mut Vec<u8>,
) -> Option<()> {
    out.extend_from_slice(br#"{"Event":{"System":{"EventID":"#);
    out.extend_from_slice(id.to_string().as_bytes());
    if fields.time != Source::Absent {
        out.extend_from_slice(br##","TimeCreated":{"#attributes":{"SystemTime":"##);
        write_source(chunk, values, &fields.time, out)?;
        out.extend_from_slice(b"}}");
    }
    if fields.computer != Source::Absent {
        out.extend_from_slice(br#","Computer":"#);
        write_source(chunk, values, &fields.computer, out)?;
    }
    out.extend_from_slice(br#"},"EventData":{"#);
    let mut first = true;
    for (name, source) in EVTX_DATA_FIELDS.iter().zip(data.1) {
        if *source == Source::Absent {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // The names are plain ASCII: no escapes.
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        write_source(chunk, data.0, source, out)?;
    }
    out.extend_from_slice(b"}}}");
    Some(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// One field's value as the crate renders it; `None` for a value it renders in a way
/// the fast path does not write (it is rendered instead).
fn write_source(chunk: &[u8], values: &[Value], source: &Source, out: &mut Vec<u8>) -> Option<()> {
    let v = match source {
        Source::Absent => return Some(()),
        Source::Text(text) => {
            write_string(text, out);
            return Some(());
        }
        Source::Value(i) => values.get(usize::from(*i))?,
    };
    let b = &chunk[v.at..v.at + v.size];
    let le = |n: usize| {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&b[..n]);
        u64::from_le_bytes(w)
    };
    // Writing into a Vec cannot fail.
    let _ = match v.ty {
        // Empty nested Binary XML is rendered as no value.
        ty::NULL | ty::BIN_XML if v.size == 0 || v.ty == ty::NULL => write!(out, "null"),
        ty::STRING => {
            write_utf16(b, out);
            Ok(())
        }
        ty::ANSI_STRING => {
            // ASCII (`readable`), its NULs dropped as the crate drops them.
            let text: String = b
                .iter()
                .filter(|c| **c != 0)
                .map(|c| char::from(*c))
                .collect();
            write_string(&text, out);
            Ok(())
        }
        ty::UINT8 | ty::UINT16 | ty::UINT32 | ty::UINT64 => write!(out, "{}", le(v.size)),
        ty::INT8 => write!(out, "{}", b[0] as i8),
        ty::INT16 => write!(out, "{}", le(2) as u16 as i16),
        ty::INT32 => write!(out, "{}", le(4) as u32 as i32),
        ty::INT64 => write!(out, "{}", le(8) as i64),
        ty::HEX_INT32 | ty::HEX_INT64 | ty::SIZE_T => write!(out, "\"0x{:x}\"", le(v.size)),
        ty::FILETIME => {
            write_filetime(le(8), out)?;
            Ok(())
        }
        _ => return None,
    };
    Some(())
}

/// A UTF-16 string as a JSON string, as the crate renders it: up to its first NUL,
/// unpaired surrogates as U+FFFD.
fn write_utf16(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut units = b
        .chunks_exact(2)
        .map(|u| u16::from_le_bytes([u[0], u[1]]))
        .take_while(|u| *u != 0)
        .peekable();
    let mut utf8 = [0u8; 4];
    while let Some(u) = units.next() {
        let c = match u {
            // Most text is ASCII that needs no escape.
            0x20..0x80 if u != 0x22 && u != 0x5c => {
                out.push(u as u8);
                continue;
            }
            0xD800..0xDC00 => match units.next_if(|lo| (0xDC00..0xE000).contains(lo)) {
                Some(lo) => {
                    let high = u32::from(u - 0xD800) << 10;
                    char::from_u32(0x10000 + high + u32::from(lo - 0xDC00))
                }
                None => None,
            },
            _ => char::from_u32(u32::from(u)),
        };
        match c.unwrap_or(char::REPLACEMENT_CHARACTER) {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    out.push(b'"');
}

/// A FILETIME (100 ns since 1601, UTC) as the crate renders it,
/// `YYYY-MM-DDThh:mm:ss.fffffffZ`; `None` past the year 9999, which it renders with
/// only the last four digits of the year.
fn write_filetime(ticks: u64, out: &mut Vec<u8>) -> Option<()> {
    const TICKS_PER_SECOND: u64 = 10_000_000;
    const SECONDS_PER_DAY: u64 = 86_400;
    let seconds = ticks / TICKS_PER_SECOND;
    let (days, second_of_day) = (seconds / SECONDS_PER_DAY, seconds % SECONDS_PER_DAY);
    let (year, month, day) = civil(days);
    if year > 9999 {
        return None;
    }
    let mut text = *b"\"0000-00-00T00:00:00.0000000Z\"";
    for (at, width, value) in [
        (1, 4, year),
        (6, 2, month),
        (9, 2, day),
        (12, 2, second_of_day / 3600),
        (15, 2, second_of_day / 60 % 60),
        (18, 2, second_of_day % 60),
        (21, 7, ticks % TICKS_PER_SECOND),
    ] {
        digits(&mut text[at..at + width], value);
    }
    out.extend_from_slice(&text);
    Some(())
}

/// `value` in decimal, zero-padded to fill `into`.
fn digits(into: &mut [u8], mut value: u64) {
    for d in into.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The Gregorian date `days` after 1601-01-01. 1601 starts a 400-year cycle of the
/// calendar (146,097 days), whose centuries (36,524 days, the last one a day longer)
/// hold four-year cycles (1,461 days) of years (365 days, the fourth a day longer).
fn civil(days: u64) -> (u64, u64, u64) {
    let (cycles, mut rest) = (days / 146_097, days % 146_097);
    let centuries = (rest / 36_524).min(3);
    rest -= centuries * 36_524;
    let fours = rest / 1_461;
    rest -= fours * 1_461;
    let years = (rest / 365).min(3);
    rest -= years * 365;
    let year = 1601 + cycles * 400 + centuries * 100 + fours * 4 + years;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let lengths = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 1;
    for length in lengths {
        if rest < length {
            break;
        }
        rest -= length;
        month += 1;
    }
    (year, month, rest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn filetimes_are_written_as_the_instants_they_count_to() {
        const UNIX_FROM_1601: i64 = 11_644_473_600;
        // Bounded: 20,000 times spread over 1601 to 9999 (leap days and centuries
        // among them), each with a different tick of its second.
        let last = (253_402_300_799 + UNIX_FROM_1601) as u64 * 10_000_000;
        for i in 0..20_000u64 {
            let ticks = (last / 20_000) * i + (i * 7_919) % 10_000_000;
            let mut out = Vec::new();
            write_filetime(ticks, &mut out).unwrap();
            let text = std::str::from_utf8(&out).unwrap().trim_matches('"');
            let secs = (ticks / 10_000_000) as i64 - UNIX_FROM_1601;
            let want = Timestamp::new(secs, ((ticks % 10_000_000) * 100) as i32).unwrap();
            assert_eq!(text.parse::<Timestamp>().unwrap(), want, "{text}");
        }
        let mut out = Vec::new();
        write_filetime(130_848_726_033_124_986, &mut out).unwrap();
        assert_eq!(out, b"\"2015-08-24T06:50:03.3124986Z\"");
        // Past 9999 the crate keeps only four digits of the year: rendered instead.
        assert_eq!(write_filetime(last + 10_000_000, &mut Vec::new()), None);
    }

    #[test]
    fn strings_stop_at_their_nul_and_keep_what_json_needs_escaped() {
        let utf16 = |s: &[u16]| s.iter().flat_map(|u| u.to_le_bytes()).collect::<Vec<u8>>();
        let mut out = Vec::new();
        let text: Vec<u16> = "a\"b\\c\u{1}ü😀"
            .encode_utf16()
            .chain([0, 'x' as u16])
            .collect();
        write_utf16(&utf16(&text), &mut out);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\u{1}ü😀");
        // An unpaired surrogate is U+FFFD, as the crate renders it.
        out.clear();
        write_utf16(&utf16(&[0x61, 0xD800, 0x62]), &mut out);
        assert_eq!(
            serde_json::from_slice::<String>(&out).unwrap(),
            "a\u{FFFD}b"
        );
        out.clear();
        write_utf16(&utf16(&[0xDC00, 0xD83D, 0xDE00, 0xD83D]), &mut out);
        assert_eq!(
            serde_json::from_slice::<String>(&out).unwrap(),
            "\u{FFFD}😀\u{FFFD}"
        );
    }
}
