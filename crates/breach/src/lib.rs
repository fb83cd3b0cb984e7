//! Portcullis' breached-password index.
//!
//! What it is for: answering "was this password (or this hash) in a breach, and how
//! often?" from the Pwned Passwords corpus or any password list, locally, fast (a
//! lookup reads a few cache lines of a memory-mapped file) and in little space (under
//! 6 bytes a hash for the full corpus), and answering the Pwned Passwords API's range
//! requests so that existing clients can be pointed at a local server. Callers: `portcullis
//! breach`, `portcullis audit`, and the daemon's password checks.
//!
//! What it is not for: fetching the corpus (the official downloader does that), storing
//! passwords (only hashes are kept; passwords given to [`sha1`] or [`ntlm`] are not
//! retained), or serving HTTP (the binary does that with [`range_body`]).
//!
//! # Exactness
//!
//! A compact index keeps the top 64 bits of each hash: the top `k` bits choose a
//! bucket, the next `64 − k` are stored. A hash not in the corpus is reported as
//! breached only if it shares its top 64 bits with one that is: with `n` hashes that
//! happens to a random query with probability `n / 2^64` (1.08 × 10⁻¹⁰ for two billion
//! hashes: one in 9.2 billion queries). A full index (`--full`) keeps every bit and is
//! exact; only a full index can answer range requests, which must list whole suffixes.
//!
//! # Layout
//!
//! - `hash`: [`HashKind`], [`sha1`], [`ntlm`], hex text.
//! - `input`: one line of input (`HASH:COUNT`, `SUFFIX:COUNT`, a password) and
//!   sniffing which form a file is in.
//! - `build`: the builder: planning the inputs, reading them (`read`: one reader
//!   thread, parsing on every core), the external sort (`runs`), writing the file.
//! - `format`: the file format (header, sections, bit-packed entries); `count`: the
//!   one-byte count code.
//! - `index`: [`Index`], the memory-mapped reader: lookups, range queries, checks.
//! - `range`: range answers in the Pwned Passwords API's text format, with padding.

#![deny(missing_docs)]

mod build;
mod count;
mod error;
pub mod format;
mod hash;
mod index;
pub mod input;
mod range;
mod read;
mod runs;

pub use build::{BuildOptions, BuildReport, FILTER_BYTES_PER_HASH, MIN_MEMORY, Progress, build};
pub use count::{decode as decode_count, encode as encode_count};
pub use error::Error;
pub use format::{FilterKind, Header};
pub use hash::{Hash, HashKind, decode_hex, encode_hex_upper, ntlm, parse_hex_hash, sha1};
pub use index::{Index, RangeEntry};
pub use range::{PADDED_ENTRIES, format_body, range_body};
