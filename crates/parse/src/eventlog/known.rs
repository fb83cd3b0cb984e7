//! Template definitions known from earlier chunks, so that each is read once per file
//! rather than once per chunk.
//!
//! Every chunk stores its own copy of each template definition it uses (libyal's
//! "Windows XML Event Log (EVTX) format", "Template definition": the offset of the
//! next definition, the template's GUID, the data size, then Binary XML), usually at
//! another offset than in the chunk before. What a [`super::template`] reading of a
//! definition makes of it depends on its bytes and on the names it refers to, which
//! are references by chunk offset: to a name stored inside the definition (the first
//! use of a name in the chunk, and later uses in the same definition) or to one stored
//! earlier in the chunk. So a definition reads as one read before when its GUID and
//! bytes are the same but for the name references, each of which refers to a name at
//! the same place in the definition or, outside it, to a name of the same characters.
//! Only then is the earlier reading used; anything else is read afresh.

use std::rc::Rc;

use super::template::{HEADER_SIZE, Names};

/// The most definitions kept, and the most bytes of them: a file's log has a few dozen
/// templates; a crafted one may have thousands, which are then read per chunk.
const MAX_KNOWN: usize = 256;
const MAX_KNOWN_BYTES: usize = 4 << 20;

/// What a name reference of a definition refers to.
#[derive(Debug)]
enum Target {
    /// A name inside the definition, this far from its start.
    Inside(usize),
    /// A name outside it: its character count and characters (UTF-16).
    Outside(Box<[u8]>),
}

/// A definition as far as its reading depends on it.
#[derive(Debug)]
struct Shape {
    guid: [u8; 16],
    /// From its data size on (offset 20) to its end.
    bytes: Box<[u8]>,
    /// Its name references: how far from its start each lies, and what it refers to.
    names: Box<[(usize, Target)]>,
}

/// The name read at `at` of `chunk`, as [`super::template`] reads one: its count and
/// characters, then a NUL that must be there.
fn name_text(chunk: &[u8], at: usize) -> Option<&[u8]> {
    let chars = usize::from(u16::from_le_bytes(
        chunk.get(at.checked_add(6)?..at + 8)?.try_into().ok()?,
    ));
    chunk.get(at + 8 + chars * 2..at + 10 + chars * 2)?;
    chunk.get(at + 6..at + 8 + chars * 2)
}

impl Shape {
    /// The shape of the definition at `offset` of `chunk`, read with these `names`.
    fn new(chunk: &[u8], offset: usize, names: &Names) -> Option<Shape> {
        let size = u32::from_le_bytes(chunk.get(offset + 20..offset + 24)?.try_into().ok()?);
        let end = offset + HEADER_SIZE + size as usize;
        let names = names
            .iter()
            .map(|&(field, name)| {
                let name = name as usize;
                let text = name_text(chunk, name)?;
                // Inside when all that is read of the name is.
                let target = if name >= offset && name + 10 + text.len() - 2 <= end {
                    Target::Inside(name - offset)
                } else {
                    Target::Outside(text.into())
                };
                Some((field.checked_sub(offset)?, target))
            })
            .collect::<Option<Box<[_]>>>()?;
        Some(Shape {
            guid: chunk.get(offset + 4..offset + 20)?.try_into().ok()?,
            bytes: chunk.get(offset + 20..end)?.into(),
            names,
        })
    }

    /// Whether the definition at `offset` of `chunk` reads as this one did.
    fn matches(&self, chunk: &[u8], offset: usize) -> bool {
        if chunk.get(offset + 4..offset + 20) != Some(&self.guid[..]) {
            return false;
        }
        let end = offset + 20 + self.bytes.len();
        let Some(bytes) = chunk.get(offset + 20..end) else {
            return false;
        };
        let mut from = 0;
        for (field, target) in &self.names {
            // Names lie past the header, so past the data size.
            let Some(at) = field.checked_sub(20) else {
                return false;
            };
            if bytes.get(from..at) != self.bytes.get(from..at) {
                return false;
            }
            let Some(name) = bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from_le_bytes(b) as usize)
            else {
                return false;
            };
            let same = match target {
                Target::Inside(from_start) => name == offset + from_start,
                Target::Outside(text) => {
                    !(offset..end).contains(&name) && name_text(chunk, name) == Some(&text[..])
                }
            };
            if !same {
                return false;
            }
            from = at + 4;
        }
        bytes.get(from..) == self.bytes.get(from..)
    }

    fn size(&self) -> usize {
        self.bytes.len()
            + self
                .names
                .iter()
                .map(|(_, t)| match t {
                    Target::Inside(_) => 16,
                    Target::Outside(text) => 16 + text.len(),
                })
                .sum::<usize>()
    }
}

/// Readings of definitions of earlier chunks.
#[derive(Debug)]
pub(super) struct Known<T> {
    entries: Vec<(Shape, Rc<T>)>,
    bytes: usize,
}

impl<T> Default for Known<T> {
    fn default() -> Self {
        Known {
            entries: Vec::new(),
            bytes: 0,
        }
    }
}

impl<T> Known<T> {
    /// The reading of a definition like the one at `offset` of `chunk`, if one is known.
    pub fn find(&self, chunk: &[u8], offset: u32) -> Option<Rc<T>> {
        self.entries
            .iter()
            .find(|(shape, _)| shape.matches(chunk, offset as usize))
            .map(|(_, t)| Rc::clone(t))
    }

    /// Keeps `reading`, of the definition at `offset` of `chunk` read with `names`,
    /// while there is room.
    pub fn keep(&mut self, chunk: &[u8], offset: u32, names: &Names, reading: &Rc<T>) {
        if self.entries.len() >= MAX_KNOWN {
            return;
        }
        let Some(shape) = Shape::new(chunk, offset as usize, names) else {
            return;
        };
        if self.bytes + shape.size() > MAX_KNOWN_BYTES {
            return;
        }
        self.bytes += shape.size();
        self.entries.push((shape, Rc::clone(reading)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name entry (link, hash, count, characters, NUL) at `at` of `chunk`.
    fn put_name(chunk: &mut [u8], at: usize, name: &str) -> usize {
        let mut entry = vec![0; 6];
        entry.extend((name.len() as u16).to_le_bytes());
        entry.extend(name.encode_utf16().flat_map(u16::to_le_bytes));
        entry.extend([0, 0]);
        chunk[at..at + entry.len()].copy_from_slice(&entry);
        at + entry.len()
    }

    /// A definition at `offset`: header, 8 bytes of data, then a reference to a name
    /// stored inside it and one to `outside`.
    fn definition(chunk: &mut [u8], offset: usize, outside: u32) -> Names {
        chunk[offset + 4..offset + 20].copy_from_slice(&[7; 16]);
        let body = offset + HEADER_SIZE;
        chunk[body..body + 8].copy_from_slice(b"\x0f\x01\x01\x00abcd");
        let inside = (body + 8) as u32;
        chunk[body + 8..body + 12].copy_from_slice(&(inside + 4).to_le_bytes());
        let after = put_name(chunk, body + 12, "Event");
        chunk[after..after + 4].copy_from_slice(&outside.to_le_bytes());
        let size = (after + 4 - body) as u32;
        chunk[offset + 20..offset + 24].copy_from_slice(&size.to_le_bytes());
        vec![(body + 8, inside + 4), (after, outside)]
    }

    #[test]
    fn a_definition_is_known_again_elsewhere_only_with_the_same_names() {
        let mut first = vec![0; 4096];
        put_name(&mut first, 100, "System");
        let names = definition(&mut first, 600, 100);
        let mut known = Known::default();
        known.keep(&first, 600, &names, &Rc::new(1));
        assert_eq!(known.find(&first, 600).as_deref(), Some(&1));

        // Another chunk: the definition at another offset, its outside name elsewhere.
        let mut second = vec![0; 4096];
        put_name(&mut second, 300, "System");
        definition(&mut second, 1000, 300);
        assert_eq!(known.find(&second, 1000).as_deref(), Some(&1));
        // The outside name is another name.
        put_name(&mut second, 300, "Systen");
        assert_eq!(known.find(&second, 1000), None);
        put_name(&mut second, 300, "System");
        // A byte of the definition differs.
        second[1000 + HEADER_SIZE + 5] ^= 1;
        assert_eq!(known.find(&second, 1000), None);
        second[1000 + HEADER_SIZE + 5] ^= 1;
        // The inside name is referred to from elsewhere.
        let field = 1000 + HEADER_SIZE + 8;
        second[field..field + 4].copy_from_slice(&300u32.to_le_bytes());
        assert_eq!(known.find(&second, 1000), None);
        // Another GUID.
        let mut third = vec![0; 4096];
        put_name(&mut third, 300, "System");
        definition(&mut third, 1000, 300);
        third[1004] = 8;
        assert_eq!(known.find(&third, 1000), None);
        // A definition running past the chunk.
        assert_eq!(known.find(&first, 4090), None);
    }
}
