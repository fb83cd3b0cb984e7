//! The `portcullis` binary: subcommands, options, and the wiring of inputs to the
//! parsing library. Everything that can be pure lives in the library crates; this crate
//! opens files, reads the clock and prints.

mod analyze;
mod audit;
mod breach;
mod daemon;
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
    /// The protection daemon: follows logs, bans attackers, serves the admin API.
    Run(daemon::RunArgs),
    /// Checks a daemon configuration file and says what it would run.
    CheckConfig(daemon::CheckConfigArgs),
    /// What a running daemon is doing: counts, bans and locks in force.
    Status(daemon::StatusArgs),
    /// Bans an address or network on a running daemon.
    Ban(daemon::BanArgs),
    /// Lifts a ban on a running daemon.
    Unban(daemon::UnbanArgs),
    /// Unlocks an account on a running daemon.
    Unlock(daemon::UnlockArgs),
    /// Switches lockdown on or off on a running daemon: only familiar places log in.
    Lockdown(daemon::LockdownArgs),
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
        Command::Run(args) => daemon::run(&args),
        Command::CheckConfig(args) => daemon::check_config(&args),
        Command::Status(args) => daemon::status(&args),
        Command::Ban(args) => daemon::ban(&args),
        Command::Unban(args) => daemon::unban(&args),
        Command::Unlock(args) => daemon::unlock(&args),
        Command::Lockdown(args) => daemon::lockdown(&args),
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
