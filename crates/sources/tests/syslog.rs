//! The syslog receiver over loopback: UDP, TCP with both framings, caps, drops, and
//! messages that the envelope and sshd parsers read back as login attempts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_core::{Event, Origin, Outcome, Reason};
use portcullis_parse::{LogParser, ParseConfig};
use portcullis_sources::syslog::{SyslogConfig, SyslogReceiver};
use portcullis_sources::{Line, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start(config: SyslogConfig, capacity: usize) -> (SyslogReceiver, mpsc::Receiver<Line>) {
    let (tx, rx) = mpsc::channel(capacity);
    let config = SyslogConfig {
        udp: Some(loopback()),
        tcp: Some(loopback()),
        ..config
    };
    (SyslogReceiver::start(config, tx).await.unwrap(), rx)
}

/// The next line, failing the test (not hanging it) if none comes.
async fn next(rx: &mut mpsc::Receiver<Line>) -> Line {
    tokio::time::timeout(GUARD, rx.recv())
        .await
        .expect("no line arrived")
        .expect("channel closed")
}

async fn next_text(rx: &mut mpsc::Receiver<Line>) -> String {
    String::from_utf8(next(rx).await.bytes).unwrap()
}

/// Waits until a counter reaches `n`; the deadline only guards against a hang.
async fn reaches(counter: &AtomicU64, n: u64) {
    tokio::time::timeout(GUARD, async {
        while counter.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("counter never reached its value");
}

const SSHD_5424: &str = "<38>1 2017-06-23T09:14:05+01:00 mail01 sshd 31602 - - Failed password for j.smith from 203.0.113.7 port 51234 ssh2";
const SSHD_3164: &str = "<38>Jun 23 09:14:06 mail01 sshd[31603]: Failed password for root from 198.51.100.9 port 40000 ssh2";

#[tokio::test]
async fn a_udp_burst_is_read_whole_and_in_order_with_the_buffer_asked_for() {
    let config = SyslogConfig {
        udp_receive_buffer: Some(64 * 1024),
        ..SyslogConfig::default()
    };
    let (server, mut rx) = start(config, 256).await;
    // Linux grants twice what is asked (for its bookkeeping), within net.core.rmem_max.
    let granted = server.udp_receive_buffer().unwrap();
    assert!(granted >= 64 * 1024, "{granted}");
    let client = UdpSocket::bind(loopback()).await.unwrap();
    let to = server.udp_addr().unwrap();
    for i in 0..100 {
        client
            .send_to(format!("<1>burst {i}").as_bytes(), to)
            .await
            .unwrap();
    }
    for i in 0..100 {
        assert_eq!(next_text(&mut rx).await, format!("<1>burst {i}"));
    }
    assert_eq!(server.counters().udp_dropped.load(Ordering::Relaxed), 0);
    assert_eq!(server.counters().messages.load(Ordering::Relaxed), 100);
}

#[tokio::test]
async fn udp_datagrams_arrive_with_their_peer_and_parse_as_logins() {
    let (rx_server, mut rx) = start(SyslogConfig::default(), 16).await;
    let client = UdpSocket::bind(loopback()).await.unwrap();
    let to = rx_server.udp_addr().unwrap();
    client.send_to(SSHD_5424.as_bytes(), to).await.unwrap();
    client
        .send_to(format!("{SSHD_3164}\n").as_bytes(), to)
        .await
        .unwrap();
    let a = next(&mut rx).await;
    let b = next(&mut rx).await;
    assert_eq!(a.source, Source::Udp(client.local_addr().unwrap()));
    assert_eq!(a.bytes, SSHD_5424.as_bytes());
    assert_eq!(b.bytes, SSHD_3164.as_bytes());

    let mut parser = LogParser::new(ParseConfig::default());
    let mut events: Vec<Event> = Vec::new();
    for line in [a, b] {
        parser.push(&line.bytes, &Origin::default(), &mut events);
    }
    parser.finish(&mut events);
    let got: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.outcome,
                e.user.clone().unwrap_or_default(),
                e.source.map(|s| s.to_string()).unwrap_or_default(),
                e.host.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Outcome::Failure(Reason::BadPassword),
                "j.smith".into(),
                "203.0.113.7".into(),
                "mail01".into()
            ),
            (
                Outcome::Failure(Reason::BadPassword),
                "root".into(),
                "198.51.100.9".into(),
                "mail01".into()
            ),
        ]
    );
    rx_server.shutdown().await;
}

#[tokio::test]
async fn tcp_octet_counted_and_newline_framed_messages_on_separate_connections() {
    let (server, mut rx) = start(SyslogConfig::default(), 16).await;
    let to = server.tcp_addr().unwrap();
    let mut counted = TcpStream::connect(to).await.unwrap();
    let mut lines = TcpStream::connect(to).await.unwrap();
    counted
        .write_all(format!("{} {SSHD_5424}", SSHD_5424.len()).as_bytes())
        .await
        .unwrap();
    assert_eq!(next_text(&mut rx).await, SSHD_5424);
    lines
        .write_all(format!("{SSHD_3164}\r\n<13>second\0").as_bytes())
        .await
        .unwrap();
    assert_eq!(next_text(&mut rx).await, SSHD_3164);
    let second = next(&mut rx).await;
    assert_eq!(second.bytes, b"<13>second");
    assert_eq!(second.source, Source::Tcp(lines.local_addr().unwrap()));
    assert_eq!(second.offset, Some(SSHD_3164.len() as u64 + 2));
    // Both framings on one connection, and the connection is still usable.
    counted.write_all(b"<1>plain\n4 <2>x").await.unwrap();
    assert_eq!(next_text(&mut rx).await, "<1>plain");
    assert_eq!(next_text(&mut rx).await, "<2>x");
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_split_across_segments_arrives_whole() {
    let (server, mut rx) = start(SyslogConfig::default(), 16).await;
    let mut c = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    c.set_nodelay(true).unwrap();
    let framed = format!("{} {SSHD_5424}{SSHD_3164}\n", SSHD_5424.len());
    for piece in framed.as_bytes().chunks(7) {
        c.write_all(piece).await.unwrap();
        c.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(next_text(&mut rx).await, SSHD_5424);
    assert_eq!(next_text(&mut rx).await, SSHD_3164);
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_messages_are_counted_and_skipped() {
    let config = SyslogConfig {
        max_message: 32,
        ..SyslogConfig::default()
    };
    let (server, mut rx) = start(config, 16).await;
    let mut c = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    let long = "x".repeat(100);
    c.write_all(format!("<1>{long}\n100 {long}<2>fits\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(next_text(&mut rx).await, "<2>fits");
    let udp = UdpSocket::bind(loopback()).await.unwrap();
    let to = server.udp_addr().unwrap();
    udp.send_to(long.as_bytes(), to).await.unwrap();
    udp.send_to(b"<3>fits too", to).await.unwrap();
    assert_eq!(next_text(&mut rx).await, "<3>fits too");
    assert_eq!(server.counters().oversized.load(Ordering::Relaxed), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_counted() {
    let config = SyslogConfig {
        max_connections: 1,
        ..SyslogConfig::default()
    };
    let (server, mut rx) = start(config, 16).await;
    let to = server.tcp_addr().unwrap();
    let mut first = TcpStream::connect(to).await.unwrap();
    first.write_all(b"<1>first\n").await.unwrap();
    assert_eq!(next_text(&mut rx).await, "<1>first");
    let mut second = TcpStream::connect(to).await.unwrap();
    let mut buf = [0; 8];
    // Closed by the server: end of stream (or a reset), never data.
    let r = tokio::time::timeout(GUARD, second.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(
        server
            .counters()
            .connections_refused
            .load(Ordering::Relaxed),
        1
    );
    // The first connection is unaffected.
    first.write_all(b"<1>again\n").await.unwrap();
    assert_eq!(next_text(&mut rx).await, "<1>again");
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_channel_drops_datagrams_and_holds_back_tcp() {
    let (server, mut rx) = start(SyslogConfig::default(), 2).await;
    let counters = std::sync::Arc::clone(server.counters());
    let udp = UdpSocket::bind(loopback()).await.unwrap();
    let to = server.udp_addr().unwrap();
    for i in 0..10 {
        udp.send_to(format!("<1>udp {i}").as_bytes(), to)
            .await
            .unwrap();
    }
    // Nobody reads: two fit, the rest are dropped (UDP cannot wait).
    reaches(&counters.udp_dropped, 8).await;
    assert_eq!(counters.messages.load(Ordering::Relaxed), 2);
    assert_eq!(next_text(&mut rx).await, "<1>udp 0");
    assert_eq!(next_text(&mut rx).await, "<1>udp 1");

    // TCP waits instead: all of them arrive, in order, through a channel of two.
    let mut c = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    let text: String = (0..50).map(|i| format!("<1>tcp {i}\n")).collect();
    c.write_all(text.as_bytes()).await.unwrap();
    for i in 0..50 {
        assert_eq!(next_text(&mut rx).await, format!("<1>tcp {i}"));
    }
    assert_eq!(counters.udp_dropped.load(Ordering::Relaxed), 8);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed() {
    let config = SyslogConfig {
        idle_timeout: Duration::from_secs(60),
        ..SyslogConfig::default()
    };
    let (server, _rx) = start(config, 4).await;
    let mut c = TcpStream::connect(server.tcp_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0; 8];
    // Paused time jumps to the idle deadline once everything waits.
    let r = c.read(&mut buf).await;
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(server.counters().idle_closed.load(Ordering::Relaxed), 1);
    server.shutdown().await;
}
