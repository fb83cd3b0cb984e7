//! `portcullis analyze`: incident analysis of historical logs.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use portcullis_core::engine::{Engine, EngineConfig};
use portcullis_core::name_forms::NameForms;
use portcullis_core::report::{Input, Report};

use crate::options::ReadOptions;
use crate::{merge, pipeline};

/// Find the attacks in historical logs: who attacked, how, when, and which accounts fell.
///
/// Reads any mix of supported logs (as `portcullis events` does), replays them through
/// the detection engine in time order, and prints what happened, what fell and what to
/// do now. `--format json` writes the versioned report contract (docs/analyze.md).
///
/// Examples:
///   portcullis analyze /var/log/mail.log /var/log/mail.log.1 /var/log/mail.log.2.gz
///   portcullis analyze --format json -o report.json mail.log auth.log
///   portcullis analyze -v --timezone Europe/London --year 2017 mail.log
///   portcullis analyze --format csv --table accounts mail.log > accounts.csv
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AnalyzeArgs {
    /// Log files to read (`-` for standard input; `.gz` is recognised by content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,

    /// With --format csv: which table.
    #[arg(long, value_enum, default_value_t = Table::Sources)]
    table: Table,

    /// Write the output to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Text: list every source and account with its evidence.
    #[arg(short, long)]
    verbose: bool,

    /// Engine thresholds from a TOML file (an `[engine]` table; docs/analyze.md).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// No progress or summary on stderr.
    #[arg(long, short)]
    quiet: bool,

    #[command(flatten)]
    read: ReadOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// For a person.
    Text,
    /// The report contract, version 1.
    Json,
    /// One table as CSV (see --table).
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Table {
    /// Sources: attackers and suspicious.
    Sources,
    /// Accounts: compromised, targeted, locked.
    Accounts,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    engine: EngineConfig,
}

/// Reads the `[engine]` table of a configuration file (defaults where absent).
pub fn engine_config(path: Option<&Path>) -> Result<EngineConfig> {
    let Some(path) = path else {
        return Ok(EngineConfig::default());
    };
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid configuration", path.display()))?;
    Ok(file.engine)
}

/// Parses `files`, replays them through a fresh engine in time order, and reports.
pub fn analyze_files(
    files: &[String],
    read: &ReadOptions,
    config: EngineConfig,
    quiet: bool,
) -> Result<Report> {
    let mut engine = Engine::new(config);
    let mut forms = NameForms::new();
    let (stats, merged) =
        merge::in_time_order(files, read, quiet, merge::Limits::default(), |e| {
            if let Some(a) = &e.account {
                forms.observe(a);
            }
            engine.observe(&e)
        })?;
    engine.finish();
    if !quiet {
        eprintln!("{}", pipeline::summary(files.len(), &stats, read.max_line));
        if merged.late > 0 {
            eprintln!(
                "portcullis: {} events arrived more than {} minutes behind their file's clock and were judged late",
                merged.late,
                merge::Limits::default().window_secs / 60
            );
        }
    }
    if let (Some(two), false) = (forms.two_forms(), quiet) {
        eprintln!(
            "portcullis: {} account name(s) appear both bare and with a domain (e.g. {} and {}@{}) and are counted as different accounts; if they are the same, give --domain default:{}",
            two.names, two.example, two.example, two.domain, two.domain
        );
    }
    let unjudged = engine.stats().unjudged;
    if unjudged > 0 && !quiet {
        eprintln!(
            "portcullis: {unjudged} events without a time or a source address could not be judged (see `portcullis events`)"
        );
    }
    let input = Input {
        files: files.to_vec(),
        lines: stats.lines,
        events: stats.events,
        unparsed_auth_lines: stats.unparsed_auth_lines,
        first_event: None,
        last_event: None,
    };
    Ok(engine.report(input))
}

pub fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let config = engine_config(args.config.as_deref())?;
    let report = analyze_files(&args.files, &args.read, config, args.quiet)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(io::BufWriter::new(
            fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let colour =
        args.output.is_none() && args.format == ReportFormat::Text && io::stdout().is_terminal();
    let written = match args.format {
        ReportFormat::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(io::Error::other)
            .and_then(|()| out.write_all(b"\n")),
        ReportFormat::Text => out.write_all(text(&report, args.verbose, colour).as_bytes()),
        ReportFormat::Csv => csv_table(&report, args.table, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        r => r
            .context("cannot write the report")
            .map(|()| ExitCode::SUCCESS),
    }
}

fn csv_table(r: &Report, table: Table, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let cell = crate::events::cell;
    match table {
        Table::Sources => {
            w.write_record([
                "address",
                "verdict",
                "attacks",
                "first_seen",
                "last_seen",
                "failures",
                "successes",
                "accounts_tried",
                "unknown_accounts",
                "evidence",
                "services",
            ])?;
            for s in &r.sources {
                w.write_record([
                    s.address.clone(),
                    s.verdict.clone(),
                    s.attacks.join(" "),
                    s.first_seen.clone().unwrap_or_default(),
                    s.last_seen.clone().unwrap_or_default(),
                    s.failures.to_string(),
                    s.successes.to_string(),
                    s.accounts_tried.to_string(),
                    s.unknown_accounts.to_string(),
                    cell(&s.evidence),
                    s.services.join(" "),
                ])?;
            }
        }
        Table::Accounts => {
            w.write_record(["user", "status", "failures", "attack_sources", "evidence"])?;
            for a in &r.accounts {
                w.write_record([
                    cell(&a.user),
                    a.status.clone(),
                    a.failures.to_string(),
                    a.attack_sources.to_string(),
                    cell(&a.evidence),
                ])?;
            }
        }
    }
    w.flush()
}

/// ", through dovecot, exchange and sshd": the doors an attack came through.
fn through(services: &[String]) -> String {
    match services {
        [] => String::new(),
        [one] => format!(", through {one}"),
        [init @ .., last] => format!(", through {} and {last}", init.join(", ")),
    }
}

fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Minutes and seconds between two RFC 3339 stamps.
fn delay(from: &str, to: &str) -> String {
    match (
        from.parse::<jiff::Timestamp>(),
        to.parse::<jiff::Timestamp>(),
    ) {
        (Ok(a), Ok(b)) => {
            let s = b.duration_since(a).as_secs().max(0);
            if s >= 3600 {
                format!("{} h {:02} min", s / 3600, s / 60 % 60)
            } else {
                format!("{} min {:02} s", s / 60, s % 60)
            }
        }
        _ => "?".into(),
    }
}

/// The report for a person: what happened, who fell, what to do now.
pub fn text(r: &Report, verbose: bool, colour: bool) -> String {
    let head = |t: &str| {
        if colour {
            format!("\x1b[1m{t}\x1b[0m")
        } else {
            t.to_owned()
        }
    };
    let alarm = |t: &str| {
        if colour {
            format!("\x1b[1;31m{t}\x1b[0m")
        } else {
            t.to_owned()
        }
    };
    let mut o = String::new();
    let i = &r.input;
    let _ = writeln!(
        o,
        "{} {} ({} lines, {} login attempts{}{})\n",
        head("Portcullis analysis of"),
        i.files.join(", "),
        n(i.lines),
        n(i.events),
        match (&i.first_event, &i.last_event) {
            (Some(a), Some(b)) => format!(", {a} to {b}"),
            _ => String::new(),
        },
        if i.unparsed_auth_lines > 0 {
            format!(
                "; {} auth-looking lines not understood",
                n(i.unparsed_auth_lines)
            )
        } else {
            String::new()
        }
    );
    let attackers: Vec<_> = r
        .sources
        .iter()
        .filter(|s| s.verdict == "attacker")
        .collect();
    let suspicious: Vec<_> = r
        .sources
        .iter()
        .filter(|s| s.verdict == "suspicious")
        .collect();
    let fell: Vec<_> = r
        .accounts
        .iter()
        .filter(|a| a.status == "compromised")
        .collect();
    let targeted: Vec<_> = r
        .accounts
        .iter()
        .filter(|a| a.status == "targeted")
        .collect();
    let locked: Vec<_> = r.accounts.iter().filter(|a| a.status == "locked").collect();

    if r.campaigns.is_empty() {
        let _ = writeln!(o, "{}\n", head("No attack found."));
    } else {
        let _ = writeln!(o, "{}", head(&format!("ATTACKS ({})", r.campaigns.len())));
        for c in &r.campaigns {
            let _ = writeln!(
                o,
                "  {:<4} {:<20} {} to {}, detected {} after it began",
                c.id,
                c.kind,
                c.start,
                c.end,
                delay(&c.start, &c.detected_at)
            );
            let _ = writeln!(
                o,
                "       {} source(s), {} account(s) tried, {} compromised{}",
                n(c.sources),
                n(c.accounts_targeted),
                c.accounts_compromised.len(),
                through(&c.services)
            );
        }
        let _ = writeln!(o);
    }
    if !fell.is_empty() {
        let _ = writeln!(
            o,
            "{}",
            alarm(&format!(
                "ACCOUNTS THAT FELL ({}): reset their passwords and end their sessions now",
                fell.len()
            ))
        );
        for a in &fell {
            let _ = writeln!(o, "  {:<40} {}", a.user, a.evidence);
        }
        let _ = writeln!(o);
    }
    if !attackers.is_empty() {
        let shown = if verbose {
            attackers.len()
        } else {
            attackers.len().min(20)
        };
        let _ = writeln!(
            o,
            "{}",
            head(&format!(
                "ATTACKING SOURCES ({}), most failures first",
                n(attackers.len() as u64)
            ))
        );
        for s in attackers.iter().take(shown) {
            let _ = writeln!(
                o,
                "  {:<42} {:<20} {} failures, {} successes, {} account(s)",
                s.address,
                s.attacks.join(" "),
                n(s.failures),
                n(s.successes),
                s.accounts_tried
            );
            if verbose {
                let _ = writeln!(o, "      {}", s.evidence);
            }
        }
        if shown < attackers.len() {
            let _ = writeln!(
                o,
                "  … and {} more (-v, or --format csv, lists them all)",
                n((attackers.len() - shown) as u64)
            );
        }
        let _ = writeln!(o);
    }
    if !targeted.is_empty() {
        let _ = writeln!(
            o,
            "{}",
            head(&format!("TARGETED ACCOUNTS ({})", targeted.len()))
        );
        for a in &targeted {
            let _ = writeln!(o, "  {:<40} {}", a.user, a.evidence);
        }
        let _ = writeln!(o);
    }
    if !locked.is_empty() {
        let _ = writeln!(
            o,
            "{}",
            head(&format!("LOCKED ACCOUNTS ({})", locked.len()))
        );
        for a in &locked {
            let _ = writeln!(o, "  {}", a.user);
        }
        let _ = writeln!(o);
    }
    if !suspicious.is_empty() {
        let shown = if verbose {
            suspicious.len()
        } else {
            suspicious.len().min(10)
        };
        let _ = writeln!(
            o,
            "{}",
            head(&format!(
                "SUSPICIOUS, NOT JUDGED ({}): worth a look, not worth a block",
                suspicious.len()
            ))
        );
        for s in suspicious.iter().take(shown) {
            let _ = writeln!(o, "  {:<42} {}", s.address, s.evidence);
        }
        if shown < suspicious.len() {
            let _ = writeln!(o, "  … and {} more (-v)", suspicious.len() - shown);
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "{}", head("WHAT TO DO NOW"));
    let mut step = 1;
    if !fell.is_empty() {
        let _ = writeln!(
            o,
            "  {step}. Reset the passwords of the {} compromised accounts, end their sessions, and tell their owners on another channel.",
            fell.len()
        );
        step += 1;
    }
    if !attackers.is_empty() {
        let prefixes = attackers.iter().filter(|s| s.address.contains('/')).count();
        let _ = writeln!(
            o,
            "  {step}. Block the {} attacking sources{} (`--format csv` gives the list for a firewall).",
            n((attackers.len() - prefixes) as u64),
            if prefixes > 0 {
                format!(" and {prefixes} prefixes")
            } else {
                String::new()
            }
        );
        step += 1;
    }
    if !targeted.is_empty() {
        let _ = writeln!(
            o,
            "  {step}. Check that the targeted accounts have strong passwords and a second factor."
        );
        step += 1;
    }
    if step == 1 {
        let _ = writeln!(o, "  Nothing: no attack found.");
    } else if !r.campaigns.is_empty() {
        let _ = writeln!(
            o,
            "  {step}. Keep remote access open for your users: block the attackers, not the doors."
        );
    }
    o
}
