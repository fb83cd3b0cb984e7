//! Opening inputs: files, `-` for standard input, gzip recognised by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
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
    let (raw, modified): (Box<dyn Read>, Timestamp) = if name == "-" {
        (Box::new(io::stdin().lock()), Timestamp::now())
    } else {
        let path = Path::new(name);
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
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
        (Box::new(file), modified)
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let magic = buffered
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok(Input { reader, modified })
}
