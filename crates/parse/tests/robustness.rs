//! Bad input never panics and never yields a wrong event.
//!
//! Random bytes, and real corpus lines mutated at random, go through the whole driver
//! (envelope, routing, every service parser, correlation). Whatever comes out must be
//! anchored in the input: an event's source address appears in the line that produced
//! it (or, for an attempt correlated across lines, a line of the input).

use std::net::IpAddr;
use std::sync::Arc;

use portcullis_core::{Event, Origin};
use portcullis_parse::{LineReader, LogParser, ParseConfig};
use proptest::prelude::*;

fn corpus_lines() -> Vec<String> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/fail2ban");
    let mut lines = Vec::new();
    for f in ["dovecot.log", "postfix.log", "sshd.log", "sshd-journal.log"] {
        let text =
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("corpus {f}: {e}"));
        lines.extend(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    lines
}

/// Every spelling of `addr` that may stand in a log line.
fn spelled_in(addr: IpAddr, text: &str) -> bool {
    text.contains(&addr.to_string())
        || match addr {
            IpAddr::V6(v6) => {
                text.to_ascii_lowercase().contains(&v6.to_string()) || expanded_v6_present(v6, text)
            }
            IpAddr::V4(_) => false,
        }
}

fn expanded_v6_present(v6: std::net::Ipv6Addr, text: &str) -> bool {
    // Any token in the text that parses to the same address.
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .filter_map(|t| {
            t.trim_matches(':')
                .parse::<IpAddr>()
                .ok()
                .or_else(|| t.parse().ok())
        })
        .any(|a| a == IpAddr::V6(v6))
}

fn feed(lines: &[Vec<u8>]) -> Vec<Event> {
    let mut p = LogParser::new(ParseConfig::default());
    let mut out = Vec::new();
    let file: Arc<str> = Arc::from("fuzz");
    for (i, l) in lines.iter().enumerate() {
        p.push(
            l,
            &Origin {
                file: Some(file.clone()),
                line: i as u64 + 1,
                offset: 0,
            },
            &mut out,
        );
    }
    p.finish(&mut out);
    out
}

fn check_anchored(lines: &[Vec<u8>], events: &[Event]) -> Result<(), TestCaseError> {
    for e in events {
        prop_assert!(e.attempts >= 1);
        prop_assert!(e.origin.line >= 1 && e.origin.line as usize <= lines.len());
        if let Some(src) = e.source {
            // Correlated events may take the address from a later line of the same
            // connection (sshd names the peer only on the close), so the address must
            // be in the input, preferably on the event's own line.
            let own = String::from_utf8_lossy(&lines[e.origin.line as usize - 1]).into_owned();
            let anywhere = spelled_in(src, &own)
                || lines
                    .iter()
                    .any(|l| spelled_in(src, &String::from_utf8_lossy(l)));
            prop_assert!(
                anywhere,
                "source {src} is in no input line (event at {own:?})"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..40)) {
        let events = feed(&lines);
        check_anchored(&lines, &events)?;
    }

    #[test]
    fn mutated_real_lines(picks in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..6)), 1..30)) {
        let corpus = corpus_lines();
        let lines: Vec<Vec<u8>> = picks.iter().map(|(pick, edits)| {
            let mut l = corpus[pick.index(corpus.len())].clone().into_bytes();
            for (at, byte, op) in edits {
                if l.is_empty() { break; }
                let i = at.index(l.len());
                match op {
                    0 => l[i] = *byte,
                    1 => { l.remove(i); }
                    2 => l.insert(i, *byte),
                    _ => l.truncate(i),
                }
            }
            l
        }).collect();
        let events = feed(&lines);
        check_anchored(&lines, &events)?;
    }
}

#[test]
fn every_corpus_line_alone() {
    // Each real line on its own, and the whole corpus in one stream: no panic, anchored.
    let corpus: Vec<Vec<u8>> = corpus_lines().into_iter().map(String::into_bytes).collect();
    for l in &corpus {
        let one = vec![l.clone()];
        let events = feed(&one);
        check_anchored(&one, &events).unwrap();
    }
    let events = feed(&corpus);
    check_anchored(&corpus, &events).unwrap();
    assert!(!events.is_empty());
}

/// Feeds `input` line by line and block by block; both must give the same events and
/// counts.
fn both_paths(input: &[u8], max_line: usize) -> Result<(), TestCaseError> {
    let file: Arc<str> = Arc::from("x");
    let mut by_line = LogParser::new(ParseConfig::default());
    let mut a = Vec::new();
    let mut r = LineReader::with_max_line(input, max_line);
    while let Some(l) = r.next_line().unwrap() {
        by_line.push(
            l.bytes,
            &Origin {
                file: Some(file.clone()),
                line: l.number,
                offset: l.offset,
            },
            &mut a,
        );
    }
    by_line.finish(&mut a);
    by_line.count_oversized(r.oversized());

    let mut by_block = LogParser::new(ParseConfig::default());
    let mut b = Vec::new();
    let mut r = LineReader::with_max_line(input, max_line);
    while let Some(block) = r.next_block().unwrap() {
        by_block.push_block(&block, Some(&file), max_line, &mut b);
    }
    by_block.finish(&mut b);
    by_block.count_oversized(r.oversized());
    prop_assert_eq!(a, b);
    prop_assert_eq!(by_line.stats(), by_block.stats());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn block_path_equals_line_path(picks in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..40), 0u8..8), 1..60), max_line in 20usize..400) {
        let corpus = corpus_lines();
        let mut input = Vec::new();
        for (pick, junk, how) in &picks {
            match how {
                0 => input.extend_from_slice(junk),
                1 => input.extend(std::iter::repeat_n(b'a', max_line + junk.len())),
                _ => input.extend_from_slice(corpus[pick.index(corpus.len())].as_bytes()),
            }
            if *how != 7 {
                input.push(b'\n');
            }
        }
        both_paths(&input, max_line)?;
    }
}

#[test]
fn block_path_equals_line_path_on_the_corpus() {
    let all = corpus_lines().join("\n");
    both_paths(all.as_bytes(), portcullis_parse::reader::DEFAULT_MAX_LINE).unwrap();
}

/// The document fixtures, mutated byte by byte, through the document readers: never a
/// panic, and every source an event reports is written in its record.
fn documents() -> Vec<(portcullis_parse::InputFormat, Vec<u8>)> {
    use portcullis_parse::InputFormat;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        ("exchange-iis.log", InputFormat::W3c),
        ("entra-graph.json", InputFormat::Json),
        ("entra-signinlogs.jsonl", InputFormat::Json),
        ("windows-winlogbeat.jsonl", InputFormat::Json),
        ("windows-get-winevent.json", InputFormat::Json),
        ("keycloak-events.json", InputFormat::Json),
        ("keycloak-log.jsonl", InputFormat::Json),
    ]
    .iter()
    .map(|(name, f)| (*f, std::fs::read(dir.join(name)).expect("fixture")))
    .collect()
}

fn feed_document(format: portcullis_parse::InputFormat, bytes: &[u8]) -> Vec<Event> {
    use portcullis_parse::{Candidates, Prefilter, RecordSplitter};
    let mut picked = Candidates::default();
    if format == portcullis_parse::InputFormat::W3c {
        let mut reader = LineReader::new(bytes);
        let mut pre = Prefilter::new();
        while let Ok(Some(block)) = reader.next_block() {
            pre.take_all(&block, 1 << 16, &mut picked);
        }
    } else {
        let mut s = RecordSplitter::new(1 << 20);
        for chunk in bytes.chunks(97) {
            s.push(chunk, &mut picked);
        }
        s.finish(&mut picked);
    }
    let mut p = LogParser::new(ParseConfig {
        format,
        ..ParseConfig::default()
    });
    let mut out = Vec::new();
    p.push_candidates(&picked, None, &mut out);
    p.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_documents(pick in any::<prop::sample::Index>(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..12)) {
        let docs = documents();
        let (format, mut bytes) = docs[pick.index(docs.len())].clone();
        for (at, byte, op) in &edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = *byte,
                1 => { bytes.remove(i); }
                2 => bytes.insert(i, *byte),
                _ => bytes.truncate(i),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for e in feed_document(format, &bytes) {
            if let Some(a) = e.source {
                prop_assert!(spelled_in(a, &text), "source {a} not in the document");
            }
        }
    }
}
