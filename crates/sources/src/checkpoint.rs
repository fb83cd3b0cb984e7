//! File fingerprints and the checkpoint file.
//!
//! A tailed file is known by a [`Fingerprint`] of its first bytes rather than by its
//! inode: inodes are reused after deletion, and a copy made by copy-truncate rotation
//! has a new inode but the old content. The checkpoint file maps fingerprints to the
//! [`Position`] up to which every complete line has been handed on, so a restarted
//! tailer resumes exactly there.
//!
//! Format (JSON, one object, written to a temporary file in the same directory, synced,
//! then renamed over the old one, and the directory synced):
//!
//! ```json
//! {"version": 1, "files": [
//!   {"fingerprint": "00000100:8b3c…", "offset": 98211, "skipping": false,
//!    "path": "/var/log/mail.log"}
//! ]}
//! ```
//!
//! `fingerprint` is the prefix length (hex, 8 digits) and the FNV-1a 64-bit hash of that
//! many bytes from the file's start (hex, 16 digits); `path` is informational only (a
//! name that is not UTF-8 is written lossily).
//!
//! The same JSON, as bytes ([`encode`], [`decode`]), is what the daemon keeps in its
//! store beside the engine's state when it takes positions in-band from
//! [`crate::file::spawn_tailed`].

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What identifies a file's content: the hash of its first `len` bytes.
///
/// `len` is the configured fingerprint size (256 bytes by default) once the file is that
/// long; a shorter file's fingerprint covers all of it and grows with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// How many bytes from the start of the file are hashed.
    pub len: u32,
    /// FNV-1a 64 of those bytes (stable across Rust versions, unlike `DefaultHasher`).
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self {
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            hash,
        }
    }

    /// The fingerprint of the first `len` bytes of `file`, or `None` when the file is
    /// shorter than that.
    pub fn read(file: &File, len: u32) -> io::Result<Option<Self>> {
        let mut buf = vec![0; len as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => return Ok(None),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(Self::of(&buf)))
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        Ok(Self::read(file, self.len)?.is_some_and(|f| f == *self))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}:{:016x}", self.len, self.hash)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad fingerprint {s:?}: expected LEN:HASH in hex");
        let (len, hash) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            len: u32::from_str_radix(len, 16).map_err(|_| bad())?,
            hash: u64::from_str_radix(hash, 16).map_err(|_| bad())?,
        })
    }
}

/// How far a file has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The offset just after the last complete line handed on (or skipped).
    pub offset: u64,
    /// Whether the tailer is inside an over-long line, skipping to its newline.
    pub skipping: bool,
}

/// One file's entry in the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The file's content identity.
    pub fingerprint: Fingerprint,
    /// How far it was read.
    pub position: Position,
    /// The path it was last seen under (informational).
    pub path: Option<PathBuf>,
}

/// Why the checkpoint file could not be read or written.
#[derive(Debug)]
pub enum CheckpointError {
    /// Reading, writing, syncing or renaming failed.
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        error: io::Error,
    },
    /// The file exists but is not a checkpoint this version understands.
    Format {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Positions given as bytes (by [`decode`], e.g. from the daemon's store) are not
    /// ones this version understands.
    Decode {
        /// What is wrong with them.
        detail: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "checkpoint {}: {error}", path.display()),
            Self::Format { path, detail } => {
                write!(f, "checkpoint {}: {detail}", path.display())
            }
            Self::Decode { detail } => write!(f, "file positions: {detail}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    files: Vec<RecordFormat>,
}

#[derive(Serialize, Deserialize)]
struct RecordFormat {
    fingerprint: String,
    offset: u64,
    #[serde(default)]
    skipping: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
}

/// The positions as bytes: the checkpoint file's JSON format. The daemon stores them
/// beside the engine's state; [`store`] writes the same bytes to the checkpoint file.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let body = FileFormat {
        version: VERSION,
        files: records
            .iter()
            .map(|r| RecordFormat {
                fingerprint: r.fingerprint.to_string(),
                offset: r.position.offset,
                skipping: r.position.skipping,
                // Informational only, and JSON cannot hold a name that is not UTF-8.
                path: r
                    .path
                    .as_ref()
                    .map(|p| PathBuf::from(p.to_string_lossy().into_owned())),
            })
            .collect(),
    };
    // Strings and integers only: serialising them cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Positions from bytes made by [`encode`] (or read from a checkpoint file).
pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, CheckpointError> {
    let format = |detail: String| CheckpointError::Decode { detail };
    let parsed: FileFormat = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
    if parsed.version != VERSION {
        return Err(format(format!(
            "version {} (this build reads {VERSION})",
            parsed.version
        )));
    }
    parsed
        .files
        .into_iter()
        .map(|r| {
            Ok(Record {
                fingerprint: r.fingerprint.parse().map_err(format)?,
                position: Position {
                    offset: r.offset,
                    skipping: r.skipping,
                },
                path: r.path,
            })
        })
        .collect()
}

/// Reads a checkpoint file. `Ok(None)` when it does not exist (a first run).
pub fn load(path: &Path) -> Result<Option<Vec<Record>>, CheckpointError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(CheckpointError::Io {
                path: path.to_owned(),
                error,
            });
        }
    };
    match decode(&text) {
        Ok(records) => Ok(Some(records)),
        Err(CheckpointError::Decode { detail }) => Err(CheckpointError::Format {
            path: path.to_owned(),
            detail,
        }),
        Err(e) => Err(e),
    }
}

/// Writes a checkpoint file atomically: a reader (or a crash) sees the old file or the
/// new one, never a mix.
pub fn store(path: &Path, records: &[Record]) -> Result<(), CheckpointError> {
    let io = |error: io::Error| CheckpointError::Io {
        path: path.to_owned(),
        error,
    };
    let bytes = encode(records);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = dir.join(name);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    // The rename is durable only once the directory entry is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_through_text() {
        let fp = Fingerprint::of(b"Jun 23 09:14:05 mail01 sshd[1]: hello\n");
        assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
        assert!("zz:1".parse::<Fingerprint>().is_err());
        assert!("12".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn store_then_load_gives_the_records_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        assert!(load(&path).unwrap().is_none());
        let records = vec![Record {
            fingerprint: Fingerprint::of(b"abc"),
            position: Position {
                offset: 3,
                skipping: true,
            },
            path: Some("/var/log/x".into()),
        }];
        store(&path, &records).unwrap();
        assert_eq!(load(&path).unwrap(), Some(records));
        assert!(!dir.path().join("cp.json.tmp").exists());
    }

    #[test]
    fn encode_is_the_checkpoint_files_format_and_decode_reverses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let records = vec![
            Record {
                fingerprint: Fingerprint::of(b"Jun 23 09:14:05 mail01"),
                position: Position {
                    offset: 98211,
                    skipping: false,
                },
                path: Some("/var/log/mail.log".into()),
            },
            Record {
                fingerprint: Fingerprint::of(b"x"),
                position: Position {
                    offset: 1,
                    skipping: true,
                },
                path: None,
            },
        ];
        store(&path, &records).unwrap();
        assert_eq!(fs::read(&path).unwrap(), encode(&records));
        assert_eq!(decode(&encode(&records)).unwrap(), records);
        assert_eq!(decode(&encode(&[])).unwrap(), []);
        for junk in [&b""[..], b"[]", b"{\"version\":2,\"files\":[]}"] {
            assert!(matches!(decode(junk), Err(CheckpointError::Decode { .. })));
        }
    }

    #[test]
    fn a_file_name_that_is_not_utf8_does_not_stop_checkpoints() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let name = std::ffi::OsStr::from_bytes(b"/var/log/mail\xff.log");
        let records = vec![Record {
            fingerprint: Fingerprint::of(b"abc"),
            position: Position::default(),
            path: Some(name.into()),
        }];
        store(&path, &records).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back[0].fingerprint, records[0].fingerprint);
        assert_eq!(back[0].path, Some("/var/log/mail\u{fffd}.log".into()));
    }

    #[test]
    fn a_foreign_file_is_a_format_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        for junk in [
            &b"not json"[..],
            b"{\"version\":9,\"files\":[]}",
            b"\xff\x00",
        ] {
            fs::write(&path, junk).unwrap();
            assert!(matches!(load(&path), Err(CheckpointError::Format { .. })));
        }
    }
}
