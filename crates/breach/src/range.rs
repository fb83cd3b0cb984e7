//! Range answers in the Pwned Passwords API's format: for a five-digit hash prefix,
//! one `SUFFIX:COUNT` line per hash with that prefix, suffix in upper-case hex,
//! lines separated by CRLF (no line ending after the last line), in hash order; and
//! the optional padding with random suffixes of count 0.

use std::collections::HashSet;

use rand::Rng;

use crate::error::Error;
use crate::hash::{Hash, encode_hex_upper};
use crate::index::{Index, RangeEntry};

/// The padded answer's size is drawn uniformly from this range (entries, real ones
/// included), as the Pwned Passwords API pads.
pub const PADDED_ENTRIES: std::ops::RangeInclusive<usize> = 800..=1000;

/// The body answering a range request for `prefix` (a 20-bit number). With `padding`,
/// random suffixes with count 0 are mixed in (in order) until the answer has between
/// 800 and 1,000 entries; they never equal a real suffix nor each other.
pub fn range_body(
    index: &Index,
    prefix: u32,
    padding: Option<&mut dyn rand::RngCore>,
) -> Result<String, Error> {
    let mut entries = index.range(prefix)?;
    if let Some(rng) = padding {
        pad(&mut entries, prefix, index.kind().byte_len(), rng);
    }
    Ok(format_body(&entries, index.kind().hex_len()))
}

/// The lines of `entries` (each hash's hex form after its first five digits) joined by
/// CRLF.
pub fn format_body(entries: &[RangeEntry], hex_len: usize) -> String {
    let line_len = hex_len - 5 + 1 + 10 + 2;
    let mut body = String::with_capacity(entries.len() * line_len);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            body.push_str("\r\n");
        }
        let hex = encode_hex_upper(&e.hash.0[..hex_len / 2]);
        body.push_str(&hex[5..]);
        body.push(':');
        body.push_str(&e.count.to_string());
    }
    body
}

fn pad(entries: &mut Vec<RangeEntry>, prefix: u32, hash_len: usize, rng: &mut dyn rand::RngCore) {
    let target = rng.random_range(PADDED_ENTRIES);
    if entries.len() >= target {
        return;
    }
    let real: HashSet<Hash> = entries.iter().map(|e| e.hash).collect();
    let mut fake: HashSet<Hash> = HashSet::with_capacity(target - entries.len());
    // Bytes past the kind's length stay zero, as in every hash of that kind here.
    while entries.len() + fake.len() < target {
        let mut bytes = [0u8; 20];
        rng.fill_bytes(&mut bytes[..hash_len]);
        let mut h = Hash(bytes);
        h.set_bits(0, 20, u64::from(prefix));
        if !real.contains(&h) {
            fake.insert(h);
        }
    }
    entries.extend(fake.into_iter().map(|hash| RangeEntry { hash, count: 0 }));
    entries.sort_unstable();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_format() {
        let mut a = Hash::new(&crate::sha1(b"password"));
        let entries = vec![
            RangeEntry { hash: a, count: 3 },
            RangeEntry {
                hash: {
                    a.0[19] ^= 1;
                    a
                },
                count: 1,
            },
        ];
        assert_eq!(
            format_body(&entries, 40),
            "1E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD9:1"
        );
        assert_eq!(format_body(&[], 40), "");
    }
}
