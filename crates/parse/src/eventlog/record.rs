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
//! are left to it. The event id is read first, and a record that is not a login stops
//! there. A login record has every value checked, and its fields written as JSON in the
//! shape the crate renders (`Event.System.EventID`,
//! `Event.System.TimeCreated.#attributes.SystemTime`, `Event.System.Computer`,
//! `Event.EventData.<Name>`), with each value as the crate writes it: integers as
//! numbers, hexadecimal integers as `0x…` text, UTF-16 strings up to their first NUL
//! with unpaired surrogates as U+FFFD, FILETIMEs as RFC 3339 times. Anything else is
//! [`Outcome::Render`]: the crate renders that record.

use std::ops::Range;
use std::rc::Rc;

use jiff::Timestamp;

use super::LOGIN_IDS;
use super::template::{self, Data, Fields, Nested, Plan, Source};
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

/// The templates of one chunk, each read once.
#[derive(Debug, Default)]
pub(super) struct Templates {
    plans: Vec<(u32, Rc<Plan>)>,
    nested: Vec<(u32, Rc<Nested>)>,
}

impl Templates {
    /// Forgets the chunk's templates (their offsets mean nothing in the next one).
    pub fn clear(&mut self) {
        self.plans.clear();
        self.nested.clear();
    }

    fn plan(&mut self, chunk: &[u8], offset: u32) -> Rc<Plan> {
        cached(&mut self.plans, offset, || template::plan(chunk, offset))
    }

    fn nested(&mut self, chunk: &[u8], offset: u32) -> Rc<Nested> {
        cached(&mut self.nested, offset, || template::nested(chunk, offset))
    }
}

/// The entry for `offset`, made by `make` the first time. A chunk holds few templates
/// (a few dozen), so a scan is quicker than hashing.
fn cached<T>(entries: &mut Vec<(u32, Rc<T>)>, offset: u32, make: impl FnOnce() -> T) -> Rc<T> {
    if let Some((_, t)) = entries.iter().find(|(o, _)| *o == offset) {
        return Rc::clone(t);
    }
    let t = Rc::new(make());
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

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

impl RecordReader {
    /// Reads the record whose Binary XML is `binxml` of `chunk`, writing a login
    /// record's JSON to `out`.
    pub fn read(&mut self, chunk: &[u8], binxml: Range<usize>, out: &mut Vec<u8>) -> Outcome {
        self.decide(chunk, binxml, out).unwrap_or(Outcome::Render)
    }

    fn decide(&mut self, chunk: &[u8], binxml: Range<usize>, out: &mut Vec<u8>) -> Option<Outcome> {
        let def = read_values(chunk, &binxml, &mut self.values)?;
        let plan = self.templates.plan(chunk, def);
        let id = self.values.get(usize::from(plan.event_id?))?;
        if id.ty != ty::UINT16 || id.size != 2 {
            return None;
        }
        let id = u16::from_le_bytes([chunk[id.at], chunk[id.at + 1]]);
        if !LOGIN_IDS.contains(&u32::from(id)) {
            return Some(Outcome::Skip);
        }
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
    let bytes = chunk.get(stream.clone())?;
    // A fragment header, then the instance: the crate's single-instance records.
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
    let mut value_at = at + count * 4;
    values.clear();
    for d in chunk[at..at + count * 4].chunks_exact(4) {
        let size = usize::from(u16::from_le_bytes([d[0], d[1]]));
        let ty = d[2];
        let bytes = chunk.get(value_at..value_at + size)?;
        if !read_as_sized(ty, bytes) {
            return None;
        }
        values.push(Value {
            at: value_at,
            size,
            ty,
        });
        value_at += size;
    }
    // What follows the instance in the stream must be its end.
    match chunk.get(value_at..stream.end) {
        Some([] | [0x00, ..]) | None => Some(def),
        Some(_) => None,
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
        write_string(name, out);
        out.push(b':');
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
    let text = match v.ty {
        ty::NULL => {
            out.extend_from_slice(b"null");
            return Some(());
        }
        // Empty nested Binary XML is rendered as no value.
        ty::BIN_XML if v.size == 0 => {
            out.extend_from_slice(b"null");
            return Some(());
        }
        ty::STRING => {
            let units = b
                .chunks_exact(2)
                .position(|u| u == [0, 0])
                .unwrap_or(b.len() / 2);
            template::utf16_lossy(&b[..units * 2])
        }
        ty::ANSI_STRING => b
            .iter()
            .filter(|c| **c != 0)
            .map(|c| char::from(*c))
            .collect(),
        ty::UINT8 | ty::UINT16 | ty::UINT32 | ty::UINT64 => {
            out.extend_from_slice(le(v.size).to_string().as_bytes());
            return Some(());
        }
        ty::INT8 => (b[0] as i8).to_string(),
        ty::INT16 => (le(2) as u16 as i16).to_string(),
        ty::INT32 => (le(4) as u32 as i32).to_string(),
        ty::INT64 => (le(8) as i64).to_string(),
        ty::HEX_INT32 | ty::HEX_INT64 | ty::SIZE_T => format!("0x{:x}", le(v.size)),
        ty::FILETIME => filetime(le(8))?.to_string(),
        _ => return None,
    };
    match v.ty {
        // Signed integers are numbers too.
        ty::INT8 | ty::INT16 | ty::INT32 | ty::INT64 => out.extend_from_slice(text.as_bytes()),
        _ => write_string(&text, out),
    }
    Some(())
}

/// The instant a FILETIME (100 ns since 1601) counts to, if it is one jiff can hold
/// (the crate renders later ones with only the last four digits of their year).
fn filetime(ticks: u64) -> Option<Timestamp> {
    const UNIX_FROM_1601: i64 = 11_644_473_600;
    let secs = i64::try_from(ticks / 10_000_000).ok()? - UNIX_FROM_1601;
    let nanos = ((ticks % 10_000_000) * 100) as i32;
    Timestamp::new(secs, nanos).ok()
}
