use portcullis_parse::eventlog::{self, Path};
use portcullis_parse::{InputFormat, LogParser, ParseConfig};
#[inline(never)]
fn floor(bytes: Vec<u8>) -> u64 {
    let s = || evtx::ParserSettings::new().num_threads(1).indent(false);
    let mut p = evtx::EvtxParser::from_read_seek(std::io::Cursor::new(bytes))
        .unwrap()
        .with_configuration(s());
    let shared = std::sync::Arc::new(s());
    let mut seen = 0u64;
    for chunk in p.chunks() {
        let Ok(mut chunk) = chunk else { continue };
        let Ok(chunk) = chunk.parse(std::sync::Arc::clone(&shared)) else {
            continue;
        };
        let mut at = 512;
        while at < chunk.header.free_space_offset as usize {
            let Ok(h) = evtx::EvtxRecordHeader::from_bytes_at(chunk.data, at) else {
                break;
            };
            seen += 1;
            if h.event_record_id == chunk.header.last_event_record_id {
                break;
            }
            at += h.data_size.max(28) as usize;
        }
    }
    seen
}
fn main() {
    let bytes = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let mode = std::env::args().nth(2).unwrap();
    let n: usize = std::env::args().nth(3).unwrap().parse().unwrap();
    let mut total = 0;
    for _ in 0..n {
        let mut parser = LogParser::new(ParseConfig {
            format: InputFormat::Evtx,
            ..ParseConfig::default()
        });
        let mut out = Vec::new();
        let input = bytes.clone();
        if mode == "floor" {
            total += floor(input) as usize;
            continue;
        }
        let path = if mode == "fast" {
            Path::Fast
        } else {
            Path::Render
        };
        eventlog::read_with(std::io::Cursor::new(input), path, 256 * 1024, |b| {
            parser.push_candidates(&b, None, &mut out);
            true
        })
        .unwrap();
        total += out.len();
    }
    println!("{total}");
}
