//! Reading inputs for the builder: opening files (gzip recognised by its magic bytes),
//! cutting them into blocks of whole lines on a reader thread, and parsing a block into
//! records (on any thread).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use flate2::read::MultiGzDecoder;

use crate::error::Error;
use crate::input::{Line, LineForm, parse_line};
use crate::runs::Record;

const BLOCK_BYTES: usize = 1 << 20;
/// Malformed line numbers kept for the report.
pub const MAX_EXAMPLES: usize = 10;

/// One input and how its lines are read.
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// The form of its lines.
    pub form: LineForm,
}

/// The first 64 KiB of a file, decompressed if it is gzip.
pub fn head(path: &Path) -> Result<Vec<u8>, Error> {
    let mut reader = open(path, &Arc::new(AtomicU64::new(0)))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Counts bytes read from the file itself, before decompression.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file; gzip is recognised by its magic bytes, not its name.
fn open(path: &Path, counter: &Arc<AtomicU64>) -> Result<Box<dyn Read + Send>, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    let counted = Counting {
        inner: file,
        counter: Arc::clone(counter),
    };
    if magic == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            256 << 10,
            counted,
        ))))
    } else {
        Ok(Box::new(counted))
    }
}

/// Whole lines of one source (private fields: only this module makes them).
pub struct Block {
    source: usize,
    first_line: u64,
    data: Vec<u8>,
    /// Lines longer than a block, skipped whole while reading.
    overlong: u64,
}

/// Reads every source in order (on the calling thread), sending blocks of whole lines;
/// the first error is sent and ends the reading, as does a receiver that went away.
pub fn read_sources(
    sources: &[Source],
    counter: &Arc<AtomicU64>,
    tx: &mpsc::SyncSender<Result<Block, Error>>,
) {
    for (i, source) in sources.iter().enumerate() {
        if let Err(e) = read_source(i, source, counter, tx) {
            let _ = tx.send(Err(e));
            return;
        }
    }
}

fn read_source(
    index: usize,
    source: &Source,
    counter: &Arc<AtomicU64>,
    tx: &mpsc::SyncSender<Result<Block, Error>>,
) -> Result<(), Error> {
    let mut reader = open(&source.path, counter)?;
    let mut buf = vec![0u8; BLOCK_BYTES];
    let mut filled = 0;
    let mut line = 1u64;
    let mut skipping = false;
    let mut overlong = 0;
    loop {
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(&source.path, e)),
        };
        let eof = n == 0;
        filled += n;
        if skipping {
            // Drop the rest of an overlong line, up to and including its newline.
            match buf[..filled].iter().position(|&c| c == b'\n') {
                Some(end) => {
                    buf.copy_within(end + 1..filled, 0);
                    filled -= end + 1;
                    skipping = false;
                    line += 1;
                }
                None => {
                    filled = 0;
                    if eof {
                        break;
                    }
                    continue;
                }
            }
        }
        let cut = if eof {
            filled
        } else {
            match buf[..filled].iter().rposition(|&c| c == b'\n') {
                Some(end) => end + 1,
                None if filled == buf.len() => {
                    skipping = true;
                    overlong += 1;
                    filled = 0;
                    continue;
                }
                None => continue,
            }
        };
        if cut > 0 || overlong > 0 {
            let data = buf[..cut].to_vec();
            let lines = data.iter().filter(|&&c| c == b'\n').count() as u64;
            let block = Block {
                source: index,
                first_line: line,
                data,
                overlong: std::mem::take(&mut overlong),
            };
            line += lines;
            if tx.send(Ok(block)).is_err() {
                return Ok(());
            }
            buf.copy_within(cut..filled, 0);
            filled -= cut;
        }
        if eof {
            break;
        }
    }
    Ok(())
}

pub struct Parsed {
    /// The source's position in the list.
    pub source: usize,
    /// Records in the order of their lines.
    pub records: Vec<Record>,
    /// Lines read.
    pub lines: u64,
    /// Malformed lines.
    pub malformed: u64,
    /// Numbers of the first malformed lines.
    pub malformed_lines: Vec<u64>,
    /// Empty lines.
    pub empty: u64,
}

/// Parses one block's lines (on any thread).
pub fn parse_block(block: Block, sources: &[Source]) -> Parsed {
    let form = sources[block.source].form;
    let mut out = Parsed {
        source: block.source,
        records: Vec::with_capacity(block.data.len() / 40 + 1),
        lines: block.overlong,
        malformed: block.overlong,
        malformed_lines: Vec::new(),
        empty: 0,
    };
    let data = block.data.strip_suffix(b"\n").unwrap_or(&block.data);
    if block.data.is_empty() {
        return out;
    }
    for (i, text) in data.split(|&c| c == b'\n').enumerate() {
        out.lines += 1;
        match parse_line(text, form) {
            Line::Record(hash, count) => out.records.push(Record { hash, count }),
            Line::Empty => out.empty += 1,
            Line::Malformed => {
                out.malformed += 1;
                if out.malformed_lines.len() < MAX_EXAMPLES {
                    out.malformed_lines.push(block.first_line + i as u64);
                }
            }
        }
    }
    out
}
