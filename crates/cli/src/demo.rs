//! `portcullis demo`: the whole story on embedded defaults.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use portcullis_core::engine::EngineConfig;
use portcullis_sim::{Options, Scenario, Simulation};

use crate::options::ReadOptions;

/// Simulate a Westminster-style attack, find it, and score what was found.
///
/// Writes the built-in `westminster` scenario (9,000 accounts; a 12-hour password spray
/// from ~1,500 sources in 36 hours of ordinary traffic, plus a brute forcer and a
/// credential-stuffing burst) into a temporary folder, analyses the logs as
/// `portcullis analyze` would, and prints the analysis beside its score against the
/// simulation's truth. Needs no configuration and no network.
///
/// Examples:
///   portcullis demo
///   portcullis demo --seed 7 --keep /tmp/westminster
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DemoArgs {
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Another built-in scenario (see `portcullis simulate --list`).
    #[arg(long, default_value = "westminster")]
    scenario: String,

    /// Keep the logs, truth and report in this folder instead of deleting them.
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let scenario = Scenario::built_in(&args.scenario)?;
    let zone = scenario.time_zone.clone();
    let year = scenario.start_zoned()?.year();
    let sim = Simulation::new(
        scenario,
        Options {
            seed: args.seed,
            scale: 1.0,
        },
    )?;
    let (dir, _cleanup) = match &args.keep {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()));
            (d.clone(), Some(RemoveOnDrop(d)))
        }
    };
    eprintln!(
        "portcullis demo: simulating {} (seed {}) into {}",
        sim.scenario().name,
        args.seed,
        dir.display()
    );
    let truth = crate::simulate::write_files(&sim, &dir, true, &ProgressBar::hidden())?;
    let files: Vec<String> = truth
        .files
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    eprintln!("portcullis demo: analysing {} lines", truth.lines);
    let read = ReadOptions {
        year: Some(year),
        timezone: Some(zone),
        domain: "keep".into(),
        keep_windows_domain: false,
        case_sensitive: false,
        max_line: portcullis_parse::reader::DEFAULT_MAX_LINE,
        input_format: portcullis_parse::InputFormat::Auto,
        trusted_proxy: Vec::new(),
        parse_config: None,
    };
    let report = crate::analyze::analyze_files(&files, &read, EngineConfig::default(), true)?;
    if args.keep.is_some() {
        let p = dir.join("report.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", crate::analyze::text(&report, false, colour));
    let score = portcullis_sim::score::score(&truth, &report);
    println!(
        "\n{}",
        if colour {
            "\x1b[1mHOW THAT COMPARES WITH THE TRUTH\x1b[0m"
        } else {
            "HOW THAT COMPARES WITH THE TRUTH"
        }
    );
    print!("{}", crate::eval::text(&truth, &score, &[]));
    Ok(ExitCode::SUCCESS)
}

/// Removes the demo's temporary folder when the demo ends, however it ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
