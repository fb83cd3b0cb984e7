//! Opening inputs: files, `-` for standard input, gzip recognised by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use jiff::Timestamp;

/// An opened input.
pub struct Input {
    /// The decompressed stream.
    pub reader: Box<dyn Read>,
    /// When the file was last written; for standard input, now.
    pub modified: Timestamp,
}

/// Opens `name`; `-` is standard input. Gzip is detected from the content, not the name.
pub fn open(name: &str) -> Result<Input> {
    if name == "-" {
        let mut stdin = BufReader::with_capacity(256 * 1024, io::stdin().lock());
        let gzip = is_gzip(stdin.fill_buf().context("cannot read standard input")?);
        let reader: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(stdin))
        } else {
            Box::new(stdin)
        };
        return Ok(Input {
            reader,
            modified: Timestamp::now(),
        });
    }
    let path = Path::new(name);
    let mut file = File::open(path).with_context(|| format!("cannot open {name}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {name}"))?;
    if meta.is_dir() {
        anyhow::bail!("{name} is a directory");
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
        .unwrap_or_else(Timestamp::now);
    // Peek at the magic bytes, then start over: a plain file is read straight into the
    // line reader's buffer, with no second copy through a BufReader.
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        }
    }
    let reader: Box<dyn Read> = if is_gzip(&magic[..got]) {
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("cannot read {name}"))?;
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            file,
        )))
    } else if file.seek(SeekFrom::Start(0)).is_ok() {
        Box::new(file)
    } else {
        // A FIFO or similar: the bytes already read come first.
        Box::new(io::Cursor::new(magic[..got].to_vec()).chain(file))
    };
    Ok(Input { reader, modified })
}

fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}
