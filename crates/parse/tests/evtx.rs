//! Conformance of the `.evtx` reader against real Windows Security logs and an
//! independent reader of them.
//!
//! `fixtures/evtx/` holds two Security logs from the `evtx` crate's repository and, for
//! each, the login records as python-evtx reads them (`expected.py`, see the README
//! there). Each file is read through [`portcullis_parse::eventlog`] and [`LogParser`]
//! as `portcullis events` reads it, and every record python-evtx lists is compared
//! field by field with the event Portcullis made of it, or with its absence where the
//! documented rules (docs/events.md, "Windows Security events") say a record is no login
//! attempt: logon types other than 2, 3, 7, 8, 10, 11; computer accounts; `ANONYMOUS
//! LOGON`. Records of other event ids must produce nothing.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_core::{Event, address};
use portcullis_parse::{InputFormat, LogParser, ParseConfig, Stats, eventlog};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evtx")
        .join(name)
}

/// A fixture decompressed.
fn bytes(name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture(name)).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// The file decompressed, read into events, with the parser's counts.
fn read_evtx(name: &str) -> (Vec<Event>, Stats) {
    read_bytes(name, bytes(name))
}

fn read_bytes(name: &str, bytes: Vec<u8>) -> (Vec<Event>, Stats) {
    let mut parser = LogParser::new(ParseConfig {
        format: InputFormat::Evtx,
        ..ParseConfig::default()
    });
    let file: Arc<str> = Arc::from(name);
    let mut out = Vec::new();
    // A small batch size, so that batches end mid-chunk.
    eventlog::read(std::io::Cursor::new(bytes), 4096, |batch| {
        parser.push_candidates(&batch, Some(&file), &mut out);
        true
    })
    .unwrap();
    parser.finish(&mut out);
    (out, *parser.stats())
}

/// One row of an `.expected.tsv` file: column name → value (`-` for none).
type Row = HashMap<String, String>;

/// The rows of an expected file, and the number of records python-evtx read.
fn expected(name: &str) -> (Vec<Row>, u64) {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let mut rows = Vec::new();
    let mut total = None;
    for line in lines {
        if let Some(n) = line.strip_prefix("# records\t") {
            total = Some(n.parse().unwrap());
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        assert_eq!(cells.len(), header.len(), "{line}");
        rows.push(
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                .collect(),
        );
    }
    (rows, total.expect("record count line"))
}

fn field<'r>(row: &'r Row, name: &str) -> Option<&'r str> {
    row.get(name).map(String::as_str).filter(|v| *v != "-")
}

fn hex(v: Option<&str>) -> u32 {
    v.map(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
        .unwrap_or(0)
}

/// Microsoft's NTSTATUS codes of a failed logon (event 4625 and 4776 pages) as the
/// reasons docs/events.md gives them. Only codes that occur in the fixtures are listed;
/// a new one fails the test until it is added here.
fn status_reason(code: u32) -> &'static str {
    match code {
        0xC000_006A | 0xC000_006D => "bad_password",
        0xC000_0064 => "unknown_account",
        0xC000_0234 => "locked",
        0xC000_0072 => "disabled",
        0xC000_0224 | 0xC000_0071 | 0xC000_0193 => "expired",
        other => panic!("NTSTATUS {other:#x} not in the test's table"),
    }
}

/// What the event of `row` must be, or `None` when the record is no login attempt.
struct Want {
    user: String,
    outcome: String,
    source: Option<String>,
    port: Option<u16>,
    source_name: Option<String>,
}

fn want(row: &Row) -> Option<Want> {
    let id = field(row, "event_id").unwrap();
    let user = field(row, "TargetUserName")?;
    if user.ends_with('$') || user.eq_ignore_ascii_case("ANONYMOUS LOGON") {
        return None;
    }
    let with_domain = || match field(row, "TargetDomainName") {
        Some(d) if !user.contains('@') && !user.contains('\\') => format!("{d}\\{user}"),
        _ => user.to_owned(),
    };
    let (user, outcome) = match id {
        "4624" => {
            let t: u32 = field(row, "LogonType")?.parse().unwrap();
            if ![2, 3, 7, 8, 10, 11].contains(&t) {
                return None;
            }
            (with_domain(), "success".to_owned())
        }
        "4625" => {
            let sub = hex(field(row, "SubStatus"));
            let code = if sub != 0 {
                sub
            } else {
                hex(field(row, "Status"))
            };
            (with_domain(), status_reason(code).to_owned())
        }
        "4776" => {
            let code = hex(field(row, "Status"));
            let outcome = if code == 0 {
                "success"
            } else {
                status_reason(code)
            };
            (user.to_owned(), outcome.to_owned())
        }
        other => panic!("event {other} has no rule in this test yet"),
    };
    let source = field(row, "IpAddress")
        .and_then(address::parse)
        .map(|a| a.to_string());
    let port = field(row, "IpPort")
        .map(|p| p.parse::<u16>().unwrap())
        .filter(|p| *p != 0);
    let source_name = match id {
        "4776" => field(row, "Workstation").map(str::to_owned),
        _ if source.is_none() => field(row, "WorkstationName").map(str::to_owned),
        _ => None,
    };
    Some(Want {
        user,
        outcome,
        source,
        port,
        source_name,
    })
}

/// python-evtx's `2015-08-24 06:51:43.312498+00:00` as an instant. python-evtx turns
/// FILETIME into a float and can be a few microseconds off; times are compared to
/// within 100 µs.
fn python_time(s: &str) -> jiff::Timestamp {
    s.replacen(' ', "T", 1).parse().unwrap()
}

/// Compares every record python-evtx lists with what Portcullis made of it. Returns
/// (events expected, records that must produce none).
fn conforms(name: &str) -> (usize, usize) {
    let (events, stats) = read_evtx(&format!("{name}.evtx.gz"));
    let (rows, total) = expected(&format!("{name}.expected.tsv"));
    assert_eq!(stats.lines, total, "{name}: records read");
    assert_eq!(stats.malformed_records, 0, "{name}");
    let mut by_record: HashMap<u64, Vec<&Event>> = HashMap::new();
    for e in &events {
        by_record.entry(e.origin.line).or_default().push(e);
    }
    let (mut with_event, mut without) = (0, 0);
    for row in &rows {
        let record: u64 = field(row, "record").unwrap().parse().unwrap();
        let got = by_record.remove(&record).unwrap_or_default();
        let Some(w) = want(row) else {
            assert!(got.is_empty(), "{name} record {record}: {got:?}");
            without += 1;
            continue;
        };
        with_event += 1;
        assert_eq!(got.len(), 1, "{name} record {record}: {got:?}");
        let e = got[0];
        let ctx = format!("{name} record {record}: {e:?}");
        let when = python_time(field(row, "time").unwrap());
        let ours = e.time.expect("time").instant;
        assert!(
            (ours - when).get_microseconds().abs() < 100 && (ours - when).get_seconds() == 0,
            "{ctx}: time {ours} vs {when}"
        );
        assert_eq!(e.host.as_deref(), field(row, "computer"), "{ctx}");
        assert_eq!(e.user.as_deref(), Some(w.user.as_str()), "{ctx}");
        let outcome = e
            .outcome
            .reason()
            .map_or("success".to_owned(), |r| r.to_string());
        assert_eq!(outcome, w.outcome, "{ctx}");
        assert_eq!(e.source.map(|a| a.to_string()), w.source, "{ctx}");
        assert_eq!(e.port, w.port, "{ctx}");
        assert_eq!(e.source_name, w.source_name, "{ctx}");
        assert_eq!(e.service.to_string(), "windows", "{ctx}");
        assert_eq!(
            e.origin.file.as_deref(),
            Some(format!("{name}.evtx.gz").as_str())
        );
    }
    // Records of other event ids (logoffs, privileges, process creation…) made nothing.
    assert!(
        by_record.is_empty(),
        "{name}: events of no login record: {by_record:?}"
    );
    assert_eq!(stats.events as usize, with_event, "{name}");
    (with_event, without)
}

#[test]
fn security_short_selected_matches_python_evtx() {
    // One 4776 (NTLM, bad password) and one 4625 (RDP, bad password) among 7 records.
    assert_eq!(conforms("Security_short_selected"), (2, 0));
}

#[test]
fn security_with_size_t_matches_python_evtx() {
    let (events, none) = conforms("Security_with_size_t");
    // 126 logons (most of them services: types 0 and 5), 15 failed logons, 21 NTLM
    // validations; the figures pin the sample, so a reader that silently drops records
    // cannot pass by producing nothing.
    assert_eq!((events, none), (57, 105));
}

/// The first byte of chunk `n` (a 4 KiB file header, then 64 KiB chunks).
fn chunk_start(n: usize) -> usize {
    4096 + n * 65536
}

#[test]
fn a_corrupt_chunk_is_counted_and_the_rest_is_read() {
    let name = "Security_with_size_t.evtx.gz";
    let (whole, _) = read_evtx(name);
    let mut b = bytes(name);
    assert_eq!(&b[chunk_start(0)..chunk_start(0) + 8], b"ElfChnk\0");
    b[chunk_start(0)..chunk_start(0) + 8].copy_from_slice(b"XXXXXXXX");
    let (events, stats) = read_bytes(name, b);
    assert!(stats.malformed_records >= 1, "{stats:?}");
    assert!(
        !events.is_empty() && events.len() < whole.len(),
        "{stats:?}"
    );
    // What was read is what the whole file gives for those records.
    for e in &events {
        assert!(whole.contains(e), "{e:?}");
    }
}

#[test]
fn a_corrupt_record_is_counted_and_its_neighbours_are_read() {
    let name = "Security_short_selected.evtx.gz";
    let mut b = bytes(name);
    // The records after the chunk header (512 bytes) begin with `**\0\0`; break the
    // size of the first so that its size copy no longer matches.
    let first = chunk_start(0) + 512;
    assert_eq!(&b[first..first + 4], b"**\0\0");
    b[first + 4..first + 8].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    let (events, stats) = read_bytes(name, b);
    assert!(stats.malformed_records >= 1, "{stats:?}");
    let (whole, _) = read_evtx(name);
    assert_eq!(events, whole, "the login records (3 and 4) are still read");
}

#[test]
fn damaged_files_never_panic() {
    let name = "Security_short_selected.evtx.gz";
    let clean = bytes(name);
    // Bounded: 256 single-byte changes spread over the header and the chunk, and
    // files cut short at 64 lengths.
    for i in 0..256usize {
        let mut b = clean.clone();
        let at = (i * 7919 + 13) % b.len();
        b[at] ^= 0x5A;
        let _ = read_bytes(name, b);
    }
    for i in 0..64usize {
        let cut = clean.len() * i / 64;
        let b = clean[..cut].to_vec();
        let mut parser = LogParser::new(ParseConfig {
            format: InputFormat::Evtx,
            ..ParseConfig::default()
        });
        let mut out = Vec::new();
        let _ = eventlog::read(std::io::Cursor::new(b), 4096, |batch| {
            parser.push_candidates(&batch, None, &mut out);
            true
        });
    }
}
