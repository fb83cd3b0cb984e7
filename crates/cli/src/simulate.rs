//! `portcullis simulate`: an organisation's login traffic with attacks, and the truth.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use portcullis_sim::scenario::{BUILT_IN, Format};
use portcullis_sim::{Options, Scenario, Simulation};

/// Write a simulated organisation's logs, with attacks mixed in, and their ground truth.
///
/// A scenario (a built-in one, or a TOML file: see docs/simulate.md) describes the
/// organisation, its ordinary traffic and the attacks. The same seed always gives
/// byte-identical files. The output folder gets, as the scenario asks, `mail.log`
/// (Dovecot and Postfix), `auth.log` (OpenSSH), `u_ex.log` (Exchange's IIS log: OWA,
/// ActiveSync), `signins.jsonl` (Entra ID), `security.jsonl` (Windows, winlogbeat),
/// `openvpn.log`, `keycloak.jsonl` (Keycloak login events) and `imap4.log` (Exchange's
/// IMAP4 protocol log), and `truth.json`: every source with its role, every campaign, the
/// accounts that fell.
///
/// Examples:
///   portcullis simulate --scenario westminster --out /tmp/westminster
///   portcullis simulate --file my-site.toml --seed 7 --out rehearsal
///   portcullis simulate --scenario small-office --scale 50 --out /tmp/load
///   portcullis simulate --scenario exchange-site --out /tmp/exchange   # OWA, IMAP, SSH
///   portcullis simulate --list
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SimulateArgs {
    /// A built-in scenario (see --list).
    #[arg(long, conflicts_with = "file")]
    scenario: Option<String>,

    /// A scenario file (TOML).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "live"])]
    out: Option<PathBuf>,

    /// Instead of writing files, send the attempts to a running Portcullis: HTTP POSTs
    /// to this URL, each body a JSON array of events (the event contract), stamped with
    /// the time they are sent.
    #[arg(long, value_name = "URL", conflicts_with = "out")]
    live: Option<String>,

    /// With --live: events per second.
    #[arg(long, value_name = "N", default_value_t = 1000.0)]
    rate: f64,

    /// With --live: stop after this many events.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_events: u64,

    /// With --live: stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    max_time: String,

    /// With --live: events per request.
    #[arg(long, value_name = "N", default_value_t = 100)]
    batch: usize,

    /// With --live: a file holding the bearer token the receiver wants (the daemon's
    /// report or admin token). `PORTCULLIS_TOKEN` in the environment also works.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Multiply the ordinary (benign) volume, for throughput tests.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,

    /// Start instead of the scenario's (RFC 3339 with offset).
    #[arg(long, value_name = "TIME")]
    start: Option<String>,

    /// Hours instead of the scenario's.
    #[arg(long)]
    hours: Option<u32>,

    /// Overwrite files already in the output folder.
    #[arg(long)]
    force: bool,

    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,

    /// Do not print the summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Reads the scenario named by `--scenario`/`--file` (default: westminster) and applies
/// `--start`/`--hours`.
pub fn load_scenario(
    scenario: Option<&str>,
    file: Option<&Path>,
    start: Option<&str>,
    hours: Option<u32>,
) -> Result<Scenario> {
    let mut s = match (scenario, file) {
        (_, Some(path)) => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Scenario::from_toml(&text).with_context(|| format!("scenario {}", path.display()))?
        }
        (name, None) => Scenario::built_in(name.unwrap_or("westminster"))?,
    };
    if let Some(t) = start {
        s.start = t
            .parse()
            .with_context(|| format!("--start {t:?} is not an RFC 3339 time with an offset"))?;
    }
    if let Some(h) = hours {
        s.hours = h;
    }
    // Check again: --hours may now cut an attack short.
    s.check().context("with --start/--hours")?;
    Ok(s)
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    if args.list {
        for (name, _) in BUILT_IN {
            let s = Scenario::built_in(name)?;
            println!("{name:<14} {}", s.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scenario = load_scenario(
        args.scenario.as_deref(),
        args.file.as_deref(),
        args.start.as_deref(),
        args.hours,
    )?;
    let sim = Simulation::new(
        scenario,
        Options {
            seed: args.seed,
            scale: args.scale,
        },
    )?;
    if let Some(url) = &args.live {
        let max_time = portcullis_sim::scenario::parse_duration(&args.max_time)
            .map_err(|e| anyhow::anyhow!("--max-time: {e}"))?;
        let opts = crate::live::LiveOptions {
            url: url.clone(),
            rate: args.rate,
            max_events: args.max_events,
            max_time: max_time.unsigned_abs(),
            batch: args.batch,
            quiet: args.quiet,
            token: match &args.token_file {
                Some(f) => Some(portcullis_daemon::config::read_secret(f)?),
                None => std::env::var("PORTCULLIS_TOKEN").ok(),
            },
        };
        return crate::live::run(&sim, &opts);
    }
    let Some(out) = &args.out else {
        bail!("--out DIR is required")
    };
    let began = Instant::now();
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        crate::input::bar(
            sim.slots() as u64,
            "{bar:40} {pos}/{len} ten-minute slots, ETA {eta}",
        )
    };
    let truth = write_files(&sim, out, args.force, &progress)?;
    let secs = began.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "portcullis: wrote {} lines ({} login attempts, {} campaigns, {} accounts compromised) to {} in {:.1} s ({:.2} M lines/s)",
            truth.lines,
            truth.attempts,
            truth.campaigns.len(),
            truth.compromised_accounts.len(),
            out.display(),
            secs,
            truth.lines as f64 / secs.max(1e-9) / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates every file of the simulation into `dir` and returns the truth (also written
/// as `truth.json`).
pub fn write_files(
    sim: &Simulation,
    dir: &Path,
    force: bool,
    progress: &ProgressBar,
) -> Result<portcullis_sim::Truth> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let formats = sim.scenario().output.formats.clone();
    let mut names: Vec<&str> = formats.iter().map(|f| f.file_name()).collect();
    names.push("truth.json");
    if !force {
        for n in &names {
            let p = dir.join(n);
            if p.exists() {
                bail!("{} exists (use --force to overwrite)", p.display());
            }
        }
    }
    let mut writers: Vec<(Format, BufWriter<File>)> = Vec::new();
    for f in &formats {
        let p = dir.join(f.file_name());
        let file = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
        writers.push((*f, BufWriter::with_capacity(1 << 20, file)));
    }
    let builder = portcullis_sim::generate(sim, |slot| {
        for (f, w) in writers.iter_mut() {
            w.write_all(slot.bytes(*f))?;
        }
        progress.inc(1);
        Ok(())
    })
    .with_context(|| format!("cannot write into {}", dir.display()))?;
    progress.finish_and_clear();
    for (f, mut w) in writers {
        w.flush()
            .with_context(|| format!("cannot write {}", dir.join(f.file_name()).display()))?;
    }
    let truth = builder.finish(
        sim,
        formats.iter().map(|f| f.file_name().to_owned()).collect(),
    );
    let p = dir.join("truth.json");
    let file = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &truth).map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()
        .with_context(|| format!("cannot write {}", p.display()))?;
    Ok(truth)
}
