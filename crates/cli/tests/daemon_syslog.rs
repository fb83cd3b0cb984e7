//! End-to-end tests of `portcullis run` fed over syslog: the real binary, a TCP sender
//! on loopback, its metrics.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::daemon::{DaemonDir, dovecot_failure, wait_for};

/// A sample of `/metrics` (no token needed), 0 if absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A regression test: the engine loop preferred its queues to its once-a-second tick,
/// so while lines kept coming it never updated its metrics, lifted no expired ban and
/// saved no snapshot on the clock.
#[test]
fn the_engine_keeps_its_second_tick_while_syslog_keeps_it_busy() {
    let dir = DaemonDir::new();
    dir.config("[sources.syslog]\ntcp = \"127.0.0.1:0\"\n");
    let d = dir.start();
    let addr = wait_for("the syslog address", Duration::from_secs(10), || {
        d.log()
            .lines()
            .find_map(|l| l.split("syslog on tcp://").nth(1).map(str::to_owned))
    });
    // Far more than the engine takes in a second: its queue stays full.
    let mut block = Vec::new();
    for i in 0..20_000u32 {
        let source = format!("198.51.100.{}", i % 200);
        let line = dovecot_failure(
            &source,
            &format!("user{}@example.org", i % 997),
            u64::from(i),
        );
        block.extend_from_slice(line.as_bytes());
        block.push(b'\n');
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let mut stream = TcpStream::connect(addr.trim()).expect("connect to the syslog port");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if stream.write_all(&block).is_err() {
                    break;
                }
            }
        })
    };
    let (events, depth) = wait_for(
        "engine events counted while its queue is full",
        Duration::from_secs(60),
        || {
            let (_, text) = d.call("GET", "/metrics", None, None);
            let text = text.as_str().unwrap_or_default().to_owned();
            let events = metric(&text, "portcullis_engine_events_total");
            let depth = metric(&text, "portcullis_queue_depth{queue=\"lines\"}");
            (events > 0 && depth > 0).then_some((events, depth))
        },
    );
    stop.store(true, Ordering::Relaxed);
    assert!(events > 0 && depth > 0);
    assert_eq!(d.stop(), Some(0));
    sender.join().expect("sender");
}

/// UDP senders cannot wait: with the lines' queue full, datagrams are dropped, counted
/// in the metrics, and the log says how many and what to do.
#[test]
fn syslog_lost_to_a_full_queue_is_counted_and_logged() {
    let dir = DaemonDir::new();
    let config = dir.config("[sources.syslog]\nudp = \"127.0.0.1:0\"\n");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("[daemon]\n", "[daemon]\nqueue = 16\n"),
    )
    .expect("config");
    let d = dir.start();
    let addr = wait_for("the syslog address", Duration::from_secs(10), || {
        d.log().lines().find_map(|l| {
            let rest = l.split("syslog on udp://").nth(1)?;
            rest.split(',').next().map(str::to_owned)
        })
    });
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
    let datagrams: Vec<String> = (0..2_000u32)
        .map(|i| {
            dovecot_failure(
                &format!("198.51.100.{}", i % 200),
                &format!("user{i}@example.org"),
                u64::from(i),
            )
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // Bounded: at most 500 rounds of 2,000 datagrams.
            for _ in 0..500 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for line in &datagrams {
                    let _ = socket.send_to(line.as_bytes(), addr.trim());
                }
            }
        })
    };
    let dropped = wait_for(
        "datagrams dropped to the full queue, in metrics",
        Duration::from_secs(60),
        || {
            let (_, text) = d.call("GET", "/metrics", None, None);
            let text = text.as_str().unwrap_or_default().to_owned();
            let n = metric(
                &text,
                "portcullis_syslog_dropped_total{reason=\"queue_full\"}",
            );
            (n > 0).then_some(n)
        },
    );
    // The loss line comes within the 10 s period that saw the drops.
    let line = wait_for(
        "the log line about the loss",
        Duration::from_secs(30),
        || {
            d.log()
                .lines()
                .find(|l| l.contains("a queue was full (raise daemon.queue"))
                .map(str::to_owned)
        },
    );
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    let n: u64 = line
        .split("dropped ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(n > 0, "{line}");
    assert!(dropped > 0);
    assert_eq!(d.stop(), Some(0));
}
