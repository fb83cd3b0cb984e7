//! The chunks of an EVTX file, found in the order and with the outcomes the `evtx`
//! crate finds them, without the work the crate does for every chunk.
//!
//! The format is libyal's "Windows XML Event Log (EVTX) format", sections "File
//! header", "Chunk", "Chunk header" and "Event record"
//! (<https://github.com/libyal/libevtx/blob/main/documentation/Windows%20XML%20Event%20Log%20(EVTX).asciidoc>):
//! a 4 KiB file header, then 64 KiB chunks, each a 512-byte header (signature
//! `ElfChnk\0`, the first and last record identifiers, the free space offset, 64
//! string table offsets) and records from offset 512.
//!
//! Which chunks there are, in which order, and which of them count as unreadable, is
//! what `evtx` 0.15's `EvtxParser::chunks` gives with Portcullis' settings (checksums
//! not validated), step for step:
//!
//! - The number of chunks is the file's size less the header's "header block size",
//!   in whole chunks, whatever the header's own count says (a dirty file can have more).
//! - The walk starts at the chunk whose header names the lowest first record
//!   identifier (a full log overwrites its oldest chunk, so that one can be anywhere),
//!   runs to the end of the file, and then wraps around to the chunks before it.
//! - A chunk of zeroes only (preallocated, never written) is passed over. A chunk that
//!   cannot be read whole, or whose signature is wrong, is unreadable; past the
//!   number of chunks that ends the walk instead.
//! - A chunk whose string table cannot be read (an offset or a name's length past the
//!   chunk, a name that is not UTF-16) is unreadable: the crate fails to build its
//!   string cache.
//!
//! What this does not do is the crate's work on every chunk: a new 64 KiB buffer for
//! each (one is reused here), a byte-by-byte look for a non-zero byte in each
//! preallocated chunk (a signature says at once that a chunk is not empty, and empty
//! ones are looked at a word at a time), and the string cache built with every name
//! decoded into its own `String` (the table is only checked here, as it is read; the
//! crate builds its cache for a chunk when one of its records has to be rendered).
//!
//! Neither the file header's nor the chunks' CRC32 checksums are checked, as the crate
//! does not check them with its default settings: a chunk whose checksum is wrong is
//! read as far as its records can be.

use std::io::{Read, Seek, SeekFrom};

use ::evtx::EvtxParser;

use super::EvtxError;
use super::{u16_at, u32_at, u64_at};

/// A chunk's size, and where the first one starts.
pub(super) const CHUNK_SIZE: usize = 65536;
const FIRST_CHUNK: u64 = 4096;
/// The chunk header's size: the records start after it.
pub(super) const CHUNK_HEADER_SIZE: usize = 512;
const CHUNK_SIGNATURE: &[u8; 8] = b"ElfChnk\0";

/// The fields of a chunk header that finding and walking records use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkHeader {
    /// The identifier of the chunk's first record.
    pub first_id: u64,
    /// The identifier of its last record: the walk of its records stops there.
    pub last_id: u64,
    /// Where its free space starts: the walk of its records stops there too.
    pub free_space: u32,
}

impl ChunkHeader {
    /// The header that `chunk` starts with; `None` if it is shorter than a header or
    /// its signature is not a chunk's.
    pub fn read(chunk: &[u8]) -> Option<ChunkHeader> {
        if chunk.len() < CHUNK_HEADER_SIZE || &chunk[..8] != CHUNK_SIGNATURE {
            return None;
        }
        Some(ChunkHeader {
            first_id: u64_at(chunk, 24)?,
            last_id: u64_at(chunk, 32)?,
            free_space: u32_at(chunk, 48)?,
        })
    }
}

/// One chunk as the walk finds it.
#[derive(Debug)]
pub(super) enum Chunk<'a> {
    /// A chunk the crate reads: its bytes (a whole chunk) and header.
    Read(&'a [u8], ChunkHeader),
    /// A chunk the crate fails on: one malformed record.
    Unreadable,
}

/// The chunks of one file, read one at a time into one buffer.
pub(super) struct Chunks<R> {
    input: R,
    data: Vec<u8>,
    /// Whole chunks after the header block.
    count: u64,
    /// The next chunk number to look at.
    next: u64,
    /// The chunk that holds the oldest records, where the walk starts.
    oldest: u64,
    /// Whether the walk has gone past the end of the file, on to its first chunk.
    wrapped: bool,
    /// Scratch for checking a chunk's string table.
    seen: Seen,
}

impl<R: Read + Seek> Chunks<R> {
    /// Reads the file header (the crate's own reading of it, so that a file it refuses
    /// is refused with its words) and finds the oldest chunk.
    pub fn open(mut input: R) -> Result<Self, EvtxError> {
        let block = EvtxParser::from_read_seek(&mut input)
            .map_err(|e| EvtxError(format!("not a readable EVTX file: {e}")))?
            .header()
            .header_block_size;
        let size = input
            .seek(SeekFrom::End(0))
            .map_err(|e| EvtxError(format!("not a readable EVTX file: {e}")))?;
        // The crate has refused a file shorter than its header block.
        let count = size.saturating_sub(u64::from(block)) / CHUNK_SIZE as u64;
        let mut chunks = Chunks {
            input,
            data: vec![0; CHUNK_SIZE],
            count,
            next: 0,
            oldest: 0,
            wrapped: false,
            seen: Seen::default(),
        };
        chunks.oldest = chunks.oldest();
        chunks.next = chunks.oldest;
        Ok(chunks)
    }

    /// The chunk whose header names the lowest first record identifier (a header
    /// whose range is reversed names none); the first chunk if none does.
    fn oldest(&mut self) -> u64 {
        let mut oldest = (u64::MAX, 0);
        let mut header = [0; CHUNK_HEADER_SIZE];
        for n in 0..self.count {
            let at = FIRST_CHUNK + n * CHUNK_SIZE as u64;
            if self.input.seek(SeekFrom::Start(at)).is_err()
                || self.input.read_exact(&mut header).is_err()
            {
                break;
            }
            if let Some(h) = ChunkHeader::read(&header)
                && h.first_id <= h.last_id
                && h.first_id < oldest.0
            {
                oldest = (h.first_id, n);
            }
        }
        oldest.1
    }

    /// The next chunk in record order, `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Chunk<'_>> {
        let header = loop {
            // Once it has wrapped around, the walk ends where it started.
            let end = if self.wrapped { self.oldest } else { u64::MAX };
            if let Some((header, n)) = self.find(self.next, end) {
                self.next = n.checked_add(1)?;
                break header;
            }
            if self.wrapped || self.oldest == 0 {
                return None;
            }
            self.wrapped = true;
            self.next = 0;
        };
        Some(match header {
            Some(h) if strings_readable(&self.data, &mut self.seen) => Chunk::Read(&self.data, h),
            _ => Chunk::Unreadable,
        })
    }

    /// The first chunk from `n` on, before `end`, that is not empty, and its number:
    /// its header, or `None` if it is unreadable. `None` at the end of the file.
    fn find(&mut self, mut n: u64, end: u64) -> Option<(Option<ChunkHeader>, u64)> {
        loop {
            if n >= end {
                return None;
            }
            match self.load(n) {
                // Reading on past the count finds the chunks of dirty files; a chunk
                // that cannot be read there is the end.
                None if n >= self.count => return None,
                None => return Some((None, n)),
                Some(None) => n = n.checked_add(1)?,
                Some(Some(header)) => return Some((Some(header), n)),
            }
        }
    }

    /// Reads chunk `n` into the buffer: `None` if it cannot be read whole or its
    /// signature is wrong, `Some(None)` if it is all zeroes.
    fn load(&mut self, n: u64) -> Option<Option<ChunkHeader>> {
        let at = n
            .checked_mul(CHUNK_SIZE as u64)
            .and_then(|o| o.checked_add(FIRST_CHUNK))?;
        self.input.seek(SeekFrom::Start(at)).ok()?;
        self.input.read_exact(&mut self.data).ok()?;
        if self.data[..8] != CHUNK_SIGNATURE[..] && all_zero(&self.data) {
            return Some(None);
        }
        ChunkHeader::read(&self.data).map(Some)
    }
}

/// Whether `bytes` are all zero: 16 bytes at a time, a block of them folded together
/// before each test (which the compiler turns into vector instructions). Every piece
/// is 16 bytes; one that were not would count as not zero.
fn all_zero(bytes: &[u8]) -> bool {
    let blocks = bytes.chunks_exact(512);
    let rest = blocks.remainder();
    blocks
        .map(|block| {
            block.chunks_exact(16).fold(0u128, |acc, w| {
                acc | u128::from_ne_bytes(w.try_into().unwrap_or([0xff; 16]))
            })
        })
        .all(|folded| folded == 0)
        && rest.iter().all(|b| *b == 0)
}

/// Offsets in a chunk, one bit each, cleared word by word as they were set.
#[derive(Debug)]
struct Seen {
    bits: Vec<u64>,
    set: Vec<u16>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            bits: vec![0; CHUNK_SIZE / 64],
            set: Vec::new(),
        }
    }
}

impl Seen {
    fn clear(&mut self) {
        for w in self.set.drain(..) {
            self.bits[usize::from(w)] = 0;
        }
    }

    /// Whether `at` was seen; an offset past the chunk never is.
    fn contains(&self, at: u32) -> bool {
        self.bits
            .get(at as usize / 64)
            .is_some_and(|w| w & (1 << (at % 64)) != 0)
    }

    /// Marks `at`, an offset in the chunk.
    fn insert(&mut self, at: u32) {
        let w = at as usize / 64;
        if let Some(bits) = self.bits.get_mut(w) {
            if *bits == 0 {
                self.set.push(w as u16);
            }
            *bits |= 1 << (at % 64);
        }
    }
}

/// Whether the crate can build the string cache of `chunk` (`seen` is scratch): each
/// of the 64 offsets at 128 that is not 0 starts a chain of names, each a link to the
/// next (4 bytes; 0 ends the chain), a hash (2), a character count (2), the UTF-16
/// characters and a NUL (libyal, "Name"). Every name of every chain must lie in the
/// chunk and be UTF-16 up to its first NUL; a chain ends at a name read before (the
/// crate's cache has it), so a chain that links back on itself ends too.
fn strings_readable(chunk: &[u8], seen: &mut Seen) -> bool {
    seen.clear();
    for slot in 0..64 {
        let Some(first) = u32_at(chunk, 128 + slot * 4) else {
            return false;
        };
        let mut at = first;
        while at != 0 {
            let Some(next) = name_at(chunk, at as usize) else {
                return false;
            };
            seen.insert(at);
            if seen.contains(next) {
                break;
            }
            at = next;
        }
    }
    true
}

/// The link to the next name of the name at `at` of `chunk`, if it can be read.
fn name_at(chunk: &[u8], at: usize) -> Option<u32> {
    let next = u32_at(chunk, at)?;
    let chars = usize::from(u16_at(chunk, at.checked_add(6)?)?);
    let text = chunk.get(at + 8..at + 8 + chars * 2)?;
    u16_at(chunk, at + 8 + chars * 2)?; // the NUL
    let units = text
        .chunks_exact(2)
        .map(|u| u16::from_le_bytes([u[0], u[1]]))
        .take_while(|u| *u != 0);
    char::decode_utf16(units).all(|c| c.is_ok()).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name entry at `at` of `chunk`: link, hash, count, UTF-16 units, NUL.
    fn put_name(chunk: &mut [u8], at: usize, next: u32, units: &[u16]) {
        let mut entry = next.to_le_bytes().to_vec();
        entry.extend([0, 0]);
        entry.extend((units.len() as u16).to_le_bytes());
        entry.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        entry.extend([0, 0]);
        chunk[at..at + entry.len()].copy_from_slice(&entry);
    }

    fn chunk_with_table(slots: &[(usize, u32)]) -> Vec<u8> {
        let mut chunk = vec![0; CHUNK_SIZE];
        chunk[..8].copy_from_slice(CHUNK_SIGNATURE);
        for &(slot, offset) in slots {
            chunk[128 + slot * 4..132 + slot * 4].copy_from_slice(&offset.to_le_bytes());
        }
        chunk
    }

    fn ascii(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn string_tables_are_checked_as_the_crate_reads_them() {
        let mut seen = Seen::default();
        // Two chains; the second links back into the first, and a name links to
        // itself: both end.
        let mut chunk = chunk_with_table(&[(0, 600), (5, 700)]);
        put_name(&mut chunk, 600, 650, &ascii("Event"));
        put_name(&mut chunk, 650, 650, &ascii("System"));
        put_name(&mut chunk, 700, 600, &ascii("Data"));
        assert!(strings_readable(&chunk, &mut seen));
        // Text after a NUL in a name is not decoded.
        put_name(&mut chunk, 650, 0, &[0x53, 0, 0xD800]);
        assert!(strings_readable(&chunk, &mut seen));
        // An unpaired surrogate before it is not UTF-16.
        put_name(&mut chunk, 650, 0, &[0x53, 0xD800, 0x53]);
        assert!(!strings_readable(&chunk, &mut seen));
        // A link past the chunk, a name running past it, a table offset past it.
        put_name(&mut chunk, 650, CHUNK_SIZE as u32, &ascii("System"));
        assert!(!strings_readable(&chunk, &mut seen));
        let mut chunk = chunk_with_table(&[(63, CHUNK_SIZE as u32 - 10)]);
        put_name(&mut chunk, CHUNK_SIZE - 10, 0, &[]);
        assert!(strings_readable(&chunk, &mut seen), "an empty name fits");
        let mut chunk = chunk_with_table(&[(63, CHUNK_SIZE as u32 - 9)]);
        chunk[CHUNK_SIZE - 3] = 1; // one character: its NUL would be past the end
        assert!(!strings_readable(&chunk, &mut seen));
        let chunk = chunk_with_table(&[(1, u32::MAX)]);
        assert!(!strings_readable(&chunk, &mut seen));
    }

    #[test]
    fn zeroes_are_found_wherever_a_byte_is_not_one() {
        let mut b = vec![0u8; CHUNK_SIZE];
        assert!(all_zero(&b));
        for at in [0, 511, 512, 40_000, CHUNK_SIZE - 1] {
            b[at] = 0x80;
            assert!(!all_zero(&b), "{at}");
            b[at] = 0;
        }
    }
}
