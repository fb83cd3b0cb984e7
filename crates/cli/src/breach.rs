//! `portcullis breach`: build, query, describe and serve the breached-password index.

mod serve;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use portcullis_breach::{
    BuildOptions, FilterKind, HashKind, Index, Progress, build, parse_hex_hash,
};

use crate::input;

/// The breached-password index: build it from the Pwned Passwords download or password
/// lists, check passwords against it, describe it, serve the Pwned Passwords range API.
///
/// Exit status of `check`: 0 not breached, 1 breached, 2 error.
///
/// Examples:
///   portcullis breach build pwnedpasswords.txt -o pwned.pcb
///   portcullis breach build --full pwnedpasswords/ -o pwned-full.pcb
///   portcullis breach check --index pwned.pcb
///   portcullis breach info pwned.pcb
///   portcullis breach serve --index pwned-full.pcb --listen 127.0.0.1:8642
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct BreachArgs {
    #[command(subcommand)]
    command: BreachCommand,
}

#[derive(Debug, Subcommand)]
enum BreachCommand {
    Build(BuildArgs),
    Check(CheckArgs),
    Info(InfoArgs),
    Serve(serve::ServeArgs),
}

pub fn run(args: &BreachArgs) -> Result<ExitCode> {
    match &args.command {
        BreachCommand::Build(a) => run_build(a),
        BreachCommand::Check(a) => run_check(a),
        BreachCommand::Info(a) => run_info(a),
        BreachCommand::Serve(a) => serve::run(a),
    }
}

/// Build an index from the Pwned Passwords download or from password lists.
///
/// Inputs: files of `HASH:COUNT` lines (40 hex digits SHA-1 or 32 NTLM, LF or CRLF,
/// plain or gzip), folders of per-prefix files as the official downloader writes
/// them (`00000.txt` or `00000`, holding `SUFFIX:COUNT` lines), or password lists
/// (one password a line; recognised when the lines are not hashes, or forced with
/// --plain). Malformed lines are skipped and counted. Memory stays within --memory
/// whatever the input's size: sorted runs spill to a temporary folder beside the
/// output (or --temp-dir).
///
/// Examples:
///   portcullis breach build pwnedpasswords.txt -o pwned.pcb
///   portcullis breach build --kind ntlm pwnedpasswords_ntlm/ -o ntlm.pcb
///   portcullis breach build --full --filter pwnedpasswords.txt.gz -o full.pcb
///   portcullis breach build --plain --kind ntlm rockyou.txt -o rockyou-ntlm.pcb
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct BuildArgs {
    /// Input files or folders.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,

    /// The index file to write.
    #[arg(short, long, value_name = "INDEX")]
    output: PathBuf,

    /// Hash kind of the index (default: that of the hash inputs; sha1 for password
    /// lists).
    #[arg(long, value_enum)]
    kind: Option<Kind>,

    /// Read every input as a password list (one password a line).
    #[arg(long)]
    plain: bool,

    /// Keep every bit of every hash and exact counts (about 21 bytes a SHA-1 hash
    /// instead of under 6): exact, and needed by `breach serve`.
    #[arg(long)]
    full: bool,

    /// Keep no counts: every breached hash reports a count of 1.
    #[arg(long)]
    no_counts: bool,

    /// Add a binary fuse filter in front of the index: `--filter` or `--filter=8`
    /// (about 1.13 bytes a hash, false positives 1/256), `--filter=16` (2.25 bytes,
    /// 1/65,536). Needs about 48 bytes of memory a hash while building.
    #[arg(long, value_name = "BITS", num_args = 0..=1, require_equals = true, default_missing_value = "8", value_parser = ["8", "16"])]
    filter: Option<String>,

    /// Memory budget, e.g. 512M, 2G (K, M, G, T are powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    memory: String,

    /// Folder for the sorted runs (default: the output's folder).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,

    /// Do not print the summary or the progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// SHA-1 (Pwned Passwords' default).
    Sha1,
    /// NTLM (MD4 of UTF-16LE), as Active Directory stores.
    Ntlm,
}

/// Check one password (or hash) against an index.
///
/// The password is read from standard input (one line, its line ending dropped) when
/// standard input is not a terminal, otherwise from a prompt that does not echo. It
/// is never taken from the command line, where other users could see it, and never
/// printed. Exit status: 0 not breached, 1 breached, 2 error.
///
/// Examples:
///   portcullis breach check --index pwned.pcb
///   printf '%s\n' "$candidate" | portcullis breach check --index pwned.pcb
///   portcullis breach check --index pwned.pcb --hash 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// The index to check against.
    #[arg(long, value_name = "INDEX")]
    index: PathBuf,

    /// Check this hash (hex, of the index's kind) instead of a password.
    #[arg(long, value_name = "HEX")]
    hash: Option<String>,
}

/// Describe an index: kind, hashes, size, bytes a hash, format and options.
///
/// Examples:
///   portcullis breach info pwned.pcb
///   portcullis breach info --verify pwned.pcb
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InfoArgs {
    /// The index file.
    #[arg(value_name = "INDEX")]
    index: PathBuf,

    /// Also read the whole file and check its structure.
    #[arg(long)]
    verify: bool,
}

fn run_build(args: &BuildArgs) -> Result<ExitCode> {
    let memory = parse_size(&args.memory)?;
    let options = BuildOptions {
        kind: args.kind.map(|k| match k {
            Kind::Sha1 => HashKind::Sha1,
            Kind::Ntlm => HashKind::Ntlm,
        }),
        plain: args.plain,
        full: args.full,
        counts: !args.no_counts,
        filter: match args.filter.as_deref() {
            None => None,
            Some("16") => Some(FilterKind::Fuse16),
            Some(_) => Some(FilterKind::Fuse8),
        },
        memory,
        temp_dir: args.temp_dir.clone(),
    };
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        input::bar(0, "{msg:8} {bar:40} {pos}/{len} {per_sec} ETA {eta}")
    };
    let mut on_progress = |p: Progress| match p {
        Progress::Read { bytes, total } => {
            bar.set_message("reading");
            bar.set_length(total);
            bar.set_position(bytes);
        }
        Progress::Write { done, total } => {
            bar.set_message("writing");
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let report = build(&args.inputs, &args.output, &options, &mut on_progress)
        .with_context(|| format!("cannot build {}", args.output.display()))?;
    bar.finish_and_clear();
    if !args.quiet {
        let h = &report.header;
        eprintln!(
            "indexed {} distinct {} hashes from {} lines of {} files into {} ({} bytes, {:.2} bytes a hash, {}; {} sorted runs spilled)",
            h.hashes,
            h.kind,
            report.lines,
            report.files,
            args.output.display(),
            report.file_len,
            report.file_len as f64 / h.hashes.max(1) as f64,
            if h.full { "full" } else { "compact" },
            report.runs,
        );
        if report.malformed > 0 {
            let at: Vec<String> = report
                .malformed_examples
                .iter()
                .map(|(f, l)| format!("{}:{l}", f.display()))
                .collect();
            eprintln!(
                "skipped {} malformed lines (first at {})",
                report.malformed,
                at.join(", ")
            );
        }
        if report.empty_lines > 0 {
            eprintln!("skipped {} empty lines", report.empty_lines);
        }
        if !report.skipped_files.is_empty() {
            eprintln!(
                "skipped {} files not named by a five-digit hash prefix (first: {})",
                report.skipped_files.len(),
                report.skipped_files[0].display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_check(args: &CheckArgs) -> Result<ExitCode> {
    let index = Index::open(&args.index)
        .with_context(|| format!("cannot open {}", args.index.display()))?;
    let kind = index.kind();
    let hash: Vec<u8> = match &args.hash {
        Some(text) => {
            let (given, hash) = parse_hex_hash(text)
                .context("--hash must be 40 (SHA-1) or 32 (NTLM) hexadecimal digits")?;
            if given != kind {
                bail!("--hash is a {given} hash but the index holds {kind} hashes");
            }
            hash.0[..kind.byte_len()].to_vec()
        }
        None => {
            let password = crate::password::read_password()?;
            match kind {
                HashKind::Sha1 => portcullis_breach::sha1(password.as_bytes()).to_vec(),
                HashKind::Ntlm => portcullis_breach::ntlm(&password).to_vec(),
            }
        }
    };
    let found = index.check(&hash)?;
    let mut out = io::stdout().lock();
    match found {
        Some(count) => {
            let approx = if index.header().count_bits == 8 && count > 16 {
                "about "
            } else {
                ""
            };
            if index.header().count_bits == 0 {
                writeln!(out, "breached: in the index (it keeps no counts)")?;
            } else {
                writeln!(out, "breached: seen {approx}{count} times")?;
            }
            Ok(ExitCode::from(1))
        }
        None => {
            writeln!(out, "not found among {} breached hashes", index.len())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_info(args: &InfoArgs) -> Result<ExitCode> {
    let index = Index::open(&args.index)
        .with_context(|| format!("cannot open {}", args.index.display()))?;
    let h = index.header();
    let n = index.len();
    let mut out = io::stdout().lock();
    writeln!(out, "index:          {}", args.index.display())?;
    writeln!(
        out,
        "format version: {}",
        portcullis_breach::format::VERSION
    )?;
    writeln!(out, "kind:           {}", h.kind)?;
    writeln!(out, "hashes:         {n}")?;
    writeln!(
        out,
        "size:           {} bytes ({:.2} bytes a hash)",
        index.file_len(),
        index.file_len() as f64 / n.max(1) as f64
    )?;
    if h.full {
        writeln!(
            out,
            "mode:           full (every bit of every hash; exact; serves ranges)"
        )?;
    } else {
        writeln!(
            out,
            "mode:           compact (top 64 bits of each hash; false positives {:.1e} a query)",
            n as f64 / 2f64.powi(64)
        )?;
    }
    let counts = match h.count_bits {
        0 => "off (breached hashes report 1)",
        8 => "on, one byte (exact to 16, else within 6.25 %)",
        _ => "on, exact (32 bits)",
    };
    writeln!(out, "counts:         {counts}")?;
    match h.filter {
        None => writeln!(out, "filter:         off")?,
        Some(f) => writeln!(
            out,
            "filter:         {} ({} bytes, false positives {:.4} %)",
            f.name(),
            h.filter_bytes,
            f.false_positive_rate() * 100.0
        )?,
    }
    writeln!(
        out,
        "layout:         2^{} buckets, {} stored key bits, {} count bits an entry",
        h.bucket_bits, h.key_bits, h.count_bits
    )?;
    if args.verify {
        index
            .verify()
            .with_context(|| format!("{} failed verification", args.index.display()))?;
        writeln!(out, "verified:       yes")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `512M`, `2G`, `1.5G`, `4096` (bytes); K, M, G, T are powers of 1024, an optional
/// `B` or `iB` may follow.
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => bail!("cannot read the size {text:?} (write e.g. 512M or 2G)"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .with_context(|| format!("cannot read the size {text:?} (write e.g. 512M or 2G)"))?;
    Ok((value * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("2X").is_err());
    }
}
