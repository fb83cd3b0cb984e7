//! JSON records: which reader a record's shape calls for, and the helpers they share.
//!
//! Each record ([`crate::records`] splits the stream) is parsed once and routed by its
//! shape, so one file may mix them: the operator's custom mappings first (they are
//! explicit), then Entra ID sign-ins ([`crate::entra`]), Windows Security events
//! ([`crate::windows`]) and Keycloak events ([`crate::keycloak`]). A Graph page
//! (`{"value": [...]}`) is opened and its records read in turn. A record that is not
//! JSON is counted as malformed; one of no known shape is counted as not understood.
//!
//! Records are parsed sparsely onto one [`Tape`], reused from record to record, that
//! keeps only the keys some reader reads ([`READ_KEYS`] and the custom mappings'
//! paths); the readers and the helpers here work on any [`JsonNode`], a
//! `&serde_json::Value` as well.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;
use portcullis_core::{Event, EventTime, Origin};

use crate::custom_json::CustomJson;
use crate::format::InputFormat;
use crate::jsondoc::{JsonNode, Keys, Node, Tape};
use crate::{entra, keycloak, windows};

/// What became of one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records that are not valid JSON objects.
    pub malformed: u64,
    /// Records of no shape any reader knows.
    pub unknown: u64,
}

/// Reads JSON records of one stream.
#[derive(Debug, Clone)]
pub struct JsonLog {
    readers: Readers,
    keys: Keys,
    /// Each record is parsed onto it in turn: its storage serves every record.
    tape: Tape,
}

/// Which readers a record may go to.
#[derive(Debug, Clone)]
struct Readers {
    only: InputFormat,
    custom: Arc<[CustomJson]>,
}

/// The most records one Graph page may hold that are read (Graph pages hold at most
/// 1,000); the rest are counted as malformed.
const MAX_PAGE: usize = 100_000;

impl JsonLog {
    /// A reader; `only` restricts the shapes to one reader (`Entra`, `Windows`,
    /// `Keycloak`) or allows all (`Json`, anything else).
    pub fn new(only: InputFormat, custom: Arc<[CustomJson]>) -> Self {
        let keys = read_keys(&custom);
        Self {
            readers: Readers { only, custom },
            keys,
            tape: Tape::new(),
        }
    }

    /// Reads one record, appending its events.
    pub fn push(&mut self, record: &[u8], origin: &Origin, out: &mut Vec<Event>) -> RecordCounts {
        let mut counts = RecordCounts::default();
        if let Ok(doc) = self.tape.parse(record, &self.keys) {
            let root = doc.root();
            let page = root
                .get("value")
                .and_then(JsonNode::items)
                .filter(|_| root.object_keys_up_to(3).is_some_and(|n| n <= 3));
            match page {
                Some(items) => {
                    for (i, item) in items.enumerate() {
                        if i >= MAX_PAGE {
                            // Counting the rest steps over each in one look.
                            counts.malformed += 1;
                            continue;
                        }
                        self.readers.one(item, origin, out, &mut counts);
                    }
                }
                None => self.readers.one(root, origin, out, &mut counts),
            }
        } else {
            counts.malformed += 1;
        }
        // Nothing of the record is kept, nor much of the room it took.
        self.tape.clear();
        counts
    }
}

impl Readers {
    fn one(&self, v: Node<'_>, origin: &Origin, out: &mut Vec<Event>, counts: &mut RecordCounts) {
        if !v.is_object() {
            counts.malformed += 1;
            return;
        }
        let all = !matches!(
            self.only,
            InputFormat::Entra | InputFormat::Windows | InputFormat::Keycloak | InputFormat::Evtx
        );
        if all {
            for c in self.custom.iter() {
                if let Some(done) = c.read(v, origin, out) {
                    if !done {
                        counts.malformed += 1;
                    }
                    return;
                }
            }
        }
        let known = ((all || self.only == InputFormat::Entra) && entra::read(v, origin, out))
            || ((all || matches!(self.only, InputFormat::Windows | InputFormat::Evtx))
                && windows::read(v, origin, out))
            || ((all || self.only == InputFormat::Keycloak) && keycloak::read(v, origin, out));
        if !known {
            counts.unknown += 1;
        }
    }
}

/// The keys a record is parsed with: the built-in readers' ([`READ_KEYS`] and the
/// Windows event data fields) and the custom mappings' paths.
fn read_keys(custom: &[CustomJson]) -> Keys {
    let data = windows::EVTX_DATA_FIELDS.iter().copied();
    let paths = custom.iter().flat_map(CustomJson::keys);
    Keys::new(READ_KEYS, data.chain(paths).map(Box::from))
}

/// Every object key the built-in readers look at, at any depth (Entra, Windows,
/// Keycloak, a Graph page's `value`). Keys not listed are skipped when a record is
/// parsed: unread parts of a record (an Entra sign-in's device, location and policy
/// details, most of a Windows event's data) are checked as JSON but never built. A
/// reader that reads a new key must list it here (the fixture tests fail otherwise).
const READ_KEYS: &[&str] = &[
    // A Graph page.
    "value",
    // Entra ID: Graph, Log Analytics, diagnostic exports.
    "category",
    "properties",
    "userPrincipalName",
    "status",
    "errorCode",
    "createdDateTime",
    "ipAddress",
    "clientAppUsed",
    "correlationId",
    "UserPrincipalName",
    "ResultType",
    "TimeGenerated",
    "CreatedDateTime",
    "IPAddress",
    "ClientAppUsed",
    "CorrelationId",
    // Windows: winlogbeat, Get-WinEvent, evtx, flat; and the event data.
    "winlog",
    "event_id",
    "computer_name",
    "event_data",
    "@timestamp",
    "event",
    "code",
    "host",
    "name",
    "Event",
    "System",
    "EventID",
    "#text",
    "TimeCreated",
    "#attributes",
    "SystemTime",
    "EventData",
    "Id",
    "Properties",
    "Value",
    "MachineName",
    "Computer",
    "Hostname",
    "EventTime",
    // And the event data fields, `windows::EVTX_DATA_FIELDS`.
    // Keycloak.
    "type",
    "realmId",
    "realmName",
    "error",
    "details",
    "username",
    "sessionId",
    "time",
    "loggerName",
    "message",
    "timestamp",
];

/// The value at a dotted path (`status.errorCode`); each segment is an object key.
#[inline]
pub fn path<'t, V: JsonNode<'t>>(v: V, dotted: &str) -> Option<V> {
    dotted.split('.').try_fold(v, |v, key| v.get(key))
}

/// A string, or a number as text (`4625` and `"4625"` alike); `None` for anything
/// else, for `null`, for `""` and for `-`.
#[inline]
pub fn text<'t, V: JsonNode<'t>>(v: Option<V>) -> Option<String> {
    text_ref(v).map(Cow::into_owned)
}

/// [`text`], borrowed when the value is a string.
#[inline]
pub fn text_ref<'t, V: JsonNode<'t>>(v: Option<V>) -> Option<Cow<'t, str>> {
    let v = v?;
    if let Some(n) = v.as_number() {
        return Some(Cow::Owned(n.to_string()));
    }
    str_of(Some(v)).map(Cow::Borrowed)
}

/// A borrowed string value; `None` for `""` and `-`.
#[inline]
pub fn str_of<'t, V: JsonNode<'t>>(v: Option<V>) -> Option<&'t str> {
    v?.as_str().filter(|s| !s.is_empty() && *s != "-")
}

/// A number, or a string holding a decimal or `0x` hexadecimal number; negative
/// numbers are taken as the 32-bit pattern PowerShell writes for NTSTATUS values.
#[inline]
pub fn number<'t, V: JsonNode<'t>>(v: Option<V>) -> Option<i64> {
    let v = v?;
    if let Some(n) = v.as_number() {
        return n.as_i64().map(|x| {
            if (i64::from(i32::MIN)..0).contains(&x) {
                i64::from(x as i32 as u32)
            } else {
                x
            }
        });
    }
    let s = v.as_str()?;
    // Trimmed only where there can be something to trim: a number written as usual
    // begins and ends with a digit or letter.
    let plain = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let s = if plain(s.as_bytes().first()) && plain(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    };
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// An RFC 3339 time (`2017-06-23T08:14:05Z`, `...05.1234567+01:00`), keeping its
/// offset ([`crate::rfc3339`]).
pub fn rfc3339(s: &str) -> Option<EventTime> {
    crate::rfc3339::parse(s)
}

/// Milliseconds since the Unix epoch, as UTC.
pub fn unix_millis(ms: i64) -> Option<EventTime> {
    Timestamp::from_millisecond(ms).ok().map(EventTime::utc)
}

/// A time in any of the forms exports use: RFC 3339, Windows PowerShell 5's
/// `/Date(1498205645123)/`, or a number of Unix milliseconds.
pub fn any_time<'t, V: JsonNode<'t>>(v: Option<V>) -> Option<EventTime> {
    let v = v?;
    if let Some(n) = v.as_number() {
        return unix_millis(n.as_i64()?);
    }
    let s = v.as_str()?;
    if let Some(rest) = s.strip_prefix("/Date(") {
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return unix_millis(digits.parse().ok()?);
    }
    rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn helpers_read_loose_values() {
        let v = json!({"a": {"b": 4625, "c": "0xC000006A", "d": -1073741715, "e": "-"}});
        assert_eq!(text(path(&v, "a.b")).as_deref(), Some("4625"));
        assert_eq!(number(path(&v, "a.c")), Some(0xC000_006A));
        assert_eq!(number(path(&v, "a.d")), Some(0xC000_006D));
        assert_eq!(text(path(&v, "a.e")), None);
        assert_eq!(path(&v, "a.x.y"), None);
    }

    #[test]
    fn times_in_every_export_form() {
        let t = rfc3339("2017-06-23T09:14:05.1234567+01:00").unwrap();
        assert_eq!(t.offset.seconds(), 3600);
        assert_eq!(t.to_string(), "2017-06-23T09:14:05.1234567+01:00");
        assert_eq!(
            any_time(Some(&json!("/Date(1498205645000)/")))
                .unwrap()
                .to_string(),
            "2017-06-23T08:14:05+00:00"
        );
        assert_eq!(
            any_time(Some(&json!(1498205645000i64)))
                .unwrap()
                .to_string(),
            "2017-06-23T08:14:05+00:00"
        );
        assert_eq!(any_time(Some(&json!("yesterday"))), None);
        assert_eq!(any_time(Some(&json!(true))), None);
    }

    #[test]
    fn sparse_parsing_keeps_what_the_readers_read() {
        let keys = read_keys(&[]);
        let mut tape = Tape::new();
        let mut sparse = |record: &[u8]| tape.parse(record, &keys).map(|d| Value::from(d.root()));
        let v = sparse(br#"{"type":"LOGIN","big":{"x":[1,2,{"y":"z"}]},"t\u0069me":5,"details":{"username":"u","auth_method":"x"}}"#).unwrap();
        assert_eq!(
            v,
            json!({"type": "LOGIN", "time": 5, "details": {"username": "u"}})
        );
        assert_eq!(
            sparse(b"[1,{\"a\":2,\"Value\":3}]").unwrap(),
            json!([1, {"Value": 3}])
        );
        assert_eq!(sparse(b"42").unwrap(), json!(42));
        assert!(
            sparse(br#"{"type":"LOGIN","big":{"x":[1,}}"#).is_err(),
            "skipped parts are still checked"
        );
    }

    #[test]
    fn custom_mapping_paths_are_kept() {
        let spec: crate::CustomJsonSpec = serde_json::from_value(json!({
            "name": "app", "when": {"kind.v": "auth"}, "user": "who.name",
            "outcome": "result", "outcomes": {"ok": "success"}
        }))
        .unwrap();
        let mut log = JsonLog::new(
            InputFormat::Json,
            Arc::from(crate::custom_json::compile(&[spec]).unwrap()),
        );
        let mut tape = Tape::new();
        let v = Value::from(
            tape.parse(
                br#"{"kind":{"v":"auth","w":1},"who":{"name":"ann","id":7},"result":"ok","extra":[1]}"#,
                &log.keys,
            )
            .unwrap()
            .root(),
        );
        assert_eq!(
            v,
            json!({"kind": {"v": "auth"}, "who": {"name": "ann"}, "result": "ok"})
        );
        let mut out = Vec::new();
        let o = Origin::default();
        let raw = br#"{"kind":{"v":"auth"},"who":{"name":"ann"},"result":"ok"}"#;
        assert_eq!(log.push(raw, &o, &mut out), RecordCounts::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].user.as_deref(), Some("ann"));
    }

    #[test]
    fn a_page_is_read_up_to_its_limit_and_the_rest_counted() {
        let mut log = JsonLog::new(InputFormat::Json, Arc::from(Vec::new()));
        let mut page = String::from(r#"{"value":["#);
        for i in 0..MAX_PAGE + 2 {
            page.push_str(if i == 0 { "{}" } else { ",{}" });
        }
        page.push_str("]}");
        let mut out = Vec::new();
        let counts = log.push(page.as_bytes(), &Origin::default(), &mut out);
        assert_eq!(
            counts,
            RecordCounts {
                malformed: 2,
                unknown: MAX_PAGE as u64
            }
        );
    }

    #[test]
    fn records_of_no_known_shape_are_counted() {
        let mut log = JsonLog::new(InputFormat::Json, Arc::from(Vec::new()));
        let mut out = Vec::new();
        let o = Origin::default();
        assert_eq!(log.push(b"{\"hello\":1}", &o, &mut out).unknown, 1);
        assert_eq!(log.push(b"{\"hello\":", &o, &mut out).malformed, 1);
        assert_eq!(log.push(b"[1,2]", &o, &mut out).malformed, 1);
        assert_eq!(log.push(b"{\"value\":[1,{}]}", &o, &mut out).malformed, 1);
        assert!(out.is_empty());
    }
}
