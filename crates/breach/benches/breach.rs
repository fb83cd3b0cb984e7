//! Lookups per second, warm, on one thread, in a compact and a full index of one
//! million random SHA-1 hashes; members and non-members. The whole-tool figures (build
//! throughput, peak memory, bytes a hash, range requests) come from benches/breach.sh.

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_breach::{BuildOptions, Index, build, encode_hex_upper};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const HASHES: usize = 1_000_000;
const QUERIES: usize = 10_000;

fn index(dir: &std::path::Path, hashes: &[[u8; 20]], full: bool) -> Index {
    let input = dir.join("corpus.txt");
    let mut text = Vec::with_capacity(hashes.len() * 44);
    for h in hashes {
        text.extend_from_slice(encode_hex_upper(h).as_bytes());
        text.extend_from_slice(b":3\n");
    }
    std::fs::File::create(&input)
        .and_then(|mut f| f.write_all(&text))
        .expect("write the corpus");
    let out = dir.join(if full { "full.pcb" } else { "compact.pcb" });
    let options = BuildOptions {
        full,
        ..BuildOptions::default()
    };
    build(&[input], &out, &options, &mut |_| {}).expect("build");
    Index::open(&out).expect("open")
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = StdRng::seed_from_u64(1);
    let random = |rng: &mut StdRng, n: usize| -> Vec<[u8; 20]> {
        (0..n)
            .map(|_| {
                let mut h = [0u8; 20];
                rng.fill_bytes(&mut h);
                h
            })
            .collect()
    };
    let members = random(&mut rng, HASHES);
    let strangers = random(&mut rng, QUERIES);
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(QUERIES as u64));
    for full in [false, true] {
        let index = index(dir.path(), &members, full);
        let name = if full { "full" } else { "compact" };
        group.bench_function(format!("{name}/members"), |b| {
            b.iter(|| {
                members[..QUERIES]
                    .iter()
                    .filter(|h| index.lookup(&h[..]).is_some())
                    .count()
            })
        });
        group.bench_function(format!("{name}/non-members"), |b| {
            b.iter(|| {
                strangers
                    .iter()
                    .filter(|h| index.lookup(&h[..]).is_some())
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
