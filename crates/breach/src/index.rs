//! Opening an index file (memory-mapped) and answering lookups and range queries.

use std::cmp::Ordering;
use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};
use xorf::{BinaryFuse8Ref, BinaryFuse16Ref, Filter, FilterRef};

use crate::count;
use crate::error::Error;
use crate::format::{FILTER_DESCRIPTOR_LEN, FilterKind, HEADER_LEN, Header, Layout, read_bits};
use crate::hash::{Hash, HashKind};

/// A breached-password index, memory-mapped. Lookups read only the pages they touch,
/// so opening is instant whatever the size, and many processes share one copy in the
/// page cache.
#[derive(Debug)]
pub struct Index {
    map: Mmap,
    header: Header,
    layout: Layout,
}

/// One entry of a range answer: a whole hash and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RangeEntry {
    /// The hash (zero-padded to 20 bytes for NTLM).
    pub hash: Hash,
    /// How often it was seen (1 when the index keeps no counts).
    pub count: u32,
}

impl Index {
    /// Opens and checks an index file: magic, version, header checksum, every
    /// parameter, the file's exact length and the filter's descriptor. Damage inside
    /// the sections is not found here (that would read the whole file; see
    /// [`Index::verify`]), but can never make a lookup read out of bounds or panic.
    pub fn open(path: impl AsRef<Path>) -> Result<Index, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_LEN as u64 {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Header::decode(&bytes)?;
            return Err(Error::Truncated {
                expected: HEADER_LEN as u64,
                found: len,
            });
        }
        // SAFETY: the map is read-only. Another process truncating the file while it
        // is mapped would fault (SIGBUS), as with every mmap reader; index files are
        // written to a temporary name and renamed into place, never rewritten.
        let map = unsafe { MmapOptions::new().map(&file) }.map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Index::from_map(map)
    }

    fn from_map(map: Mmap) -> Result<Index, Error> {
        let header = Header::decode(&map)?;
        let layout = header
            .layout()
            .ok_or(Error::Corrupt("section sizes overflow"))?;
        if layout.file_len != map.len() as u64 {
            return Err(Error::Truncated {
                expected: layout.file_len,
                found: map.len() as u64,
            });
        }
        let index = Index {
            map,
            header,
            layout,
        };
        if header.filter.is_some() {
            index.check_filter()?;
        }
        Ok(index)
    }

    /// The hash kind of the index.
    pub fn kind(&self) -> HashKind {
        self.header.kind
    }

    /// The number of distinct hashes.
    pub fn len(&self) -> u64 {
        self.header.hashes
    }

    /// Whether the index holds no hash.
    pub fn is_empty(&self) -> bool {
        self.header.hashes == 0
    }

    /// The decoded header (format parameters).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The size of the index file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether range answers can be given (every bit of every hash is kept).
    pub fn is_full(&self) -> bool {
        self.header.full
    }

    /// How often `hash` was seen in breaches: `Some(count)` when it is in the index
    /// (count 1 when the index keeps no counts), `None` when it is not, or when
    /// `hash` is not as long as the index's kind says (20 bytes SHA-1, 16 NTLM).
    ///
    /// A compact index compares the top 64 bits of the hash; see the crate's docs for
    /// the false-positive rate that gives.
    pub fn lookup(&self, hash: &[u8]) -> Option<u32> {
        self.check(hash).ok().flatten()
    }

    /// Like [`Index::lookup`], with an error for a hash of the wrong length.
    pub fn check(&self, hash: &[u8]) -> Result<Option<u32>, Error> {
        let kind = self.header.kind;
        if hash.len() != kind.byte_len() {
            return Err(Error::WrongHashLength {
                expected: kind.byte_len(),
                found: hash.len(),
            });
        }
        let hash = Hash::new(hash);
        if !self.filter_contains(hash.top64()) {
            return Ok(None);
        }
        let bucket = hash.bits(0, u32::from(self.header.bucket_bits));
        let Some((start, end)) = self.bucket(bucket) else {
            return Ok(None);
        };
        Ok(self.search(&hash, start, end).and_then(|i| self.count(i)))
    }

    /// Every hash whose first five hex digits are `prefix` (a 20-bit number), in hash
    /// order, with its count: what a Pwned Passwords range request answers. Needs a
    /// full index.
    pub fn range(&self, prefix: u32) -> Result<Vec<RangeEntry>, Error> {
        if !self.header.full {
            return Err(Error::NotFull);
        }
        let k = u32::from(self.header.bucket_bits);
        let prefix = prefix & 0xF_FFFF;
        let (first, last) = if k >= 20 {
            let lo = u64::from(prefix) << (k - 20);
            (lo, lo + (1u64 << (k - 20)) - 1)
        } else {
            let b = u64::from(prefix >> (20 - k));
            (b, b)
        };
        let mut out = Vec::new();
        for bucket in first..=last {
            let Some((start, end)) = self.bucket(bucket) else {
                continue;
            };
            for i in start..end {
                let (Some(hash), Some(count)) = (self.entry_hash(bucket, i), self.count(i)) else {
                    continue;
                };
                if hash.bits(0, 20) == u64::from(prefix) {
                    out.push(RangeEntry { hash, count });
                }
            }
        }
        Ok(out)
    }

    /// Reads the whole index and checks its structure: the offset table rises from 0
    /// to the number of hashes, and the hashes are strictly increasing. Takes time in
    /// proportion to the size.
    pub fn verify(&self) -> Result<(), Error> {
        let buckets = self.layout.offset_count - 1;
        let mut previous: Option<Hash> = None;
        if self.offset(0) != Some(0) || self.offset(buckets) != Some(self.header.hashes) {
            return Err(Error::Corrupt("the offset table does not span the entries"));
        }
        for bucket in 0..buckets {
            let (start, end) = self
                .bucket(bucket)
                .ok_or(Error::Corrupt("the offset table is not increasing"))?;
            for i in start..end {
                let hash = self
                    .entry_hash(bucket, i)
                    .ok_or(Error::Corrupt("an entry lies outside its section"))?;
                if previous.is_some_and(|p| p >= hash) {
                    return Err(Error::Corrupt("the entries are not in increasing order"));
                }
                previous = Some(hash);
            }
        }
        Ok(())
    }

    fn offset(&self, bucket: u64) -> Option<u64> {
        let at = usize::try_from(self.layout.offsets.checked_add(bucket.checked_mul(4)?)?).ok()?;
        let bytes: [u8; 4] = self.map.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(u32::from_le_bytes(bytes)))
    }

    /// The entries of a bucket; `None` when the table is damaged there.
    fn bucket(&self, bucket: u64) -> Option<(u64, u64)> {
        if bucket + 1 >= self.layout.offset_count {
            return None;
        }
        let start = self.offset(bucket)?;
        let end = self.offset(bucket + 1)?;
        (start <= end && end <= self.header.hashes).then_some((start, end))
    }

    fn entries(&self) -> &[u8] {
        // In bounds: the file length was checked against the layout on opening.
        let start = self.layout.entries as usize;
        let end = start + self.layout.entry_bytes as usize;
        self.map.get(start..end).unwrap_or(&[])
    }

    /// Binary search among entries [start, end) for the stored bits of `hash`.
    fn search(&self, hash: &Hash, start: u64, end: u64) -> Option<u64> {
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.compare(mid, hash)? {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Compares entry `i`'s stored key bits with the same bits of `hash`.
    #[inline]
    fn compare(&self, i: u64, hash: &Hash) -> Option<Ordering> {
        let entries = self.entries();
        let k = u32::from(self.header.bucket_bits);
        let s = u32::from(self.header.key_bits);
        let base = i.checked_mul(u64::from(self.header.entry_bits()))?;
        let mut done = 0;
        while done < s {
            let len = (s - done).min(64);
            let stored = read_bits(entries, base + u64::from(done), len)?;
            let wanted = hash.bits(k + done, len);
            match stored.cmp(&wanted) {
                Ordering::Equal => done += len,
                other => return Some(other),
            }
        }
        Some(Ordering::Equal)
    }

    /// The whole hash of entry `i` in `bucket`, from the bucket number and the stored
    /// bits (in a compact index, the bits past the stored ones read as zero).
    fn entry_hash(&self, bucket: u64, i: u64) -> Option<Hash> {
        let entries = self.entries();
        let k = u32::from(self.header.bucket_bits);
        let s = u32::from(self.header.key_bits);
        let base = i.checked_mul(u64::from(self.header.entry_bits()))?;
        let mut hash = Hash::default();
        hash.set_bits(0, k, bucket);
        let mut done = 0;
        while done < s {
            let len = (s - done).min(64);
            hash.set_bits(
                k + done,
                len,
                read_bits(entries, base + u64::from(done), len)?,
            );
            done += len;
        }
        Some(hash)
    }

    fn count(&self, i: u64) -> Option<u32> {
        let bits = u32::from(self.header.count_bits);
        if bits == 0 {
            return Some(1);
        }
        let at = i
            .checked_mul(u64::from(self.header.entry_bits()))?
            .checked_add(u64::from(self.header.key_bits))?;
        let raw = read_bits(self.entries(), at, bits)?;
        let count = if bits == 8 {
            count::decode(raw as u8)
        } else {
            u32::try_from(raw).unwrap_or(u32::MAX)
        };
        Some(count.max(1))
    }

    fn filter_parts(&self) -> Option<(&[u8], &[u8])> {
        let start = usize::try_from(self.layout.filter).ok()?;
        let descriptor = self.map.get(start..start + 20)?;
        let fingerprints = self.map.get(start + FILTER_DESCRIPTOR_LEN as usize..)?;
        Some((descriptor, fingerprints))
    }

    /// Checks that the filter's descriptor keeps every probe inside the fingerprints,
    /// so that xorf's unchecked arithmetic and indexing can never overflow or panic.
    fn check_filter(&self) -> Result<(), Error> {
        let bad = Error::Corrupt("the filter's descriptor does not fit its fingerprints");
        let (descriptor, fingerprints) = self
            .filter_parts()
            .ok_or(Error::Corrupt("the filter lies outside the file"))?;
        let word = |at: usize| {
            u64::from(u32::from_le_bytes([
                descriptor[at],
                descriptor[at + 1],
                descriptor[at + 2],
                descriptor[at + 3],
            ]))
        };
        let (length, mask, count_length) = (word(8), word(12), word(16));
        let units = match self.header.filter {
            Some(FilterKind::Fuse16) => fingerprints.len() as u64 / 2,
            _ => fingerprints.len() as u64,
        };
        let fits = length.is_power_of_two()
            && mask == length - 1
            && count_length % length == 0
            && count_length + 2 * length <= units
            && count_length + 3 * length <= u64::from(u32::MAX);
        if !fits {
            return Err(bad);
        }
        if self.header.filter == Some(FilterKind::Fuse16)
            && fingerprints.as_ptr().align_offset(2) != 0
        {
            return Err(Error::Corrupt("the 16-bit filter is not aligned"));
        }
        Ok(())
    }

    fn filter_contains(&self, key: u64) -> bool {
        let Some(kind) = self.header.filter else {
            return true;
        };
        let Some((descriptor, fingerprints)) = self.filter_parts() else {
            return true;
        };
        match kind {
            FilterKind::Fuse8 => BinaryFuse8Ref::from_dma(descriptor, fingerprints).contains(&key),
            FilterKind::Fuse16 => {
                BinaryFuse16Ref::from_dma(descriptor, fingerprints).contains(&key)
            }
        }
    }

    /// Whether the filter (if any) says `hash` may be present; for measuring the
    /// filter's false-positive rate.
    pub fn filter_may_contain(&self, hash: &[u8]) -> bool {
        self.filter_contains(Hash::new(hash).top64())
    }
}
