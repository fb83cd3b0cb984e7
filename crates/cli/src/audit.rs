//! `portcullis audit`: weak, breached, shared and empty passwords in hash exports.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use portcullis_audit::line::Rejection;
use portcullis_audit::report::CSV_COLUMNS;
use portcullis_audit::{
    Audit, AuditOptions, BreachLookup, CandidateOptions, HashSetLookup, Inventory, LookupChain,
    Report,
};

use crate::events::cell;
use crate::input;

/// Find weak, breached, shared and empty passwords in password-hash exports.
///
/// Reads pwdump/secretsdump (`user:rid:lm:nt:::`), Dovecot passwd-file
/// (`user:{SCHEME}hash:uid:gid:…`), shadow and htpasswd lines, mixed freely, plain or
/// gzip. Reports plaintext storage, empty passwords, breached passwords, passwords
/// guessed from common/organisation/season/user-name candidates, passwords equal to
/// the user name, accounts sharing a password, stored LM hashes and weak schemes,
/// worst first, each with what to do. Passwords and hashes are never printed unless
/// --reveal is given. See docs/audit.md.
///
/// Exit status: 0 no findings, 1 findings, 2 error.
///
/// Examples:
///   portcullis audit ntds.dit.ntds                 # secretsdump output
///   portcullis audit --org "Houses of Parliament" --words words.txt /etc/dovecot/users
///   portcullis audit --breached-list leaked.txt --time-budget 10m --format json -o audit.json users
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AuditArgs {
    /// Hash exports to read (`-` for standard input; gzip is recognised by content).
    #[arg(required = true, value_name = "HASHFILE")]
    files: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<String>,

    /// Print recovered passwords and stored hashes in the report.
    #[arg(long)]
    reveal: bool,

    /// A list of breached passwords held in memory: one password, `HASH` or
    /// `HASH:COUNT` (SHA-1 or NT, hex) a line. Repeatable. Fine for small lists.
    #[arg(long, value_name = "FILE")]
    breached_list: Vec<String>,

    /// A breached-password index (`portcullis breach build`, SHA-1 or NTLM; compact or
    /// full). Repeatable: give one of each kind to check both NT and SHA-1 hashes.
    #[arg(long, value_name = "INDEX")]
    index: Vec<std::path::PathBuf>,

    /// The organisation's name: it and its usual mutations are guessed and banned.
    #[arg(long, value_name = "NAME")]
    org: Option<String>,

    /// A file of organisation words (one a line: products, places, teams).
    #[arg(long, value_name = "FILE")]
    words: Option<String>,

    /// Most guesses per salted hash (user-specific ones included).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    candidates: u32,

    /// Stop guessing after this long (`90s`, `10m`, `1h30m`); the report says how
    /// many hashes were not fully checked.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    time_budget: Option<Duration>,

    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A report for a person, worst findings first.
    Text,
    /// The versioned report (docs/audit.md).
    Json,
    /// One row per account per finding.
    Csv,
}

/// The longest line read; a longer one is skipped whole and counted.
const MAX_LINE: u64 = 64 * 1024;

pub fn run(args: &AuditArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let mut inventory = Inventory::new();
    for name in &args.files {
        read_export(name, &mut inventory)?;
    }
    let lookup = breach_lookup(args)?;
    let words = match &args.words {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {path}"))?
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty() && !w.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let year = i32::from(jiff::Zoned::now().year());
    let options = AuditOptions {
        candidates: CandidateOptions {
            cap: args.candidates as usize,
            org: args.org.clone(),
            words,
            // Passwords set in the last few years, and next year's for those who
            // change in December.
            years: (year - 3)..=(year + 1),
        },
        reveal: args.reveal,
        deadline: args.time_budget.map(|b| start + b),
    };
    let audit = Audit::new(&inventory, &options);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        input::bar(
            audit.planned_guesses(),
            "{bar:40} {pos}/{len} guesses {per_sec} ETA {eta}",
        )
    };
    let lookup_ref: Option<&dyn BreachLookup> = if lookup.is_empty() {
        None
    } else {
        Some(&lookup)
    };
    let report = audit.run(lookup_ref, &|n| bar.inc(n));
    bar.finish_and_clear();
    write_report(args, &report)?;
    if !args.quiet {
        eprintln!("{}", summary(&report));
    }
    Ok(if report.has_findings() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The breach lookups: the indexes and the in-memory lists.
fn breach_lookup(args: &AuditArgs) -> Result<LookupChain> {
    lookups(&args.index, &args.breached_list)
}

/// A chain of the breached-password indexes and lists given on the command line.
pub fn lookups(indexes: &[std::path::PathBuf], lists: &[String]) -> Result<LookupChain> {
    let mut chain = LookupChain::new();
    for path in indexes {
        let index = portcullis_breach::Index::open(path)
            .with_context(|| format!("cannot open the index {}", path.display()))?;
        chain.push(Box::new(index));
    }
    for path in lists {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        let mut list = HashSetLookup::new();
        list.add_list(&text);
        chain.push(Box::new(list));
    }
    Ok(chain)
}

fn read_export(name: &str, inventory: &mut Inventory) -> Result<()> {
    let opened = input::open(name, &ProgressBar::hidden())?;
    let file = inventory.add_file(name);
    let mut reader = BufReader::with_capacity(256 * 1024, opened.reader);
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') && buf.len() as u64 > MAX_LINE {
            skip_rest_of_line(&mut reader).with_context(|| format!("cannot read {name}"))?;
            inventory.push_rejected(file, number, Rejection::TooLong);
            continue;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        match std::str::from_utf8(&buf) {
            Ok(text) => inventory.push_line(file, number, text),
            Err(_) => inventory.push_rejected(file, number, Rejection::NotUtf8),
        }
    }
    Ok(())
}

fn skip_rest_of_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = memchr(b'\n', buf) {
            reader.consume(i + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

fn write_report(args: &AuditArgs, report: &Report) -> Result<()> {
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("cannot create {path}"))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = io::BufWriter::new(out);
    let result = match args.format {
        Format::Text => out.write_all(report.to_text(50).as_bytes()),
        Format::Json => serde_json::to_writer_pretty(&mut out, report)
            .map_err(io::Error::other)
            .and_then(|()| out.write_all(b"\n")),
        Format::Csv => write_csv(&mut out, report),
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write the report"),
    }
}

fn write_csv(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS).map_err(io::Error::other)?;
    for row in report.csv_rows() {
        // User names come from the export: neutralise spreadsheet formulas.
        w.write_record(row.iter().map(|c| cell(c)))
            .map_err(io::Error::other)?;
    }
    w.flush()
}

fn summary(report: &Report) -> String {
    use portcullis_audit::report::thousands;
    let i = &report.input;
    let rejected: u64 = i.rejected.values().sum();
    let mut s = format!(
        "portcullis: {} accounts, {} with findings; {} lines not understood",
        thousands(i.accounts),
        thousands(report.accounts.len() as u64),
        thousands(rejected),
    );
    let c = &report.checks;
    if c.stopped_by_time_budget {
        s.push_str(&format!(
            "; time budget ran out: {} of {} salted hashes not fully checked",
            thousands(c.partially_checked + c.not_checked),
            thousands(c.slow_hashes)
        ));
    }
    if report.checks.revealed {
        s.push_str("; the report contains passwords (--reveal)");
    }
    s
}

/// `90s`, `10m`, `1h30m`, `2h`, `500ms`: a sum of numbers with units.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            bail!("{text:?}: expected a number, e.g. 90s, 10m, 1h30m");
        }
        let n: u64 = rest[..digits]
            .parse()
            .with_context(|| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => bail!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)"),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }
}
