//! One pass of a [`LogParser`] over the parse benchmark's generated documents, for
//! counting instructions per record, which unlike time does not depend on what else the
//! machine runs:
//!
//! ```text
//! cargo build --profile bench -p portcullis-parse --example json_pass
//! valgrind --tool=callgrind --toggle-collect='json_pass::pass' \
//!     target/release/examples/json_pass entra 20000
//! ```
//!
//! The first argument names the input (`w3c`, `entra`, `winlogbeat`, `keycloak`,
//! `custom`), the
//! second how many records to generate (default 20,000). Only `pass` is counted, not
//! the generation.

#[allow(dead_code)]
#[path = "../benches/common/mod.rs"]
mod common;

use portcullis_parse::LogParser;

#[inline(never)]
fn pass(parser: &mut LogParser, lines: &[String]) -> u64 {
    common::run(parser, lines)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: json_pass w3c|entra|winlogbeat|keycloak|custom [RECORDS]");
        std::process::exit(2);
    };
    let n = match args.next().map(|a| a.parse::<usize>()) {
        None => 20_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("json_pass: RECORDS: {e}");
            std::process::exit(2);
        }
    };
    let Some((_, format, lines)) = common::documents(n)
        .into_iter()
        .find(|(input, _, _)| *input == name)
    else {
        eprintln!("json_pass: no input named {name:?}");
        std::process::exit(2);
    };
    let mut parser = LogParser::new(common::document_config(&name, format));
    let before = common::thread_cpu_ns();
    let events = pass(&mut parser, &lines);
    let cpu = before
        .zip(common::thread_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a));
    let s = parser.stats();
    println!(
        "{name}: {} records, {events} events, {} malformed, {} not understood; {} records per CPU-second",
        lines.len(),
        s.malformed_records,
        s.unparsed_auth_lines,
        cpu.filter(|ns| *ns > 0)
            .map_or("?".to_owned(), |ns| format!(
                "{:.0} k",
                lines.len() as f64 / (ns as f64 / 1e9) / 1e3
            )),
    );
}
