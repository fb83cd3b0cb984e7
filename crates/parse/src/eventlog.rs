//! Windows event log files (`.evtx`): the records of a Security log handed to the same
//! reader as every other JSON shape of Windows events ([`crate::windows`]).
//!
//! The binary format (a file header, 64 KiB chunks of Binary XML records with their
//! templates and string tables) is read by the `evtx` crate
//! (<https://github.com/omerbenamram/evtx>), which renders each record as JSON:
//! `Event.System.EventID`, `Event.System.TimeCreated.#attributes.SystemTime`,
//! `Event.EventData.<Name>`. Those records go on as [`Candidates`], one per record, so
//! the rest of the pipeline is the one JSON exports take and there is one mapping of
//! event ids, Status and SubStatus codes to outcomes.
//!
//! Most records of a Security log are not logins (4672 special privileges, 4634
//! logoffs, 4688 process creation, …). Their JSON is looked at only as far as its
//! `EventID`, and only the records of [`LOGIN_IDS`] are handed on.
//!
//! A record's "line" is its `EventRecordID`, which is what Event Viewer shows and
//! `Get-WinEvent -FilterXPath` finds; its offset is 0 (the crate does not say where a
//! record lies). A chunk or record that cannot be read is counted as a malformed record
//! and skipped; only a file whose header is not an EVTX header is an error. The crate
//! reads chunks on the calling thread (its `multithreading` feature is off): the
//! pipeline already parses on a thread of its own.
//!
//! This module does not open files or decompress: it reads any `Read + Seek`.

use std::fmt;
use std::io::{Read, Seek};

use ::evtx::{EvtxParser, ParserSettings};

use crate::prefilter::Candidates;

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

/// Reads every record of an EVTX file and hands the login records on in batches of
/// about `batch_bytes` of JSON. `emit` returns false to stop early; the return value
/// is false when it did. Every record counts as a line in the batch's stats.
pub fn read<R: Read + Seek + 'static>(
    input: R,
    batch_bytes: usize,
    mut emit: impl FnMut(Candidates) -> bool,
) -> Result<bool, EvtxError> {
    let settings = ParserSettings::new()
        .num_threads(1)
        .indent(false)
        .separate_json_attributes(false);
    let mut parser = EvtxParser::from_read_seek(input)
        .map_err(|e| EvtxError(format!("not a readable EVTX file: {e}")))?
        .with_configuration(settings);
    let mut batch = Candidates::default();
    let records = parser.serialized_records(|record| {
        let record = record?;
        let id = record.event_record_id;
        let json = record.into_json_bytes()?.data;
        Ok(event_id(&json)
            .is_none_or(|e| LOGIN_IDS.contains(&e))
            .then_some((id, json)))
    });
    for record in records {
        batch.stats.lines += 1;
        match record {
            Ok(Some((id, json))) => batch.push(&json, id, 0),
            Ok(None) => {}
            Err(_) => batch.stats.malformed_records += 1,
        }
        if batch.bytes_held() >= batch_bytes && !emit(std::mem::take(&mut batch)) {
            return Ok(false);
        }
    }
    Ok(emit(batch))
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
