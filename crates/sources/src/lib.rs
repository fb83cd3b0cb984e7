//! Portcullis' log sources: the outside world as lines.
//!
//! The daemon (`portcullis run`) reads login attempts from log files, from syslog
//! senders and from the systemd journal. This crate is the edge that does that I/O: each
//! source turns its input into [`Line`]s (the bytes of one log line and where they came
//! from) and sends them on a bounded `tokio::sync::mpsc` channel. The daemon parses them
//! with `portcullis_parse::LogParser` and feeds the engine.
//!
//! What it is for: following files through rotation without losing or repeating a line
//! across restarts, receiving syslog over UDP and TCP (RFC 6587 framing), running
//! `journalctl -f -o json`; bounded memory everywhere; counters for every loss.
//!
//! What it is not for: parsing (lines are passed on unchanged; the envelope parser in
//! `portcullis-parse` reads RFC 3164/5424 and journald JSON), decompressing rotated
//! `*.gz` history (that is `portcullis analyze`'s job), configuration files, logging.
//!
//! Back-pressure: the file tailer and TCP connections wait when the channel is full
//! (the file, or the sender's TCP window, is the buffer); UDP datagrams cannot wait and
//! are dropped and counted. See `docs/sources.md`.
//!
//! # Layout
//!
//! - [`file`](mod@file): the file tailer. A deterministic [`file::Tailer`] (`scan`, `read`,
//!   `poll_once`) that tests drive step by step, and the thin polling loop on its own
//!   thread: [`file::spawn`] sends lines, [`file::spawn_tailed`] sends lines and, after
//!   them, the positions that cover exactly those lines (for the daemon to commit with
//!   the engine's state).
//! - [`checkpoint`]: file fingerprints and positions: the checkpoint file (offsets per
//!   fingerprint, written atomically) and the same format as bytes for the daemon's
//!   store.
//! - [`syslog`]: the syslog receiver: UDP datagrams, TCP with octet-counting and
//!   newline framing, caps on message size, connections and idle time.
//! - [`journald`]: `journalctl` as a child process, restarted with backoff.
//!
//! Files are tailed on a plain thread (blocking file I/O, a deterministic step function
//! that is easy to test); the network and the child process use tokio, which the daemon
//! runs anyway.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod file;
pub mod journald;
pub mod syslog;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// One log line, as received: the bytes without the line terminator, and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes, unchanged, without its terminator (`\n`, the octet-count
    /// prefix, or a datagram's trailing newline).
    pub bytes: Vec<u8>,
    /// Where it came from.
    pub source: Source,
    /// Where it starts within its stream: the byte offset in the file for
    /// [`Source::File`], in the connection's byte stream for [`Source::Tcp`]; `None` for
    /// datagrams and the journal.
    pub offset: Option<u64>,
}

/// Where a [`Line`] came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A tailed file, named by the path under which the tailer first found it (a file
    /// renamed by rotation keeps its first name, so its last lines stay with its stream).
    File(Arc<Path>),
    /// A syslog datagram from this peer.
    Udp(SocketAddr),
    /// A syslog message on a TCP connection from this peer.
    Tcp(SocketAddr),
    /// A record from `journalctl`.
    Journald,
}
