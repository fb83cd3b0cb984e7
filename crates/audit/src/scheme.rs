//! Password storage schemes: recognising a stored hash (Dovecot's `{SCHEME}` prefix or a
//! bare crypt(3) string), and verifying a candidate password against it.
//!
//! Parsing checks the whole shape of a hash up front, so verification never meets a
//! malformed one and the hashing crates never see input they might reject late.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};

use crate::lookup::{decode_hex, nt_hash};

/// How a password is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// NT hash (MD4 of UTF-16LE), unsalted: Windows, pwdump, Dovecot `{NTLM}`.
    Ntlm,
    /// Unsalted SHA-1: Dovecot and htpasswd `{SHA}`.
    Sha1,
    /// Salted SHA-1: Dovecot `{SSHA}`.
    Ssha,
    /// The password itself: Dovecot `{PLAIN}`, `{CLEAR}`, `{CLEARTEXT}`.
    Plain,
    /// `$6$`: SHA-512 crypt.
    Sha512Crypt,
    /// `$5$`: SHA-256 crypt.
    Sha256Crypt,
    /// `$2a$`, `$2b$`, `$2x$`, `$2y$`: bcrypt (Dovecot `{BLF-CRYPT}`).
    Bcrypt,
    /// `$argon2id$`, `$argon2i$`, `$argon2d$`.
    Argon2,
    /// `$1$`: MD5 crypt.
    Md5Crypt,
    /// Traditional 13-character DES crypt.
    DesCrypt,
}

impl Scheme {
    /// The stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "ntlm",
            Scheme::Sha1 => "sha1",
            Scheme::Ssha => "ssha",
            Scheme::Plain => "plain",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Bcrypt => "bcrypt",
            Scheme::Argon2 => "argon2",
            Scheme::Md5Crypt => "md5-crypt",
            Scheme::DesCrypt => "des-crypt",
        }
    }

    /// Whether every guess costs a full, deliberately slow hash (so guesses are tried
    /// one hash at a time, within the candidate cap and the time budget).
    pub fn is_slow(self) -> bool {
        !matches!(self, Scheme::Ntlm | Scheme::Sha1 | Scheme::Plain)
    }

    /// Whether the scheme is too weak to keep: a stolen copy is cracked quickly.
    /// NT hashes are what Windows stores and cannot be migrated away from here.
    pub fn is_weak(self) -> bool {
        matches!(
            self,
            Scheme::Sha1 | Scheme::Ssha | Scheme::Md5Crypt | Scheme::DesCrypt
        )
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored password hash, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// NT hash.
    Ntlm([u8; 16]),
    /// Unsalted SHA-1.
    Sha1([u8; 20]),
    /// SHA-1 of password then salt.
    Ssha {
        /// The first 20 bytes.
        digest: [u8; 20],
        /// The rest.
        salt: Vec<u8>,
    },
    /// Plaintext storage.
    Plain(String),
    /// SHA-crypt (`$5$` or `$6$`).
    ShaCrypt {
        /// 256 or 512.
        bits: u16,
        /// At most 16 characters are used, as glibc does.
        salt: String,
        /// Clamped into 1,000..=999,999,999, as glibc does.
        rounds: usize,
        /// The crypt-base64 digest.
        checksum: String,
    },
    /// A whole bcrypt string.
    Bcrypt {
        /// The string as stored (60 characters).
        hash: String,
        /// log2 of the iterations.
        cost: u32,
    },
    /// A whole PHC string.
    Argon2 {
        /// The PHC string as stored.
        hash: String,
        /// Memory in KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
    },
    /// A whole `$1$` string.
    Md5Crypt(String),
    /// A 13-character DES crypt string.
    DesCrypt(String),
}

/// Why a hash field was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    /// The field is empty.
    Empty,
    /// A scheme we recognise by name but cannot verify (`{SSHA512}`, `$y$`, …); the name
    /// is kept only when it is short and plain.
    Unsupported(String),
    /// The scheme is known but the hash after it has the wrong shape.
    Malformed(Scheme),
    /// Neither a `{SCHEME}` prefix nor any known hash shape.
    Unrecognised,
}

impl HashError {
    /// A stable key for counting, e.g. `unsupported_scheme:SSHA512`.
    pub fn key(&self) -> String {
        match self {
            HashError::Empty => "empty_hash".to_owned(),
            HashError::Unsupported(name) => format!("unsupported_scheme:{name}"),
            HashError::Malformed(s) => format!("malformed_hash:{s}"),
            HashError::Unrecognised => "unrecognised_hash".to_owned(),
        }
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::Empty => f.write_str("the password field is empty"),
            HashError::Unsupported(name) => write!(f, "scheme {name} is not supported"),
            HashError::Malformed(s) => write!(f, "malformed {s} hash"),
            HashError::Unrecognised => f.write_str("not a recognised password hash"),
        }
    }
}

impl std::error::Error for HashError {}

const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_crypt64(s: &str) -> bool {
    s.bytes().all(|b| CRYPT64.contains(&b))
}

/// The NT hash of the empty password.
pub const EMPTY_NT: [u8; 16] = [
    0x31, 0xd6, 0xcf, 0xe0, 0xd1, 0x6a, 0xe9, 0x31, 0xb7, 0x3c, 0x59, 0xd7, 0xe0, 0x89, 0xc0, 0x89,
];
/// The LM hash of the empty password (what Windows stores when LM is disabled).
pub const EMPTY_LM: [u8; 16] = [
    0xaa, 0xd3, 0xb4, 0x35, 0xb5, 0x14, 0x04, 0xee, 0xaa, 0xd3, 0xb4, 0x35, 0xb5, 0x14, 0x04, 0xee,
];

impl StoredHash {
    /// Parses a password field: `{SCHEME}value` (scheme names case-insensitive, with
    /// Dovecot's `.HEX`/`.B64` encoding suffixes) or a bare crypt(3) string.
    pub fn parse(field: &str) -> Result<StoredHash, HashError> {
        if field.is_empty() {
            return Err(HashError::Empty);
        }
        if let Some(rest) = field.strip_prefix('{') {
            let Some((name, value)) = rest.split_once('}') else {
                return Err(HashError::Unrecognised);
            };
            return Self::parse_prefixed(name, value);
        }
        Self::parse_crypt(field)
    }

    fn parse_prefixed(name: &str, value: &str) -> Result<StoredHash, HashError> {
        let upper = name.to_ascii_uppercase();
        let (base, encoding) = match upper.rsplit_once('.') {
            Some((b, e @ ("HEX" | "B64" | "BASE64"))) => (b, Some(e)),
            _ => (upper.as_str(), None),
        };
        let bytes = |scheme: Scheme| -> Result<Vec<u8>, HashError> {
            match encoding {
                Some("HEX") => decode_hex_vec(value).ok_or(HashError::Malformed(scheme)),
                _ => BASE64
                    .decode(value.trim_end())
                    .map_err(|_| HashError::Malformed(scheme)),
            }
        };
        match base {
            "PLAIN" | "CLEAR" | "CLEARTEXT" | "PLAINTEXT" => match encoding {
                None => Ok(StoredHash::Plain(value.to_owned())),
                Some(_) => bytes(Scheme::Plain).and_then(|b| {
                    String::from_utf8(b)
                        .map(StoredHash::Plain)
                        .map_err(|_| HashError::Malformed(Scheme::Plain))
                }),
            },
            "SHA" | "SHA1" => {
                let b = bytes(Scheme::Sha1)?;
                <[u8; 20]>::try_from(b.as_slice())
                    .map(StoredHash::Sha1)
                    .map_err(|_| HashError::Malformed(Scheme::Sha1))
            }
            "SSHA" => {
                let b = bytes(Scheme::Ssha)?;
                if b.len() <= 20 {
                    return Err(HashError::Malformed(Scheme::Ssha));
                }
                let mut digest = [0u8; 20];
                digest.copy_from_slice(&b[..20]);
                Ok(StoredHash::Ssha {
                    digest,
                    salt: b[20..].to_vec(),
                })
            }
            "NTLM" => {
                // Dovecot stores NTLM as hex by default.
                let b = match encoding {
                    Some("B64" | "BASE64") => bytes(Scheme::Ntlm)?,
                    _ => decode_hex_vec(value).ok_or(HashError::Malformed(Scheme::Ntlm))?,
                };
                <[u8; 16]>::try_from(b.as_slice())
                    .map(StoredHash::Ntlm)
                    .map_err(|_| HashError::Malformed(Scheme::Ntlm))
            }
            "SHA512-CRYPT" => expect(Self::parse_crypt(value), Scheme::Sha512Crypt),
            "SHA256-CRYPT" => expect(Self::parse_crypt(value), Scheme::Sha256Crypt),
            "BLF-CRYPT" => expect(Self::parse_crypt(value), Scheme::Bcrypt),
            "MD5-CRYPT" | "MD5" => expect(Self::parse_crypt(value), Scheme::Md5Crypt),
            "ARGON2I" | "ARGON2ID" => expect(Self::parse_crypt(value), Scheme::Argon2),
            "DES-CRYPT" => expect(Self::parse_crypt(value), Scheme::DesCrypt),
            // crypt(3): whatever the string's own prefix says.
            "CRYPT" => Self::parse_crypt(value),
            _ => Err(HashError::Unsupported(plain_name(base))),
        }
    }

    /// A bare crypt(3) string: `$id$…` or 13-character DES.
    fn parse_crypt(s: &str) -> Result<StoredHash, HashError> {
        if let Some(rest) = s.strip_prefix('$') {
            let id = rest.split('$').next().unwrap_or("");
            return match id {
                "6" => parse_sha_crypt(s, 512),
                "5" => parse_sha_crypt(s, 256),
                "2a" | "2b" | "2x" | "2y" => parse_bcrypt(s),
                "1" => parse_md5_crypt(s),
                "argon2id" | "argon2i" | "argon2d" => parse_argon2(s),
                _ => Err(HashError::Unsupported(format!("${}$", plain_name(id)))),
            };
        }
        if s.len() == 13 && is_crypt64(s) {
            return Ok(StoredHash::DesCrypt(s.to_owned()));
        }
        Err(HashError::Unrecognised)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            StoredHash::Ntlm(_) => Scheme::Ntlm,
            StoredHash::Sha1(_) => Scheme::Sha1,
            StoredHash::Ssha { .. } => Scheme::Ssha,
            StoredHash::Plain(_) => Scheme::Plain,
            StoredHash::ShaCrypt { bits: 256, .. } => Scheme::Sha256Crypt,
            StoredHash::ShaCrypt { .. } => Scheme::Sha512Crypt,
            StoredHash::Bcrypt { .. } => Scheme::Bcrypt,
            StoredHash::Argon2 { .. } => Scheme::Argon2,
            StoredHash::Md5Crypt(_) => Scheme::Md5Crypt,
            StoredHash::DesCrypt(_) => Scheme::DesCrypt,
        }
    }

    /// Whether one guess costs more than this tool is willing to spend on it: such a
    /// hash is reported as not checked rather than stalling the whole audit (bcrypt
    /// cost above 14, SHA-crypt above 1,000,000 rounds, Argon2 above 256 MiB or 16
    /// passes). A file can ask for any cost; the audit must stay bounded.
    pub fn too_costly(&self) -> bool {
        match self {
            StoredHash::Bcrypt { cost, .. } => *cost > 14,
            StoredHash::ShaCrypt { rounds, .. } => *rounds > 1_000_000,
            StoredHash::Argon2 { m_cost, t_cost, .. } => *m_cost > 256 * 1024 || *t_cost > 16,
            _ => false,
        }
    }

    /// Whether `password` is the stored password.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            StoredHash::Ntlm(h) => nt_hash(password) == *h,
            StoredHash::Sha1(h) => crate::lookup::sha1(password) == *h,
            StoredHash::Ssha { digest, salt } => {
                let mut s = Sha1::new();
                s.update(password.as_bytes());
                s.update(salt);
                <[u8; 20]>::from(s.finalize()) == *digest
            }
            StoredHash::Plain(p) => p == password,
            StoredHash::ShaCrypt {
                bits,
                salt,
                rounds,
                checksum,
            } => {
                let computed = if *bits == 512 {
                    sha_crypt::Sha512Params::new(*rounds).ok().and_then(|p| {
                        sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &p).ok()
                    })
                } else {
                    sha_crypt::Sha256Params::new(*rounds).ok().and_then(|p| {
                        sha_crypt::sha256_crypt_b64(password.as_bytes(), salt.as_bytes(), &p).ok()
                    })
                };
                computed.is_some_and(|c| c == *checksum)
            }
            StoredHash::Bcrypt { hash, .. } => bcrypt::verify(password, hash).unwrap_or(false),
            StoredHash::Argon2 { hash, .. } => {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                PasswordHash::new(hash).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
            }
            StoredHash::Md5Crypt(hash) => pwhash::md5_crypt::verify(password, hash),
            StoredHash::DesCrypt(hash) => pwhash::unix_crypt::verify(password, hash),
        }
    }
}

fn expect(parsed: Result<StoredHash, HashError>, scheme: Scheme) -> Result<StoredHash, HashError> {
    match parsed {
        Ok(h) if h.scheme() == scheme => Ok(h),
        _ => Err(HashError::Malformed(scheme)),
    }
}

/// A scheme name fit to become a counting key: short, letters, digits and `-`.
fn plain_name(name: &str) -> String {
    if !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

fn decode_hex_vec(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end();
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            decode_hex::<1>(s).map(|b| b[0])
        })
        .collect()
}

/// `$6$[rounds=N$]salt$checksum` (Drepper's SHA-crypt specification).
fn parse_sha_crypt(s: &str, bits: u16) -> Result<StoredHash, HashError> {
    let scheme = if bits == 512 {
        Scheme::Sha512Crypt
    } else {
        Scheme::Sha256Crypt
    };
    let bad = HashError::Malformed(scheme);
    let mut parts = s.split('$').skip(2);
    let mut salt = parts.next().ok_or(bad.clone())?;
    let mut rounds = 5000usize;
    if let Some(n) = salt.strip_prefix("rounds=") {
        if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        rounds = n.parse::<usize>().map_err(|_| bad.clone())?;
        rounds = rounds.clamp(1000, 999_999_999);
        salt = parts.next().ok_or(bad.clone())?;
    }
    let checksum = parts.next().ok_or(bad.clone())?;
    let want = if bits == 512 { 86 } else { 43 };
    if parts.next().is_some() || checksum.len() != want || !is_crypt64(checksum) {
        return Err(bad);
    }
    let salt: String = salt.chars().take(16).collect();
    Ok(StoredHash::ShaCrypt {
        bits,
        salt,
        rounds,
        checksum: checksum.to_owned(),
    })
}

/// `$2b$NN$` + 22 characters of salt + 31 of hash.
fn parse_bcrypt(s: &str) -> Result<StoredHash, HashError> {
    let bad = HashError::Malformed(Scheme::Bcrypt);
    let b = s.as_bytes();
    if b.len() != 60 || b[3] != b'$' || b[6] != b'$' {
        return Err(bad);
    }
    let cost: u32 = s
        .get(4..6)
        .filter(|c| c.bytes().all(|d| d.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .ok_or(bad.clone())?;
    if !(4..=31).contains(&cost) || !is_crypt64(s.get(7..).ok_or(bad.clone())?) {
        return Err(bad);
    }
    Ok(StoredHash::Bcrypt {
        hash: s.to_owned(),
        cost,
    })
}

/// `$1$salt$checksum`, salt at most 8 characters, checksum 22.
fn parse_md5_crypt(s: &str) -> Result<StoredHash, HashError> {
    let bad = HashError::Malformed(Scheme::Md5Crypt);
    let mut parts = s.split('$').skip(2);
    let (Some(salt), Some(sum), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad);
    };
    if salt.len() > 8 || !is_crypt64(salt) || sum.len() != 22 || !is_crypt64(sum) {
        return Err(bad);
    }
    Ok(StoredHash::Md5Crypt(s.to_owned()))
}

/// A PHC string, as the argon2 crate reads it.
fn parse_argon2(s: &str) -> Result<StoredHash, HashError> {
    use argon2::password_hash::PasswordHash;
    let bad = HashError::Malformed(Scheme::Argon2);
    let parsed = PasswordHash::new(s).map_err(|_| bad.clone())?;
    let params = argon2::Params::try_from(&parsed).map_err(|_| bad.clone())?;
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(bad);
    }
    Ok(StoredHash::Argon2 {
        hash: s.to_owned(),
        m_cost: params.m_cost(),
        t_cost: params.t_cost(),
    })
}

#[cfg(test)]
mod tests;
