//! Hash kinds, the two password hashes (SHA-1 and NTLM) and hexadecimal text.

use std::fmt;

use md4::Md4;
use sha1::{Digest, Sha1};

/// The hash function an index was built for. One index holds one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// SHA-1 of the password's bytes (UTF-8): 20 bytes, 40 hex digits. Pwned Passwords'
    /// default form.
    Sha1,
    /// NTLM: MD4 of the password in UTF-16LE: 16 bytes, 32 hex digits. What Active
    /// Directory stores, and Pwned Passwords' `mode=ntlm`.
    Ntlm,
}

impl HashKind {
    /// The length of a hash of this kind in bytes.
    pub const fn byte_len(self) -> usize {
        match self {
            HashKind::Sha1 => 20,
            HashKind::Ntlm => 16,
        }
    }

    /// The length of a hash of this kind in bits.
    pub const fn bits(self) -> u32 {
        self.byte_len() as u32 * 8
    }

    /// The length of a hash of this kind in hexadecimal digits.
    pub const fn hex_len(self) -> usize {
        self.byte_len() * 2
    }

    /// The kind whose hexadecimal form has `digits` digits.
    pub const fn from_hex_len(digits: usize) -> Option<HashKind> {
        match digits {
            40 => Some(HashKind::Sha1),
            32 => Some(HashKind::Ntlm),
            _ => None,
        }
    }

    /// The lower-case name used on the command line and in `info`.
    pub const fn name(self) -> &'static str {
        match self {
            HashKind::Sha1 => "sha1",
            HashKind::Ntlm => "ntlm",
        }
    }

    /// Hashes a password (as the bytes of its UTF-8 text) with this kind. For NTLM the
    /// bytes must be UTF-8; `None` when they are not.
    pub fn hash_password(self, password: &[u8]) -> Option<Hash> {
        match self {
            HashKind::Sha1 => Some(Hash::new(&sha1(password))),
            HashKind::Ntlm => std::str::from_utf8(password)
                .ok()
                .map(|p| Hash::new(&ntlm(p))),
        }
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hash of either kind, zero-padded to 20 bytes so that both kinds sort and move as
/// one fixed-size value. The kind is known from context (the index or the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 20]);

impl Ord for Hash {
    /// Byte order (the order of the hex text), compared as three big-endian words: the
    /// builder sorts billions of hashes, and this is several times faster than `memcmp`.
    fn cmp(&self, other: &Hash) -> std::cmp::Ordering {
        let words = |h: &Hash| {
            let b = &h.0;
            (
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
                u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            )
        };
        words(self).cmp(&words(other))
    }
}

impl PartialOrd for Hash {
    fn partial_cmp(&self, other: &Hash) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash {
    /// A hash from its bytes (16 or 20 of them; shorter input is zero-padded, longer is
    /// cut at 20).
    pub fn new(bytes: &[u8]) -> Hash {
        let mut h = [0u8; 20];
        let n = bytes.len().min(20);
        h[..n].copy_from_slice(&bytes[..n]);
        Hash(h)
    }

    /// The first eight bytes as a big-endian number: the hash's most significant bits.
    pub fn top64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// `len` bits (at most 64) starting at bit `start` (0 = the most significant bit of
    /// the first byte), as a right-aligned number. Bits past the 160th read as zero.
    pub fn bits(&self, start: u32, len: u32) -> u64 {
        debug_assert!(len <= 64);
        if len == 0 {
            return 0;
        }
        let first = (start / 8) as usize;
        let mut window = [0u8; 16];
        for (w, b) in window.iter_mut().zip(self.0.iter().skip(first)) {
            *w = *b;
        }
        let aligned = u128::from_be_bytes(window) << (start % 8);
        (aligned >> (128 - len)) as u64
    }

    /// Sets `len` bits (at most 64) starting at bit `start` from the right-aligned
    /// `value`; bits past the 160th are dropped.
    pub fn set_bits(&mut self, start: u32, len: u32, value: u64) {
        for i in 0..len {
            let bit = start + i;
            let v = (value >> (len - 1 - i)) & 1;
            if let Some(byte) = self.0.get_mut((bit / 8) as usize) {
                let mask = 1u8 << (7 - bit % 8);
                if v == 1 {
                    *byte |= mask;
                } else {
                    *byte &= !mask;
                }
            }
        }
    }
}

/// SHA-1 of a password's bytes, as Pwned Passwords hashes them (the UTF-8 text).
pub fn sha1(password: &[u8]) -> [u8; 20] {
    Sha1::digest(password).into()
}

/// NTLM hash of a password: MD4 of its UTF-16LE encoding.
pub fn ntlm(password: &str) -> [u8; 16] {
    let mut hasher = Md4::new();
    for unit in password.encode_utf16() {
        hasher.update(unit.to_le_bytes());
    }
    hasher.finalize().into()
}

/// Decodes hexadecimal digits (either case) into `out`, which must be exactly half as
/// long as `hex`. `false` (with `out` partly written) when a digit is not hexadecimal or
/// the lengths do not match.
pub fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != out.len() * 2 {
        return false;
    }
    // Any invalid digit has the high bit set in the table: OR them all and test once.
    let mut bad = 0u8;
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let h = HEX_VALUES[usize::from(pair[0])];
        let l = HEX_VALUES[usize::from(pair[1])];
        bad |= h | l;
        *o = (h << 4) | (l & 15);
    }
    bad & 0x80 == 0
}

/// The value of one hexadecimal digit.
#[inline]
pub fn nibble(c: u8) -> Option<u8> {
    match HEX_VALUES[usize::from(c)] {
        0xFF => None,
        v => Some(v),
    }
}

/// The value of each byte as a hex digit, 0xFF for the others: one load per digit
/// instead of three range tests, which matters at two billion lines.
const HEX_VALUES: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Upper-case hexadecimal digits of `bytes`.
pub fn encode_hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses a whole hash written in hexadecimal (40 digits SHA-1, 32 digits NTLM).
pub fn parse_hex_hash(text: &str) -> Option<(HashKind, Hash)> {
    let text = text.trim().as_bytes();
    let kind = HashKind::from_hex_len(text.len())?;
    let mut bytes = [0u8; 20];
    decode_hex(text, &mut bytes[..kind.byte_len()]).then_some((kind, Hash(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hashes() {
        // The example Pwned Passwords' documentation uses: "P@ssw0rd".
        assert_eq!(
            encode_hex_upper(&sha1(b"P@ssw0rd")),
            "21BD12DC183F740EE76F27B78EB39C8AD972A757"
        );
        assert_eq!(
            encode_hex_upper(&sha1(b"password")),
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
        );
        // NTLM of "password", as Windows stores it.
        assert_eq!(
            encode_hex_upper(&ntlm("password")),
            "8846F7EAEE8FB117AD06BDD830B7586C"
        );
        assert_eq!(
            encode_hex_upper(&ntlm("")),
            "31D6CFE0D16AE931B73C59D7E0C089C0"
        );
    }

    #[test]
    fn bits_round_trip() {
        let mut h = Hash::new(&sha1(b"x"));
        let v = h.bits(13, 41);
        h.set_bits(13, 41, v ^ 1);
        assert_eq!(h.bits(13, 41), v ^ 1);
        assert_eq!(h.bits(0, 8), u64::from(h.0[0]));
        assert_eq!(h.bits(0, 64), h.top64());
        assert_eq!(h.bits(160, 8), 0);
    }

    #[test]
    fn order_is_byte_order() {
        let mut a = Hash([0; 20]);
        let mut b = Hash([0; 20]);
        for i in 0..20 {
            a.0 = [0; 20];
            b.0 = [0; 20];
            a.0[i] = 1;
            b.0[i] = 2;
            assert!(a < b, "byte {i}");
            b.0[i] = 0;
            if i > 0 {
                b.0[i - 1] = 1;
                assert!(b > a, "byte {i}");
            }
        }
    }

    #[test]
    fn every_hex_digit() {
        let mut out = [0u8; 1];
        for c in 0..=255u8 {
            let valid = c.is_ascii_hexdigit();
            assert_eq!(decode_hex(&[c, b'0'], &mut out), valid, "{c}");
            assert_eq!(decode_hex(&[b'0', c], &mut out), valid, "{c}");
        }
        assert!(decode_hex(b"aF", &mut out));
        assert_eq!(out[0], 0xAF);
    }

    #[test]
    fn hex() {
        let (kind, h) = parse_hex_hash("8846f7eaee8fb117ad06bdd830b7586c").unwrap();
        assert_eq!(kind, HashKind::Ntlm);
        assert_eq!(h.0[..16], ntlm("password"));
        assert!(parse_hex_hash("8846f7eaee8fb117ad06bdd830b7586g").is_none());
        assert!(parse_hex_hash("8846").is_none());
    }
}
