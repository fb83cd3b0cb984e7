//! Windows event log files (`.evtx`): the records of a Security log handed to the same
//! reader as every other JSON shape of Windows events ([`crate::windows`]).
//!
//! The binary format (a file header, 64 KiB chunks of Binary XML records with their
//! templates and string tables) is the one the `evtx` crate
//! (<https://github.com/omerbenamram/evtx>) reads. The fast path finds the chunks
//! itself ([`chunks`]), in the order Windows reads them and with the outcomes the
//! crate's chunk iterator has, so that the crate's work on each chunk is done only for
//! a chunk that has a record to render. The crate's rendering of a record as JSON
//! (`Event.System.EventID`,
//! `Event.System.TimeCreated.#attributes.SystemTime`, `Event.EventData.<Name>`) is what
//! the Windows reader reads, but rendering every record costs far more than the rest of
//! the pipeline, and most records of a Security log are not logins (4672 special
//! privileges, 4634 logoffs, 4688 process creation, …).
//!
//! So each record is first read without rendering ([`record`]): its template's
//! definition, read once per file ([`template`], [`known`]), says which of the record's
//! substitution values is its `EventID`; a record that is not one of [`LOGIN_IDS`]
//! stops there, and a login record has the few fields the Windows reader reads written
//! as the JSON the crate would render for them. Whatever that reading cannot be sure of
//! (a template of another shape, a nested template where the event data should be, a
//! value type it does not write, a chunk whose records cannot be walked) is rendered by
//! the crate as before, so nothing is lost; [`Counts`] says how often. Either way the
//! records go on as [`Candidates`], one per login record, so the rest of the pipeline
//! is the one JSON exports take and there is one mapping of event ids, Status and
//! SubStatus codes to outcomes.
//!
//! The two readings give the same events, record for record, on damaged files too (a
//! property test holds them together). One count can differ: a damaged record that is
//! not a login is read only as far as its event id, so damage further on, which the
//! crate would fail on, is not counted as a malformed record.
//!
//! A record's "line" is its `EventRecordID`, which is what Event Viewer shows and
//! `Get-WinEvent -FilterXPath` finds; its offset is 0 (the crate does not say where a
//! record lies). A chunk or record that cannot be read is counted as a malformed record
//! and skipped; only a file whose header is not an EVTX header is an error. Records are
//! read on the calling thread (the crate's `multithreading` feature is off): the
//! pipeline already parses on a thread of its own.
//!
//! This module does not open files or decompress: it reads any `Read + Seek`.

mod chunks;
mod known;
mod record;
mod template;

use std::fmt;
use std::io::{Read, Seek};
use std::sync::Arc;

use ::evtx::{EvtxChunk, EvtxChunkData, EvtxParser, EvtxRecordHeader, ParserSettings};

use crate::prefilter::Candidates;
use chunks::{CHUNK_HEADER_SIZE, Chunk, ChunkHeader, Chunks};
use record::{Outcome, RecordReader};

/// Little-endian integers at a byte offset, `None` past the end (the file's, a chunk's
/// and a template's fields alike).
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The Security event ids [`crate::windows`] reads: logon, failed logon, Kerberos
/// pre-authentication failure, NTLM credential validation, account lockout.
pub const LOGIN_IDS: [u32; 5] = [4624, 4625, 4771, 4776, 4740];

/// A file that is not an EVTX file (its header is not one), or that could not be read.
#[derive(Debug)]
pub struct EvtxError(String);

impl fmt::Display for EvtxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvtxError {}

/// How records are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// From their substitution values where that is certain, rendered otherwise.
    Fast,
    /// Every record rendered as JSON by the crate (the reference the fast path is held
    /// to).
    Render,
}

/// What reading a file took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records (and unreadable chunks, one each) read.
    pub records: u64,
    /// Records rendered as JSON by the crate: those the fast path could not read.
    pub rendered: u64,
    /// Of those, records of [`LOGIN_IDS`].
    pub rendered_logins: u64,
    /// Chunks whose records could not be walked by the fast path, all rendered.
    pub rendered_chunks: u64,
    /// Template definitions read by the fast path (one of an earlier chunk is not read
    /// again).
    pub templates_read: u64,
    /// False when `emit` asked to stop.
    pub finished: bool,
}

/// The most JSON the fast path holds for one chunk before it renders the chunk
/// instead (record by record): a crafted template can repeat long text in every record.
const MAX_CHUNK_JSON: usize = 4 << 20;

/// Reads every record of an EVTX file and hands the login records on in batches of
/// about `batch_bytes` of JSON. `emit` returns false to stop early; the return value
/// is false when it did. Every record counts as a line in the batch's stats.
pub fn read<R: Read + Seek + 'static>(
    input: R,
    batch_bytes: usize,
    emit: impl FnMut(Candidates) -> bool,
) -> Result<bool, EvtxError> {
    read_with(input, Path::Fast, batch_bytes, emit).map(|c| c.finished)
}

/// [`read`] by the given path, with the counts of what it took.
pub fn read_with<R: Read + Seek + 'static>(
    input: R,
    path: Path,
    batch_bytes: usize,
    emit: impl FnMut(Candidates) -> bool,
) -> Result<Counts, EvtxError> {
    let settings = ParserSettings::new()
        .num_threads(1)
        .indent(false)
        .separate_json_attributes(false);
    let mut out = Out {
        batch: Candidates::default(),
        batch_bytes,
        emit,
        counts: Counts::default(),
    };
    let go_on = match path {
        Path::Fast => fast(Chunks::open(input)?, Arc::new(settings), &mut out),
        Path::Render => {
            let parser = EvtxParser::from_read_seek(input)
                .map_err(|e| EvtxError(format!("not a readable EVTX file: {e}")))?
                .with_configuration(settings);
            rendered(parser, &mut out)
        }
    };
    out.counts.finished = go_on && (out.emit)(out.batch);
    Ok(out.counts)
}

/// The batch being filled and where it goes.
struct Out<F> {
    batch: Candidates,
    batch_bytes: usize,
    emit: F,
    counts: Counts,
}

impl<F: FnMut(Candidates) -> bool> Out<F> {
    /// Counts one record and hands on its JSON, if any; false to stop.
    fn record(&mut self, id: u64, json: Option<&[u8]>) -> bool {
        self.batch.stats.lines += 1;
        self.counts.records += 1;
        if let Some(json) = json {
            self.batch.push(json, id, 0);
        }
        self.flush_if_full()
    }

    fn malformed(&mut self) -> bool {
        self.batch.stats.lines += 1;
        self.batch.stats.malformed_records += 1;
        self.counts.records += 1;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> bool {
        self.batch.bytes_held() < self.batch_bytes || (self.emit)(std::mem::take(&mut self.batch))
    }
}

/// The rendering path: every record rendered, its JSON looked at as far as its
/// `EventID`.
fn rendered<R: Read + Seek, F: FnMut(Candidates) -> bool>(
    mut parser: EvtxParser<R>,
    out: &mut Out<F>,
) -> bool {
    let records = parser.serialized_records(|record| {
        let record = record?;
        let id = record.event_record_id;
        let json = record.into_json_bytes()?.data;
        Ok(event_id(&json)
            .is_none_or(|e| LOGIN_IDS.contains(&e))
            .then_some((id, json)))
    });
    for record in records {
        out.counts.rendered += 1;
        let go_on = match record {
            Ok(Some((id, json))) => {
                out.counts.rendered_logins += u64::from(is_login(&json));
                out.record(id, Some(&json))
            }
            Ok(None) => out.record(0, None),
            Err(_) => out.malformed(),
        };
        if !go_on {
            return false;
        }
    }
    true
}

fn is_login(json: &[u8]) -> bool {
    event_id(json).is_some_and(|e| LOGIN_IDS.contains(&e))
}

/// One record of a chunk as the fast path left it.
struct Item {
    id: u64,
    outcome: Outcome,
}

/// The fast path, chunk by chunk.
fn fast<R: Read + Seek, F: FnMut(Candidates) -> bool>(
    mut chunks: Chunks<R>,
    settings: Arc<ParserSettings>,
    out: &mut Out<F>,
) -> bool {
    let mut reader = RecordReader::default();
    let mut items: Vec<Item> = Vec::new();
    let mut json: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.next_chunk() {
        // A chunk the crate cannot read, or whose string table it cannot, is one
        // malformed record, as on the rendering path.
        let Chunk::Read(data, header) = chunk else {
            if !out.malformed() {
                return false;
            }
            continue;
        };
        items.clear();
        json.clear();
        reader.templates.clear();
        let walked = walk(data, &header, &mut reader, &mut items, &mut json);
        out.counts.templates_read = reader.templates.read;
        let go_on = if walked && items.iter().all(|i| i.outcome != Outcome::Render) {
            hand_on(&items, &json, &mut [], out)
        } else {
            // Some records are the crate's: it reads the chunk (its string cache
            // built) only now.
            let Ok(mut owned) = EvtxChunkData::new(data.to_vec(), false) else {
                if !out.malformed() {
                    return false;
                }
                continue;
            };
            let Ok(mut chunk) = owned.parse(Arc::clone(&settings)) else {
                if !out.malformed() {
                    return false;
                }
                continue;
            };
            if walked {
                finish_chunk(&mut chunk, &items, &json, out)
            } else {
                out.counts.rendered_chunks += 1;
                render_chunk(&mut chunk, out)
            }
        };
        if !go_on {
            return false;
        }
    }
    true
}

/// Reads the records of a chunk into `items`, walking them as the crate does (from the
/// chunk header to the free space or the last record); false if a record header
/// cannot be read, which the crate resynchronises past in ways left to it, or if the
/// chunk's login records make more JSON than [`MAX_CHUNK_JSON`].
///
/// A record is a signature (`**\0\0`), its size (all of it, this and the copy of
/// the size at its end included), its identifier, the time it was written (a
/// FILETIME) and its Binary XML (libyal, "Event record"); the crate reads the header
/// as [`EvtxRecordHeader`], which also refuses a time it cannot represent.
fn walk(
    data: &[u8],
    chunk: &ChunkHeader,
    reader: &mut RecordReader,
    items: &mut Vec<Item>,
    json: &mut Vec<u8>,
) -> bool {
    const RECORD_HEADER: usize = 24;
    let live_end = (chunk.free_space as usize).min(data.len());
    let mut at = CHUNK_HEADER_SIZE;
    while at < live_end {
        let Ok(header) = EvtxRecordHeader::from_bytes_at(data, at) else {
            return false;
        };
        let Ok(size) = header.record_data_size() else {
            return false;
        };
        let binxml = at + RECORD_HEADER..at + RECORD_HEADER + size as usize;
        if binxml.end > data.len() {
            return false;
        }
        let outcome = reader.read(data, binxml, json);
        if json.len() > MAX_CHUNK_JSON {
            return false;
        }
        items.push(Item {
            id: header.event_record_id,
            outcome,
        });
        if header.event_record_id == chunk.last_id {
            break;
        }
        at += header.data_size as usize;
    }
    true
}

/// Hands on a walked chunk's records in order, rendering those the fast path left.
fn finish_chunk<F: FnMut(Candidates) -> bool>(
    chunk: &mut EvtxChunk<'_>,
    items: &[Item],
    json: &[u8],
    out: &mut Out<F>,
) -> bool {
    let mut rendered: Vec<Rendered> = Vec::new();
    // The crate walks the same records in the same order: render those left to it.
    let mut records = chunk.iter();
    for item in items {
        let Some(record) = records.next() else {
            break;
        };
        rendered.push(match (&item.outcome, record) {
            (_, Ok(record)) if record.event_record_id != item.id => break,
            (Outcome::Render, Ok(record)) => Some(render(record).map_err(|_| ())),
            (Outcome::Render, Err(_)) => Some(Err(())),
            _ => None,
        });
    }
    if rendered.len() != items.len() || records.next().is_some() {
        // Not the walk the fast path made: the chunk is the crate's.
        drop(records);
        out.counts.rendered_chunks += 1;
        return render_chunk(chunk, out);
    }
    hand_on(items, json, &mut rendered, out)
}

/// What the crate made of a record the fast path left to it: its JSON if it is a
/// login, or an error; `None` for a record the fast path read.
type Rendered = Option<Result<Option<Vec<u8>>, ()>>;

/// Hands on a chunk's records in order: those the fast path read from `json`, the
/// others as `rendered` says.
fn hand_on<F: FnMut(Candidates) -> bool>(
    items: &[Item],
    json: &[u8],
    rendered: &mut [Rendered],
    out: &mut Out<F>,
) -> bool {
    for (i, item) in items.iter().enumerate() {
        let go_on = match (&item.outcome, rendered.get_mut(i).and_then(Option::take)) {
            (Outcome::Login(range), _) => out.record(item.id, Some(&json[range.clone()])),
            (_, Some(Ok(login))) => {
                out.counts.rendered += 1;
                out.counts.rendered_logins += u64::from(login.is_some());
                out.record(item.id, login.as_deref())
            }
            (_, Some(Err(()))) => {
                out.counts.rendered += 1;
                out.malformed()
            }
            _ => out.record(item.id, None),
        };
        if !go_on {
            return false;
        }
    }
    true
}

/// A record rendered as JSON, kept if it is a login record (or has no `EventID` the
/// look at its JSON can find: the reader then decides).
fn render(record: ::evtx::EvtxRecord<'_>) -> Result<Option<Vec<u8>>, ::evtx::err::EvtxError> {
    let json = record.into_json_bytes()?.data;
    Ok(event_id(&json)
        .is_none_or(|e| LOGIN_IDS.contains(&e))
        .then_some(json))
}

/// Renders every record of a chunk, as the rendering path does.
fn render_chunk<F: FnMut(Candidates) -> bool>(chunk: &mut EvtxChunk<'_>, out: &mut Out<F>) -> bool {
    for record in chunk.iter() {
        out.counts.rendered += 1;
        let go_on = match record.map(|r| (r.event_record_id, render(r))) {
            Ok((id, Ok(json))) => {
                out.counts.rendered_logins += u64::from(json.as_deref().is_some_and(is_login));
                out.record(id, json.as_deref())
            }
            _ => out.malformed(),
        };
        if !go_on {
            return false;
        }
    }
    true
}

/// The `EventID` of a record as the crate renders it: `"EventID":4625`, or with
/// attributes `"EventID":{"#attributes":{"Qualifiers":…},"#text":4625}`. `None` when it
/// is not there in either form; the record is then handed on whole.
pub fn event_id(json: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"EventID\":";
    let at = memchr::memmem::find(json, KEY)? + KEY.len();
    let mut rest = json.get(at..)?;
    if rest.first() == Some(&b'{') {
        // `#attributes` and `#text` are all the object holds: a short look suffices.
        let inner = &rest[..rest.len().min(256)];
        const TEXT: &[u8] = b"\"#text\":";
        rest = &inner[memchr::memmem::find(inner, TEXT)? + TEXT.len()..];
    }
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_in_both_renderings() {
        assert_eq!(
            event_id(br#"{"Event":{"System":{"EventID":4625,"Version":0}}}"#),
            Some(4625)
        );
        assert_eq!(
            event_id(
                br##"{"Event":{"System":{"EventID":{"#attributes":{"Qualifiers":16384},"#text":7036},"Version":0}}}"##
            ),
            Some(7036)
        );
        assert_eq!(event_id(br#"{"EventID":"4776"}"#), Some(4776));
        assert_eq!(event_id(br##"{"EventID":{"#attributes":{}}}"##), None);
        assert_eq!(event_id(br#"{"EventID":"#), None);
        assert_eq!(event_id(br#"{"EventID":99999999999}"#), None);
        assert_eq!(event_id(b"{}"), None);
    }

    #[test]
    fn a_file_that_is_not_evtx_is_an_error() {
        let e = read(std::io::Cursor::new(b"ElfFile\0short".to_vec()), 1, |_| {
            true
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.starts_with("not a readable EVTX file"), "{e}");
    }
}
