//! Where a parsed record's kept values live, and the handles the readers read them by.
//!
//! The scanner ([`super`]) writes every kept value of a record onto a [`Tape`] in
//! pre-order: one small `Copy` entry per value, array or object. An array's or
//! object's entry holds the index one past its last descendant, so that stepping over
//! a value is one look whatever it contains. Strings are byte ranges of the record
//! where they have no escapes; unescaped ones are appended to the tape's one text
//! buffer, and kept numbers to its one vector of numbers.
//!
//! An object's kept members (each key and the index of its value) are listed together
//! in the tape's table of members, in the record's order, when the object closes: a
//! lookup reads that short list from its end, so that the last of a repeated key wins
//! (as in a `serde_json::Map`) and the first key that matches ends it. Walking the
//! object's entries instead, key after value, costs several times more per lookup,
//! and the readers look up more keys than a record has.
//!
//! The tape is cleared, not freed, between records: reading a record allocates nothing
//! in the usual case, and [`Tape::clear`] gives back what an unusually large record
//! made it take.
//!
//! A [`Doc`] is one record on the tape; a [`Node`] is a value of it (a reference and
//! an index, copied freely), what the readers' [`JsonNode`] is implemented for.

use serde_json::Number;

use super::JsonNode;

/// One kept value on the tape.
///
/// Strings are byte ranges `from..to` of one space: the record's bytes, then the
/// tape's text (at the record's length and on). Offsets and indices are `u32`: the
/// scanner refuses a record longer than `u32::MAX / 2` bytes, so every one of them
/// fits (a record has no more entries, members, numbers or unescaped text than it has
/// bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Entry {
    Null,
    Bool(bool),
    /// Index into [`Tape::numbers`].
    Number(u32),
    /// A string: in the record where it has no escapes (the record is then UTF-8),
    /// in the tape's text where it had (or where the record is not all UTF-8).
    Str {
        from: u32,
        to: u32,
    },
    /// An array; its items follow, up to `end` (exclusive).
    Array {
        end: u32,
    },
    /// An object; its members' values follow, up to `end` (exclusive), and its
    /// members are `members..members + count` of [`Tape::members`].
    Object {
        end: u32,
        members: u32,
        count: u32,
    },
}

// Small enough that a record's entries sit in a few cache lines.
const _: () = assert!(std::mem::size_of::<Entry>() <= 16);

/// A kept member of an object: its key (`len` bytes from `from`, a string as
/// [`Entry::Str`]) and where its value is on the tape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Member {
    pub(super) from: u32,
    pub(super) len: u32,
    pub(super) value: u32,
}

/// Past these capacities (entries, members, bytes of text, numbers) [`Tape::clear`]
/// shrinks the tape back: a usual record needs a few dozen entries; a Graph page of a
/// thousand sign-ins some ten thousand.
const KEEP_ENTRIES: usize = 16 * 1024;
const KEEP_MEMBERS: usize = 16 * 1024;
const KEEP_TEXT: usize = 64 * 1024;
const KEEP_NUMBERS: usize = 1024;

/// The reusable storage of parsed records: see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Tape {
    pub(super) entries: Vec<Entry>,
    /// The members of each closed object, an object's together.
    pub(super) members: Vec<Member>,
    /// The members of the objects still open, innermost last.
    pub(super) pending: Vec<Member>,
    pub(super) text: String,
    pub(super) numbers: Vec<Number>,
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the last record, keeping the storage for the next one unless it grew
    /// past a modest size (memory stays bounded whatever one record held).
    #[inline]
    pub fn clear(&mut self) {
        self.entries.clear();
        self.members.clear();
        self.pending.clear();
        self.text.clear();
        self.numbers.clear();
        if self.entries.capacity() > KEEP_ENTRIES
            || self.members.capacity() > KEEP_MEMBERS
            || self.pending.capacity() > KEEP_MEMBERS
            || self.text.capacity() > KEEP_TEXT
            || self.numbers.capacity() > KEEP_NUMBERS
        {
            self.shrink();
        }
    }

    #[cold]
    fn shrink(&mut self) {
        self.entries.shrink_to(KEEP_ENTRIES);
        self.members.shrink_to(KEEP_MEMBERS);
        self.pending.shrink_to(KEEP_MEMBERS);
        self.text.shrink_to(KEEP_TEXT);
        self.numbers.shrink_to(KEEP_NUMBERS);
    }

    /// How much room the tape holds, in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry>()
            + (self.members.capacity() + self.pending.capacity()) * size_of::<Member>()
            + self.text.capacity()
            + self.numbers.capacity() * size_of::<Number>()
    }
}

/// One record parsed onto a [`Tape`]: its kept values, read from [`Doc::root`].
#[derive(Debug, Clone, Copy)]
pub struct Doc<'t> {
    pub(super) entries: &'t [Entry],
    pub(super) members: &'t [Member],
    /// The record, if it is UTF-8 (otherwise every kept string is in `text`).
    pub(super) record: &'t str,
    /// Where `text` starts in the strings' offsets: the record's length in bytes.
    pub(super) base: u32,
    pub(super) text: &'t str,
    pub(super) numbers: &'t [Number],
}

impl Doc<'_> {
    /// The record's value.
    pub fn root(&self) -> Node<'_> {
        Node { doc: self, at: 0 }
    }
}

impl<'t> Doc<'t> {
    #[inline(always)]
    fn entry(&self, at: u32) -> Option<Entry> {
        self.entries.get(at as usize).copied()
    }

    /// The string at `from..to`.
    #[inline(always)]
    fn str(&self, from: u32, to: u32) -> Option<&'t str> {
        match from.checked_sub(self.base) {
            Some(from) => self
                .text
                .get(from as usize..to.saturating_sub(self.base) as usize),
            None => self.record.get(from as usize..to as usize),
        }
    }

    /// The bytes of a key.
    #[inline(always)]
    fn key(&self, m: &Member) -> Option<&'t [u8]> {
        let (text, from) = match m.from.checked_sub(self.base) {
            Some(from) => (self.text, from),
            None => (self.record, m.from),
        };
        let from = from as usize;
        text.as_bytes().get(from..from + m.len as usize)
    }

    /// The index one past the value at `at` and all it contains.
    #[inline]
    fn after(&self, at: u32) -> u32 {
        match self.entry(at) {
            Some(Entry::Array { end } | Entry::Object { end, .. }) => end,
            _ => at + 1,
        }
    }
}

/// A value of a [`Doc`]: a reference and an index, copied freely.
#[derive(Clone, Copy)]
pub struct Node<'t> {
    doc: &'t Doc<'t>,
    at: u32,
}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}: {:?})", self.at, self.doc.entry(self.at))
    }
}

impl<'t> Node<'t> {
    #[inline(always)]
    pub(super) fn entry(self) -> Option<Entry> {
        self.doc.entry(self.at)
    }

    /// An object's kept members as the tape lists them.
    #[inline(always)]
    fn member_list(self) -> Option<&'t [Member]> {
        match self.entry()? {
            Entry::Object { members, count, .. } => {
                let from = members as usize;
                self.doc.members.get(from..from + count as usize)
            }
            _ => None,
        }
    }

    /// An object's kept members in the record's order, repeated keys included.
    pub fn members(self) -> Option<Members<'t>> {
        Some(Members {
            doc: self.doc,
            list: self.member_list()?.iter(),
        })
    }

    /// `true` or `false`, if this is one.
    pub fn as_bool(self) -> Option<bool> {
        match self.entry()? {
            Entry::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(self) -> bool {
        self.entry() == Some(Entry::Null)
    }
}

/// The members of an object [`Node`]: each key and its value.
#[derive(Debug, Clone)]
pub struct Members<'t> {
    doc: &'t Doc<'t>,
    list: std::slice::Iter<'t, Member>,
}

impl<'t> Iterator for Members<'t> {
    type Item = (&'t str, Node<'t>);

    fn next(&mut self) -> Option<Self::Item> {
        let m = self.list.next()?;
        let key = self.doc.str(m.from, m.from.saturating_add(m.len))?;
        Some((
            key,
            Node {
                doc: self.doc,
                at: m.value,
            },
        ))
    }
}

/// The items of an array [`Node`], in order; each step is one look, however large
/// the item before it.
#[derive(Debug, Clone)]
pub struct Items<'t> {
    doc: &'t Doc<'t>,
    at: u32,
    end: u32,
}

impl<'t> Iterator for Items<'t> {
    type Item = Node<'t>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let item = Node {
            doc: self.doc,
            at: self.at,
        };
        self.at = self.doc.after(self.at);
        Some(item)
    }
}

impl<'t> JsonNode<'t> for Node<'t> {
    type Items = Items<'t>;

    // Inlined: the readers' keys are constants, and so are their lengths.
    #[inline(always)]
    fn get(self, key: &str) -> Option<Self> {
        let doc = self.doc;
        // From the end: the last of a repeated key wins, as in a `serde_json::Map`.
        for m in self.member_list()?.iter().rev() {
            if m.len as usize == key.len()
                && doc
                    .key(m)
                    .is_some_and(|k| super::same_bytes(k, key.as_bytes()))
            {
                return Some(Node { doc, at: m.value });
            }
        }
        None
    }

    #[inline(always)]
    fn as_str(self) -> Option<&'t str> {
        match self.entry()? {
            Entry::Str { from, to } => self.doc.str(from, to),
            _ => None,
        }
    }

    #[inline]
    fn as_number(self) -> Option<&'t Number> {
        match self.entry()? {
            Entry::Number(i) => self.doc.numbers.get(i as usize),
            _ => None,
        }
    }

    fn items(self) -> Option<Items<'t>> {
        match self.entry()? {
            Entry::Array { end } => Some(Items {
                doc: self.doc,
                at: self.at + 1,
                end,
            }),
            _ => None,
        }
    }

    fn is_object(self) -> bool {
        matches!(self.entry(), Some(Entry::Object { .. }))
    }

    fn object_keys_up_to(self, limit: usize) -> Option<usize> {
        // Repeated keys count once, as in a map; bounded work whatever the record.
        let mut seen: Vec<&str> = Vec::with_capacity(limit.saturating_add(1).min(64));
        for (k, _) in self.members()? {
            if !seen.contains(&k) {
                seen.push(k);
                if seen.len() > limit {
                    break;
                }
            }
        }
        Some(seen.len())
    }
}

/// The same value as a `serde_json::Value` (to compare with `json!` in tests).
#[cfg(test)]
impl From<Node<'_>> for serde_json::Value {
    fn from(n: Node<'_>) -> serde_json::Value {
        use serde_json::Value;
        match n.entry() {
            Some(Entry::Null) => Value::Null,
            None => panic!("{n:?} is not on the tape"),
            Some(Entry::Bool(b)) => Value::Bool(b),
            Some(Entry::Number(_)) => Value::Number(n.as_number().expect("a number").clone()),
            Some(Entry::Str { .. }) => Value::String(n.as_str().expect("a string").to_owned()),
            Some(Entry::Array { .. }) => n.items().into_iter().flatten().map(Value::from).collect(),
            Some(Entry::Object { .. }) => Value::Object(
                n.members()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_owned(), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
