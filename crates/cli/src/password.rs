//! `portcullis password check`: the NIST SP 800-63B password-change check.

use std::io::{self, BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use portcullis_audit::password::Reason;
use portcullis_audit::{BreachLookup, Policy, Verdict, check_password};

/// Password policy checks.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(subcommand)]
    command: PasswordCommand,
}

#[derive(Debug, Subcommand)]
enum PasswordCommand {
    Check(CheckArgs),
}

/// Check a proposed password against NIST SP 800-63B rev. 4.
///
/// Length (15 characters alone, 8 with MFA; Unicode counted in code points), no
/// composition rules, and a blocklist of breached, common and context-specific words
/// (user name, organisation, service), with leetspeak and affixes normalised. zxcvbn's
/// score and advice come with the verdict.
///
/// The password is read from standard input (its first line) when that is not a
/// terminal, else from a prompt that does not echo; never from the command line.
///
/// Exit status: 0 accepted, 1 rejected, 2 error.
///
/// Examples:
///   portcullis password check --user j.smith --org Parliament
///   printf '%s\n' "$NEW_PASSWORD" | portcullis password check --mfa --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct CheckArgs {
    /// The account's user name.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// The organisation's name.
    #[arg(long, value_name = "NAME")]
    org: Option<String>,

    /// The service's name.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,

    /// The password is one factor of several (minimum length 8 instead of 15).
    #[arg(long)]
    mfa: bool,

    /// The minimum length that applies (instead of 15, or 8 with --mfa).
    #[arg(long, value_name = "N")]
    min_length: Option<usize>,

    /// A list of breached passwords (as for `audit --breached-list`). Repeatable.
    #[arg(long, value_name = "FILE")]
    breached_list: Vec<String>,

    /// A breached-password index (`portcullis breach build`). Repeatable.
    #[arg(long, value_name = "INDEX")]
    index: Vec<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A sentence for a person.
    Text,
    /// The verdict as JSON (the `POST /v1/password/check` answer).
    Json,
}

pub fn run(args: &PasswordArgs) -> Result<ExitCode> {
    match &args.command {
        PasswordCommand::Check(c) => check(c),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    let password = read_password()?;
    let mut policy = Policy::default();
    if let Some(n) = args.min_length {
        if args.mfa {
            policy.min_length_with_mfa = n;
        } else {
            policy.min_length_single_factor = n;
        }
    }
    let chain = crate::audit::lookups(&args.index, &args.breached_list)?;
    let lookup: Option<&dyn BreachLookup> = if chain.is_empty() { None } else { Some(&chain) };
    let org: Vec<String> = args.org.iter().cloned().collect();
    let context = portcullis_audit::Context {
        username: args.user.as_deref(),
        org_words: &org,
        service: args.service.as_deref(),
        mfa: args.mfa,
    };
    let verdict = check_password(&password, &context, &policy, lookup);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verdict).context("cannot write the verdict")?
        ),
        Format::Text => print!("{}", text(&verdict)),
    }
    Ok(if verdict.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The password to check: one line from standard input (its line ending dropped,
/// nothing else), or a prompt without echo on a terminal; never the command line.
pub fn read_password() -> Result<String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password("Password: ").context("cannot read the password");
    }
    let mut line = Vec::new();
    stdin
        .lock()
        .read_until(b'\n', &mut line)
        .context("cannot read the password from standard input")?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    String::from_utf8(line).context("the password on standard input is not UTF-8")
}

fn text(v: &Verdict) -> String {
    let mut out = if v.accepted {
        format!("accepted (strength {}/4)\n", v.score)
    } else {
        format!("rejected (strength {}/4)\n", v.score)
    };
    for r in &v.reasons {
        let line = match r {
            Reason::TooShort { length, minimum } => {
                format!("too short: {length} characters, at least {minimum}")
            }
            Reason::TooLong { length, maximum } => {
                format!("too long: {length} characters, at most {maximum}")
            }
            Reason::Breached { count } => format!("seen {count} times in breaches"),
            Reason::Common => "a common password (or one with a few characters changed)".into(),
            Reason::EqualsUsername => "the user name".into(),
            Reason::ContextWord { word } => format!("contains {word:?}"),
            Reason::WeakScore { score, minimum } => {
                format!("too easy to guess: strength {score}, at least {minimum}")
            }
        };
        out.push_str(&format!("  - {line}\n"));
    }
    if let Some(w) = &v.feedback.warning {
        out.push_str(&format!("  warning: {w}\n"));
    }
    for s in &v.feedback.suggestions {
        out.push_str(&format!("  suggestion: {s}\n"));
    }
    out
}
