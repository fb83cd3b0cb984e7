//! The `portcullis` binary: subcommands, options, and the wiring of inputs to the
//! parsing library. Everything that can be pure lives in the library crates; this crate
//! opens files, reads the clock and prints.

mod analyze;
mod audit;
mod breach;
mod demo;
mod eval;
mod events;
mod input;
mod live;
mod merge;
mod options;
mod password;
mod pipeline;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Events are allocated on the parsing thread and freed on the output thread, hundreds
/// of thousands a second; mimalloc handles that pattern far better than the system
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Portcullis protects an organisation's accounts against password-guessing attacks.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Demo(demo::DemoArgs),
    Analyze(analyze::AnalyzeArgs),
    Events(events::EventsArgs),
    Simulate(simulate::SimulateArgs),
    Eval(eval::EvalArgs),
    Audit(audit::AuditArgs),
    Password(password::PasswordArgs),
    Breach(breach::BreachArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Events(args) => events::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Password(args) => password::run(&args),
        Command::Breach(args) => breach::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One clear line: the error and its causes.
            eprintln!("portcullis: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
