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

// The chunks and records of a file are found by Portcullis' own walk on the fast path
// and by the crate's on the rendering path: damage to the file header, chunk headers,
// string tables and record headers must give the same records and counts on both.

/// The first byte of chunk `n` (a 4 KiB file header, then 64 KiB chunks).
fn chunk_at(n: usize) -> usize {
    4096 + n * 65536
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The larger sample: 6 chunks of records (ids 1–114, 115–213, 214–318, 319–425,
/// 426–533, 534–636), then 11 preallocated chunks of zeroes.
fn larger() -> Vec<u8> {
    sample("Security_with_size_t")
}

/// The record ids of the events, in the order they came.
fn record_ids(bytes: &[u8]) -> Vec<u64> {
    let (events, _, _) = read(bytes, Path::Fast).unwrap();
    events.iter().map(|e| e.origin.line).collect()
}

#[test]
fn empty_chunks_are_passed_over_and_unreadable_ones_counted_on_both_paths() {
    let whole = same_on_both_paths(&larger()).unwrap();
    assert_eq!((whole.records, whole.rendered_chunks), (636, 0));
    let (all, stats, _) = read(&larger(), Path::Fast).unwrap();
    assert_eq!(stats.malformed_records, 0);

    // A chunk of zeroes between written ones is passed over, like the 11 at the end:
    // the first chunk with login events among its records, not the last one.
    let ranges = [
        1..=114,
        115..=213,
        214..=318,
        319..=425,
        426..=533,
        534..=636,
    ];
    let lost = |n: usize| {
        all.iter()
            .filter(|e| ranges[n].contains(&e.origin.line))
            .count()
    };
    let n = (0..5).find(|&n| lost(n) > 0).expect("a chunk with logins");
    let mut b = larger();
    b[chunk_at(n)..chunk_at(n + 1)].fill(0);
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!(counts.records, 636 - ranges[n].clone().count() as u64);
    let (events, stats, _) = read(&b, Path::Fast).unwrap();
    assert_eq!(stats.malformed_records, 0);
    assert_eq!(events.len(), all.len() - lost(n));

    // A written chunk whose signature is wrong is one malformed record.
    let mut b = larger();
    b[chunk_at(2)..chunk_at(2) + 8].copy_from_slice(b"ElfChnk!");
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!(counts.records, 636 - 105 + 1);
    assert_eq!(read(&b, Path::Fast).unwrap().1.malformed_records, 1);

    // So is a preallocated chunk with one byte that is not zero, at its very end.
    let mut b = larger();
    b[chunk_at(11) - 1] = 1;
    assert_eq!(same_on_both_paths(&b).unwrap().records, 637);
    assert_eq!(read(&b, Path::Fast).unwrap().1.malformed_records, 1);

    // And a chunk whose string table the crate cannot read: the first offset of its
    // table points past the chunk.
    let mut b = larger();
    let slot = (0..64)
        .map(|i| chunk_at(3) + 128 + 4 * i)
        .find(|&at| b[at..at + 4] != [0; 4])
        .expect("a string table offset");
    put_u32(&mut b, slot, 70_000);
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!(counts.records, 636 - 107 + 1);
    assert_eq!(read(&b, Path::Fast).unwrap().1.malformed_records, 1);
}

#[test]
fn checksums_are_not_checked_on_either_path() {
    let (intact, _, _) = read(&larger(), Path::Fast).unwrap();
    let mut b = larger();
    b[124] ^= 0xff; // the file header's CRC32
    for n in 0..6 {
        b[chunk_at(n) + 124] ^= 0xff; // the chunk header's
        b[chunk_at(n) + 52] ^= 0xff; // the records'
    }
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!((counts.records, counts.rendered), (636, 0));
    assert_eq!(read(&b, Path::Fast).unwrap().0, intact);
}

#[test]
fn a_file_cut_short_reads_its_whole_chunks_on_both_paths() {
    // Cut in chunk 3: its records are not read, and no more chunks are looked for.
    let cut = larger()[..chunk_at(3) + 62_000].to_vec();
    let counts = same_on_both_paths(&cut).unwrap();
    assert_eq!(counts.records, 114 + 99 + 105);
    assert_eq!(read(&cut, Path::Fast).unwrap().1.malformed_records, 0);
    assert!(record_ids(&cut).iter().all(|id| *id <= 318));

    // With a header block size of 0 the cut chunk counts as one more whole chunk,
    // which cannot be read: a malformed record.
    let mut b = cut.clone();
    b[40..42].copy_from_slice(&0u16.to_le_bytes());
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!(counts.records, 114 + 99 + 105 + 1);
    assert_eq!(read(&b, Path::Fast).unwrap().1.malformed_records, 1);

    // Shorter than its header block: not an EVTX file to either path.
    assert!(same_on_both_paths(&cut[..4000]).is_none());
}

#[test]
fn a_record_running_past_its_chunk_is_left_to_the_crate() {
    let whole = sample("Security_short_selected");
    let (all, _, _) = read(&whole, Path::Fast).unwrap();
    // The records of the smaller sample's one chunk, from offset 512, each starting
    // with its signature and size.
    let mut at = chunk_at(0) + 512;
    let mut starts = Vec::new();
    while whole[at..at + 4] == *b"**\0\0" {
        starts.push(at);
        at += u32::from_le_bytes(whole[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    assert_eq!(starts.len(), 7);
    for (i, &record) in starts.iter().enumerate() {
        let mut b = whole.clone();
        // Its Binary XML would end past the chunk.
        put_u32(&mut b, record + 4, 65_536);
        let counts = same_on_both_paths(&b).unwrap();
        assert_eq!(counts.rendered_chunks, 1, "record {i}");
        let (events, stats, _) = read(&b, Path::Fast).unwrap();
        assert!(stats.malformed_records >= 1, "record {i}: {stats:?}");
        assert!(events.iter().all(|e| all.contains(e)), "record {i}");
    }
}

#[test]
fn a_log_that_has_wrapped_around_is_read_from_its_oldest_chunk() {
    // Chunk 1 (records 115–213) first in the file, then chunk 0 (1–114): the walk
    // starts at the chunk with the lowest first record id and wraps around.
    let mut b = larger();
    let (first, second) = (
        b[chunk_at(0)..chunk_at(1)].to_vec(),
        b[chunk_at(1)..chunk_at(2)].to_vec(),
    );
    b[chunk_at(0)..chunk_at(1)].copy_from_slice(&second);
    b[chunk_at(1)..chunk_at(2)].copy_from_slice(&first);
    let counts = same_on_both_paths(&b).unwrap();
    assert_eq!((counts.records, counts.rendered), (636, 0));
    let ids = record_ids(&b);
    let mut want = record_ids(&larger());
    // The events of chunk 1's records come last.
    want.sort_by_key(|id| (115..=213).contains(id));
    assert_eq!(ids, want);
    assert!(ids.iter().any(|id| (115..=213).contains(id)));
}

/// Three chunks of the larger sample and two preallocated ones: where damage lands on
/// the file header, the chunk headers and the string tables.
fn headers_sample() -> Vec<u8> {
    let mut b = larger();
    b.truncate(chunk_at(3));
    b.resize(chunk_at(5), 0);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Damage to the headers that say where chunks and records are: the file header's
    /// first 128 bytes and each chunk's header and first records.
    #[test]
    fn damaged_headers_read_the_same_on_both_paths(
        flips in prop::collection::vec((0usize..5, 0usize..1024, any::<u8>()), 1..6),
        header in prop::collection::vec((0usize..128, any::<u8>()), 0..3),
    ) {
        let mut b = headers_sample();
        for (chunk, at, x) in flips {
            b[chunk_at(chunk) + at] ^= x.max(1);
        }
        for (at, x) in header {
            b[at] ^= x.max(1);
        }
        same_on_both_paths(&b);
    }
}

#[test]
fn template_definitions_are_read_once_per_file_not_once_per_chunk() {
    // Each chunk of the larger sample alone, as a file of one chunk.
    let alone: Vec<u64> = (0..6)
        .map(|n| {
            let mut b = larger()[..chunk_at(1)].to_vec();
            b[chunk_at(0)..].copy_from_slice(&larger()[chunk_at(n)..chunk_at(n + 1)]);
            read(&b, Path::Fast).unwrap().2.templates_read
        })
        .collect();
    let whole = same_on_both_paths(&larger()).unwrap();
    // Every chunk stores its own copy of the templates it uses; those of a chunk that
    // an earlier chunk also used are not read again.
    assert!(alone.iter().all(|n| *n > 0));
    // (Read per chunk, the file's would be read 24 times.)
    assert!(
        whole.templates_read < alone.iter().sum::<u64>() / 2,
        "{alone:?} {whole:?}"
    );
    assert!(whole.templates_read >= alone[0]);
}
