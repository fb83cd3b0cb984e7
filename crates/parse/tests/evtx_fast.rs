//! The `.evtx` fast path against the rendering path it stands in for.
//!
//! [`eventlog::read`] reads records from their substitution values and renders only
//! what it cannot read; [`Path::Render`] renders every record with the `evtx` crate, as
//! Portcullis did before. Both go through the same Windows reader, so for every record
//! of the real samples, and of damaged copies of them, the events must be the same,
//! field by field, with the same counts. (`evtx.rs` holds both samples to an
//! independent reader, python-evtx.)

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_core::Event;
use portcullis_parse::eventlog::{self, Counts, Path};
use portcullis_parse::{InputFormat, LogParser, ParseConfig, Stats};
use proptest::prelude::*;

/// A sample decompressed.
fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evtx")
        .join(format!("{name}.evtx.gz"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// The events, the parser's counts and the reader's counts of `bytes` read by `path`
/// (`None` if the file is not an EVTX file at all).
fn read(bytes: &[u8], path: Path) -> Option<(Vec<Event>, Stats, Counts)> {
    let mut parser = LogParser::new(ParseConfig {
        format: InputFormat::Evtx,
        ..ParseConfig::default()
    });
    let file: Arc<str> = Arc::from("Security.evtx");
    let mut out = Vec::new();
    // A small batch size, so that batches end mid-chunk.
    let counts = eventlog::read_with(std::io::Cursor::new(bytes.to_vec()), path, 4096, |b| {
        parser.push_candidates(&b, Some(&file), &mut out);
        true
    })
    .ok()?;
    parser.finish(&mut out);
    Some((out, *parser.stats(), counts))
}

/// Both paths on `bytes`: the same events and counts. Returns the fast path's counts.
fn same_on_both_paths(bytes: &[u8]) -> Option<Counts> {
    let fast = read(bytes, Path::Fast);
    let rendered = read(bytes, Path::Render);
    let (fast, rendered) = match (fast, rendered) {
        (Some(f), Some(r)) => (f, r),
        (None, None) => return None,
        _ => panic!("only one path read it"),
    };
    for (i, (f, r)) in fast.0.iter().zip(&rendered.0).enumerate() {
        assert_eq!(f, r, "event {i} (record {})", r.origin.line);
    }
    assert_eq!(fast.0.len(), rendered.0.len(), "events");
    assert_eq!(fast.2.records, rendered.2.records, "records");
    // The fast path stops reading a record that is no login at its event id, so
    // damage further on in it, which the crate may fail on, goes uncounted; every other
    // count is the same.
    let (mut f, r) = (fast.1, rendered.1);
    assert!(f.malformed_records <= r.malformed_records, "{f:?} {r:?}");
    f.malformed_records = r.malformed_records;
    assert_eq!(f, r, "parser counts");
    Some(fast.2)
}

#[test]
fn every_record_of_the_samples_gives_the_same_events_on_both_paths() {
    for (name, events) in [("Security_short_selected", 2), ("Security_with_size_t", 57)] {
        let bytes = sample(name);
        let counts = same_on_both_paths(&bytes).unwrap();
        let (fast, _, _) = read(&bytes, Path::Fast).unwrap();
        // The samples' login events (evtx.rs checks each against python-evtx).
        assert_eq!(fast.len(), events, "{name}");
        // Every record was read without rendering, login or not.
        assert_eq!(
            (
                counts.rendered,
                counts.rendered_logins,
                counts.rendered_chunks
            ),
            (0, 0, 0),
            "{name}: {counts:?}"
        );
        let (_, _, all) = read(&bytes, Path::Render).unwrap();
        assert_eq!(
            all.rendered, all.records,
            "{name}: the reference renders all"
        );
    }
}

#[test]
fn a_stop_asked_for_is_a_stop_on_the_fast_path() {
    let bytes = sample("Security_with_size_t");
    let mut batches = 0;
    let counts = eventlog::read_with(std::io::Cursor::new(bytes), Path::Fast, 1, |_| {
        batches += 1;
        batches < 3
    })
    .unwrap();
    assert!(!counts.finished);
    assert_eq!(batches, 3);
}

/// A damaged copy of `clean`: single bytes changed, a run overwritten, or the file cut
/// short, in the chunk area or anywhere.
fn damaged(
    clean: &[u8],
    flips: &[(usize, u8)],
    run: Option<(usize, Vec<u8>)>,
    cut: Option<usize>,
) -> Vec<u8> {
    let mut b = clean.to_vec();
    for &(at, x) in flips {
        let at = at % b.len();
        b[at] ^= x.max(1);
    }
    if let Some((at, bytes)) = run {
        let at = at % b.len();
        let end = (at + bytes.len()).min(b.len());
        b[at..end].copy_from_slice(&bytes[..end - at]);
    }
    if let Some(cut) = cut {
        b.truncate(cut % (b.len() + 1));
    }
    b
}

/// The first chunk of the larger sample and the whole smaller one: where damage lands
/// on records, templates and string tables.
fn clean(which: bool) -> Vec<u8> {
    if which {
        sample("Security_short_selected")
    } else {
        let mut b = sample("Security_with_size_t");
        b.truncate(4096 + 2 * 65536);
        b
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Damage anywhere in the records: never a panic, and what the fast path reads is
    /// what rendering reads.
    #[test]
    fn damaged_files_read_the_same_on_both_paths(
        which in any::<bool>(),
        // Offsets into the chunk area (after the 4 KiB file header) mostly.
        flips in prop::collection::vec((4096usize..4096 + 2 * 65536, any::<u8>()), 0..8),
        run in prop::option::of((4096usize..4096 + 2 * 65536, prop::collection::vec(any::<u8>(), 1..64))),
        cut in prop::option::of(4096usize..4096 + 2 * 65536),
    ) {
        let bytes = damaged(&clean(which), &flips, run, cut);
        same_on_both_paths(&bytes);
    }
}
