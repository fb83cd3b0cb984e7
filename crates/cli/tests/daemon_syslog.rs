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
