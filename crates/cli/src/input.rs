//! Opening inputs: files, `-` for standard input, gzip recognised by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use jiff::Timestamp;

/// An opened input.
pub struct Input {
    /// The decompressed stream.
    pub reader: Box<dyn Read>,
    /// When the file was last written; for standard input, now.
    pub modified: Timestamp,
    /// A regular file read as it is (not gzip, not standard input or a FIFO): one that
    /// can be opened again and read at any position.
    pub seekable: bool,
}

/// Opens `name`; `-` is standard input. Gzip is detected from the content, not the name.
/// Bytes read from the file (before decompression) advance `progress`.
pub fn open(name: &str, progress: &ProgressBar) -> Result<Input> {
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
            seekable: false,
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
    let gzip = is_gzip(&magic[..got]);
    let rewound = file.seek(SeekFrom::Start(0)).is_ok();
    let file = progress.wrap_read(file);
    let reader: Box<dyn Read> = if gzip && rewound {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            file,
        )))
    } else if rewound {
        Box::new(file)
    } else {
        // A FIFO or similar: the bytes already read come first.
        let head = io::Cursor::new(magic[..got].to_vec());
        if gzip {
            Box::new(MultiGzDecoder::new(BufReader::new(head.chain(file))))
        } else {
            Box::new(head.chain(file))
        }
    };
    Ok(Input {
        reader,
        modified,
        seekable: rewound && !gzip && meta.is_file(),
    })
}

fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// A progress bar over the total size of the named files, drawn on stderr only when
/// stderr is a terminal (and not at all when `quiet`). Standard input and FIFOs add no
/// length; the bar then shows bytes read.
pub fn progress(files: &[String], quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let total: u64 = files
        .iter()
        .filter(|f| f.as_str() != "-")
        .filter_map(|f| std::fs::metadata(f).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    bar(
        total,
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
}

/// A progress bar of `len` steps drawn on stderr when it is a terminal.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    use indicatif::{ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
