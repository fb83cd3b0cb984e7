//! Which substitution value of a record is which field of a Windows event: read from
//! the record's template definition.
//!
//! Almost every record of a Security log is a template instance: a reference to a
//! template definition stored once per chunk (Binary XML with substitution tokens where
//! the values go) and the record's own array of typed values. The definition is read
//! here, once per template and chunk, into a [`Plan`]: the index of the value that is
//! `System/EventID`, and where `TimeCreated/@SystemTime`, `Computer` and each
//! `EventData/Data[@Name]` that [`crate::windows`] reads come from.
//!
//! The format is libyal's "Windows XML Event Log (EVTX) format", sections "Template
//! definition", "Element", "Attribute", "Name", "Value text", "Normal substitution",
//! "Optional substitution" and "Token types"
//! (<https://github.com/libyal/libevtx/blob/main/documentation/Windows%20XML%20Event%20Log%20(EVTX).asciidoc>).
//!
//! The plan is only made where its meaning is certain; anything else leaves a part of
//! it unknown (`None`), and the records that need that part are rendered by the `evtx`
//! crate instead ([`super`]): a definition that cannot be read to its end, token types
//! a definition should not hold, elements nested deeper than [`MAX_DEPTH`], an
//! `EventID` that is not one substitution, a field given twice, a `Data` whose `Name`
//! is not literal text, and substitutions where elements could be (a nested template
//! could bring elements of its own, such as the whole `EventData`).

use std::ops::Range;

use super::{u16_at, u32_at};
use crate::windows::EVTX_DATA_FIELDS;

/// Where a field of the event comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// The template does not have it.
    Absent,
    /// The substitution value of this index.
    Value(u16),
    /// Literal text in the template.
    Text(Box<str>),
}

/// The event's fields other than its id, for the login records of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fields {
    /// `System/TimeCreated/@SystemTime`.
    pub time: Source,
    /// `System/Computer`.
    pub computer: Source,
    /// `EventData`.
    pub data: Data,
}

/// Where `EventData` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Data {
    /// The template's own: `Data[@Name]` for each name of [`EVTX_DATA_FIELDS`], in its
    /// order (all absent if the template has no `EventData`).
    Here(Vec<Source>),
    /// The substitution value of this index: a nested template (libyal, "Binary XML
    /// type (0x21)"), as saved and forwarded logs have, whose root is `EventData`.
    Nested(u16),
}

/// What the fast path knows of one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// The index of the value that is `System/EventID`; `None`: every record of the
    /// template is rendered.
    pub event_id: Option<u16>,
    /// `None`: the login records of the template are rendered.
    pub fields: Option<Fields>,
}

impl Plan {
    const UNKNOWN: Plan = Plan {
        event_id: None,
        fields: None,
    };
}

/// What a nested template gives the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Nested {
    /// Its `EventData`'s fields, as [`Data::Here`].
    EventData(Vec<Source>),
    /// Nothing the reader reads (`UserData`, say).
    Nothing,
    /// The fast path cannot tell: the record is rendered.
    Unknown,
}

/// Deepest element nesting read in a definition (real ones nest four deep).
pub(super) const MAX_DEPTH: usize = 32;

/// Token types (libyal, "Token types"); `MORE` is the "has more data" flag.
mod token {
    pub const EOF: u8 = 0x00;
    pub const OPEN_START: u8 = 0x01;
    pub const CLOSE_START: u8 = 0x02;
    pub const CLOSE_EMPTY: u8 = 0x03;
    pub const END_ELEMENT: u8 = 0x04;
    pub const VALUE: u8 = 0x05;
    pub const ATTRIBUTE: u8 = 0x06;
    pub const CDATA: u8 = 0x07;
    pub const CHAR_REF: u8 = 0x08;
    pub const ENTITY_REF: u8 = 0x09;
    pub const NORMAL_SUBSTITUTION: u8 = 0x0d;
    pub const OPTIONAL_SUBSTITUTION: u8 = 0x0e;
    pub const FRAGMENT_HEADER: u8 = 0x0f;
    pub const MORE: u8 = 0x40;
}

/// The value type of text in a value token: a UTF-16 string.
const STRING_TYPE: u8 = 0x01;

/// Size of a template definition's header: next definition offset, GUID, data size.
pub(super) const HEADER_SIZE: usize = 24;

/// One piece of an element's or attribute's content.
#[derive(Debug)]
enum Part {
    /// Literal text: UTF-16 (checked) at this range of the chunk.
    Text(Range<usize>),
    Value(u16),
    /// A character or entity reference, or CDATA: content the plan does not place.
    Other,
}

/// One element of the definition.
#[derive(Debug)]
struct Element {
    /// Chunk offset of its name.
    name: u32,
    parent: Option<usize>,
    /// (chunk offset of the name, value) of each attribute.
    attributes: Vec<(u32, Vec<Part>)>,
    content: Vec<Part>,
    /// How many parts of `content` came before its first child element.
    lead: Option<usize>,
}

/// The name references of a definition that was read to its end: where each lies in
/// the chunk, and the offset of the name it refers to. With its bytes, they are all of
/// the chunk that the reading of the definition looked at.
pub(super) type Names = Vec<(usize, u32)>;

/// Reads the template definition at `offset` of `chunk` into a plan, with its name
/// references if it could be read.
pub(super) fn plan(chunk: &[u8], offset: u32) -> (Plan, Option<Names>) {
    match elements(chunk, offset) {
        Some((elements, names)) => (Planner { chunk, elements }.plan(), Some(names)),
        None => (Plan::UNKNOWN, None),
    }
}

/// Reads the definition at `offset` of `chunk` as a nested template's, with its name
/// references if it could be read.
pub(super) fn nested(chunk: &[u8], offset: u32) -> (Nested, Option<Names>) {
    let Some((elements, names)) = elements(chunk, offset) else {
        return (Nested::Unknown, None);
    };
    let p = Planner { chunk, elements };
    let nested = if p.named(0, "EventData") {
        p.event_data(0).map_or(Nested::Unknown, Nested::EventData)
    } else if p.named(0, "System") || p.named(0, "Event") {
        // A second `System` would stand for the first in the JSON.
        Nested::Unknown
    } else {
        Nested::Nothing
    };
    (nested, Some(names))
}

/// The elements of the definition at `offset`, in document order; `None` if it cannot
/// be read to its end or holds what a definition should not.
fn elements(chunk: &[u8], offset: u32) -> Option<(Vec<Element>, Names)> {
    let start = (offset as usize).checked_add(HEADER_SIZE)?;
    let size = u32_at(chunk, offset as usize + 20)? as usize;
    let end = start.checked_add(size)?;
    if end > chunk.len() {
        return None;
    }
    let mut r = Tokens {
        chunk,
        at: start,
        end,
        names: Vec::new(),
    };
    if r.u8()? != token::FRAGMENT_HEADER {
        return None;
    }
    r.skip(3)?;
    let mut elements: Vec<Element> = Vec::new();
    // The open elements, and where each must end: its data size counts all of it but
    // its first 7 bytes (token, dependency identifier, data size).
    let mut open: Vec<usize> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    // In a start tag, content tokens are the value of its last attribute; the
    // attribute list ends where its size says.
    let mut in_start_tag = false;
    let mut attributes_end = None;
    loop {
        let t = r.u8()?;
        match t & !token::MORE {
            token::EOF if t == token::EOF => {
                // One root element, complete.
                return (open.is_empty() && !elements.is_empty() && !in_start_tag)
                    .then_some((elements, r.names));
            }
            token::OPEN_START => {
                if in_start_tag || open.len() >= MAX_DEPTH {
                    return None;
                }
                if open.is_empty() && !elements.is_empty() {
                    return None; // a second root
                }
                // Dependency identifier, data size, then the name.
                let end = (r.at - 1).checked_add(7 + u32_at(chunk, r.at + 2)? as usize)?;
                r.skip(6)?;
                let name = r.name()?;
                attributes_end = None;
                if t & token::MORE != 0 {
                    let size = r.u32()? as usize;
                    attributes_end = Some(r.at.checked_add(size)?);
                }
                ends.push(end);
                let parent = open.last().copied();
                if let Some(p) = parent {
                    let p = &mut elements[p];
                    p.lead.get_or_insert(p.content.len());
                }
                elements.push(Element {
                    name,
                    parent,
                    attributes: Vec::new(),
                    content: Vec::new(),
                    lead: None,
                });
                open.push(elements.len() - 1);
                in_start_tag = true;
            }
            token::ATTRIBUTE => {
                let e = *open.last().filter(|_| in_start_tag)?;
                let name = r.name()?;
                elements[e].attributes.push((name, Vec::new()));
            }
            token::CLOSE_START if t == token::CLOSE_START => {
                if !in_start_tag || attributes_end.is_some_and(|e| e != r.at - 1) {
                    return None;
                }
                in_start_tag = false;
            }
            token::CLOSE_EMPTY if t == token::CLOSE_EMPTY => {
                if !in_start_tag || attributes_end.is_some_and(|e| e != r.at - 1) {
                    return None;
                }
                in_start_tag = false;
                open.pop();
                if ends.pop() != Some(r.at) {
                    return None;
                }
            }
            token::END_ELEMENT if t == token::END_ELEMENT => {
                if in_start_tag {
                    return None;
                }
                open.pop()?;
                if ends.pop() != Some(r.at) {
                    return None;
                }
            }
            token::VALUE | token::CDATA | token::CHAR_REF | token::ENTITY_REF => {
                let part = match t & !token::MORE {
                    token::VALUE => {
                        if r.u8()? != STRING_TYPE {
                            return None;
                        }
                        Part::Text(r.text()?)
                    }
                    token::CDATA => {
                        r.text()?;
                        Part::Other
                    }
                    token::CHAR_REF => {
                        r.skip(2)?;
                        Part::Other
                    }
                    _ => {
                        r.name()?;
                        Part::Other
                    }
                };
                push(&mut elements, &open, in_start_tag, part)?;
            }
            token::NORMAL_SUBSTITUTION | token::OPTIONAL_SUBSTITUTION if t & token::MORE == 0 => {
                let index = r.u16()?;
                // The value type the template expects: one the crate knows.
                if !known_type(r.u8()?) {
                    return None;
                }
                push(&mut elements, &open, in_start_tag, Part::Value(index))?;
            }
            // Template instances, processing instructions, fragment headers: not in
            // the definitions the fast path reads.
            _ => return None,
        }
    }
}

/// Whether `ty` is a value type (libyal, "Value types").
fn known_type(ty: u8) -> bool {
    matches!(ty, 0x00..=0x15 | 0x20 | 0x21 | 0x23 | 0x81..=0x95)
}

/// Adds content to the open attribute (in a start tag) or element.
fn push(elements: &mut [Element], open: &[usize], in_start_tag: bool, part: Part) -> Option<()> {
    let e = &mut elements[*open.last()?];
    if in_start_tag {
        e.attributes.last_mut()?.1.push(part);
    } else {
        e.content.push(part);
    }
    Some(())
}

/// A reader of a definition's bytes, bounded by its data size.
struct Tokens<'c> {
    chunk: &'c [u8],
    at: usize,
    end: usize,
    /// The name references read.
    names: Names,
}

impl Tokens<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        let next = self.at.checked_add(n)?;
        (next <= self.end).then(|| self.at = next)
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.chunk.get(self.at).filter(|_| self.at < self.end)?;
        self.at += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let v = u16_at(self.chunk, self.at)?;
        self.skip(2)?;
        Some(v)
    }

    fn u32(&mut self) -> Option<u32> {
        let v = u32_at(self.chunk, self.at)?;
        self.skip(4)?;
        Some(v)
    }

    /// A name reference: its chunk offset. A name stored right here (its offset is
    /// where it starts) is skipped: link (4), hash (2), length (2), the characters
    /// and a NUL.
    /// The name must be one the crate can read wherever it is: the records of a
    /// template whose names it cannot read are all lost to it, so they are left to it.
    fn name(&mut self) -> Option<u32> {
        let field = self.at;
        let offset = self.u32()?;
        self.names.push((field, offset));
        let at = offset as usize;
        let chars = usize::from(u16_at(self.chunk, at.checked_add(6)?)?);
        let text = self.chunk.get(at + 8..at + 8 + chars * 2 + 2)?;
        let mut units = text[..chars * 2]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]));
        let plain_name = char::decode_utf16(&mut units).all(|c| c.is_ok_and(plain_char));
        if !plain_name {
            return None;
        }
        if at == self.at {
            self.skip(8 + chars * 2 + 2)?;
        }
        Some(offset)
    }

    /// A length-prefixed UTF-16 string: where its characters are.
    fn text(&mut self) -> Option<Range<usize>> {
        let chars = self.u16()? as usize;
        let from = self.at;
        self.skip(chars * 2)?;
        let mut units = self.chunk[from..self.at]
            .chunks_exact(2)
            .map(|u| u16::from_le_bytes([u[0], u[1]]));
        char::decode_utf16(&mut units)
            .all(|c| c.is_ok())
            .then_some(from..self.at)
    }
}

/// Whether a character of a name (or of a `Data` element's `Name`) is one the crate
/// writes in a JSON key that JSON readers accept: it writes names as they are, and
/// real ones are XML names, but a damaged one could hold a quote, a backslash or a
/// control character.
fn plain_char(c: char) -> bool {
    !(c < ' ' || c == '"' || c == '\\')
}

/// UTF-16LE bytes as text, if they are UTF-16.
fn utf16(bytes: &[u8]) -> Option<String> {
    char::decode_utf16(
        bytes
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]])),
    )
    .collect::<Result<String, _>>()
    .ok()
}

/// Whether the name at chunk offset `name` is `want` (ASCII): length at +6, UTF-16
/// characters from +8.
fn name_is(chunk: &[u8], name: u32, want: &str) -> bool {
    let at = name as usize;
    u16_at(chunk, at + 6) == Some(want.len() as u16)
        && chunk.get(at + 8..).is_some_and(|text| utf16_is(text, want))
}

/// Whether the UTF-16 characters that `text` starts with are `want` (ASCII).
fn utf16_is(text: &[u8], want: &str) -> bool {
    text.len() >= want.len() * 2
        && want
            .bytes()
            .zip(text.chunks_exact(2))
            .all(|(c, u)| u == [c, 0])
}

struct Planner<'c> {
    chunk: &'c [u8],
    elements: Vec<Element>,
}

impl Planner<'_> {
    fn named(&self, e: usize, want: &str) -> bool {
        name_is(self.chunk, self.elements[e].name, want)
    }

    /// The children of `parent` named `want`.
    fn children(&self, parent: usize, want: &str) -> Vec<usize> {
        (0..self.elements.len())
            .filter(|&e| self.elements[e].parent == Some(parent) && self.named(e, want))
            .collect()
    }

    /// Whether substitutions stand where elements could: a nested template's elements
    /// would join `e`'s children.
    fn may_nest(&self, e: usize) -> bool {
        self.elements[e]
            .content
            .iter()
            .any(|p| matches!(p, Part::Value(_)))
    }

    /// The one child of `parent` named `want`: `Ok(None)` if there is none, `Err` if
    /// there are several.
    fn only_child(&self, parent: usize, want: &str) -> Result<Option<usize>, ()> {
        match self.children(parent, want)[..] {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(()),
        }
    }

    /// The one attribute of `e` named `want`.
    fn attribute(&self, e: usize, want: &str) -> Result<Option<&[Part]>, ()> {
        let mut found = None;
        for (name, value) in &self.elements[e].attributes {
            if name_is(self.chunk, *name, want) {
                if found.is_some() {
                    return Err(());
                }
                found = Some(value.as_slice());
            }
        }
        Ok(found)
    }

    fn plan(&self) -> Plan {
        let root = 0;
        if !self.named(root, "Event") {
            return Plan::UNKNOWN;
        }
        // `System` comes first, before anything a nested template could bring, so its
        // `EventID` is the first the rendering path finds.
        let Ok(Some(system)) = self.only_child(root, "System") else {
            return Plan::UNKNOWN;
        };
        let r = &self.elements[root];
        let lead = &r.content[..r.lead.unwrap_or(r.content.len())];
        if system != 1 || lead.iter().any(|p| matches!(p, Part::Value(_))) {
            return Plan::UNKNOWN;
        }
        if self.may_nest(system) {
            return Plan::UNKNOWN;
        }
        let Ok(Some(id)) = self.only_child(system, "EventID") else {
            return Plan::UNKNOWN;
        };
        // `EventID` must be said once: the rendering path finds the first one.
        let elsewhere = self.elements.iter().enumerate().any(|(e, el)| {
            (e != id && self.named(e, "EventID"))
                || el
                    .attributes
                    .iter()
                    .any(|(n, _)| name_is(self.chunk, *n, "EventID"))
        });
        let event_id = match self.elements[id].content[..] {
            [Part::Value(i)] if !elsewhere => i,
            _ => return Plan::UNKNOWN,
        };
        Plan {
            event_id: Some(event_id),
            fields: self.fields(root, system).ok(),
        }
    }

    fn fields(&self, root: usize, system: usize) -> Result<Fields, ()> {
        let time = match self.only_child(system, "TimeCreated")? {
            Some(t) => match self.attribute(t, "SystemTime")? {
                Some(parts) => source(self.chunk, parts)?,
                None => Source::Absent,
            },
            None => Source::Absent,
        };
        let computer = match self.only_child(system, "Computer")? {
            Some(c) => source(self.chunk, &self.elements[c].content)?,
            None => Source::Absent,
        };
        let here = self.only_child(root, "EventData")?;
        let nested: Vec<u16> = self.elements[root]
            .content
            .iter()
            .filter_map(|p| match p {
                Part::Value(i) => Some(*i),
                _ => None,
            })
            .collect();
        let data = match (here, &nested[..]) {
            (Some(e), []) => Data::Here(self.event_data(e)?),
            (None, []) => Data::Here(vec![Source::Absent; EVTX_DATA_FIELDS.len()]),
            (None, [i]) => Data::Nested(*i),
            _ => return Err(()),
        };
        Ok(Fields {
            time,
            computer,
            data,
        })
    }

    /// The fields of the `EventData` element `e`.
    fn event_data(&self, e: usize) -> Result<Vec<Source>, ()> {
        if self.may_nest(e) {
            return Err(());
        }
        let mut data = vec![Source::Absent; EVTX_DATA_FIELDS.len()];
        let mut seen = vec![false; EVTX_DATA_FIELDS.len()];
        for d in self.children(e, "Data") {
            let Some(name) = self.attribute(d, "Name")? else {
                continue; // an unnamed Data: not one the reader reads
            };
            let [Part::Text(name)] = name else {
                return Err(());
            };
            let name = &self.chunk[name.clone()];
            let mut units = name
                .chunks_exact(2)
                .map(|u| u16::from_le_bytes([u[0], u[1]]));
            if !char::decode_utf16(&mut units).all(|c| c.is_ok_and(plain_char)) {
                return Err(());
            }
            let known = EVTX_DATA_FIELDS
                .iter()
                .position(|f| f.len() * 2 == name.len() && utf16_is(name, f));
            if let Some(i) = known {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(());
                }
                data[i] = source(self.chunk, &self.elements[d].content)?;
            }
        }
        Ok(data)
    }
}

/// Where content made of `parts` comes from: one substitution or literal text.
fn source(chunk: &[u8], parts: &[Part]) -> Result<Source, ()> {
    match parts {
        [] => Ok(Source::Absent),
        [Part::Value(i)] => Ok(Source::Value(*i)),
        _ => {
            let mut text = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => text.push_str(&utf16(&chunk[t.clone()]).ok_or(())?),
                    _ => return Err(()),
                }
            }
            Ok(Source::Text(text.into()))
        }
    }
}
