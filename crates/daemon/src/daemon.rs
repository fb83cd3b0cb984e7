//! `portcullis run`: sources → parse → engine → decisions → actions, with state that
//! survives restarts.
//!
//! Threads: the engine runs alone on its own thread (it is the one CPU-heavy part and
//! must see events in order); what it decides and its snapshots are written to the
//! store by a thread of their own ([`crate::writer`]), so that disk syncs never pause
//! it; sources, HTTP and actions share a small tokio runtime.
//! Every queue between them is bounded: files and TCP syslog wait when it is full (the
//! file, or the sender's window, is the buffer), UDP datagrams and reported events are
//! dropped and counted.
//!
//! Restarts: the engine's state and the file positions of exactly the lines it has
//! consumed are saved together in one store transaction when the file tailer reports
//! its positions (every `daemon.snapshot_interval`, and at shutdown). After a crash the
//! engine resumes from the last snapshot and the tailer from the positions saved with
//! it, so no line is read twice or missed; bans and locks are written to the store as
//! they are decided, so none is lost, and decisions re-derived from re-read lines find
//! them already in force.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use portcullis_actions::exec::{Exec, ExecConfig};
use portcullis_actions::nft::{Nft, NftConfig};
use portcullis_actions::webhook::{Webhook, WebhookConfig};
use portcullis_actions::{Notice, NoticeAction};
use portcullis_core::engine::Engine;
use portcullis_core::{AccountRules, Event, Origin, Outcome};
use portcullis_parse::envelope::{EnvelopeConfig, YearRule};
use portcullis_parse::{LogParser, ParseConfig};
use portcullis_sources::checkpoint::{self, Record};
use portcullis_sources::file::{self, FileConfig, Tailed};
use portcullis_sources::journald::{JournaldConfig, JournaldSource};
use portcullis_sources::syslog::{SyslogConfig, SyslogReceiver};
use portcullis_sources::{Line, Source};
use portcullis_store::{Snapshot, Store};
use tokio::sync::mpsc;

use crate::config::{Config, FirewallBackend, StartAt};
use crate::decide::{Decisions, Effect};
use crate::http::Token;
use crate::metrics::{Exposition, Family, Metrics};
use crate::policy::PolicyRuntime;
use crate::writer::StoreWriter;

/// Writes one line to stderr (the journal, under systemd).
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("portcullis: {}", format!($($arg)*)) };
}

/// What the HTTP side and the engine thread share.
pub struct Shared {
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Bans, locks, allowlist.
    pub decisions: Mutex<Decisions>,
    /// The state store (for reads the decisions do not hold, e.g. familiar sources).
    pub store: Arc<Store>,
    /// To the actions.
    pub effects: mpsc::Sender<Effect>,
    /// Reported events, to the engine.
    pub reports: mpsc::Sender<Vec<Event>>,
    /// The admin token.
    pub admin_token: Option<Token>,
    /// The applications' token.
    pub report_token: Option<Token>,
    /// Account name rules.
    pub rules: AccountRules,
    /// When the daemon started.
    pub started: Timestamp,
    /// Dry run.
    pub dry_run: bool,
    /// Largest request body.
    pub max_body: usize,
    /// Whether the engine thread runs.
    pub engine_alive: AtomicBool,
    /// Renders the sources' and actions' counters.
    pub source_metrics: Box<dyn Fn(&mut Exposition) + Send + Sync>,
    /// The policy server's decisions, lockdown and counters.
    pub policy: Arc<PolicyRuntime>,
}

impl Shared {
    /// Sends effects to the actions; a full queue drops and counts (the firewall is
    /// reconciled with the store periodically, so a dropped ban still lands).
    pub fn dispatch(&self, effects: Vec<Effect>) {
        // The policy server answers from its own copy of bans and locks, so that it
        // never waits for the decisions' lock (held across store commits).
        let p = &self.policy.policy;
        for e in &effects {
            match e {
                Effect::Ban(b) => p.ban(b.net, b.until),
                Effect::Unban(b) | Effect::Expired(b) => p.unban(&b.net),
                Effect::Lock(l) => p.lock(&l.account, l.until),
                Effect::Unlock(l) => p.unlock(&l.account),
            }
        }
        for e in effects {
            if self.effects.try_send(e).is_err() {
                self.metrics.actions_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

enum Control {
    Reload(Box<Config>),
    Stop,
}

/// Options of `portcullis run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
}

/// Removes what `run` put in the firewall (`portcullis run --cleanup`).
pub fn cleanup(config: &Config) -> Result<()> {
    if config.firewall.backend != FirewallBackend::Nftables {
        say!("firewall.backend is not nftables: nothing to remove");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(nft(config)?.cleanup())
        .context("cannot remove the nftables table")?;
    say!("removed nftables table inet {}", config.firewall.table);
    Ok(())
}

fn nft(config: &Config) -> Result<Nft> {
    Nft::new(NftConfig {
        command: config.firewall.command.clone(),
        table: config.firewall.table.clone(),
        ..NftConfig::default()
    })
    .context("firewall")
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions) -> Result<()> {
    let config = Config::load(&opts.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("portcullis-io")
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(config, opts.config.clone()))
}

async fn serve(config: Config, path: PathBuf) -> Result<()> {
    // Signals are caught from the first moment: until a handler is installed, SIGHUP
    // and SIGTERM kill the process on the spot (no final snapshot), and a supervisor
    // may send either as soon as the process exists. They are handled once running.
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    std::fs::create_dir_all(&config.daemon.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            config.daemon.state_dir.display()
        )
    })?;
    let store_path = config.daemon.state_dir.join("state.redb");
    let store = Arc::new(Store::open(&store_path)?);
    let metrics = Arc::new(Metrics::default());

    // The engine and the file positions, as last saved together.
    let snapshot = store.load_snapshot()?;
    let (engine, positions) = restore(&config, snapshot.as_ref());

    let decisions = Decisions::load(
        config.bans.clone(),
        config.locks.clone(),
        Arc::clone(&store),
        Arc::clone(&metrics),
    )?;
    let dry_run = config.daemon.dry_run;

    // Actions.
    let firewall = if config.firewall.backend == FirewallBackend::Nftables && !dry_run {
        let nft = nft(&config)?;
        nft.setup().await.context("cannot set up nftables")?;
        let wanted = wanted_bans(&decisions);
        let r = nft
            .reconcile(&wanted)
            .await
            .context("cannot reconcile nftables with the stored bans")?;
        say!("nftables ready: {r:?}");
        Some(Arc::new(nft))
    } else {
        None
    };
    let mut hooks = Vec::new();
    for w in &config.actions.webhook {
        let secret = w
            .secret_file
            .as_deref()
            .map(crate::config::read_secret)
            .transpose()?;
        hooks.push(
            Webhook::spawn(WebhookConfig {
                url: w.url.clone(),
                secret,
                max_attempts: w.max_attempts,
                ..WebhookConfig::default()
            })
            .map_err(|e| anyhow::anyhow!("webhook {}: {e}", w.url))?,
        );
    }
    let mut execs = Vec::new();
    for x in &config.actions.exec {
        execs.push(
            Exec::spawn(ExecConfig {
                argv: x.argv.clone(),
                timeout: x.timeout,
                ..ExecConfig::default()
            })
            .map_err(|e| anyhow::anyhow!("exec {:?}: {e}", x.argv))?,
        );
    }

    // Sources.
    // Files wait while their queue is full and reporters get 503, so only the lines of
    // syslog and the journal, which cannot wait, need the configured depth.
    let (file_tx, file_rx) = mpsc::channel::<Tailed>(FILE_QUEUE);
    let (line_tx, line_rx) = mpsc::channel::<Line>(config.daemon.queue);
    let (report_tx, report_rx) = mpsc::channel::<Vec<Event>>(REPORT_QUEUE);
    let (effect_tx, effect_rx) = mpsc::channel::<Effect>(65_536);
    let (control_tx, control_rx) = mpsc::unbounded_channel::<Control>();

    let files = if config.sources.files.include.is_empty() {
        drop(file_tx);
        None
    } else {
        let f = &config.sources.files;
        let fc = FileConfig {
            include: f.include.clone(),
            checkpoint: None,
            resume: positions,
            start_at: match f.start_at {
                StartAt::End => file::StartAt::End,
                StartAt::Beginning => file::StartAt::Beginning,
            },
            poll_interval: f.poll_interval,
            glob_interval: f.glob_interval,
            checkpoint_interval: config.daemon.snapshot_interval,
            ..FileConfig::default()
        };
        Some(file::spawn_tailed(fc, file_tx).context("cannot start the file tailer")?)
    };
    let syslog = if config.sources.syslog.udp.is_some() || config.sources.syslog.tcp.is_some() {
        let s = &config.sources.syslog;
        let r = SyslogReceiver::start(
            SyslogConfig {
                udp: s.udp,
                tcp: s.tcp,
                max_message: s.max_message,
                max_connections: s.max_connections,
                udp_receive_buffer: (s.udp_receive_buffer > 0).then_some(s.udp_receive_buffer),
                ..SyslogConfig::default()
            },
            line_tx.clone(),
        )
        .await
        .context("cannot start the syslog receiver")?;
        if let Some(a) = r.udp_addr() {
            // Linux reports twice the size granted, which is at most net.core.rmem_max.
            let granted = r.udp_receive_buffer().unwrap_or(0) / 2;
            let short = if granted < s.udp_receive_buffer {
                format!(
                    " (asked for {} KiB: raise net.core.rmem_max, or bursts may be lost)",
                    s.udp_receive_buffer / 1024
                )
            } else {
                String::new()
            };
            say!(
                "syslog on udp://{a}, receive buffer {} KiB{short}",
                granted / 1024
            );
        }
        if let Some(a) = r.tcp_addr() {
            say!("syslog on tcp://{a}");
        }
        Some(r)
    } else {
        None
    };
    let journal = config.sources.journald.enabled.then(|| {
        let j = &config.sources.journald;
        let mut args = JournaldConfig::default().args;
        args.extend(j.args.iter().cloned());
        JournaldSource::start(
            JournaldConfig {
                program: j.program.clone(),
                args,
                ..JournaldConfig::default()
            },
            line_tx.clone(),
        )
    });
    drop(line_tx);

    // What can be lost when a queue is full, for the log line that says so.
    let losses = {
        let syslog = syslog.as_ref().map(|s| Arc::clone(s.counters()));
        let hooks: Vec<_> = hooks.iter().map(|h| Arc::clone(h.counters())).collect();
        let execs: Vec<_> = execs.iter().map(|x| Arc::clone(x.counters())).collect();
        let m = Arc::clone(&metrics);
        move || -> [(&'static str, u64); 5] {
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            [
                (
                    "syslog datagrams",
                    syslog.as_ref().map_or(0, |s| load(&s.udp_dropped)),
                ),
                ("reported batches", load(&m.reported_dropped)),
                ("actions", load(&m.actions_dropped)),
                (
                    "webhook and program notices",
                    hooks.iter().map(|h| load(&h.dropped)).sum::<u64>()
                        + execs.iter().map(|x| load(&x.dropped)).sum::<u64>(),
                ),
                ("engine findings", load(&m.engine_findings_dropped)),
            ]
        }
    };
    let source_metrics = source_metrics(
        files.as_ref().map(|f| Arc::clone(f.counters())),
        syslog.as_ref().map(|s| Arc::clone(s.counters())),
        journal.as_ref().map(|j| Arc::clone(j.counters())),
        hooks.iter().map(|h| Arc::clone(h.counters())).collect(),
        execs.iter().map(|x| Arc::clone(x.counters())).collect(),
    );
    let token = |f: &Option<PathBuf>| -> Result<Option<Token>> {
        Ok(f.as_deref()
            .map(crate::config::read_secret)
            .transpose()?
            .map(|s| Token::new(&s)))
    };
    let policy = Arc::new(PolicyRuntime::new(&config.policy, &store)?);
    {
        let p = &policy.policy;
        p.set_bans(decisions.bans().into_iter().map(|b| (b.net, b.until)));
        p.set_allowlist(decisions.allowlist().into_iter().map(|(n, _)| n));
        for l in decisions.locks() {
            p.lock(&l.account, l.until);
        }
        let familiar = store.all_familiar(config.policy.max_accounts.saturating_mul(4))?;
        for (account, net, at) in &familiar {
            p.learn_network(account, net, (*at).clamp(0, i64::from(u32::MAX - 1)) as u32);
        }
        if let Some(l) = policy.lockdown(Timestamp::now().as_second()) {
            say!(
                "lockdown is on{} (since {})",
                l.until
                    .and_then(|u| Timestamp::from_second(u).ok())
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_else(|| " until switched off".into()),
                Timestamp::from_second(l.since)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
        }
    }
    let shared = Arc::new(Shared {
        policy: Arc::clone(&policy),
        metrics: Arc::clone(&metrics),
        decisions: Mutex::new(decisions),
        store: Arc::clone(&store),
        effects: effect_tx,
        reports: report_tx,
        admin_token: token(&config.http.token_file)?,
        report_token: token(&config.http.report_token_file)?,
        rules: config.parse.accounts.clone(),
        started: Timestamp::now(),
        dry_run,
        max_body: config.http.max_body,
        engine_alive: AtomicBool::new(true),
        source_metrics,
    });

    // The actions' worker.
    let actions = tokio::spawn(act(
        effect_rx,
        firewall.clone(),
        hooks,
        execs,
        Arc::clone(&metrics),
        dry_run,
    ));

    // The engine thread.
    let ctx = EngineLoop::new(engine, &config, Arc::clone(&shared), Arc::clone(&store))?;
    let engine_thread = std::thread::Builder::new()
        .name("portcullis-engine".into())
        .spawn(move || ctx.run(file_rx, line_rx, report_rx, control_rx))
        .context("cannot start the engine thread")?;

    // HTTP.
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let http = match config.http.listen {
        Some(listen) => {
            let (listener, bound) = bind(listen, "http.listen").await?;
            say!("admin API on http://{bound}");
            let app = crate::http::router(Arc::clone(&shared));
            Some(spawn_server(
                listener,
                app,
                config.http.max_connections,
                stop_http_rx,
            ))
        }
        None => None,
    };
    let (stop_policy_tx, stop_policy_rx) = tokio::sync::oneshot::channel::<()>();
    let policy_server = match config.policy.listen {
        Some(listen) => {
            let (listener, bound) = bind(listen, "policy.listen").await?;
            say!("policy server on http://{bound}");
            if config.policy.secret_file.is_none() && !bound.ip().is_loopback() {
                say!(
                    "warning: policy.listen is not on loopback and policy.secret_file is not set: anyone who reaches {bound} can ask and report"
                );
            }
            let app = crate::policy::router(Arc::clone(&shared));
            Some(spawn_server(
                listener,
                app,
                config.policy.max_connections,
                stop_policy_rx,
            ))
        }
        None => None,
    };
    say!(
        "running{}: {} file pattern(s), state in {}",
        if dry_run {
            " (dry run: no bans are applied)"
        } else {
            ""
        },
        config.sources.files.include.len(),
        store_path.display()
    );

    // Signals: SIGHUP reloads, SIGTERM and SIGINT stop; the firewall is reconciled now
    // and then.
    let mut reconcile = tokio::time::interval(config.firewall.reconcile_interval);
    reconcile.tick().await;
    // Losses are counted in the metrics and said on stderr, at most every 10 s.
    let mut loss_check = tokio::time::interval(Duration::from_secs(10));
    let mut lost_before = losses();
    let mut current = config;
    loop {
        tokio::select! {
            _ = hup.recv() => match Config::load(&path) {
                Ok(new) => {
                    // The policy takes its new settings here, before "reloaded" is said.
                    let policy_whole = match shared.policy.reload(&new.policy) {
                        Ok(whole) => whole,
                        Err(e) => {
                            say!("policy settings not reloaded: {e:#}");
                            true
                        }
                    };
                    if !policy_whole || new.policy.max_connections != current.policy.max_connections {
                        say!("policy settings reloaded; changes to policy.max_connections, its max_* table sizes and familiar prefix lengths take effect at the next restart");
                    }
                    if new.sources.files.include != current.sources.files.include
                        || new.sources.syslog.udp != current.sources.syslog.udp
                        || new.sources.syslog.tcp != current.sources.syslog.tcp
                        || new.http.listen != current.http.listen
                        || new.policy.listen != current.policy.listen
                        || new.firewall.backend != current.firewall.backend
                        || new.daemon.state_dir != current.daemon.state_dir
                    {
                        say!("reloaded; changes to sources, http.listen, policy.listen, firewall.backend or daemon.state_dir take effect at the next restart");
                    } else {
                        say!("reloaded {}", path.display());
                    }
                    let _ = control_tx.send(Control::Reload(Box::new(new.clone())));
                    current = new;
                }
                Err(e) => say!("reload refused, keeping the running configuration: {e:#}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = reconcile.tick(), if firewall.is_some() => {
                if let Some(fw) = &firewall {
                    let wanted = {
                        let d = shared.decisions.lock().unwrap_or_else(|p| p.into_inner());
                        wanted_bans(&d)
                    };
                    if let Err(e) = fw.reconcile(&wanted).await {
                        metrics.firewall_errors.fetch_add(1, Ordering::Relaxed);
                        say!("firewall reconciliation failed: {e}");
                    }
                }
            }
            _ = loss_check.tick() => {
                let now = losses();
                for ((what, n), (_, before)) in now.iter().zip(lost_before.iter()) {
                    if n > before {
                        say!(
                            "dropped {} {what} in the last 10 s: a queue was full (raise daemon.queue, or see docs/daemon.md)",
                            n - before
                        );
                    }
                }
                lost_before = now;
            }
            else => break,
        }
    }

    say!("stopping");
    // Sources first, so the tailer's last positions follow its last lines; then the
    // engine, which drains its queues, saves a final snapshot and stops.
    if let Some(f) = files {
        let _ = tokio::task::spawn_blocking(move || f.stop()).await;
    }
    if let Some(s) = syslog {
        s.shutdown().await;
    }
    if let Some(j) = journal {
        j.shutdown().await;
    }
    let _ = control_tx.send(Control::Stop);
    let engine_result = tokio::task::spawn_blocking(move || engine_thread.join())
        .await
        .map_err(|e| anyhow::anyhow!("engine thread: {e}"))?;
    let _ = stop_http_tx.send(());
    if let Some(h) = http {
        let _ = h.await;
    }
    let _ = stop_policy_tx.send(());
    if let Some(h) = policy_server {
        let _ = h.await;
    }
    drop(shared);
    let _ = tokio::time::timeout(Duration::from_secs(10), actions).await;
    match engine_result {
        Ok(r) => r,
        Err(_) => bail!("the engine thread panicked"),
    }
}

/// The bans the firewall should hold now, with their remaining time.
fn wanted_bans(d: &Decisions) -> Vec<(IpNet, Duration)> {
    let now = Timestamp::now().as_second();
    d.bans()
        .into_iter()
        .filter(|b| b.until > now)
        .map(|b| (b.net, Duration::from_secs((b.until - now) as u64)))
        .collect()
}

/// The engine and file positions from a snapshot; a snapshot that cannot be read
/// starts the engine afresh (said on stderr) but keeps the positions.
fn restore(config: &Config, snapshot: Option<&Snapshot>) -> (Engine, Option<Vec<Record>>) {
    let Some(s) = snapshot else {
        return (Engine::new(config.engine.clone()), None);
    };
    let positions = match checkpoint::decode(&s.positions) {
        Ok(p) => Some(p),
        Err(e) => {
            say!("saved file positions unreadable ({e}); files start per sources.files.start_at");
            None
        }
    };
    let engine = match Engine::restore(config.engine.clone(), &s.engine) {
        Ok(e) => {
            say!(
                "resumed from the snapshot of {} (event time {})",
                Timestamp::from_second(s.saved_at)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                Timestamp::from_second(s.watermark)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
            e
        }
        Err(e) => {
            say!("{e}; the engine starts afresh");
            Engine::new(config.engine.clone())
        }
    };
    (engine, positions)
}

/// Which parser reads a line: one per file, one for the network, one for the journal
/// (parsers keep per-stream state such as year inference and multi-line sessions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Stream {
    File(Arc<Path>),
    Network,
    Journal,
}

/// A listener on `listen` (the configuration key `key`, for the error) and where it is.
async fn bind(
    listen: std::net::SocketAddr,
    key: &str,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} ({key})"))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves `app` on `listener` with at most `max_connections`, until `stop` fires.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    max_connections: usize,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    let limits = crate::serve::Limits {
        max_connections,
        ..Default::default()
    };
    tokio::spawn(crate::serve::serve(listener, app, limits, async {
        let _ = stop.await;
    }))
}

/// Lines (and position records) from followed files waiting for the engine; the
/// tailer waits while it is full, so depth buys nothing but memory.
const FILE_QUEUE: usize = 65_536;

/// Batches of reported events waiting for the engine (each at most `http.max_body`
/// bytes of JSON); a reporter finding it full gets 503 and sends again.
const REPORT_QUEUE: usize = 1024;

/// Most parsers kept (files come and go with rotation).
const MAX_PARSERS: usize = 4096;

/// Reported batches fewer than this in one wake are followed by [`REPORT_GATHER`] of
/// gathering before the engine takes them.
const REPORT_GATHER_BELOW: usize = 8;
/// How long the engine gathers reported logins that come one at a time.
const REPORT_GATHER: Duration = Duration::from_millis(1);

struct EngineLoop {
    engine: Engine,
    parse: ParseConfig,
    parsers: HashMap<Stream, LogParser>,
    shared: Arc<Shared>,
    /// Decisions and snapshots go to the store from its own thread (taken at the end).
    writer: Option<StoreWriter>,
    positions: Option<Vec<Record>>,
    /// Per file: the offset just after the last line consumed.
    consumed: HashMap<Arc<Path>, u64>,
    has_files: bool,
    snapshot_interval: Duration,
    /// When this run last saved a snapshot; `None` before its first.
    last_snapshot: Option<Instant>,
    watermark_lag: i64,
    events: Vec<Event>,
    repeaters: Vec<(IpAddr, portcullis_core::engine::Kind)>,
    idle_ticks: u32,
    /// Successful logins not yet written to the store's familiar sources: (account,
    /// network) → (time, the address).
    familiar: HashMap<(String, IpNet), (i64, IpAddr)>,
    familiar_v4: u8,
    familiar_v6: u8,
}

/// Familiar sources waiting for the next snapshot; beyond this many they are written at
/// once.
const MAX_FAMILIAR_PENDING: usize = 100_000;

impl EngineLoop {
    fn new(
        mut engine: Engine,
        config: &Config,
        shared: Arc<Shared>,
        store: Arc<Store>,
    ) -> Result<Self> {
        engine.enable_findings();
        Ok(Self {
            engine,
            parse: parse_config(config)?,
            parsers: HashMap::new(),
            writer: Some(StoreWriter::spawn(Arc::clone(&shared), store)?),
            shared,
            positions: None,
            consumed: HashMap::new(),
            has_files: !config.sources.files.include.is_empty(),
            snapshot_interval: config.daemon.snapshot_interval,
            last_snapshot: None,
            watermark_lag: config.daemon.watermark_lag.as_secs() as i64,
            events: Vec::with_capacity(4096),
            repeaters: Vec::new(),
            idle_ticks: 0,
            familiar: HashMap::new(),
            familiar_v4: config.engine.prefix_v4,
            familiar_v6: config.engine.prefix_v6,
        })
    }

    fn run(
        mut self,
        mut files: mpsc::Receiver<Tailed>,
        mut lines: mpsc::Receiver<Line>,
        mut reports: mpsc::Receiver<Vec<Event>>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let result = rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut fbuf, mut lbuf, mut rbuf) = (Vec::new(), Vec::new(), Vec::new());
            let (mut files_open, mut lines_open, mut reports_open) = (true, true, true);
            let mut stopping = false;
            loop {
                tokio::select! {
                    biased;
                    c = control.recv(), if !stopping => match c {
                        Some(Control::Reload(cfg)) => self.reload(&cfg),
                        Some(Control::Stop) | None => stopping = true,
                    },
                    // Before the queues: under sustained input they are always ready,
                    // and the once-a-second work (metrics, ban expiry, snapshots on the
                    // clock) must not wait for a lull that never comes.
                    _ = tick.tick() => {
                        self.tick(files.len() + lines.len() + reports.len());
                    },
                    n = files.recv_many(&mut fbuf, 1024), if files_open => {
                        if n == 0 { files_open = false; }
                        for item in fbuf.drain(..) {
                            match item {
                                Tailed::Line(l) => self.line(l),
                                Tailed::Positions(p) => {
                                    self.observe_pending();
                                    self.positions = Some(p);
                                    // The first positions at once: until they are saved,
                                    // a crash makes the next start a first start, and a
                                    // file followed from its end would be picked up at its
                                    // new end, missing the lines in between. Later ones on
                                    // the interval the tailer reports on, half of which
                                    // absorbs the jitter between its clock and ours.
                                    if self.snapshot_due(self.snapshot_interval / 2) {
                                        self.snapshot();
                                    }
                                }
                            }
                        }
                    },
                    n = lines.recv_many(&mut lbuf, 1024), if lines_open => {
                        if n == 0 { lines_open = false; }
                        for l in lbuf.drain(..) {
                            self.line(l);
                        }
                    },
                    n = reports.recv_many(&mut rbuf, 64), if reports_open => {
                        if n == 0 { reports_open = false; }
                        // The policy server sends one login at a time. Waking for each
                        // costs the HTTP side a context switch on a busy machine, so a
                        // few came alone are followed by a millisecond's gathering.
                        if n > 0 && n < REPORT_GATHER_BELOW && !stopping {
                            tokio::time::sleep(REPORT_GATHER).await;
                            while rbuf.len() < 1024 {
                                match reports.try_recv() {
                                    Ok(b) => rbuf.push(b),
                                    Err(_) => break,
                                }
                            }
                        }
                        for batch in rbuf.drain(..) {
                            self.events.extend(batch);
                        }
                    },
                }
                self.observe_pending();
                let m = &self.shared.metrics;
                m.queue_depth[0].store(files.len() as u64, Ordering::Relaxed);
                m.queue_depth[1].store(lines.len() as u64, Ordering::Relaxed);
                m.queue_depth[2].store(reports.len() as u64, Ordering::Relaxed);
                // Stopping: the sources have stopped; drain what they sent.
                if stopping {
                    reports.close();
                    lines.close();
                    if !files_open && !lines_open && (reports.is_empty() || !reports_open) {
                        break;
                    }
                    if !files_open && !lines_open {
                        while let Ok(batch) = reports.try_recv() {
                            self.events.extend(batch);
                        }
                        self.observe_pending();
                        break;
                    }
                }
            }
            // Attempts the parsers still hold (an SSH connection's last line not yet
            // seen) are judged now: their lines are behind the final positions.
            for p in self.parsers.values_mut() {
                p.finish(&mut self.events);
            }
            self.observe_pending();
            self.final_snapshot();
            Ok(())
        });
        self.shared.engine_alive.store(false, Ordering::Relaxed);
        result
    }

    fn reload(&mut self, config: &Config) {
        // The engine keeps its state and takes the new thresholds.
        let bytes = self.engine.snapshot();
        match Engine::restore(config.engine.clone(), &bytes) {
            Ok(mut e) => {
                e.enable_findings();
                self.engine = e;
            }
            Err(e) => say!("engine thresholds not reloaded: {e}"),
        }
        match parse_config(config) {
            Ok(p) => self.parse = p,
            Err(e) => say!("parse settings not reloaded: {e:#}"),
        }
        self.snapshot_interval = config.daemon.snapshot_interval;
        self.watermark_lag = config.daemon.watermark_lag.as_secs() as i64;
        let mut d = self
            .shared
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        d.reconfigure(config.bans.clone(), config.locks.clone());
        // The allowlist in the file may have changed: the policy server follows.
        self.shared
            .policy
            .policy
            .set_allowlist(d.allowlist().into_iter().map(|(n, _)| n));
    }

    fn line(&mut self, l: Line) {
        self.shared.metrics.lines.fetch_add(1, Ordering::Relaxed);
        let stream = match &l.source {
            Source::File(p) => {
                if let Some(o) = l.offset {
                    self.consumed
                        .insert(Arc::clone(p), o + l.bytes.len() as u64 + 1);
                }
                Stream::File(Arc::clone(p))
            }
            Source::Udp(_) | Source::Tcp(_) => Stream::Network,
            Source::Journald => Stream::Journal,
        };
        if !self.parsers.contains_key(&stream) && self.parsers.len() >= MAX_PARSERS {
            self.parsers.clear();
        }
        let parse = &self.parse;
        let parser = self.parsers.entry(stream.clone()).or_insert_with(|| {
            let mut config = parse.clone();
            // Only followed files hold documents, told apart by their first line;
            // syslog and journald carry lines.
            config.format = match (&stream, config.format) {
                (Stream::File(_), portcullis_parse::InputFormat::Auto) => {
                    portcullis_parse::format::detect_line(&l.bytes)
                }
                (Stream::File(_), forced) => forced,
                _ => portcullis_parse::InputFormat::Syslog,
            };
            LogParser::new(config)
        });
        let origin = Origin {
            file: match &stream {
                Stream::File(p) => Some(Arc::from(p.to_string_lossy().as_ref())),
                _ => None,
            },
            line: 0,
            offset: l.offset.unwrap_or(0),
        };
        let before = parser.stats().unparsed_auth_lines;
        parser.push(&l.bytes, &origin, &mut self.events);
        let unparsed = parser.stats().unparsed_auth_lines - before;
        if unparsed > 0 {
            self.shared
                .metrics
                .unparsed
                .fetch_add(unparsed, Ordering::Relaxed);
        }
        if self.events.len() >= 4096 {
            self.observe_pending();
        }
    }

    /// Feeds the parsed events to the engine, then acts on what it found.
    fn observe_pending(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let m = Arc::clone(&self.shared.metrics);
        for e in self.events.drain(..) {
            m.event(e.service, e.outcome);
            self.engine.observe(&e);
            if e.outcome == Outcome::Success
                && let (Some(a), Some(account), Some(t)) = (e.source, &e.account, e.time)
                && account.len() <= portcullis_store::MAX_ACCOUNT_LEN
                && self.engine.verdict(&a).is_none()
                // Held while a slow snapshot is still being written: bounded all the same.
                && self.familiar.len() < 2 * MAX_FAMILIAR_PENDING
            {
                let len = if a.is_ipv4() {
                    self.familiar_v4
                } else {
                    self.familiar_v6
                };
                let net = crate::decide::network_of(a, len);
                let at = t.instant.as_second();
                self.shared.policy.policy.learn_network(
                    account,
                    &IpNet::from(a),
                    at.clamp(0, i64::from(u32::MAX - 1)) as u32,
                );
                self.familiar.insert((account.clone(), net), (at, a));
            }
            if e.outcome != Outcome::Success
                && let Some(a) = e.source
                && let Some(kind) = self.engine.verdict(&a)
                && self.repeaters.len() < 4096
            {
                self.repeaters.push((a, kind));
            }
        }
        self.act();
        if self.familiar.len() >= MAX_FAMILIAR_PENDING {
            self.snapshot();
        }
    }

    /// Hands the findings and repeat offenders to the store writer, which decides and
    /// records bans and locks without holding up the engine.
    fn act(&mut self) {
        let findings: Vec<_> = self.engine.take_findings().collect();
        if findings.is_empty() && self.repeaters.is_empty() {
            return;
        }
        let repeaters = std::mem::take(&mut self.repeaters);
        let queued = self
            .writer
            .as_ref()
            .is_some_and(|w| w.decide(findings, repeaters));
        if !queued {
            self.shared
                .metrics
                .decisions_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn tick(&mut self, queued: usize) {
        let now = Timestamp::now();
        // Quiet sources: event time moves on with the wall clock, so failures leave
        // their typo window and quiet campaigns close. Only when every queue was empty
        // at two ticks in a row, so that a backlog being read is not overtaken.
        self.idle_ticks = if queued == 0 { self.idle_ticks + 1 } else { 0 };
        if self.idle_ticks >= 2 {
            self.engine.advance(now.as_second() - self.watermark_lag);
            self.act();
        }
        for p in self.parsers.values_mut() {
            p.set_reference(now);
        }
        // Bans and locks that ran out are lifted by the store writer (a store commit);
        // with its queue full, at a later tick.
        if let Some(w) = &self.writer {
            w.expire(now.as_second());
        }
        let m = &self.shared.metrics;
        let (s, p, a, q) = self.engine.sizes();
        for (slot, v) in m.engine_entries.iter().zip([s, p, a, q]) {
            slot.store(v as u64, Ordering::Relaxed);
        }
        let stats = self.engine.stats();
        m.engine_evicted.store(stats.evicted, Ordering::Relaxed);
        m.engine_findings_dropped
            .store(stats.findings_dropped, Ordering::Relaxed);
        m.engine_events.store(stats.events, Ordering::Relaxed);
        if let Some(t) = self.engine.now() {
            m.event_time.store(t.max(0) as u64, Ordering::Relaxed);
        }
        if let Ok(mut c) = m.consumed.lock() {
            c.clone_from(&self.consumed);
        }
        // Without files, nothing needs positions: save on the clock.
        if !self.has_files && self.snapshot_due(self.snapshot_interval) {
            self.snapshot();
        }
    }

    fn snapshot_due(&self, interval: Duration) -> bool {
        self.last_snapshot.is_none_or(|t| t.elapsed() >= interval)
    }

    /// Takes a snapshot of the engine and the positions of the lines it consumed, and
    /// queues it for the store; skipped (tried again at the next chance) while the last
    /// one is still being written.
    fn snapshot(&mut self) {
        if self
            .writer
            .as_ref()
            .is_none_or(StoreWriter::snapshot_pending)
        {
            return;
        }
        let (snap, familiar, serialised) = self.take_snapshot();
        let Some(writer) = &self.writer else { return };
        if writer.snapshot(snap, familiar, serialised) {
            self.last_snapshot = Some(Instant::now());
        }
    }

    /// The last snapshot, at shutdown: written before this returns, after every
    /// decision queued before it.
    fn final_snapshot(&mut self) {
        let (snap, familiar, serialised) = self.take_snapshot();
        if let Some(writer) = self.writer.take() {
            writer.finish(snap, familiar, serialised);
        }
    }

    fn take_snapshot(&mut self) -> (Snapshot, Vec<(String, IpNet, i64)>, Duration) {
        let started = Instant::now();
        let engine = self.engine.snapshot();
        let positions = self
            .positions
            .as_deref()
            .map(checkpoint::encode)
            .unwrap_or_default();
        let snap = Snapshot {
            engine,
            positions,
            watermark: self.engine.now().unwrap_or(0),
            saved_at: Timestamp::now().as_second(),
        };
        // Familiar places go with it, except an attacker's (judged since its login).
        let familiar: Vec<(String, IpNet, i64)> = self
            .familiar
            .drain()
            .filter(|(_, (_, a))| self.engine.verdict(a).is_none())
            .map(|((account, net), (at, _))| (account, net, at))
            .collect();
        (snap, familiar, started.elapsed())
    }
}

fn parse_config(config: &Config) -> Result<ParseConfig> {
    let time_zone = match &config.parse.timezone {
        Some(tz) => TimeZone::get(tz).with_context(|| format!("unknown time zone {tz:?}"))?,
        None => TimeZone::system(),
    };
    Ok(ParseConfig {
        envelope: EnvelopeConfig {
            time_zone,
            year: YearRule::Reference(Timestamp::now()),
        },
        accounts: config.parse.accounts.clone(),
        format: config.parse.format,
        trusted_proxies: config.parse.trusted_proxies.clone(),
        json_formats: std::sync::Arc::from(portcullis_parse::custom_json::compile(
            &config.parse.json_formats,
        )?),
        rules: if config.parse.rules.is_empty() {
            None
        } else {
            Some(Arc::new(portcullis_parse::Rules::new(&config.parse.rules)?))
        },
    })
}

/// Carries out effects: the firewall (batched), webhooks, programs.
async fn act(
    mut rx: mpsc::Receiver<Effect>,
    firewall: Option<Arc<Nft>>,
    hooks: Vec<Webhook>,
    execs: Vec<Exec>,
    metrics: Arc<Metrics>,
    dry_run: bool,
) {
    let mut buf = Vec::new();
    loop {
        let n = rx.recv_many(&mut buf, 512).await;
        if n == 0 {
            break;
        }
        metrics.queue_depth[3].store(rx.len() as u64, Ordering::Relaxed);
        let now = Timestamp::now().as_second();
        let mut bans = Vec::new();
        let mut unbans = Vec::new();
        for e in buf.drain(..) {
            let notice = notice(&e, now, dry_run);
            match &e {
                Effect::Ban(b) if b.until > now => {
                    bans.push((b.net, Duration::from_secs((b.until - now) as u64)));
                    say!(
                        "{}ban {} for {} s: {}",
                        if dry_run { "would " } else { "" },
                        b.net,
                        b.until - now,
                        b.reason
                    );
                }
                Effect::Unban(b) => unbans.push(b.net),
                Effect::Lock(l) => say!(
                    "{}lock {} until {}: {}",
                    if dry_run { "would " } else { "" },
                    l.account,
                    Timestamp::from_second(l.until)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    l.reason
                ),
                _ => {}
            }
            if !dry_run {
                for h in &hooks {
                    h.send(&notice);
                }
                for x in &execs {
                    x.send(&notice);
                }
            }
        }
        if let Some(fw) = &firewall {
            if !bans.is_empty()
                && let Err(e) = fw.ban(&bans).await
            {
                metrics.firewall_errors.fetch_add(1, Ordering::Relaxed);
                say!("firewall: cannot ban {} network(s): {e}", bans.len());
            }
            if !unbans.is_empty()
                && let Err(e) = fw.unban(&unbans).await
            {
                metrics.firewall_errors.fetch_add(1, Ordering::Relaxed);
                say!("firewall: cannot unban {} network(s): {e}", unbans.len());
            }
        }
    }
    for h in hooks {
        h.shutdown(Duration::from_secs(5)).await;
    }
    for x in execs {
        x.shutdown(Duration::from_secs(5)).await;
    }
}

fn notice(e: &Effect, now: i64, dry_run: bool) -> Notice {
    let time = Timestamp::from_second(now)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let ban = |action, b: &portcullis_store::Ban| Notice {
        action,
        time: time.clone(),
        address: (b.net.prefix_len() == b.net.max_prefix_len()).then(|| b.net.addr()),
        prefix: Some(b.net),
        account: None,
        kind: b.kind.clone(),
        reason: b.reason.clone(),
        duration_secs: Some((b.until - b.since).max(0) as u64),
        dry_run,
    };
    let lock = |action, l: &portcullis_store::Lock| Notice {
        action,
        time: time.clone(),
        address: None,
        prefix: None,
        account: Some(l.account.clone()),
        kind: None,
        reason: l.reason.clone(),
        duration_secs: Some((l.until - l.since).max(0) as u64),
        dry_run,
    };
    match e {
        Effect::Ban(b) => ban(NoticeAction::Ban, b),
        Effect::Unban(b) | Effect::Expired(b) => ban(NoticeAction::Unban, b),
        Effect::Lock(l) => lock(NoticeAction::Lock, l),
        Effect::Unlock(l) => lock(NoticeAction::Unlock, l),
    }
}

/// Renders the sources' and actions' counters.
fn source_metrics(
    files: Option<Arc<portcullis_sources::file::FileCounters>>,
    syslog: Option<Arc<portcullis_sources::syslog::SyslogCounters>>,
    journal: Option<Arc<portcullis_sources::journald::JournaldCounters>>,
    hooks: Vec<Arc<portcullis_actions::webhook::WebhookCounters>>,
    execs: Vec<Arc<portcullis_actions::exec::ExecCounters>>,
) -> Box<dyn Fn(&mut Exposition) + Send + Sync> {
    Box::new(move |x: &mut Exposition| {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        if let Some(f) = &files {
            x.family(Family {
                name: "portcullis_file_events_total",
                kind: "counter",
                help: "File tailer events: rotations, truncations, oversized lines skipped, I/O errors.",
                samples: vec![
                    ("event=\"rotation\"".into(), load(&f.rotations)),
                    ("event=\"truncation\"".into(), load(&f.truncations)),
                    ("event=\"oversized_line\"".into(), load(&f.oversized_lines)),
                    ("event=\"io_error\"".into(), load(&f.io_errors)),
                ],
            });
        }
        if let Some(s) = &syslog {
            x.family(Family {
                name: "portcullis_syslog_messages_total",
                kind: "counter",
                help: "Syslog messages received.",
                samples: vec![(String::new(), load(&s.messages))],
            });
            x.family(Family {
                name: "portcullis_syslog_dropped_total",
                kind: "counter",
                help: "Syslog messages lost: UDP datagrams dropped with the queue full, oversized messages.",
                samples: vec![
                    ("reason=\"queue_full\"".into(), load(&s.udp_dropped)),
                    ("reason=\"oversized\"".into(), load(&s.oversized)),
                ],
            });
            x.family(Family {
                name: "portcullis_syslog_connections_refused_total",
                kind: "counter",
                help: "TCP connections refused at the connection cap.",
                samples: vec![(String::new(), load(&s.connections_refused))],
            });
        }
        if let Some(j) = &journal {
            x.family(Family {
                name: "portcullis_journald_starts_total",
                kind: "counter",
                help: "Times journalctl was started, and could not be.",
                samples: vec![
                    ("result=\"started\"".into(), load(&j.starts)),
                    ("result=\"failed\"".into(), load(&j.start_errors)),
                ],
            });
        }
        let action =
            |name: &str, label: &str, v: u64| (format!("action=\"{name}\",result=\"{label}\""), v);
        let mut samples = Vec::new();
        for (i, h) in hooks.iter().enumerate() {
            let n = format!("webhook{i}");
            samples.push(action(&n, "sent", load(&h.sent)));
            samples.push(action(&n, "failed", load(&h.failed)));
            samples.push(action(&n, "dropped", load(&h.dropped)));
        }
        for (i, e) in execs.iter().enumerate() {
            let n = format!("exec{i}");
            samples.push(action(&n, "ran", load(&e.runs)));
            samples.push(action(&n, "failed", load(&e.failed)));
            samples.push(action(&n, "timed_out", load(&e.timed_out)));
            samples.push(action(&n, "dropped", load(&e.dropped)));
        }
        if !samples.is_empty() {
            x.family(Family {
                name: "portcullis_actions_total",
                kind: "counter",
                help: "Webhook and program runs, by action and result.",
                samples,
            });
        }
    })
}
