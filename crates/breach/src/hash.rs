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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 20]);

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
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => *o = (h << 4) | l,
            _ => return false,
        }
    }
    true
}

/// The value of one hexadecimal digit.
pub fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

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
    fn hex() {
        let (kind, h) = parse_hex_hash("8846f7eaee8fb117ad06bdd830b7586c").unwrap();
        assert_eq!(kind, HashKind::Ntlm);
        assert_eq!(h.0[..16], ntlm("password"));
        assert!(parse_hex_hash("8846f7eaee8fb117ad06bdd830b7586g").is_none());
        assert!(parse_hex_hash("8846").is_none());
    }
}
