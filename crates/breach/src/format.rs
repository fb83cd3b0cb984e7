//! The index file format, version 1: the header, where each section lies, and the
//! bit-packed entries. Pure: bytes in, values out; every read is bounds-checked, so a
//! crafted file can make a lookup answer "not found" but never read out of bounds.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "PCBREACH"
//!      8     4  format version (1), little-endian like every number here
//!     12     1  hash kind: 1 = SHA-1, 2 = NTLM
//!     13     1  flags: bit 0 = full (every bit of every hash is kept)
//!     14     1  count bits per entry: 0 (no counts), 8 (log-scale code), 32 (exact)
//!     15     1  filter: 0 = none, 8 = BinaryFuse8, 16 = BinaryFuse16
//!     16     1  bucket bits k: the top k bits of a hash choose its bucket
//!     17     1  key bits s: the next s bits are stored in the entry
//!     18     6  zero
//!     24     8  number of hashes n (distinct), below 2^32
//!     32     8  filter fingerprint bytes (0 without a filter)
//!     40    16  zero
//!     56     8  FNV-1a 64 of bytes 0..56
//!     64        offset table: 2^k + 1 little-endian u32; bucket b's entries are
//!               [table[b], table[b+1]); table[2^k] = n
//!  align 8      entries: n entries of s + count bits each, packed most significant
//!               bit first with no gaps, sorted by hash; then 16 zero bytes
//!  align 8      filter (when present): 20-byte xorf descriptor, 4 zero bytes, then
//!               the fingerprints
//! ```
//! The file ends exactly where the last section ends.

use crate::error::Error;
use crate::hash::HashKind;

/// The first eight bytes of every index file.
pub const MAGIC: [u8; 8] = *b"PCBREACH";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The length of the header in bytes.
pub const HEADER_LEN: usize = 64;
/// Zero bytes after the entries, so that every field is read with one 16-byte load.
pub const ENTRY_PADDING: u64 = 16;
/// The largest number of hashes one index can hold (offsets are 32-bit).
pub const MAX_HASHES: u64 = u32::MAX as u64;
/// The largest bucket bits: the offset table is then 16 GiB.
pub const MAX_BUCKET_BITS: u8 = 32;
/// Bytes of the serialised filter descriptor, padded to eight.
pub const FILTER_DESCRIPTOR_LEN: u64 = 24;

/// The optional approximate filter in front of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    /// 8-bit binary fuse filter: about 9 bits a hash, false positives ≈ 1/256.
    Fuse8,
    /// 16-bit binary fuse filter: about 18 bits a hash, false positives ≈ 1/65,536.
    Fuse16,
}

impl FilterKind {
    /// The false-positive rate the filter is designed for (2^-fingerprint bits).
    pub fn false_positive_rate(self) -> f64 {
        match self {
            FilterKind::Fuse8 => 1.0 / 256.0,
            FilterKind::Fuse16 => 1.0 / 65536.0,
        }
    }

    /// The name used in `info` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Fuse8 => "binary-fuse-8",
            FilterKind::Fuse16 => "binary-fuse-16",
        }
    }
}

/// The decoded, validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The hash kind of every entry.
    pub kind: HashKind,
    /// Every bit of every hash is kept (needed for range answers).
    pub full: bool,
    /// Count bits per entry: 0, 8 or 32.
    pub count_bits: u8,
    /// The filter, if any.
    pub filter: Option<FilterKind>,
    /// Top bits of a hash that choose its bucket.
    pub bucket_bits: u8,
    /// Bits of a hash stored in its entry, after the bucket bits.
    pub key_bits: u8,
    /// Number of distinct hashes.
    pub hashes: u64,
    /// Bytes of filter fingerprints.
    pub filter_bytes: u64,
}

/// Where each section lies, in bytes from the start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Start of the offset table.
    pub offsets: u64,
    /// Number of u32 in the offset table (2^k + 1).
    pub offset_count: u64,
    /// Start of the entries.
    pub entries: u64,
    /// Bytes of entries including the padding.
    pub entry_bytes: u64,
    /// Start of the filter descriptor (equal to the file length without a filter).
    pub filter: u64,
    /// The whole file's length.
    pub file_len: u64,
}

impl Header {
    /// Bits of one entry.
    pub fn entry_bits(&self) -> u32 {
        u32::from(self.key_bits) + u32::from(self.count_bits)
    }

    /// Where each section lies; `None` when the numbers overflow.
    pub fn layout(&self) -> Option<Layout> {
        let offsets = HEADER_LEN as u64;
        let offset_count = (1u64 << self.bucket_bits) + 1;
        let entries = align8(offsets.checked_add(offset_count.checked_mul(4)?)?)?;
        let packed_bits = self.hashes.checked_mul(u64::from(self.entry_bits()))?;
        let entry_bytes = packed_bits.div_ceil(8).checked_add(ENTRY_PADDING)?;
        let filter = align8(entries.checked_add(entry_bytes)?)?;
        let file_len = match self.filter {
            None => filter,
            Some(_) => filter
                .checked_add(FILTER_DESCRIPTOR_LEN)?
                .checked_add(self.filter_bytes)?,
        };
        Some(Layout {
            offsets,
            offset_count,
            entries,
            entry_bytes,
            filter,
            file_len,
        })
    }

    /// The header's 64 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12] = match self.kind {
            HashKind::Sha1 => 1,
            HashKind::Ntlm => 2,
        };
        b[13] = u8::from(self.full);
        b[14] = self.count_bits;
        b[15] = match self.filter {
            None => 0,
            Some(FilterKind::Fuse8) => 8,
            Some(FilterKind::Fuse16) => 16,
        };
        b[16] = self.bucket_bits;
        b[17] = self.key_bits;
        b[24..32].copy_from_slice(&self.hashes.to_le_bytes());
        b[32..40].copy_from_slice(&self.filter_bytes.to_le_bytes());
        let sum = fnv1a(&b[..56]);
        b[56..64].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and checks a header: every field in range, and the parameters
    /// consistent with each other.
    pub fn decode(bytes: &[u8]) -> Result<Header, Error> {
        if bytes.len() < HEADER_LEN {
            if bytes.len() >= 8 && bytes[..8] != MAGIC {
                return Err(Error::NotAnIndex);
            }
            return Err(Error::Truncated {
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let b = &bytes[..HEADER_LEN];
        if b[..8] != MAGIC {
            return Err(Error::NotAnIndex);
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if u64_at(b, 56) != fnv1a(&b[..56]) {
            return Err(Error::Corrupt("the header checksum does not match"));
        }
        let corrupt = Error::Corrupt;
        if b[18..24].iter().chain(&b[40..56]).any(|&z| z != 0) {
            return Err(corrupt("reserved header bytes are not zero"));
        }
        let kind = match b[12] {
            1 => HashKind::Sha1,
            2 => HashKind::Ntlm,
            _ => return Err(corrupt("unknown hash kind")),
        };
        let full = match b[13] {
            0 => false,
            1 => true,
            _ => return Err(corrupt("unknown flags")),
        };
        let count_bits = b[14];
        if !matches!(count_bits, 0 | 8 | 32) {
            return Err(corrupt("count bits must be 0, 8 or 32"));
        }
        let filter = match b[15] {
            0 => None,
            8 => Some(FilterKind::Fuse8),
            16 => Some(FilterKind::Fuse16),
            _ => return Err(corrupt("unknown filter kind")),
        };
        let bucket_bits = b[16];
        let key_bits = b[17];
        let total_bits = u32::from(bucket_bits) + u32::from(key_bits);
        if bucket_bits > MAX_BUCKET_BITS || key_bits == 0 || total_bits > kind.bits() {
            return Err(corrupt("bucket and key bits do not fit the hash"));
        }
        if full && total_bits != kind.bits() {
            return Err(corrupt("a full index must keep every bit of the hash"));
        }
        let hashes = u64_at(b, 24);
        if hashes > MAX_HASHES {
            return Err(corrupt("too many hashes"));
        }
        let filter_bytes = u64_at(b, 32);
        match filter {
            None if filter_bytes != 0 => return Err(corrupt("filter bytes without a filter")),
            Some(FilterKind::Fuse16) if filter_bytes % 2 != 0 => {
                return Err(corrupt("odd length of 16-bit filter"));
            }
            _ => {}
        }
        let header = Header {
            kind,
            full,
            count_bits,
            filter,
            bucket_bits,
            key_bits,
            hashes,
            filter_bytes,
        };
        if header.layout().is_none() {
            return Err(corrupt("section sizes overflow"));
        }
        Ok(header)
    }
}

fn align8(x: u64) -> Option<u64> {
    Some(x.checked_add(7)? & !7)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// FNV-1a, 64-bit: a checksum against accidental damage of the header, not an
/// authenticator.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads `len` bits (1 to 64) at bit position `bit` of `data`, most significant bit
/// first. `None` when the 16 bytes that hold them are not all inside `data`.
#[inline]
pub fn read_bits(data: &[u8], bit: u64, len: u32) -> Option<u64> {
    debug_assert!((1..=64).contains(&len));
    let start = usize::try_from(bit / 8).ok()?;
    let window: &[u8; 16] = data.get(start..start.checked_add(16)?)?.try_into().ok()?;
    let aligned = u128::from_be_bytes(*window) << (bit % 8);
    Some((aligned >> (128 - len)) as u64)
}

/// Packs fields of up to 64 bits, most significant bit first, into bytes.
#[derive(Debug, Default)]
pub struct BitWriter {
    acc: u128,
    bits: u32,
    out: Vec<u8>,
}

impl BitWriter {
    /// Appends the low `len` bits (0 to 64) of `value`.
    #[inline]
    pub fn push(&mut self, value: u64, len: u32) {
        if len == 0 {
            return;
        }
        let value = if len == 64 {
            value
        } else {
            value & ((1u64 << len) - 1)
        };
        self.acc = (self.acc << len) | u128::from(value);
        self.bits += len;
        if self.bits >= 64 {
            let word = (self.acc >> (self.bits - 64)) as u64;
            self.out.extend_from_slice(&word.to_be_bytes());
            self.bits -= 64;
            self.acc &= (1u128 << self.bits) - 1;
        }
    }

    /// The whole bytes written so far; they are removed from the writer.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The remaining bits, left-aligned in their last byte(s).
    pub fn finish(mut self) -> Vec<u8> {
        while self.bits >= 8 {
            self.out.push((self.acc >> (self.bits - 8)) as u8);
            self.bits -= 8;
        }
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: HashKind::Sha1,
            full: false,
            count_bits: 8,
            filter: Some(FilterKind::Fuse8),
            bucket_bits: 17,
            key_bits: 47,
            hashes: 3_000_000,
            filter_bytes: 3_400_000,
        }
    }

    #[test]
    fn header_round_trip() {
        let h = sample();
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        let full = Header {
            full: true,
            key_bits: 160 - 17,
            count_bits: 32,
            filter: None,
            filter_bytes: 0,
            ..h
        };
        assert_eq!(Header::decode(&full.encode()), Ok(full));
    }

    #[test]
    fn damaged_headers_are_refused() {
        let good = sample().encode();
        assert_eq!(
            Header::decode(&good[..40]),
            Err(Error::Truncated {
                expected: 64,
                found: 40
            })
        );
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Header::decode(&b), Err(Error::NotAnIndex));
        let mut b = good;
        b[8] = 2;
        assert_eq!(Header::decode(&b), Err(Error::UnsupportedVersion(2)));
        for at in 12..56 {
            let mut b = good;
            b[at] ^= 0x10;
            assert!(Header::decode(&b).is_err(), "byte {at}");
        }
    }

    #[test]
    fn bits_round_trip() {
        let fields: Vec<(u64, u32)> = (0..200u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), (i % 64) as u32 + 1))
            .collect();
        let mut w = BitWriter::default();
        for &(v, len) in &fields {
            w.push(v, len);
        }
        let mut bytes = w.finish();
        bytes.extend_from_slice(&[0; 16]);
        let mut at = 0u64;
        for &(v, len) in &fields {
            let mask = if len == 64 { u64::MAX } else { (1 << len) - 1 };
            assert_eq!(read_bits(&bytes, at, len), Some(v & mask));
            at += u64::from(len);
        }
        assert_eq!(read_bits(&bytes, bytes.len() as u64 * 8, 8), None);
    }
}
