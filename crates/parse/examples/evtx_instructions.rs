//! Reads an `.evtx` file a number of times by one path, for counting instructions per
//! record with callgrind, which a loaded machine does not disturb as it does timings:
//!
//! ```text
//! cargo build --release -p portcullis-parse --example evtx_instructions
//! valgrind --tool=callgrind --toggle-collect='evtx_instructions::read' \
//!     target/release/examples/evtx_instructions Security.evtx fast 10
//! ```
//!
//! The path is `fast` (Portcullis' `.evtx` path), `render` (every record rendered by the
//! `evtx` crate) or `chunks` (the crate's chunks read and their records' headers
//! walked, the floor under both; collect `evtx_instructions::chunks` instead). The
//! parser and the copy of the file are made outside the collected function, so
//! instructions ÷ passes ÷ records is the path's cost per record.

use std::error::Error;
use std::sync::Arc;

use portcullis_parse::eventlog::{self, Path};
use portcullis_parse::{InputFormat, LogParser, ParseConfig};

/// The crate's chunks found, read and parsed, and their records' headers walked.
#[inline(never)]
fn chunks(bytes: Vec<u8>) -> Result<u64, Box<dyn Error>> {
    let settings = || evtx::ParserSettings::new().num_threads(1).indent(false);
    let mut parser = evtx::EvtxParser::from_read_seek(std::io::Cursor::new(bytes))?
        .with_configuration(settings());
    let shared = Arc::new(settings());
    let mut records = 0;
    for chunk in parser.chunks() {
        let Ok(mut chunk) = chunk else { continue };
        let Ok(chunk) = chunk.parse(Arc::clone(&shared)) else {
            continue;
        };
        let mut at = 512;
        while at < chunk.header.free_space_offset as usize {
            let Ok(header) = evtx::EvtxRecordHeader::from_bytes_at(chunk.data, at) else {
                break;
            };
            records += 1;
            if header.event_record_id == chunk.header.last_event_record_id {
                break;
            }
            at += header.data_size.max(28) as usize;
        }
    }
    Ok(records)
}

/// Portcullis' path: the file's records read by `path`, their events made.
#[inline(never)]
fn read(bytes: Vec<u8>, path: Path, parser: &mut LogParser) -> Result<u64, Box<dyn Error>> {
    let mut events = Vec::new();
    let counts = eventlog::read_with(std::io::Cursor::new(bytes), path, 256 * 1024, |b| {
        parser.push_candidates(&b, None, &mut events);
        true
    })?;
    Ok(counts.records)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, path, passes] = &args[..] else {
        return Err("usage: evtx_instructions FILE fast|render|chunks PASSES".into());
    };
    let bytes = std::fs::read(file)?;
    let passes: usize = passes.parse()?;
    let mut total = 0;
    for _ in 0..passes {
        let mut parser = LogParser::new(ParseConfig {
            format: InputFormat::Evtx,
            ..ParseConfig::default()
        });
        let input = bytes.clone();
        let path = match path.as_str() {
            "fast" => Path::Fast,
            "render" => Path::Render,
            "chunks" => {
                total += chunks(input)?;
                continue;
            }
            other => return Err(format!("no path {other}").into()),
        };
        total += read(input, path, &mut parser)?;
    }
    println!("{total} records read");
    Ok(())
}
