//! Damaged and crafted index files: opening them gives an error or an index whose
//! lookups, ranges and checks never panic and never read out of bounds.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use portcullis_breach::{BuildOptions, Error, FilterKind, Index, build, encode_hex_upper, sha1};
use proptest::prelude::*;

/// A small valid full index with counts and a filter, built once.
fn valid() -> &'static Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..300u32 {
            let h = sha1(&i.to_le_bytes());
            text.push_str(&format!("{}:{}\n", encode_hex_upper(&h), i + 1));
        }
        let input = dir.path().join("in.txt");
        std::fs::write(&input, text).unwrap();
        let out = dir.path().join("i.pcb");
        let options = BuildOptions {
            full: true,
            filter: Some(FilterKind::Fuse8),
            ..BuildOptions::default()
        };
        build(&[input], &out, &options, &mut |_| {}).unwrap();
        std::fs::read(out).unwrap()
    })
}

fn open_bytes(dir: &Path, bytes: &[u8]) -> Result<Index, Error> {
    let path: PathBuf = dir.join("x.pcb");
    std::fs::write(&path, bytes).unwrap();
    Index::open(&path)
}

/// Whatever opened must answer without panicking.
fn exercise(index: &Index) {
    for i in 0..50u32 {
        let _ = index.lookup(&sha1(&i.to_le_bytes()));
    }
    let _ = index.lookup(&[0u8; 20]);
    let _ = index.lookup(&[0xffu8; 20]);
    let _ = index.range(0);
    let _ = index.range(0xFFFFF);
    let _ = index.verify();
}

#[test]
fn the_valid_file_works() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_bytes(dir.path(), valid()).unwrap();
    index.verify().unwrap();
    assert_eq!(index.lookup(&sha1(&7u32.to_le_bytes())), Some(8));
}

#[test]
fn every_truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = valid();
    for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let err = open_bytes(dir.path(), &bytes[..len]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. }),
            "length {len}: {err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        open_bytes(dir.path(), &longer),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn a_damaged_offset_table_is_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = valid().clone();
    bytes[64 + 4 * 3] = 0xff;
    let index = open_bytes(dir.path(), &bytes).unwrap();
    exercise(&index);
    assert!(index.verify().is_err());
}

#[test]
fn other_files_are_not_indexes() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        open_bytes(
            dir.path(),
            b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3\n..............................."
        )
        .unwrap_err(),
        Error::NotAnIndex
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(index) = open_bytes(dir.path(), &bytes) {
            exercise(&index);
        }
    }

    /// Random damage to a valid file, anywhere (including a header whose checksum is
    /// then recomputed, which is what a crafted file does).
    #[test]
    fn damaged_files_never_panic(
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        fix_checksum in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = valid().clone();
        for (at, value) in changes {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if fix_checksum {
            let sum = portcullis_breach::format::fnv1a(&bytes[..56]);
            bytes[56..64].copy_from_slice(&sum.to_le_bytes());
        }
        if let Ok(index) = open_bytes(dir.path(), &bytes) {
            exercise(&index);
        }
    }

    /// Crafted headers: any parameters with a matching checksum and a file of the
    /// length they call for.
    #[test]
    fn crafted_headers_never_panic(
        header in proptest::collection::vec(any::<u8>(), 64),
        body in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = header;
        bytes[..8].copy_from_slice(b"PCBREACH");
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        for b in &mut bytes[18..24] { *b = 0; }
        for b in &mut bytes[40..56] { *b = 0; }
        // Keep the numbers small enough that the file can be made.
        bytes[16] %= 12;
        let hashes = u64::from(bytes[24] % 64);
        bytes[24..32].copy_from_slice(&hashes.to_le_bytes());
        let filter_bytes = u64::from(bytes[32]);
        bytes[32..40].copy_from_slice(&filter_bytes.to_le_bytes());
        let sum = portcullis_breach::format::fnv1a(&bytes[..56]);
        bytes[56..64].copy_from_slice(&sum.to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(header) = portcullis_breach::Header::decode(&bytes) {
            if let Some(layout) = header.layout() {
                bytes.resize(layout.file_len as usize, 0x5a);
            }
        }
        if let Ok(index) = open_bytes(dir.path(), &bytes) {
            exercise(&index);
        }
    }
}
