//! One pass of a [`LogParser`] with the custom rules of the `push/rules` benchmark over
//! generated lines they are for, for counting instructions per line, which unlike time
//! does not depend on what else the machine runs:
//!
//! ```text
//! cargo build --profile bench -p portcullis-parse --example rules_pass
//! valgrind --tool=callgrind --toggle-collect='rules_pass::pass' \
//!     target/release/examples/rules_pass 20000
//! ```
//!
//! The argument is how many lines to generate (default 20,000). Only `pass` is
//! counted, not the generation or the compiling of the rules.

#[allow(dead_code)]
#[path = "../benches/common/mod.rs"]
mod common;

use portcullis_parse::{EnvelopeConfig, LogParser, ParseConfig, YearRule};

#[inline(never)]
fn pass(parser: &mut LogParser, lines: &[String]) -> u64 {
    common::run(parser, lines)
}

fn main() {
    let n = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 20_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("rules_pass: LINES: {e}");
            std::process::exit(2);
        }
    };
    let lines = common::rule_lines(n);
    // As the benchmark reads its lines: UTC, a fixed year.
    let mut parser = LogParser::new(ParseConfig {
        envelope: EnvelopeConfig {
            time_zone: jiff::tz::TimeZone::UTC,
            year: YearRule::Fixed(2024),
        },
        rules: Some(common::rules()),
        ..ParseConfig::default()
    });
    let before = common::thread_cpu_ns();
    let events = pass(&mut parser, &lines);
    let cpu = before
        .zip(common::thread_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a));
    let s = parser.stats();
    println!(
        "{} lines, {events} events, {} not understood{}",
        s.lines,
        s.unparsed_auth_lines,
        cpu.map_or(String::new(), |ns| format!(
            ", {:.0} k lines per CPU-second",
            n as f64 / (ns as f64 / 1e9) / 1e3
        )),
    );
}
