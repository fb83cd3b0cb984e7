//! Building indexes from every input form and reading them back; the external sort on
//! millions of hashes; the filter's false-positive rate; damaged files.

use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_breach::{
    BuildOptions, Error, FilterKind, HashKind, Index, build, decode_count, encode_count,
    encode_hex_upper, ntlm, range_body, sha1,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn build_index(
    inputs: &[PathBuf],
    dir: &Path,
    options: &BuildOptions,
) -> (Index, portcullis_breach::BuildReport) {
    let out = dir.join("index.pcb");
    let report = build(inputs, &out, options, &mut |_| {}).unwrap();
    (Index::open(&out).unwrap(), report)
}

fn hex(password: &str) -> String {
    encode_hex_upper(&sha1(password.as_bytes()))
}

/// The download's single-file form, LF and CRLF, plain and gzip, with malformed lines
/// counted and skipped.
#[test]
fn hash_file_forms() {
    let dir = tempfile::tempdir().unwrap();
    let lines = format!(
        "{}:10434004\n{}:3\nnot a hash:1\n{}:0\n\n{}:12\n",
        hex("password"),
        hex("hunter2"),
        hex("zero"),
        hex("letmein"),
    );
    for (name, bytes) in [
        ("lf.txt", lines.clone().into_bytes()),
        ("crlf.txt", lines.replace('\n', "\r\n").into_bytes()),
        ("lf.gz", gzip(lines.as_bytes())),
        ("crlf.bin", gzip(lines.replace('\n', "\r\n").as_bytes())),
    ] {
        let input = write(dir.path(), name, &bytes);
        let (index, report) = build_index(&[input], dir.path(), &BuildOptions::default());
        assert_eq!(index.kind(), HashKind::Sha1, "{name}");
        assert_eq!(index.len(), 3, "{name}");
        assert_eq!(report.lines, 6, "{name}");
        assert_eq!(
            report.malformed, 2,
            "{name}: the non-hash and the zero count"
        );
        assert_eq!(report.empty_lines, 1, "{name}");
        assert_eq!(report.malformed_examples.len(), 2);
        assert_eq!(
            report.malformed_examples[0].1, 3,
            "line numbers are 1-based"
        );
        assert_eq!(
            index.lookup(&sha1(b"password")),
            Some(decode_count(encode_count(10434004)))
        );
        assert_eq!(index.lookup(&sha1(b"hunter2")), Some(3));
        assert_eq!(index.lookup(&sha1(b"letmein")), Some(12));
        assert_eq!(index.lookup(&sha1(b"zero")), None);
        assert_eq!(index.lookup(&sha1(b"correct horse")), None);
        assert_eq!(index.lookup(&ntlm("password")), None, "wrong length");
    }
}

/// The downloader's folder of per-prefix files (`00000.txt` or `00000`), NTLM.
#[test]
fn folder_of_prefix_files_ntlm() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ntlm");
    std::fs::create_dir(&folder).unwrap();
    let mut expected = Vec::new();
    for (i, password) in ["password", "123456", "Summer2017!", "qwerty"]
        .iter()
        .enumerate()
    {
        let h = encode_hex_upper(&ntlm(password));
        let (prefix, suffix) = h.split_at(5);
        let name = if i % 2 == 0 {
            format!("{prefix}.txt")
        } else {
            prefix.to_owned()
        };
        let path = folder.join(name);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        write!(f, "{suffix}:{}\r\n", i + 1).unwrap();
        expected.push((ntlm(password), i as u32 + 1));
    }
    std::fs::write(folder.join("README"), "not a prefix file").unwrap();
    let (index, report) = build_index(&[folder], dir.path(), &BuildOptions::default());
    assert_eq!(index.kind(), HashKind::Ntlm);
    assert_eq!(index.len(), 4);
    assert_eq!(report.skipped_files.len(), 1);
    assert_eq!(report.malformed, 0);
    for (h, count) in expected {
        assert_eq!(index.lookup(&h), Some(count));
    }
    assert_eq!(index.lookup(&ntlm("not there")), None);
}

/// Password lists: auto-detected or forced, hashed with the kind asked for, duplicates
/// summed.
#[test]
fn plain_password_lists() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "rockyou.txt",
        b"123456\r\npassword\n123456\n\nPa ss\n",
    );
    let (index, report) = build_index(
        std::slice::from_ref(&list),
        dir.path(),
        &BuildOptions::default(),
    );
    assert_eq!(index.kind(), HashKind::Sha1);
    assert_eq!(index.lookup(&sha1(b"123456")), Some(2));
    assert_eq!(index.lookup(&sha1(b"Pa ss")), Some(1));
    assert_eq!(report.empty_lines, 1);
    let ntlm_options = BuildOptions {
        kind: Some(HashKind::Ntlm),
        plain: true,
        ..BuildOptions::default()
    };
    let (index, _) = build_index(&[list], dir.path(), &ntlm_options);
    assert_eq!(index.kind(), HashKind::Ntlm);
    assert_eq!(index.lookup(&ntlm("password")), Some(1));
    // A hash list read as passwords hashes each line as a password.
    let hashes = write(dir.path(), "h.txt", format!("{}:5\n", hex("a")).as_bytes());
    let forced = BuildOptions {
        plain: true,
        ..BuildOptions::default()
    };
    let (index, _) = build_index(&[hashes], dir.path(), &forced);
    assert_eq!(index.lookup(&sha1(b"a")), None);
    assert_eq!(
        index.lookup(&sha1(format!("{}:5", hex("a")).as_bytes())),
        Some(1)
    );
}

/// A line longer than a read block (1 MiB) is skipped whole and counted, and the lines
/// around it are read as usual, with their line numbers.
#[test]
fn overlong_lines_are_skipped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{}:1\n", hex("before")).into_bytes();
    text.extend(std::iter::repeat_n(b'A', 3 << 20));
    text.extend_from_slice(format!("\nZZ\n{}:2\n", hex("after")).as_bytes());
    let input = write(dir.path(), "long.txt", &text);
    let (index, report) = build_index(&[input], dir.path(), &BuildOptions::default());
    assert_eq!(index.lookup(&sha1(b"before")), Some(1));
    assert_eq!(index.lookup(&sha1(b"after")), Some(2));
    assert_eq!(report.malformed, 2, "the long line and ZZ");
    assert_eq!(report.lines, 4);
    assert_eq!(report.malformed_examples[0].1, 3, "ZZ is line 3");
}

#[test]
fn mixed_kinds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.txt", format!("{}:1\n", hex("a")).as_bytes());
    let b = write(
        dir.path(),
        "b.txt",
        format!("{}:1\n", encode_hex_upper(&ntlm("b"))).as_bytes(),
    );
    let err = build(
        &[a, b],
        &dir.path().join("x"),
        &BuildOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("one index holds one kind"),
        "{err}"
    );
}

fn random_corpus(n: usize, seed: u64) -> Vec<([u8; 20], u32)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut h = [0u8; 20];
            rng.fill_bytes(&mut h);
            // Counts like the corpus': mostly small, a few huge.
            let count = match rng.random_range(0..100) {
                0 => rng.random_range(1000..50_000_000),
                1..=9 => rng.random_range(17..1000),
                _ => rng.random_range(1..=16),
            };
            (h, count)
        })
        .collect()
}

fn corpus_file(dir: &Path, corpus: &[([u8; 20], u32)]) -> PathBuf {
    let mut text = Vec::with_capacity(corpus.len() * 48);
    for (h, c) in corpus {
        text.extend_from_slice(encode_hex_upper(h).as_bytes());
        writeln!(text, ":{c}").unwrap();
    }
    write(dir, "corpus.txt", &text)
}

/// Millions of hashes through a small memory budget, so that the sort spills several
/// runs and merges them: every member is found with its count, no non-member is.
#[test]
fn millions_of_hashes_through_the_external_sort() {
    const N: usize = 2_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = random_corpus(N, 7);
    // Duplicates across runs: the first thousand again at the end.
    let repeats: Vec<_> = corpus[..1000].iter().map(|&(h, _)| (h, 5)).collect();
    corpus.extend_from_slice(&repeats);
    let input = corpus_file(dir.path(), &corpus);
    let options = BuildOptions {
        memory: 24 << 20,
        ..BuildOptions::default()
    };
    let (index, report) = build_index(&[input], dir.path(), &options);
    assert!(report.runs >= 3, "the sort spilled {} runs", report.runs);
    assert_eq!(index.len(), N as u64);
    // The top 64 bits of each hash are kept: 16 choose the bucket (16 to 32 hashes a
    // bucket), 48 are stored, and a one-byte count: 56 bits, plus the offset table.
    let header = index.header();
    assert_eq!(
        (header.bucket_bits, header.key_bits, header.count_bits),
        (16, 48, 8)
    );
    let bytes_per_hash = index.file_len() as f64 / N as f64;
    assert!(
        bytes_per_hash < 56.0 / 8.0 + 0.3,
        "{bytes_per_hash} bytes a hash"
    );
    for (i, (h, count)) in corpus[..N].iter().enumerate() {
        let want = if i < 1000 { count + 5 } else { *count };
        assert_eq!(
            index.lookup(h),
            Some(decode_count(encode_count(want))),
            "member {i}"
        );
    }
    let mut rng = StdRng::seed_from_u64(8);
    let mut false_positives = 0;
    for _ in 0..N {
        let mut h = [0u8; 20];
        rng.fill_bytes(&mut h);
        false_positives += u32::from(index.lookup(&h).is_some());
    }
    // Expected n / 2^64 per query: 2 × 10⁻¹³ × 2 × 10⁶ queries.
    assert_eq!(false_positives, 0);
    index.verify().unwrap();
}

/// The filters' false-positive rates stay near their design (1/256 and 1/65,536), and
/// the filter never hides a member.
#[test]
fn filter_false_positive_rates() {
    const N: usize = 200_000;
    const QUERIES: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let corpus = random_corpus(N, 11);
    let input = corpus_file(dir.path(), &corpus);
    for (kind, bound) in [
        (FilterKind::Fuse8, 1.15 / 256.0),
        (FilterKind::Fuse16, 3.0 / 65536.0),
    ] {
        let options = BuildOptions {
            filter: Some(kind),
            memory: 16 << 20,
            ..BuildOptions::default()
        };
        let (index, _) = build_index(std::slice::from_ref(&input), dir.path(), &options);
        assert_eq!(index.header().filter, Some(kind));
        for (h, _) in &corpus {
            assert!(index.filter_may_contain(h));
            assert!(index.lookup(h).is_some());
        }
        let mut rng = StdRng::seed_from_u64(12);
        let mut passed = 0usize;
        for _ in 0..QUERIES {
            let mut h = [0u8; 20];
            rng.fill_bytes(&mut h);
            passed += usize::from(index.filter_may_contain(&h));
            assert_eq!(index.lookup(&h), None);
        }
        let rate = passed as f64 / QUERIES as f64;
        assert!(rate <= bound, "{kind:?}: {rate}");
        assert!(
            rate >= kind.false_positive_rate() / 3.0,
            "{kind:?}: {rate} is suspiciously low"
        );
    }
}

/// A full index keeps whole hashes: range answers list every suffix with its exact
/// count, byte for byte in the API's format.
#[test]
fn full_index_answers_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = random_corpus(5000, 3);
    // Several hashes under one prefix, including the password example's.
    for (i, b) in [0x00u8, 0x7f, 0xff].iter().enumerate() {
        let mut h = sha1(b"password");
        h[19] = *b;
        h[10] ^= i as u8;
        corpus.push((h, 100 + i as u32));
    }
    let input = corpus_file(dir.path(), &corpus);
    let options = BuildOptions {
        full: true,
        ..BuildOptions::default()
    };
    let (index, _) = build_index(&[input], dir.path(), &options);
    assert!(index.is_full());
    for (h, c) in &corpus {
        assert_eq!(index.lookup(h), Some(*c), "exact counts");
    }
    let prefix = 0x5BAA6;
    let mut expected: Vec<String> = corpus
        .iter()
        .map(|(h, c)| (encode_hex_upper(h), c))
        .filter(|(hex, _)| hex.starts_with("5BAA6"))
        .map(|(hex, c)| format!("{}:{c}", &hex[5..]))
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 3);
    let body = range_body(&index, prefix, None).unwrap();
    assert_eq!(body, expected.join("\r\n"));
    // Padding: 800 to 1,000 entries, the real ones unchanged, the rest count 0.
    let mut rng = StdRng::seed_from_u64(1);
    let padded = range_body(&index, prefix, Some(&mut rng)).unwrap();
    let lines: Vec<&str> = padded.split("\r\n").collect();
    assert!((800..=1000).contains(&lines.len()), "{}", lines.len());
    for e in &expected {
        assert!(lines.contains(&e.as_str()));
    }
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(":0")).count(),
        lines.len() - 3
    );
    let mut sorted = lines.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, lines, "in order, no duplicates");
    // Every prefix answers; an empty one with an empty body.
    let empty_prefix = (0..0x10_0000)
        .find(|p| index.range(*p).unwrap().is_empty())
        .unwrap();
    assert_eq!(range_body(&index, empty_prefix, None).unwrap(), "");
    // A compact index cannot.
    let compact = build_index(
        &[dir.path().join("corpus.txt")],
        dir.path(),
        &BuildOptions::default(),
    )
    .0;
    assert_eq!(compact.range(prefix), Err(Error::NotFull));
}

#[test]
fn empty_input_gives_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "empty.txt", b"");
    let (index, _) = build_index(&[input], dir.path(), &BuildOptions::default());
    assert!(index.is_empty());
    assert_eq!(index.lookup(&sha1(b"x")), None);
    index.verify().unwrap();
}
