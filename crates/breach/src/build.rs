//! Building an index from the Pwned Passwords download or password lists, in bounded
//! memory: inputs are read on one thread, lines parsed on every core, records sorted in
//! runs that spill to temporary files (see `runs`), and the merged stream written as
//! the index file (see `format`).

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rayon::prelude::*;
use xorf::{BinaryFuse8, BinaryFuse16, DmaSerializable};

use crate::error::Error;
use crate::format::{BitWriter, ENTRY_PADDING, FilterKind, HEADER_LEN, Header, MAX_HASHES};
use crate::hash::HashKind;
use crate::input::{LineForm, Sniffed, prefix_of_file_name, sniff};
use crate::read::{Block, MAX_EXAMPLES, Parsed, Source, head, parse_block, read_sources};
use crate::runs::{RECORD_BYTES, Record, Runs, sort_and_merge};

/// How to build an index.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The hash kind; `None` takes it from the first hash input (SHA-1 when every
    /// input is a password list).
    pub kind: Option<HashKind>,
    /// Read every input as a password list, whatever it looks like.
    pub plain: bool,
    /// Keep every bit of every hash (needed to answer range requests).
    pub full: bool,
    /// Keep counts (one-byte log-scale code in a compact index, exact in a full one).
    pub counts: bool,
    /// Add an approximate filter in front of the index.
    pub filter: Option<FilterKind>,
    /// The memory budget in bytes (records in memory, the offset table, the filter).
    pub memory: u64,
    /// Where sorted runs are spilled; the output's directory when `None`.
    pub temp_dir: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            kind: None,
            plain: false,
            full: false,
            counts: true,
            filter: None,
            memory: 2 << 30,
            temp_dir: None,
        }
    }
}

/// The smallest memory budget accepted.
pub const MIN_MEMORY: u64 = 16 << 20;

/// Building memory the filter needs per hash: its keys and xorf's construction tables.
pub const FILTER_BYTES_PER_HASH: u64 = 48;

/// Progress of a build, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Input bytes read (before decompression) of the total size of the inputs.
    Read {
        /// Bytes read so far.
        bytes: u64,
        /// Total bytes of the inputs.
        total: u64,
    },
    /// Records merged and written of an upper bound of distinct hashes.
    Write {
        /// Records written so far.
        done: u64,
        /// Upper bound of the number of distinct hashes.
        total: u64,
    },
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The header of the index written.
    pub header: Header,
    /// Bytes of the index file.
    pub file_len: u64,
    /// Input files read.
    pub files: u64,
    /// Lines read.
    pub lines: u64,
    /// Lines that gave a hash (before duplicates merged).
    pub records: u64,
    /// Lines skipped because they were not of the expected form.
    pub malformed: u64,
    /// The first few malformed lines: file and line number (never the content, which
    /// may be a password).
    pub malformed_examples: Vec<(PathBuf, u64)>,
    /// Empty lines skipped.
    pub empty_lines: u64,
    /// Files in input folders that are not named by a five-digit prefix.
    pub skipped_files: Vec<PathBuf>,
    /// Sorted runs spilled to disk (0 when everything fitted in memory).
    pub runs: usize,
}

/// Builds an index from `inputs` (files, gzip or plain, or folders of per-prefix
/// files) into `output`, which is written under a temporary name and renamed into place
/// only when complete.
pub fn build(
    inputs: &[PathBuf],
    output: &Path,
    options: &BuildOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BuildReport, Error> {
    if options.memory < MIN_MEMORY {
        return Err(Error::Input(format!(
            "the memory budget must be at least {} MiB",
            MIN_MEMORY >> 20
        )));
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (sources, skipped_files) = plan(inputs, options)?;
    let total_bytes: u64 = sources
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    let kind = sources
        .first()
        .map(|s| s.form.kind())
        .or(options.kind)
        .unwrap_or(HashKind::Sha1);

    let mut report = BuildReport {
        header: empty_header(kind),
        file_len: 0,
        files: sources.len() as u64,
        lines: 0,
        records: 0,
        malformed: 0,
        malformed_examples: Vec::new(),
        empty_lines: 0,
        skipped_files,
        runs: 0,
    };

    // Records in memory get a bit over half the budget; the rest covers blocks in
    // flight, the merge's buffers and the offset table.
    let capacity = usize::try_from(options.memory / 2 / RECORD_BYTES).unwrap_or(usize::MAX);
    // Reserved once when the input will fill it (about 45 bytes a line uncompressed):
    // growing a buffer of hundreds of MiB by doubling holds the old and the new copy
    // at once.
    let estimate = usize::try_from(total_bytes / 32).unwrap_or(usize::MAX);
    let mut buffer: Vec<Record> = Vec::with_capacity(capacity.min(estimate).max(1024));
    let spill_dir = options.temp_dir.clone().unwrap_or_else(|| parent.clone());
    let mut runs = Runs::new(&spill_dir)?;
    let read_bytes = Arc::new(AtomicU64::new(0));

    std::thread::scope(|scope| -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel::<Result<Block, Error>>(4);
        let counter = Arc::clone(&read_bytes);
        let sources = &sources;
        scope.spawn(move || read_sources(sources, &counter, &tx));
        let batch_len = 2 * rayon::current_num_threads();
        let mut batch = Vec::with_capacity(batch_len);
        loop {
            batch.clear();
            match rx.recv() {
                Ok(block) => batch.push(block?),
                Err(_) => break,
            }
            while batch.len() < batch_len {
                match rx.try_recv() {
                    Ok(block) => batch.push(block?),
                    Err(_) => break,
                }
            }
            let parsed: Vec<Parsed> = batch
                .par_drain(..)
                .map(|b| parse_block(b, sources))
                .collect();
            for p in parsed {
                report.lines += p.lines;
                report.records += p.records.len() as u64;
                report.malformed += p.malformed;
                report.empty_lines += p.empty;
                for line in p.malformed_lines {
                    if report.malformed_examples.len() < MAX_EXAMPLES {
                        report
                            .malformed_examples
                            .push((sources[p.source].path.clone(), line));
                    }
                }
                // Grow by doubling, but never past the budget: a plain doubling could
                // reserve twice the budget's share just before a spill.
                let needed = buffer.len() + p.records.len();
                if needed > buffer.capacity() {
                    let target = (buffer.capacity() * 2)
                        .max(needed)
                        .min(capacity.max(needed));
                    buffer.reserve_exact(target - buffer.len());
                }
                buffer.extend_from_slice(&p.records);
                if buffer.len() >= capacity {
                    runs.spill(&mut buffer)?;
                }
            }
            progress(Progress::Read {
                bytes: read_bytes.load(Ordering::Relaxed),
                total: total_bytes,
            });
        }
        Ok(())
    })?;

    // Everything fitted in memory: no run on disk. Otherwise the rest is one more run.
    let in_memory = runs.is_empty();
    if in_memory {
        sort_and_merge(&mut buffer);
    } else if !buffer.is_empty() {
        runs.spill(&mut buffer)?;
    }
    report.runs = runs.len();
    let upper = if in_memory {
        buffer.len() as u64
    } else {
        runs.records
    };
    if upper > MAX_HASHES {
        return Err(Error::Input(format!(
            "{upper} distinct hashes is more than one index holds ({MAX_HASHES})"
        )));
    }
    if options.filter.is_some() && upper.saturating_mul(FILTER_BYTES_PER_HASH) > options.memory {
        return Err(Error::Input(format!(
            "the filter needs about {} MiB to build for {upper} hashes, more than the memory \
             budget of {} MiB; raise --memory or build without --filter",
            (upper * FILTER_BYTES_PER_HASH) >> 20,
            options.memory >> 20
        )));
    }

    let plan = IndexPlan::new(kind, options, upper);
    let mut writer = IndexWriter::create(&parent, plan, options.filter.is_some())?;
    let mut sink = |r: Record| -> Result<(), Error> {
        writer.push(r)?;
        if writer.hashes % (1 << 20) == 0 {
            progress(Progress::Write {
                done: writer.hashes,
                total: upper,
            });
        }
        Ok(())
    };
    if in_memory {
        for r in buffer.drain(..) {
            sink(r)?;
        }
        drop(buffer);
    } else {
        drop(buffer);
        runs.merge(&mut sink)?;
    }
    let (header, file_len) = writer.finish(output)?;
    report.header = header;
    report.file_len = file_len;
    Ok(report)
}

fn empty_header(kind: HashKind) -> Header {
    Header {
        kind,
        full: false,
        count_bits: 0,
        filter: None,
        bucket_bits: 0,
        key_bits: 64,
        hashes: 0,
        filter_bytes: 0,
    }
}

/// Decides how each input is read: expands folders, sniffs files, settles the kind.
fn plan(inputs: &[PathBuf], options: &BuildOptions) -> Result<(Vec<Source>, Vec<PathBuf>), Error> {
    enum Pending {
        Hashes,
        Suffixes(u32),
        Plain,
    }
    let mut pending = Vec::new();
    let mut skipped = Vec::new();
    let mut detected: Option<HashKind> = None;
    let mut note = |kind: HashKind, path: &Path| -> Result<(), Error> {
        match detected {
            Some(d) if d != kind && options.kind.is_none() => Err(Error::Input(format!(
                "{} holds {kind} hashes but earlier inputs hold {d} hashes; one index holds \
                 one kind (choose it with --kind)",
                path.display()
            ))),
            Some(_) => Ok(()),
            None => {
                detected = Some(kind);
                Ok(())
            }
        }
    };
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(input).map_err(|e| Error::io(input, e))? {
                let entry = entry.map_err(|e| Error::io(input, e))?;
                names.push(entry.path());
            }
            names.sort();
            let mut folder_kind = None;
            for path in names {
                let prefix = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(prefix_of_file_name);
                match prefix {
                    Some(p) if path.is_file() => {
                        if folder_kind.is_none() && !options.plain {
                            if let Sniffed::Suffixes(k) = sniff(&head(&path)?) {
                                folder_kind = Some(k);
                                note(k, &path)?;
                            }
                        }
                        pending.push((path, Pending::Suffixes(p)));
                    }
                    _ => skipped.push(path),
                }
            }
        } else if options.plain {
            pending.push((input.clone(), Pending::Plain));
        } else {
            let sniffed = sniff(&head(input)?);
            let prefix = input
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(prefix_of_file_name);
            match (sniffed, prefix) {
                (Sniffed::Hashes(k), _) => {
                    note(k, input)?;
                    pending.push((input.clone(), Pending::Hashes));
                }
                (Sniffed::Suffixes(k), Some(p)) => {
                    note(k, input)?;
                    pending.push((input.clone(), Pending::Suffixes(p)));
                }
                _ => pending.push((input.clone(), Pending::Plain)),
            }
        }
    }
    let kind = options.kind.or(detected).unwrap_or(HashKind::Sha1);
    let sources = pending
        .into_iter()
        .map(|(path, p)| {
            let form = match p {
                Pending::Hashes => LineForm::Hash(kind),
                Pending::Suffixes(prefix) => LineForm::Suffix(kind, prefix),
                Pending::Plain => LineForm::Plain(kind),
            };
            Source { path, form }
        })
        .collect();
    Ok((sources, skipped))
}

/// The parameters of the index to write.
#[derive(Debug, Clone, Copy)]
struct IndexPlan {
    header: Header,
}

impl IndexPlan {
    fn new(kind: HashKind, options: &BuildOptions, upper: u64) -> IndexPlan {
        // About 16 to 32 hashes a bucket: the offset table then costs 1 to 2 bits a
        // hash, and a lookup searches a few cache lines.
        let mut k: u32 = if upper < 64 {
            0
        } else {
            (63 - upper.leading_zeros()) - 4
        };
        // The table (4 bytes a bucket) gets at most a quarter of the budget.
        while k > 0 && (4u64 << k) > options.memory / 4 {
            k -= 1;
        }
        let k = k.min(u32::from(crate::format::MAX_BUCKET_BITS));
        let key_bits = if options.full {
            kind.bits() - k
        } else {
            64 - k
        };
        let count_bits = match (options.counts, options.full) {
            (false, _) => 0,
            (true, false) => 8,
            (true, true) => 32,
        };
        IndexPlan {
            header: Header {
                kind,
                full: options.full,
                count_bits,
                filter: options.filter,
                bucket_bits: k as u8,
                key_bits: key_bits as u8,
                hashes: 0,
                filter_bytes: 0,
            },
        }
    }
}

struct IndexWriter {
    plan: IndexPlan,
    file: tempfile::NamedTempFile,
    out: BufWriter<File>,
    bits: BitWriter,
    bucket_sizes: Vec<u32>,
    keys: Option<Vec<u64>>,
    hashes: u64,
}

impl IndexWriter {
    fn create(dir: &Path, plan: IndexPlan, filter: bool) -> Result<IndexWriter, Error> {
        let file = tempfile::Builder::new()
            .prefix(".portcullis-breach-index-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mut handle = file.reopen().map_err(|e| Error::io(file.path(), e))?;
        let entries = plan.header.layout().map(|l| l.entries).unwrap_or(0);
        handle
            .seek(SeekFrom::Start(entries))
            .map_err(|e| Error::io(file.path(), e))?;
        let buckets = 1usize << plan.header.bucket_bits;
        Ok(IndexWriter {
            plan,
            out: BufWriter::with_capacity(1 << 20, handle),
            file,
            bits: BitWriter::default(),
            bucket_sizes: vec![0; buckets],
            keys: filter.then(Vec::new),
            hashes: 0,
        })
    }

    fn push(&mut self, r: Record) -> Result<(), Error> {
        let h = &self.plan.header;
        let k = u32::from(h.bucket_bits);
        let s = u32::from(h.key_bits);
        let bucket = r.hash.bits(0, k) as usize;
        if let Some(size) = self.bucket_sizes.get_mut(bucket) {
            *size += 1;
        }
        let mut done = 0;
        while done < s {
            let len = (s - done).min(64);
            self.bits.push(r.hash.bits(k + done, len), len);
            done += len;
        }
        match h.count_bits {
            0 => {}
            8 => self.bits.push(u64::from(crate::count::encode(r.count)), 8),
            bits => self.bits.push(u64::from(r.count), u32::from(bits)),
        }
        if let Some(keys) = &mut self.keys {
            let key = r.hash.top64();
            if keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        self.hashes += 1;
        if self.hashes % 4096 == 0 {
            let bytes = self.bits.take_bytes();
            self.write(&bytes)?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let path = self.file.path().to_path_buf();
        self.out.write_all(bytes).map_err(|e| Error::io(path, e))
    }

    fn finish(mut self, output: &Path) -> Result<(Header, u64), Error> {
        let tail = std::mem::take(&mut self.bits).finish();
        self.write(&tail)?;
        self.write(&[0u8; ENTRY_PADDING as usize])?;
        let mut header = self.plan.header;
        header.hashes = self.hashes;
        let keys = self.keys.take().unwrap_or_default();
        if keys.is_empty() {
            header.filter = None;
        }
        let mut filter = Vec::new();
        if let Some(kind) = header.filter {
            let (descriptor, fingerprints) = build_filter(kind, &keys)?;
            filter.extend_from_slice(&descriptor);
            filter.extend_from_slice(&[0u8; 4]);
            header.filter_bytes = fingerprints.len() as u64;
            filter.extend_from_slice(&fingerprints);
        }
        drop(keys);
        let layout = header
            .layout()
            .ok_or(Error::Input("the index would be too large".into()))?;
        let written = layout.entries + layout.entry_bytes;
        self.write(&vec![0u8; (layout.filter - written) as usize])?;
        self.write(&filter)?;
        let path = self.file.path().to_path_buf();
        let io_err = |e: io::Error| Error::io(&path, e);
        let mut handle = self.out.into_inner().map_err(|e| io_err(e.into_error()))?;
        handle
            .seek(SeekFrom::Start(HEADER_LEN as u64))
            .map_err(io_err)?;
        let mut table = BufWriter::with_capacity(1 << 20, &mut handle);
        let mut offset = 0u32;
        for size in self.bucket_sizes.iter().copied().chain(std::iter::once(0)) {
            table.write_all(&offset.to_le_bytes()).map_err(io_err)?;
            offset += size;
        }
        table.flush().map_err(io_err)?;
        drop(table);
        handle.seek(SeekFrom::Start(0)).map_err(io_err)?;
        handle.write_all(&header.encode()).map_err(io_err)?;
        handle.sync_all().map_err(io_err)?;
        let len = handle.metadata().map_err(io_err)?.len();
        if len != layout.file_len {
            return Err(Error::Input(format!(
                "wrote {len} bytes where the layout calls for {}",
                layout.file_len
            )));
        }
        self.file
            .persist(output)
            .map_err(|e| Error::io(output, e.error))?;
        Ok((header, len))
    }
}

fn build_filter(kind: FilterKind, keys: &[u64]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let failed = |why: &str| Error::Input(format!("the filter could not be built: {why}"));
    match kind {
        FilterKind::Fuse8 => {
            let f = BinaryFuse8::try_from(keys).map_err(failed)?;
            let mut d = vec![0u8; BinaryFuse8::DESCRIPTOR_LEN];
            f.dma_copy_descriptor_to(&mut d);
            Ok((d, f.dma_fingerprints().to_vec()))
        }
        FilterKind::Fuse16 => {
            let f = BinaryFuse16::try_from(keys).map_err(failed)?;
            let mut d = vec![0u8; BinaryFuse16::DESCRIPTOR_LEN];
            f.dma_copy_descriptor_to(&mut d);
            Ok((d, f.dma_fingerprints().to_vec()))
        }
    }
}
