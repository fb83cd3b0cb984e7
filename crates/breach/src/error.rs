//! The library's errors.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What can go wrong building, opening or querying an index.
#[derive(Debug)]
pub enum Error {
    /// The file does not start with the index magic bytes.
    NotAnIndex,
    /// The file is an index of a format version this code does not read.
    UnsupportedVersion(u32),
    /// The file is shorter (or longer) than its header says.
    Truncated {
        /// Bytes the header calls for.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A field or section is impossible.
    Corrupt(&'static str),
    /// A hash of the wrong length for the index's kind.
    WrongHashLength {
        /// Bytes the index's kind has.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// A range answer needs every bit of every hash; this index keeps only some.
    NotFull,
    /// Reading or writing a file failed.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The input cannot be indexed (the reason says why).
    Input(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        // I/O errors compare by path and kind; enough for tests.
        match (self, other) {
            (Error::Io { path: a, source: x }, Error::Io { path: b, source: y }) => {
                a == b && x.kind() == y.kind()
            }
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAnIndex => f.write_str("not a Portcullis breach index (wrong magic bytes)"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "index format version {v} is not supported (this build reads version {})",
                crate::format::VERSION
            ),
            Error::Truncated { expected, found } => write!(
                f,
                "the index is damaged or truncated: its header calls for {expected} bytes, the file has {found}"
            ),
            Error::Corrupt(what) => write!(f, "the index is corrupt: {what}"),
            Error::WrongHashLength { expected, found } => write!(
                f,
                "a hash of {found} bytes cannot be looked up in an index of {expected}-byte hashes"
            ),
            Error::NotFull => f.write_str(
                "this index is compact (it keeps only the top 64 bits of each hash) and cannot \
                 answer range queries; rebuild it with `portcullis breach build --full`",
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Input(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
