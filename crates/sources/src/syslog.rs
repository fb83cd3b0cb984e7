//! The syslog receiver: messages over UDP and TCP, passed on unchanged.
//!
//! UDP: one datagram is one message (a trailing LF, CRLF or NUL is removed). TCP: the
//! [`Framer`] splits the byte stream per RFC 6587 ("Transmission of Syslog Messages
//! over TCP"), choosing for each message between the two framings it describes:
//!
//! - §3.4.1 octet counting, `MSG-LEN SP SYSLOG-MSG`: a frame that starts with a digit
//!   sequence followed by a space. A syslog message itself starts with `<` (its PRI),
//!   never with a digit, which is what makes the per-message choice safe.
//! - §3.4.2 non-transparent framing: the message ends at a trailer, LF (CRLF tolerated:
//!   the CR is removed) or NUL (sent by some devices).
//!
//! Caps: a message longer than `max_message` is skipped and counted, and the stream
//! stays usable (an octet count says how much to skip; otherwise the framer skips to
//! the next trailer). At most `max_connections` TCP connections are served (a
//! semaphore); others are closed at once and counted. A connection silent for
//! `idle_timeout` is closed.
//!
//! Back-pressure: a TCP connection waits while the channel is full (the sender's TCP
//! window fills, and a well-behaved sender buffers). A UDP datagram cannot wait: when
//! the channel is full it is dropped and counted.
//!
//! UDP bursts: the kernel queues datagrams in the socket's receive buffer until the
//! receiver reads them, and drops them silently once it is full (counted only in the
//! kernel's `RcvbufErrors`). Linux's default (`net.core.rmem_default`, about 208 KiB)
//! holds about a millisecond of a 200 k lines/s stream, so a receiver that waits a
//! moment for a CPU loses datagrams; `udp_receive_buffer` asks for more (the kernel
//! grants at most `net.core.rmem_max`, doubled for its bookkeeping).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::{Line, Source};

/// The receiver's options.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// Where to receive datagrams; `None`: no UDP.
    pub udp: Option<SocketAddr>,
    /// Where to accept connections; `None`: no TCP.
    pub tcp: Option<SocketAddr>,
    /// Longest message passed on (default 64 KiB).
    pub max_message: usize,
    /// Most TCP connections served at once (default 256).
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed (default 5 min).
    pub idle_timeout: Duration,
    /// `SO_RCVBUF` asked for the UDP socket, bytes; `None`: the kernel's default.
    pub udp_receive_buffer: Option<usize>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            udp: None,
            tcp: None,
            max_message: 64 * 1024,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
            udp_receive_buffer: None,
        }
    }
}

/// What the receiver did, as counters the daemon can export.
#[derive(Debug, Default)]
pub struct SyslogCounters {
    /// Messages passed on.
    pub messages: AtomicU64,
    /// Datagrams dropped because the channel was full.
    pub udp_dropped: AtomicU64,
    /// Messages skipped for exceeding `max_message`.
    pub oversized: AtomicU64,
    /// TCP connections accepted and served.
    pub connections: AtomicU64,
    /// TCP connections closed at once because `max_connections` were being served.
    pub connections_refused: AtomicU64,
    /// TCP connections closed for being idle.
    pub idle_closed: AtomicU64,
    /// Errors receiving or accepting (the listener carries on).
    pub io_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Why the receiver could not start.
#[derive(Debug)]
pub enum SyslogError {
    /// A listening address could not be bound.
    Bind {
        /// `udp` or `tcp`.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why not.
        error: io::Error,
    },
}

impl fmt::Display for SyslogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind {
                transport,
                addr,
                error,
            } => write!(f, "syslog: cannot listen on {transport} {addr}: {error}"),
        }
    }
}

impl std::error::Error for SyslogError {}

/// What the framer found in a TCP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message, without its framing, and its offset in the stream.
    Message {
        /// The message's bytes.
        bytes: Vec<u8>,
        /// Where it starts in the connection's byte stream.
        offset: u64,
    },
    /// A message longer than the cap was (or is being) skipped.
    Oversized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// Skipping the rest of an octet-counted message: this many bytes.
    Counted(u64),
    /// Skipping to the next trailer.
    ToTrailer,
}

/// Splits a TCP byte stream into syslog messages (RFC 6587 §3.4), in bounded memory:
/// it never holds more than `max_message` plus a length prefix plus what one
/// [`Framer::push`] brought.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    max: usize,
    skip: Skip,
}

/// The longest `MSG-LEN` read as octet counting (10 digits: up to 9,999,999,999).
const MAX_LEN_DIGITS: usize = 10;

fn is_trailer(b: u8) -> bool {
    b == b'\n' || b == 0
}

impl Framer {
    /// A framer passing on messages up to `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            base: 0,
            max: max_message,
            skip: Skip::None,
        }
    }

    /// Adds received bytes; appends the frames they complete to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        // Bounded: each pass consumes bytes or breaks.
        while let Some(used) = self.next_frame(at, out) {
            at += used;
        }
        self.buf.drain(..at);
        self.base += at as u64;
    }

    /// The stream ended: a last message without a trailer is passed on.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        if self.skip == Skip::None && !self.buf.is_empty() && !self.octet_counted_prefix() {
            let bytes = strip_cr(&self.buf).to_vec();
            if !bytes.iter().all(|&b| is_trailer(b) || b == b'\r') {
                out.push(Frame::Message {
                    bytes,
                    offset: self.base,
                });
            }
        }
        self.buf.clear();
    }

    /// Whether the buffer starts like an unfinished octet-counted frame.
    fn octet_counted_prefix(&self) -> bool {
        let digits = self.buf.iter().take_while(|b| b.is_ascii_digit()).count();
        digits > 0 && digits <= MAX_LEN_DIGITS
    }

    /// Reads one frame from `buf[at..]`; the number of bytes used, or `None` when more
    /// bytes are needed.
    fn next_frame(&mut self, at: usize, out: &mut Vec<Frame>) -> Option<usize> {
        let data = &self.buf[at..];
        if data.is_empty() {
            return None;
        }
        match self.skip {
            Skip::Counted(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                let left = left - n as u64;
                self.skip = if left == 0 {
                    Skip::None
                } else {
                    Skip::Counted(left)
                };
                return Some(n);
            }
            Skip::ToTrailer => {
                return Some(match memchr::memchr2(b'\n', 0, data) {
                    Some(i) => {
                        self.skip = Skip::None;
                        i + 1
                    }
                    None => data.len(),
                });
            }
            Skip::None => {}
        }
        // Stray trailers between frames (senders that end octet-counted frames with LF).
        let stray = data
            .iter()
            .take_while(|&&b| is_trailer(b) || b == b'\r')
            .count();
        if stray > 0 {
            return Some(stray);
        }
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && digits <= MAX_LEN_DIGITS {
            match data.get(digits) {
                None => return None,
                Some(b' ') => {
                    let len: u64 = std::str::from_utf8(&data[..digits])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(u64::MAX);
                    let header = digits + 1;
                    if len > self.max as u64 {
                        out.push(Frame::Oversized);
                        self.skip = Skip::Counted(len);
                        return Some(header);
                    }
                    let len = len as usize;
                    if data.len() < header + len {
                        return None;
                    }
                    out.push(Frame::Message {
                        bytes: data[header..header + len].to_vec(),
                        offset: self.base + (at + header) as u64,
                    });
                    return Some(header + len);
                }
                // Not a length after all: the frame is newline-framed text.
                Some(_) => {}
            }
        }
        match memchr::memchr2(b'\n', 0, data) {
            Some(i) => {
                let msg = strip_cr(&data[..i]);
                if msg.len() > self.max {
                    out.push(Frame::Oversized);
                } else {
                    out.push(Frame::Message {
                        bytes: msg.to_vec(),
                        offset: self.base + at as u64,
                    });
                }
                Some(i + 1)
            }
            None if data.len() > self.max => {
                out.push(Frame::Oversized);
                self.skip = Skip::ToTrailer;
                Some(data.len())
            }
            None => None,
        }
    }
}

fn strip_cr(msg: &[u8]) -> &[u8] {
    msg.strip_suffix(b"\r").unwrap_or(msg)
}

/// A datagram's message: one trailing LF, CRLF or NUL removed.
fn datagram(msg: &[u8]) -> &[u8] {
    let msg = msg
        .strip_suffix(b"\0")
        .or_else(|| msg.strip_suffix(b"\n"))
        .unwrap_or(msg);
    strip_cr(msg)
}

/// Binds the UDP socket with the receive buffer asked for; returns it and the buffer
/// the kernel granted.
fn bind_udp(addr: SocketAddr, receive_buffer: Option<usize>) -> io::Result<(UdpSocket, usize)> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let sock = socket2::SockRef::from(&socket);
    if let Some(size) = receive_buffer {
        sock.set_recv_buffer_size(size)?;
    }
    let granted = sock.recv_buffer_size()?;
    socket.set_nonblocking(true)?;
    Ok((UdpSocket::from_std(socket)?, granted))
}

/// The running receiver.
#[derive(Debug)]
pub struct SyslogReceiver {
    udp_addr: Option<SocketAddr>,
    udp_receive_buffer: Option<usize>,
    tcp_addr: Option<SocketAddr>,
    counters: Arc<SyslogCounters>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl SyslogReceiver {
    /// Binds the configured addresses and starts receiving, sending messages to `tx`.
    /// Must be called within a tokio runtime.
    pub async fn start(config: SyslogConfig, tx: mpsc::Sender<Line>) -> Result<Self, SyslogError> {
        let counters = Arc::new(SyslogCounters::default());
        let (shutdown, stop) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (mut udp_addr, mut udp_receive_buffer) = (None, None);
        if let Some(addr) = config.udp {
            let bind = |error| SyslogError::Bind {
                transport: "udp",
                addr,
                error,
            };
            let (socket, granted) = bind_udp(addr, config.udp_receive_buffer).map_err(bind)?;
            udp_addr = Some(socket.local_addr().map_err(bind)?);
            udp_receive_buffer = Some(granted);
            tasks.spawn(serve_udp(
                socket,
                config.max_message,
                tx.clone(),
                Arc::clone(&counters),
                stop.clone(),
            ));
        }
        let mut tcp_addr = None;
        if let Some(addr) = config.tcp {
            let bind = |error| SyslogError::Bind {
                transport: "tcp",
                addr,
                error,
            };
            let listener = TcpListener::bind(addr).await.map_err(bind)?;
            tcp_addr = Some(listener.local_addr().map_err(bind)?);
            tasks.spawn(serve_tcp(listener, config, tx, Arc::clone(&counters), stop));
        }
        Ok(Self {
            udp_addr,
            udp_receive_buffer,
            tcp_addr,
            counters,
            shutdown,
            tasks,
        })
    }

    /// The bound UDP address (the real port when configured with port 0).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The UDP socket's receive buffer as the kernel reports it (Linux reports twice
    /// the size it was asked for, capped by `net.core.rmem_max`).
    pub fn udp_receive_buffer(&self) -> Option<usize> {
        self.udp_receive_buffer
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<SyslogCounters> {
        &self.counters
    }

    /// Stops listening, closes every connection, and waits for all of it.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn serve_udp(
    socket: UdpSocket,
    max: usize,
    tx: mpsc::Sender<Line>,
    counters: Arc<SyslogCounters>,
    mut stop: watch::Receiver<bool>,
) {
    // One byte more than the cap tells an oversized datagram from one that fits.
    let mut buf = vec![0; max.saturating_add(1).min(65_536)];
    loop {
        // Wait only when the socket is empty: under load the loop below drains it with
        // one system call a datagram and no trip through the runtime's poller.
        tokio::select! {
            _ = stop.changed() => return,
            r = socket.readable() => if r.is_err() {
                bump(&counters.io_errors);
                continue;
            },
        }
        loop {
            let (n, peer) = match socket.try_recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    bump(&counters.io_errors);
                    continue;
                }
            };
            let msg = datagram(&buf[..n]);
            if n > max || msg.len() > max {
                bump(&counters.oversized);
                continue;
            }
            let line = Line {
                bytes: msg.to_vec(),
                source: Source::Udp(peer),
                offset: None,
            };
            match tx.try_send(line) {
                Ok(()) => bump(&counters.messages),
                Err(mpsc::error::TrySendError::Full(_)) => bump(&counters.udp_dropped),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
            // A flood must not keep the other tasks on this worker from running.
            tokio::task::coop::consume_budget().await;
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    config: SyslogConfig,
    tx: mpsc::Sender<Line>,
    counters: Arc<SyslogCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            // Reap finished connections so the set stays as small as the cap.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(_) => {
                    // Out of descriptors, most likely: pause rather than spin.
                    bump(&counters.io_errors);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            bump(&counters.connections_refused);
            drop(stream);
            continue;
        };
        bump(&counters.connections);
        let (tx, counters, stop) = (tx.clone(), Arc::clone(&counters), stop.clone());
        let (max, idle) = (config.max_message, config.idle_timeout);
        connections.spawn(async move {
            serve_connection(stream, peer, max, idle, tx, &counters, stop).await;
            drop(permit);
        });
    }
    connections.shutdown().await;
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    max: usize,
    idle: Duration,
    tx: mpsc::Sender<Line>,
    counters: &SyslogCounters,
    mut stop: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(max);
    let mut chunk = vec![0; 16 * 1024];
    let mut frames = Vec::new();
    loop {
        let n = tokio::select! {
            _ = stop.changed() => return,
            r = tokio::time::timeout(idle, stream.read(&mut chunk)) => match r {
                Err(_) => { bump(&counters.idle_closed); return; }
                Ok(Err(_)) => { bump(&counters.io_errors); return; }
                Ok(Ok(n)) => n,
            },
        };
        if n == 0 {
            framer.finish(&mut frames);
        } else {
            framer.push(&chunk[..n], &mut frames);
        }
        for frame in frames.drain(..) {
            match frame {
                Frame::Oversized => bump(&counters.oversized),
                Frame::Message { bytes, offset } => {
                    let line = Line {
                        bytes,
                        source: Source::Tcp(peer),
                        offset: Some(offset),
                    };
                    // Waiting here is the back-pressure: we stop reading the socket.
                    if tx.send(line).await.is_err() {
                        return;
                    }
                    bump(&counters.messages);
                }
            }
        }
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, pieces: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for p in pieces {
            f.push(p, &mut out);
        }
        f.finish(&mut out);
        out
    }

    fn msg(bytes: &[u8], offset: u64) -> Frame {
        Frame::Message {
            bytes: bytes.to_vec(),
            offset,
        }
    }

    #[test]
    fn octet_counting_and_trailers_mix_per_message() {
        let got = frames(100, &[b"5 <1>ab<2>cd\r\n<3>ef\x0010 <4>x\ny z w\n"]);
        assert_eq!(
            got,
            [
                msg(b"<1>ab", 2),
                msg(b"<2>cd", 7),
                msg(b"<3>ef", 14),
                msg(b"<4>x\ny z w", 23),
            ]
        );
    }

    #[test]
    fn a_message_split_anywhere_is_reassembled() {
        let stream = b"12 <34>1 - - x\n<13>Feb 25 14:34:10 h sshd: y\n";
        let whole = frames(100, &[stream]);
        for cut in 0..stream.len() {
            assert_eq!(
                frames(100, &[&stream[..cut], &stream[cut..]]),
                whole,
                "{cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(100, &bytes), whole);
    }

    #[test]
    fn oversized_messages_are_skipped_and_the_stream_goes_on() {
        let got = frames(4, &[b"6 <1>abc<1>a\n", b"<1>toolong", b"still\n<2>b\n"]);
        assert_eq!(
            got,
            [
                Frame::Oversized,
                msg(b"<1>a", 8),
                Frame::Oversized,
                msg(b"<2>b", 29),
            ]
        );
    }

    #[test]
    fn digits_without_a_space_are_text() {
        assert_eq!(frames(100, &[b"123abc\n"]), [msg(b"123abc", 0)]);
        // A truncated octet-counted frame at the end of the stream is not passed on.
        assert_eq!(frames(100, &[b"10 <1>"]), []);
    }

    #[test]
    fn datagram_trailers_are_removed_once() {
        assert_eq!(datagram(b"<1>a\n"), b"<1>a");
        assert_eq!(datagram(b"<1>a\r\n"), b"<1>a");
        assert_eq!(datagram(b"<1>a\0"), b"<1>a");
        assert_eq!(datagram(b"<1>a\n\n"), b"<1>a\n");
    }

    proptest::proptest! {
        #[test]
        fn the_framer_never_panics_and_stays_bounded(
            pieces in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..20),
            max in 1usize..64,
        ) {
            let mut f = Framer::new(max);
            let mut out = Vec::new();
            for p in &pieces {
                f.push(p, &mut out);
                proptest::prop_assert!(f.buf.len() <= max + MAX_LEN_DIGITS + 2);
            }
            f.finish(&mut out);
            for frame in out {
                if let Frame::Message { bytes, .. } = frame {
                    proptest::prop_assert!(bytes.len() <= max);
                }
            }
        }
    }
}
