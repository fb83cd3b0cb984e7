//! The external sort of the builder: records gathered in memory up to a budget, sorted
//! on every core, duplicates merged, spilled to temporary files as sorted runs, and
//! the runs merged back into one sorted stream of distinct hashes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;

use crate::error::Error;
use crate::hash::Hash;

/// One hash and how often it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The hash.
    pub hash: Hash,
    /// Its count (saturating).
    pub count: u32,
}

/// Bytes of one record in memory and in a run file.
pub const RECORD_BYTES: u64 = 24;

/// The most runs merged at once; more are first merged in groups (each group a longer
/// run), which keeps open files and read buffers bounded.
const MAX_FAN_IN: usize = 64;

/// Buffer size of each run file in the merge.
const RUN_BUFFER: usize = 1 << 20;

/// Sorts records by hash on every core and merges duplicates, summing counts.
pub fn sort_and_merge(records: &mut Vec<Record>) {
    records.par_sort_unstable_by(|a, b| a.hash.cmp(&b.hash));
    records.dedup_by(|next, kept| {
        if next.hash == kept.hash {
            kept.count = kept.count.saturating_add(next.count);
            true
        } else {
            false
        }
    });
}

/// Sorted runs on disk, in a directory of their own that is removed when dropped.
pub struct Runs {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    /// Distinct records written (a hash in several runs counts once per run).
    pub records: u64,
}

impl Runs {
    /// An empty set of runs in a new directory under `parent`.
    pub fn new(parent: &Path) -> Result<Runs, Error> {
        let dir = tempfile::Builder::new()
            .prefix(".portcullis-breach-runs-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(Runs {
            dir,
            files: Vec::new(),
            records: 0,
        })
    }

    /// How many runs have been written.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no run has been written.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Sorts `records`, merges their duplicates and writes them as one run; `records`
    /// is left empty (its memory kept for the next run).
    pub fn spill(&mut self, records: &mut Vec<Record>) -> Result<(), Error> {
        sort_and_merge(records);
        let path = self.dir.path().join(format!("run-{:05}", self.files.len()));
        write_run(&path, records.iter().copied())?;
        self.records += records.len() as u64;
        self.files.push(path);
        records.clear();
        Ok(())
    }

    /// Merges every run into one sorted stream of distinct hashes, calling `sink` for
    /// each in order.
    pub fn merge(mut self, sink: &mut dyn FnMut(Record) -> Result<(), Error>) -> Result<(), Error> {
        // Too many runs for one pass: merge groups into longer runs first.
        while self.files.len() > MAX_FAN_IN {
            let mut next = Vec::new();
            for (g, group) in self.files.chunks(MAX_FAN_IN).enumerate() {
                let path = self
                    .dir
                    .path()
                    .join(format!("pass-{:05}-{g:05}", self.files.len()));
                let mut out = RunWriter::create(&path)?;
                merge_files(group, &mut |r| out.write(r))?;
                out.finish()?;
                for f in group {
                    let _ = std::fs::remove_file(f);
                }
                next.push(path);
            }
            self.files = next;
        }
        merge_files(&self.files, sink)
    }
}

fn merge_files(
    files: &[PathBuf],
    sink: &mut dyn FnMut(Record) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut readers = Vec::with_capacity(files.len());
    for path in files {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        readers.push((path, BufReader::with_capacity(RUN_BUFFER, file)));
    }
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, (path, reader)) in readers.iter_mut().enumerate() {
        if let Some(r) = read_record(reader, path)? {
            heap.push(Reverse((r.hash, i, r.count)));
        }
    }
    let mut pending: Option<Record> = None;
    while let Some(Reverse((hash, i, count))) = heap.pop() {
        match &mut pending {
            Some(p) if p.hash == hash => p.count = p.count.saturating_add(count),
            _ => {
                if let Some(p) = pending.take() {
                    sink(p)?;
                }
                pending = Some(Record { hash, count });
            }
        }
        let (path, reader) = &mut readers[i];
        if let Some(r) = read_record(reader, path)? {
            heap.push(Reverse((r.hash, i, r.count)));
        }
    }
    if let Some(p) = pending {
        sink(p)?;
    }
    Ok(())
}

fn read_record(reader: &mut impl Read, path: &Path) -> Result<Option<Record>, Error> {
    let mut buf = [0u8; RECORD_BYTES as usize];
    match reader.read_exact(&mut buf) {
        Ok(()) => {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(&buf[..20]);
            let count = u32::from_le_bytes([buf[20], buf[21], buf[22], buf[23]]);
            Ok(Some(Record {
                hash: Hash(hash),
                count,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_run(path: &Path, records: impl Iterator<Item = Record>) -> Result<(), Error> {
    let mut out = RunWriter::create(path)?;
    for r in records {
        out.write(r)?;
    }
    out.finish()
}

struct RunWriter<'a> {
    path: &'a Path,
    out: BufWriter<File>,
}

impl<'a> RunWriter<'a> {
    fn create(path: &'a Path) -> Result<RunWriter<'a>, Error> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(RunWriter {
            path,
            out: BufWriter::with_capacity(RUN_BUFFER, file),
        })
    }

    fn write(&mut self, r: Record) -> Result<(), Error> {
        let mut buf = [0u8; RECORD_BYTES as usize];
        buf[..20].copy_from_slice(&r.hash.0);
        buf[20..].copy_from_slice(&r.count.to_le_bytes());
        self.out
            .write_all(&buf)
            .map_err(|e| Error::io(self.path, e))
    }

    fn finish(mut self) -> Result<(), Error> {
        self.out.flush().map_err(|e| Error::io(self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(b: u8, count: u32) -> Record {
        Record {
            hash: Hash([b; 20]),
            count,
        }
    }

    #[test]
    fn runs_merge_with_duplicates_summed() {
        let parent = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(parent.path()).unwrap();
        // More runs than one merge pass takes, so that the grouped passes run too.
        for i in 0..(MAX_FAN_IN as u32 + 5) {
            let mut batch = vec![rec((i % 7) as u8, 1), rec(200, u32::MAX), rec(100, i + 1)];
            runs.spill(&mut batch).unwrap();
            assert!(batch.is_empty());
        }
        let mut out = Vec::new();
        runs.merge(&mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        let total_runs = MAX_FAN_IN as u32 + 5;
        assert_eq!(out.len(), 7 + 2);
        assert!(out.windows(2).all(|w| w[0].hash < w[1].hash));
        assert_eq!(
            out.iter().find(|r| r.hash.0[0] == 200).unwrap().count,
            u32::MAX
        );
        let hundred: u32 = (1..=total_runs).sum();
        assert_eq!(
            out.iter().find(|r| r.hash.0[0] == 100).unwrap().count,
            hundred
        );
        let zeros = out.iter().find(|r| r.hash.0[0] == 0).unwrap().count;
        assert_eq!(zeros, total_runs.div_ceil(7));
    }
}
