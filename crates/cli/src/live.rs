//! `portcullis simulate --live`: simulated attempts sent to a running Portcullis.
//!
//! For load tests and end-to-end rehearsals of the daemon: the scenario's attempts, in
//! order, as HTTP POSTs of JSON arrays of events (the event contract of docs/events.md),
//! paced to a rate and bounded in count and time. Each event is stamped with the moment
//! it is sent, so the receiver sees live traffic.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use portcullis_core::EventTime;
use portcullis_core::json::JsonWriter;
use portcullis_sim::Simulation;

/// Where to send, how fast, how much.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The receiving URL (plain HTTP).
    pub url: String,
    /// Events per second.
    pub rate: f64,
    /// Stop after this many events.
    pub max_events: u64,
    /// Stop after this long.
    pub max_time: Duration,
    /// Events per request.
    pub batch: usize,
    /// No summary on stderr.
    pub quiet: bool,
    /// The bearer token, if the receiver wants one.
    pub token: Option<String>,
}

pub fn run(sim: &Simulation, opts: &LiveOptions) -> Result<ExitCode> {
    if !(opts.rate > 0.0 && opts.rate.is_finite()) {
        bail!("--rate must be a positive number of events per second");
    }
    if opts.batch == 0 || opts.batch > 100_000 {
        bail!("--batch must be between 1 and 100000");
    }
    if !(opts.url.starts_with("http://")) {
        bail!("--live takes an http:// URL (got {:?})", opts.url);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let began = Instant::now();
    let mut sent = 0u64;
    let mut requests = 0u64;
    let mut json = JsonWriter::new();
    let mut body = Vec::new();
    let mut pending = 0usize;
    let mut flush = |body: &mut Vec<u8>, pending: &mut usize, sent: &mut u64| -> Result<()> {
        if *pending == 0 {
            return Ok(());
        }
        body.push(b']');
        let mut req = agent.post(&opts.url).content_type("application/json");
        if let Some(t) = &opts.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let resp = req
            .send(&body[..])
            .with_context(|| format!("cannot send to {}", opts.url))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            bail!("{} answered {status} after {} events", opts.url, *sent);
        }
        requests += 1;
        *sent += *pending as u64;
        *pending = 0;
        body.clear();
        Ok(())
    };
    'slots: for k in 0..sim.slots() {
        let out = sim.slot(k);
        for a in &out.attempts {
            if sent + pending as u64 >= opts.max_events || began.elapsed() >= opts.max_time {
                break 'slots;
            }
            // Pace: the n-th event goes out no earlier than n / rate seconds in. What is
            // already due is sent before waiting, so a batch never holds events back.
            let due = Duration::from_secs_f64((sent + pending as u64) as f64 / opts.rate);
            let wait = due.saturating_sub(began.elapsed());
            if !wait.is_zero() {
                flush(&mut body, &mut pending, &mut sent)?;
                let left = opts.max_time.saturating_sub(began.elapsed());
                if wait >= left {
                    break 'slots;
                }
                std::thread::sleep(wait);
            }
            body.push(if pending == 0 { b'[' } else { b',' });
            json.write(&sim.event(a, EventTime::utc(Timestamp::now())), &mut body);
            pending += 1;
            if pending >= opts.batch {
                flush(&mut body, &mut pending, &mut sent)?;
            }
        }
    }
    flush(&mut body, &mut pending, &mut sent)?;
    if !opts.quiet {
        let secs = began.elapsed().as_secs_f64();
        eprintln!(
            "portcullis: sent {sent} events in {requests} requests to {} in {secs:.1} s ({:.0} events/s)",
            opts.url,
            sent as f64 / secs.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
}
