//! `portcullis eval`: a report scored against a simulation's truth.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use portcullis_core::report::Report;
use portcullis_sim::Truth;
use portcullis_sim::score::{self, Score, Thresholds};

/// Score a report (the JSON of `portcullis analyze`) against the truth of a simulation.
///
/// Prints, per attack kind, how many attacking sources the report named; how many benign
/// sources it flagged (shared gateways, CGNAT, stale devices, others); legitimate users
/// it would have locked out; compromised accounts found and wrongly named; and the delay
/// from each campaign's start to its detection. With thresholds, exits 1 when one is
/// not met (2 on bad input).
///
/// Examples:
///   portcullis eval /tmp/westminster/truth.json report.json
///   portcullis eval truth.json report.json --min-recall all=0.95 --max-lockouts 0 --max-delay 5m
///   portcullis eval truth.json report.json --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EvalArgs {
    /// The simulation's truth.json.
    truth: PathBuf,

    /// The report (portcullis analyze --format json).
    report: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,

    /// Minimum source recall for an attack kind, as KIND=R (KIND may be `all`);
    /// repeatable.
    #[arg(long, value_name = "KIND=R", value_parser = parse_recall)]
    min_recall: Vec<(String, f64)>,

    /// Minimum share of compromised accounts the report names.
    #[arg(long, value_name = "R")]
    min_compromise_recall: Option<f64>,

    /// Maximum share of the report's compromised accounts that did not fall.
    #[arg(long, value_name = "R")]
    max_compromise_fp: Option<f64>,

    /// Maximum share of benign sources reported as attacker.
    #[arg(long, value_name = "R")]
    max_benign_flagged: Option<f64>,

    /// Maximum shared gateways and stale devices reported as attacker.
    #[arg(long, value_name = "N")]
    max_gateways_flagged: Option<u64>,

    /// Maximum legitimate users reported as locked.
    #[arg(long, value_name = "N")]
    max_lockouts: Option<u64>,

    /// Maximum delay from a campaign's start to its detection (e.g. 5m); an undetected
    /// campaign fails it.
    #[arg(long, value_name = "DURATION")]
    max_delay: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EvalFormat {
    /// Tables for a person.
    Text,
    /// The score as JSON.
    Json,
}

fn parse_recall(s: &str) -> Result<(String, f64), String> {
    let (kind, r) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KIND=R, e.g. password_spray=0.95"))?;
    let r: f64 = r
        .parse()
        .map_err(|_| format!("{s:?}: {r:?} is not a number"))?;
    if !(0.0..=1.0).contains(&r) {
        return Err(format!("{s:?}: recall must be between 0 and 1"));
    }
    const KINDS: &[&str] = &[
        "all",
        "brute_force",
        "password_spray",
        "credential_stuffing",
        "targeted",
    ];
    if !KINDS.contains(&kind) {
        return Err(format!("{s:?}: kind must be one of {}", KINDS.join(", ")));
    }
    Ok((kind.to_owned(), r))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}

pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let thresholds = Thresholds {
        min_source_recall: args.min_recall.clone(),
        min_compromise_recall: args.min_compromise_recall,
        max_compromise_false_positive_rate: args.max_compromise_fp,
        max_benign_flagged_rate: args.max_benign_flagged,
        max_gateways_flagged: args.max_gateways_flagged,
        max_locked_out: args.max_lockouts,
        max_delay_seconds: match &args.max_delay {
            Some(d) => Some(
                portcullis_sim::scenario::parse_duration(d)
                    .map_err(|e| anyhow::anyhow!("--max-delay: {e}"))?
                    .as_secs(),
            ),
            None => None,
        },
    };
    let truth: Truth = read_json(&args.truth, "truth file (portcullis simulate)")?;
    let report: Report = read_json(&args.report, "report (portcullis analyze --format json)")?;
    if report.version != portcullis_core::report::VERSION {
        bail!(
            "{}: report version {} is not supported (this is version {})",
            args.report.display(),
            report.version,
            portcullis_core::report::VERSION
        );
    }
    let s = score::score(&truth, &report);
    let fails = score::check(&s, &thresholds);
    match args.format {
        EvalFormat::Json => {
            let out = serde_json::json!({"score": s, "failed": fails});
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        EvalFormat::Text => print!("{}", text(&truth, &s, &fails)),
    }
    Ok(if fails.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn pct(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

pub fn text(truth: &Truth, s: &Score, fails: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Scenario {} (seed {}), {} to {}\n",
        truth.scenario, truth.seed, truth.start, truth.end
    );
    let _ = writeln!(o, "Attacking sources named");
    let _ = writeln!(
        o,
        "  {:<22}{:>9}{:>10}{:>12}{:>9}",
        "kind", "sources", "attacker", "suspicious", "recall"
    );
    for k in &s.attacks {
        let _ = writeln!(
            o,
            "  {:<22}{:>9}{:>10}{:>12}{:>9}",
            k.kind,
            k.sources,
            k.found,
            k.suspicious,
            pct(k.recall)
        );
    }
    let _ = writeln!(o, "\nBenign sources flagged");
    let _ = writeln!(
        o,
        "  {:<22}{:>9}{:>10}{:>12}",
        "class", "sources", "attacker", "suspicious"
    );
    for c in &s.benign {
        let _ = writeln!(
            o,
            "  {:<22}{:>9}{:>10}{:>12}",
            c.class, c.sources, c.attacker, c.suspicious
        );
    }
    let _ = writeln!(
        o,
        "  {:<22}{:>9}{:>10}{:>12}  ({} as attacker)",
        "all",
        s.benign_sources,
        s.benign_flagged,
        s.benign.iter().map(|c| c.suspicious).sum::<u64>(),
        pct(s.benign_flagged_rate)
    );
    let _ = writeln!(o, "\nLegitimate users locked out: {}", s.locked_out.len());
    for u in s.locked_out.iter().take(10) {
        let _ = writeln!(o, "  {u}");
    }
    let c = &s.compromise;
    let _ = writeln!(
        o,
        "\nCompromised accounts: {} fell, {} named ({}), {} named wrongly ({})",
        c.truth,
        c.found,
        pct(c.recall),
        c.false_positives.len(),
        pct(c.false_positive_rate)
    );
    for (what, list) in [("missed", &c.missed), ("wrongly named", &c.false_positives)] {
        if !list.is_empty() {
            let shown: Vec<&str> = list.iter().take(10).map(String::as_str).collect();
            let more = if list.len() > 10 {
                format!(" and {} more", list.len() - 10)
            } else {
                String::new()
            };
            let _ = writeln!(o, "  {what}: {}{more}", shown.join(", "));
        }
    }
    let _ = writeln!(o, "\nCampaigns");
    let _ = writeln!(
        o,
        "  {:<5}{:<22}{:<32}detected after",
        "id", "kind", "start"
    );
    for k in &s.campaigns {
        let delay = match k.delay_seconds {
            Some(d) => format!("{} min {:02} s", d / 60, d % 60),
            None => "not detected".to_owned(),
        };
        let _ = writeln!(o, "  {:<5}{:<22}{:<32}{delay}", k.id, k.kind, k.start);
    }
    if fails.is_empty() {
        let _ = writeln!(o, "\nThresholds: all met");
    } else {
        let _ = writeln!(o, "\nThresholds not met:");
        for f in fails {
            let _ = writeln!(o, "  {f}");
        }
    }
    o
}
