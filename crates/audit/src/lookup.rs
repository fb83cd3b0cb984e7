//! Breached-password lookups: the [`BreachLookup`] trait the checks ask, the in-memory
//! [`HashSetLookup`] for small lists, and [`LookupChain`], which asks several in turn.
//!
//! The memory-mapped index of the whole Pwned Passwords corpus (`portcullis_breach`)
//! answers the same trait (implemented at the end of this module); the hashing and hex
//! helpers are that crate's.

use std::collections::HashMap;

/// Answers "how often was this password seen in breaches?" for SHA-1 and NT hashes.
pub trait BreachLookup: Sync {
    /// The breach count of the password whose SHA-1 is `hash`; `None` when it is not in
    /// the index or there is no SHA-1 index.
    fn sha1_count(&self, hash: &[u8; 20]) -> Option<u32>;
    /// The breach count of the password whose NT hash (MD4 of UTF-16LE) is `hash`;
    /// `None` when it is not in the index or there is no NT index.
    fn ntlm_count(&self, hash: &[u8; 16]) -> Option<u32>;
}

/// The SHA-1 of a password's UTF-8 bytes.
pub fn sha1(password: &str) -> [u8; 20] {
    portcullis_breach::sha1(password.as_bytes())
}

/// The NT hash of a password: MD4 of its UTF-16LE encoding.
pub use portcullis_breach::ntlm as nt_hash;

/// The breach count of a known plaintext: the larger answer of the SHA-1 and NT
/// indexes.
pub fn plaintext_count(lookup: &dyn BreachLookup, password: &str) -> Option<u32> {
    let a = lookup.sha1_count(&sha1(password));
    let b = lookup.ntlm_count(&nt_hash(password));
    a.max(b)
}

/// Hashes held in memory: for tests and for short lists given with `--breached-list`.
#[derive(Debug, Default, Clone)]
pub struct HashSetLookup {
    sha1: HashMap<[u8; 20], u32>,
    ntlm: HashMap<[u8; 16], u32>,
}

/// What [`HashSetLookup::add_list`] took from a list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ListStats {
    /// Lines read as a hex SHA-1 (40 digits), with or without `:COUNT`.
    pub sha1: u64,
    /// Lines read as a hex NT hash (32 digits), with or without `:COUNT`.
    pub ntlm: u64,
    /// Lines read as a plaintext password.
    pub passwords: u64,
}

impl HashSetLookup {
    /// An empty lookup.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plaintext password under both its SHA-1 and its NT hash.
    pub fn add_password(&mut self, password: &str, count: u32) {
        self.add_sha1(sha1(password), count);
        self.add_ntlm(nt_hash(password), count);
    }

    /// Adds a SHA-1 hash; a hash added twice keeps the larger count.
    pub fn add_sha1(&mut self, hash: [u8; 20], count: u32) {
        let c = self.sha1.entry(hash).or_insert(0);
        *c = (*c).max(count);
    }

    /// Adds an NT hash; a hash added twice keeps the larger count.
    pub fn add_ntlm(&mut self, hash: [u8; 16], count: u32) {
        let c = self.ntlm.entry(hash).or_insert(0);
        *c = (*c).max(count);
    }

    /// Adds every line of a list: `HASH:COUNT` or `HASH` (40 hex digits for SHA-1,
    /// 32 for NT, the Pwned Passwords download format), else the line is a plaintext
    /// password seen once. Blank lines are skipped.
    pub fn add_list(&mut self, text: &str) -> ListStats {
        let mut stats = ListStats::default();
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let (hash, count) = match line.rsplit_once(':') {
                Some((h, c)) if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
                    (h, c.parse::<u32>().unwrap_or(u32::MAX))
                }
                _ => (line, 1),
            };
            if let Some(h) = decode_hex::<20>(hash) {
                self.add_sha1(h, count);
                stats.sha1 += 1;
            } else if let Some(h) = decode_hex::<16>(hash) {
                self.add_ntlm(h, count);
                stats.ntlm += 1;
            } else {
                self.add_password(line, 1);
                stats.passwords += 1;
            }
        }
        stats
    }

    /// How many hashes are held.
    pub fn len(&self) -> usize {
        self.sha1.len() + self.ntlm.len()
    }

    /// Whether no hash is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BreachLookup for HashSetLookup {
    fn sha1_count(&self, hash: &[u8; 20]) -> Option<u32> {
        self.sha1.get(hash).copied()
    }

    fn ntlm_count(&self, hash: &[u8; 16]) -> Option<u32> {
        self.ntlm.get(hash).copied()
    }
}

/// Several lookups asked in turn (an in-memory list beside one or more indexes); the
/// answer is the largest count any of them knows.
#[derive(Default)]
pub struct LookupChain {
    lookups: Vec<Box<dyn BreachLookup + Send>>,
}

impl LookupChain {
    /// An empty chain: it knows no password.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a lookup to the chain.
    pub fn push(&mut self, lookup: Box<dyn BreachLookup + Send>) {
        self.lookups.push(lookup);
    }

    /// Whether the chain holds no lookup.
    pub fn is_empty(&self) -> bool {
        self.lookups.is_empty()
    }
}

impl BreachLookup for LookupChain {
    fn sha1_count(&self, hash: &[u8; 20]) -> Option<u32> {
        self.lookups.iter().filter_map(|l| l.sha1_count(hash)).max()
    }

    fn ntlm_count(&self, hash: &[u8; 16]) -> Option<u32> {
        self.lookups.iter().filter_map(|l| l.ntlm_count(hash)).max()
    }
}

/// Decodes exactly `N` bytes of hex (either case).
pub fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    portcullis_breach::decode_hex(text.as_bytes(), &mut out).then_some(out)
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The memory-mapped breached-password index (`portcullis breach build`) answers for
/// the kind of hash it holds, and knows nothing of the other.
impl BreachLookup for portcullis_breach::Index {
    fn sha1_count(&self, hash: &[u8; 20]) -> Option<u32> {
        (self.kind() == portcullis_breach::HashKind::Sha1)
            .then(|| self.lookup(hash))
            .flatten()
    }

    fn ntlm_count(&self, hash: &[u8; 16]) -> Option<u32> {
        (self.kind() == portcullis_breach::HashKind::Ntlm)
            .then(|| self.lookup(hash))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_of_known_passwords() {
        // The empty NT hash every pwdump export shows for a blank password, and the
        // NT hash of "password" (widely published, e.g. in the Samba and hashcat docs).
        assert_eq!(encode_hex(&nt_hash("")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(
            encode_hex(&nt_hash("password")),
            "8846f7eaee8fb117ad06bdd830b7586c"
        );
    }

    #[test]
    fn list_lines_are_hashes_with_counts_or_passwords() {
        let mut l = HashSetLookup::new();
        let text = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004\n\
                    8846F7EAEE8FB117AD06BDD830B7586C:7\n\
                    \n\
                    letmein\r\n\
                    pass:word\n";
        let stats = l.add_list(text);
        assert_eq!(
            stats,
            ListStats {
                sha1: 1,
                ntlm: 1,
                passwords: 2
            }
        );
        assert_eq!(l.sha1_count(&sha1("password")), Some(10_434_004));
        assert_eq!(l.ntlm_count(&nt_hash("password")), Some(7));
        assert_eq!(l.ntlm_count(&nt_hash("letmein")), Some(1));
        assert_eq!(l.sha1_count(&sha1("pass:word")), Some(1));
        assert_eq!(l.sha1_count(&sha1("other")), None);
    }

    #[test]
    fn a_chain_answers_the_largest_count() {
        let mut a = HashSetLookup::new();
        a.add_password("x", 3);
        let mut b = HashSetLookup::new();
        b.add_password("x", 9);
        let mut chain = LookupChain::new();
        assert_eq!(chain.sha1_count(&sha1("x")), None);
        chain.push(Box::new(a));
        chain.push(Box::new(b));
        assert_eq!(chain.sha1_count(&sha1("x")), Some(9));
        assert_eq!(plaintext_count(&chain, "x"), Some(9));
    }
}
