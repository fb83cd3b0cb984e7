//! A bare syslog receiver: the baseline of benches/daemon-ingest.sh.
//!
//! Receives what `syslog_load` sends and only counts it: UDP datagrams on one blocking
//! socket, or octet-counted TCP frames (RFC 6587 §3.4.1) on one connection at a time.
//! Nothing is parsed, queued or judged, so what it receives is what the loopback and the
//! generator can do on this machine; the daemon's figure is compared with it.
//!
//! ```sh
//! cargo run --release -p portcullis-daemon --example syslog_sink -- \
//!     --udp 127.0.0.1:5515 --rcvbuf 8388608 --idle 2
//! ```
//!
//! It says on stderr where it listens (`--udp 127.0.0.1:0` picks a free port) and the
//! receive buffer the kernel granted. It stops `--idle` seconds after the last message (once one has come) and prints
//! `received=N bytes=N secs=S rate=R` on stdout, the time and rate measured from the
//! first message to the last.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: syslog_sink (--udp ADDR | --tcp ADDR) [--rcvbuf BYTES] [--idle SECS]";

#[derive(Debug, Default)]
struct Received {
    messages: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Received {
    fn mark(&mut self, messages: u64, bytes: usize) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.messages += messages;
        self.bytes += bytes as u64;
    }
}

fn udp(addr: SocketAddr, rcvbuf: Option<usize>, idle: Duration) -> Result<Received> {
    let socket = UdpSocket::bind(addr).with_context(|| format!("cannot bind udp {addr}"))?;
    if let Some(size) = rcvbuf {
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(size)
            .context("cannot set SO_RCVBUF")?;
    }
    let granted = socket2::SockRef::from(&socket).recv_buffer_size()?;
    eprintln!(
        "syslog_sink: listening on udp://{}, receive buffer {} KiB",
        socket.local_addr()?,
        granted / 2 / 1024
    );
    let mut got = Received::default();
    let mut buf = vec![0; 65_536];
    // Until the first datagram, wait as long as it takes.
    socket.set_read_timeout(None)?;
    loop {
        match socket.recv(&mut buf) {
            Ok(n) => {
                got.mark(1, n);
                if got.messages == 1 {
                    socket.set_read_timeout(Some(idle))?;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(got);
            }
            Err(e) => return Err(e).context("udp receive"),
        }
    }
}

/// Counts octet-counted frames in a byte stream, carrying a partial frame over.
#[derive(Debug, Default)]
struct Frames {
    /// Bytes of the current frame still to skip.
    skip: usize,
    /// Digits of a length read so far.
    len: Option<usize>,
}

impl Frames {
    fn push(&mut self, mut data: &[u8]) -> Result<u64> {
        let mut frames = 0;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                if self.skip == 0 {
                    frames += 1;
                }
                continue;
            }
            let b = data[0];
            data = &data[1..];
            match (b, self.len) {
                (b'0'..=b'9', len) => {
                    let d = usize::from(b - b'0');
                    self.len = Some(len.unwrap_or(0).saturating_mul(10).saturating_add(d));
                }
                (b' ', Some(len)) if len > 0 => {
                    self.skip = len;
                    self.len = None;
                }
                _ => bail!("not an octet-counted stream (byte {b:#04x})"),
            }
        }
        Ok(frames)
    }
}

fn tcp(addr: SocketAddr, idle: Duration) -> Result<Received> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot bind tcp {addr}"))?;
    eprintln!("syslog_sink: listening on tcp://{}", listener.local_addr()?);
    let mut got = Received::default();
    let mut buf = vec![0; 256 * 1024];
    // One connection after the other, until one has brought something and ended.
    loop {
        let (mut stream, _) = listener.accept().context("accept")?;
        stream.set_read_timeout(Some(idle))?;
        let mut frames = Frames::default();
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let m = frames.push(&buf[..n])?;
                    got.mark(m, n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e).context("tcp receive"),
            }
        }
        if got.messages > 0 {
            return Ok(got);
        }
    }
}

fn run(args: &[String]) -> Result<Received> {
    let (mut udp_addr, mut tcp_addr, mut rcvbuf) = (None, None, None);
    let mut idle = Duration::from_secs(2);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = || format!("{flag}: cannot read {value:?}");
        match flag.as_str() {
            "--udp" => udp_addr = Some(value.parse::<SocketAddr>().with_context(bad)?),
            "--tcp" => tcp_addr = Some(value.parse::<SocketAddr>().with_context(bad)?),
            "--rcvbuf" => rcvbuf = Some(value.parse::<usize>().with_context(bad)?),
            "--idle" => idle = Duration::from_secs_f64(value.parse::<f64>().with_context(bad)?),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    match (udp_addr, tcp_addr) {
        (Some(a), None) => udp(a, rcvbuf, idle),
        (None, Some(a)) => tcp(a, idle),
        _ => bail!("one of --udp or --tcp\n{USAGE}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(got) => {
            let secs = match (got.first, got.last) {
                (Some(f), Some(l)) => (l - f).as_secs_f64(),
                _ => 0.0,
            };
            println!(
                "received={} bytes={} secs={secs:.3} rate={:.0}",
                got.messages,
                got.bytes,
                got.messages as f64 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("syslog_sink: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;

    #[test]
    fn frames_split_anywhere_are_counted_once() {
        let stream = b"5 <1>ab3 <2>10 <3>abcdefg";
        for cut in 0..stream.len() {
            let mut f = Frames::default();
            let n = f.push(&stream[..cut]).unwrap() + f.push(&stream[cut..]).unwrap();
            assert_eq!(n, 3, "cut at {cut}");
        }
    }
}
