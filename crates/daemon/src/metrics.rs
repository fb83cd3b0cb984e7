//! The daemon's counters and gauges, and their Prometheus text exposition.
//!
//! Plain atomics, written by whoever does the work and read by `/metrics`; the text
//! format is the Prometheus exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample
//! per line), checked in the test suite with `promtool check metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_core::{Outcome, Service};

/// Everything `/metrics` shows that the daemon counts itself. Source and action
/// counters live with their sources and actions and are read at render time.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events, per service (index in `Service::ALL`) and outcome (0 success, 1 failure).
    pub events: [[AtomicU64; 2]; Service::ALL.len()],
    /// Lines received from each kind of source (files, syslog, journald) and parsed.
    pub lines: AtomicU64,
    /// Lines that looked like authentication but no parser understood.
    pub unparsed: AtomicU64,
    /// Events received on `POST /v1/events`.
    pub reported: AtomicU64,
    /// Reported events refused as malformed.
    pub reported_malformed: AtomicU64,
    /// Reported batches refused because the engine's queue was full.
    pub reported_dropped: AtomicU64,
    /// Decisions: bans issued (new, not refreshed).
    pub bans: AtomicU64,
    /// Bans not issued because the network is allowlisted.
    pub bans_allowlisted: AtomicU64,
    /// Bans refused because `bans.max_bans` was reached.
    pub bans_refused: AtomicU64,
    /// Bans lifted (expired or removed).
    pub unbans: AtomicU64,
    /// Account locks issued.
    pub locks: AtomicU64,
    /// Account locks lifted.
    pub unlocks: AtomicU64,
    /// Bans active now.
    pub bans_active: AtomicU64,
    /// Locks active now.
    pub locks_active: AtomicU64,
    /// Findings, per kind: attacker, attacker network, compromised, campaign.
    pub findings: [AtomicU64; 4],
    /// Effects dropped because the action queue was full (the firewall catches up at
    /// the next reconciliation).
    pub actions_dropped: AtomicU64,
    /// Firewall commands that failed.
    pub firewall_errors: AtomicU64,
    /// Engine snapshots written, and failed.
    pub snapshots: AtomicU64,
    /// Snapshot writes that failed.
    pub snapshot_errors: AtomicU64,
    /// Size of the last snapshot, bytes.
    pub snapshot_bytes: AtomicU64,
    /// Store writes that failed.
    pub store_errors: AtomicU64,
    /// Engine table sizes: sources, prefixes, accounts, pending failures.
    pub engine_entries: [AtomicU64; 4],
    /// Engine entries evicted to stay within the caps.
    pub engine_evicted: AtomicU64,
    /// Engine findings dropped because nobody took them.
    pub engine_findings_dropped: AtomicU64,
    /// Batches of findings dropped because the store writer's queue was full.
    pub decisions_dropped: AtomicU64,
    /// Event time the engine has reached (Unix seconds).
    pub event_time: AtomicU64,
    /// Queue depths: file lines, syslog/journald lines, reported batches, actions.
    pub queue_depth: [AtomicU64; 4],
    /// Requests refused for a missing or wrong token.
    pub unauthorized: AtomicU64,
    /// Events the engine has observed over its whole life (kept in its snapshots, so
    /// it carries across restarts).
    pub engine_events: AtomicU64,
    /// Per followed file: the offset just after the last line the engine consumed.
    pub consumed: std::sync::Mutex<std::collections::HashMap<std::sync::Arc<std::path::Path>, u64>>,
}

/// The names of `Metrics::queue_depth`'s entries.
pub const QUEUES: [&str; 4] = ["files", "lines", "reports", "actions"];
/// The names of `Metrics::findings`' entries.
pub const FINDINGS: [&str; 4] = ["attacker", "attacker_network", "compromised", "campaign"];
/// The names of `Metrics::engine_entries`' entries.
pub const TABLES: [&str; 4] = ["sources", "prefixes", "accounts", "pending"];

impl Metrics {
    /// Counts one event.
    pub fn event(&self, service: Service, outcome: Outcome) {
        let s = Service::ALL.iter().position(|x| *x == service).unwrap_or(0);
        let o = usize::from(outcome != Outcome::Success);
        if let Some(row) = self.events.get(s) {
            row[o].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One sample source for [`Exposition`]: a counter or gauge read at render time.
pub struct Family<'a> {
    /// The metric name (with `portcullis_` prefix).
    pub name: &'a str,
    /// `counter` or `gauge`.
    pub kind: &'a str,
    /// Its help text.
    pub help: &'a str,
    /// Label sets (`key="value"` pairs, already escaped) and values.
    pub samples: Vec<(String, u64)>,
}

/// Builds the exposition text.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Adds a family.
    pub fn family(&mut self, f: Family<'_>) {
        let _ = writeln!(self.out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(self.out, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in f.samples {
            if labels.is_empty() {
                let _ = writeln!(self.out, "{} {v}", f.name);
            } else {
                let _ = writeln!(self.out, "{}{{{labels}}} {v}", f.name);
            }
        }
    }

    /// A family with one unlabelled sample.
    pub fn one(&mut self, name: &str, kind: &str, help: &str, v: &AtomicU64) {
        self.family(Family {
            name,
            kind,
            help,
            samples: vec![(String::new(), v.load(Ordering::Relaxed))],
        });
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value escaped for the text format (backslash, quote, newline).
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The daemon's own families.
pub fn render_own(m: &Arc<Metrics>, x: &mut Exposition) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut samples = Vec::new();
    for (i, s) in Service::ALL.iter().enumerate() {
        for (o, name) in ["success", "failure"].iter().enumerate() {
            samples.push((
                format!("service=\"{}\",outcome=\"{name}\"", s.as_str()),
                load(&m.events[i][o]),
            ));
        }
    }
    x.family(Family {
        name: "portcullis_events_total",
        kind: "counter",
        help: "Login attempts seen, by service and outcome.",
        samples,
    });
    x.one(
        "portcullis_lines_total",
        "counter",
        "Log lines read from files, syslog and the journal.",
        &m.lines,
    );
    x.one(
        "portcullis_unparsed_auth_lines_total",
        "counter",
        "Lines that looked like authentication but no parser understood.",
        &m.unparsed,
    );
    x.one(
        "portcullis_reported_events_total",
        "counter",
        "Events received on POST /v1/events.",
        &m.reported,
    );
    x.one(
        "portcullis_reported_malformed_total",
        "counter",
        "Requests to POST /v1/events refused as malformed.",
        &m.reported_malformed,
    );
    x.family(Family {
        name: "portcullis_decisions_total",
        kind: "counter",
        help: "Decisions taken, by action.",
        samples: [
            ("ban", &m.bans),
            ("unban", &m.unbans),
            ("lock", &m.locks),
            ("unlock", &m.unlocks),
            ("ban_allowlisted", &m.bans_allowlisted),
            ("ban_refused_full", &m.bans_refused),
        ]
        .iter()
        .map(|(a, v)| (format!("action=\"{a}\""), load(v)))
        .collect(),
    });
    x.one(
        "portcullis_bans_active",
        "gauge",
        "Networks banned now.",
        &m.bans_active,
    );
    x.one(
        "portcullis_locks_active",
        "gauge",
        "Accounts locked now.",
        &m.locks_active,
    );
    x.family(Family {
        name: "portcullis_findings_total",
        kind: "counter",
        help: "Engine findings, by kind.",
        samples: FINDINGS
            .iter()
            .zip(&m.findings)
            .map(|(k, v)| (format!("kind=\"{k}\""), load(v)))
            .collect(),
    });
    let mut drops = vec![
        ("reports".to_string(), load(&m.reported_dropped)),
        ("actions".to_string(), load(&m.actions_dropped)),
        ("decisions".to_string(), load(&m.decisions_dropped)),
        (
            "engine_findings".to_string(),
            load(&m.engine_findings_dropped),
        ),
    ];
    drops.sort();
    x.family(Family {
        name: "portcullis_dropped_total",
        kind: "counter",
        help: "Items dropped because a bounded queue was full, by queue.",
        samples: drops
            .into_iter()
            .map(|(q, v)| (format!("queue=\"{q}\""), v))
            .collect(),
    });
    x.family(Family {
        name: "portcullis_queue_depth",
        kind: "gauge",
        help: "Items waiting in each queue.",
        samples: QUEUES
            .iter()
            .zip(&m.queue_depth)
            .map(|(q, v)| (format!("queue=\"{q}\""), load(v)))
            .collect(),
    });
    x.family(Family {
        name: "portcullis_engine_entries",
        kind: "gauge",
        help: "Entries in the engine's bounded tables.",
        samples: TABLES
            .iter()
            .zip(&m.engine_entries)
            .map(|(t, v)| (format!("table=\"{t}\""), load(v)))
            .collect(),
    });
    x.one(
        "portcullis_engine_evictions_total",
        "counter",
        "Engine entries evicted to stay within the configured caps.",
        &m.engine_evicted,
    );
    x.one(
        "portcullis_engine_events_total",
        "counter",
        "Events the engine observed, over its whole life (carried across restarts).",
        &m.engine_events,
    );
    x.one(
        "portcullis_engine_event_time_seconds",
        "gauge",
        "Event time the engine has reached (Unix seconds).",
        &m.event_time,
    );
    x.one(
        "portcullis_firewall_errors_total",
        "counter",
        "Firewall commands that failed.",
        &m.firewall_errors,
    );
    x.one(
        "portcullis_snapshots_total",
        "counter",
        "Engine snapshots saved.",
        &m.snapshots,
    );
    x.one(
        "portcullis_snapshot_errors_total",
        "counter",
        "Engine snapshots that could not be saved.",
        &m.snapshot_errors,
    );
    x.one(
        "portcullis_snapshot_bytes",
        "gauge",
        "Size of the last engine snapshot.",
        &m.snapshot_bytes,
    );
    x.one(
        "portcullis_store_errors_total",
        "counter",
        "State store writes that failed.",
        &m.store_errors,
    );
    x.one(
        "portcullis_http_unauthorized_total",
        "counter",
        "Requests refused for a missing or wrong token.",
        &m.unauthorized,
    );
}
