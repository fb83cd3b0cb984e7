//! JSON records: which reader a record's shape calls for, and the helpers they share.
//!
//! Each record ([`crate::records`] splits the stream) is parsed once and routed by its
//! shape, so one file may mix them: the operator's custom mappings first (they are
//! explicit), then Entra ID sign-ins ([`crate::entra`]), Windows Security events
//! ([`crate::windows`]) and Keycloak events ([`crate::keycloak`]). A Graph page
//! (`{"value": [...]}`) is opened and its records read in turn. A record that is not
//! JSON is counted as malformed; one of no known shape is counted as not understood.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::Offset;
use portcullis_core::{Event, EventTime, Origin};
use serde_json::Value;

use crate::custom_json::CustomJson;
use crate::format::InputFormat;
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
        Self { only, custom }
    }

    /// Reads one record, appending its events.
    pub fn push(&self, record: &[u8], origin: &Origin, out: &mut Vec<Event>) -> RecordCounts {
        let mut counts = RecordCounts::default();
        let parsed = if self.custom.is_empty() {
            sparse(record)
        } else {
            serde_json::from_slice(record)
        };
        let value: Value = match parsed {
            Ok(v) => v,
            Err(_) => {
                counts.malformed += 1;
                return counts;
            }
        };
        match &value {
            Value::Object(m) if m.len() <= 3 && matches!(m.get("value"), Some(Value::Array(_))) => {
                if let Some(Value::Array(items)) = m.get("value") {
                    for (i, item) in items.iter().enumerate() {
                        if i >= MAX_PAGE {
                            counts.malformed += (items.len() - i) as u64;
                            break;
                        }
                        self.one(item, origin, out, &mut counts);
                    }
                }
            }
            v => self.one(v, origin, out, &mut counts),
        }
        counts
    }

    fn one(&self, v: &Value, origin: &Origin, out: &mut Vec<Event>, counts: &mut RecordCounts) {
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

/// Every object key the built-in readers look at, at any depth (Entra, Windows,
/// Keycloak, a Graph page's `value`). Keys not listed are skipped when a record is
/// parsed; a reader that reads a new key must list it here (the fixture tests fail
/// otherwise).
fn is_read_key(key: &str) -> bool {
    matches!(
        key,
        // A Graph page.
        "value" |
        // Entra ID: Graph, Log Analytics, diagnostic exports.
        "category" |
        "properties" |
        "userPrincipalName" |
        "status" |
        "errorCode" |
        "createdDateTime" |
        "ipAddress" |
        "clientAppUsed" |
        "correlationId" |
        "UserPrincipalName" |
        "ResultType" |
        "TimeGenerated" |
        "CreatedDateTime" |
        "IPAddress" |
        "ClientAppUsed" |
        "CorrelationId" |
        // Windows: winlogbeat, Get-WinEvent, evtx, flat; and the event data.
        "winlog" |
        "event_id" |
        "computer_name" |
        "event_data" |
        "@timestamp" |
        "event" |
        "code" |
        "host" |
        "name" |
        "Event" |
        "System" |
        "EventID" |
        "#text" |
        "TimeCreated" |
        "#attributes" |
        "SystemTime" |
        "EventData" |
        "Id" |
        "Properties" |
        "Value" |
        "MachineName" |
        "Computer" |
        "Hostname" |
        "EventTime" |
        "TargetUserName" |
        "TargetDomainName" |
        "Status" |
        "SubStatus" |
        "LogonType" |
        "IpAddress" |
        "IpPort" |
        "Workstation" |
        "WorkstationName" |
        // Keycloak.
        "type" |
        "realmId" |
        "realmName" |
        "error" |
        "details" |
        "username" |
        "sessionId" |
        "time" |
        "loggerName" |
        "message" |
        "timestamp"
    )
}

/// Parses a record keeping only the object keys the readers use, at every depth: the
/// rest (an Entra sign-in's device, location and policy details, most of a Windows
/// event's data) is checked as JSON but never built, which makes reading several
/// times faster.
fn sparse(record: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Sparse>(record).map(|s| s.0)
}

/// An object key, borrowed from the record when it has no escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// A JSON value whose objects keep only the keys of [`is_read_key`], at every depth.
struct Sparse(Value);

impl<'de> serde::Deserialize<'de> for Sparse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Sparse;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Sparse, A::Error> {
                let mut m = serde_json::Map::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if is_read_key(&key) {
                        m.insert(key.into_owned(), map.next_value::<Sparse>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Sparse(Value::Object(m)))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Sparse, A::Error> {
                let mut items = Vec::new();
                while let Some(Sparse(v)) = seq.next_element::<Sparse>()? {
                    items.push(v);
                }
                Ok(Sparse(Value::Array(items)))
            }

            fn visit_bool<E>(self, v: bool) -> Result<Sparse, E> {
                Ok(Sparse(Value::Bool(v)))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Sparse, E> {
                Ok(Sparse(Value::from(v)))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Sparse, E> {
                Ok(Sparse(Value::from(v)))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Sparse, E> {
                Ok(Sparse(Value::from(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Sparse, E> {
                Ok(Sparse(Value::from(v)))
            }

            fn visit_unit<E>(self) -> Result<Sparse, E> {
                Ok(Sparse(Value::Null))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The value at a dotted path (`status.errorCode`); each segment is an object key.
pub fn path<'v>(v: &'v Value, dotted: &str) -> Option<&'v Value> {
    dotted.split('.').try_fold(v, |v, key| v.get(key))
}

/// A string, or a number as text (`4625` and `"4625"` alike); `None` for anything
/// else, for `null`, for `""` and for `-`.
pub fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s != "-").then_some(s)
}

/// A borrowed string value; `None` for `""` and `-`.
pub fn str_of(v: Option<&Value>) -> Option<&str> {
    v?.as_str().filter(|s| !s.is_empty() && *s != "-")
}

/// A number, or a string holding a decimal or `0x` hexadecimal number; negative
/// numbers are taken as the 32-bit pattern PowerShell writes for NTSTATUS values.
pub fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().map(|x| {
            if (i64::from(i32::MIN)..0).contains(&x) {
                i64::from(x as i32 as u32)
            } else {
                x
            }
        }),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => i64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

/// An RFC 3339 time (`2017-06-23T08:14:05Z`, `...05.1234567+01:00`), keeping its
/// offset.
pub fn rfc3339(s: &str) -> Option<EventTime> {
    let instant: Timestamp = s.trim().parse().ok()?;
    let b = s.trim().as_bytes();
    let offset = if b.last().is_some_and(|c| c.eq_ignore_ascii_case(&b'z')) {
        Offset::UTC
    } else if b.len() >= 6 && b[b.len() - 3] == b':' && matches!(b[b.len() - 6], b'+' | b'-') {
        let sign = if b[b.len() - 6] == b'-' { -1 } else { 1 };
        let hh: i32 = s.trim()[b.len() - 5..b.len() - 3].parse().ok()?;
        let mm: i32 = s.trim()[b.len() - 2..].parse().ok()?;
        Offset::from_seconds(sign * (hh * 3600 + mm * 60)).ok()?
    } else {
        Offset::UTC
    };
    Some(EventTime { instant, offset })
}

/// Milliseconds since the Unix epoch, as UTC.
pub fn unix_millis(ms: i64) -> Option<EventTime> {
    Timestamp::from_millisecond(ms).ok().map(EventTime::utc)
}

/// A time in any of the forms exports use: RFC 3339, Windows PowerShell 5's
/// `/Date(1498205645123)/`, or a number of Unix milliseconds.
pub fn any_time(v: Option<&Value>) -> Option<EventTime> {
    match v? {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix("/Date(") {
                let digits: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect();
                return unix_millis(digits.parse().ok()?);
            }
            rfc3339(s)
        }
        Value::Number(n) => unix_millis(n.as_i64()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn records_of_no_known_shape_are_counted() {
        let log = JsonLog::new(InputFormat::Json, Arc::from(Vec::new()));
        let mut out = Vec::new();
        let o = Origin::default();
        assert_eq!(log.push(b"{\"hello\":1}", &o, &mut out).unknown, 1);
        assert_eq!(log.push(b"{\"hello\":", &o, &mut out).malformed, 1);
        assert_eq!(log.push(b"[1,2]", &o, &mut out).malformed, 1);
        assert_eq!(log.push(b"{\"value\":[1,{}]}", &o, &mut out).malformed, 1);
        assert!(out.is_empty());
    }
}
