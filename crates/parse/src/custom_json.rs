//! Custom JSON formats from the configuration (`[[parse.json_formats]]`): which field
//! of a record is the time, the client address, the user and the outcome, and which
//! outcome values mean what.
//!
//! A mapping is checked when the configuration is loaded ([`compile`]); every error
//! names the mapping and the key. A record is taken by the first mapping whose `when`
//! fields all match (or, with no `when`, whose outcome field the record has); a record
//! whose outcome value the mapping does not list is known and is no login attempt.

use std::collections::BTreeMap;
use std::fmt;

use portcullis_core::{Event, Origin, Outcome, Protocol, Reason, Service, address};
use serde::Deserialize;

use crate::jsondoc::JsonNode;
use crate::jsonlog::{any_time, number, rfc3339, text, text_ref, unix_millis};

/// One `[[parse.json_formats]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomJsonSpec {
    /// The mapping's name, for errors and documentation.
    pub name: String,
    /// Dotted field paths and the text they must hold for a record to be read here.
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    /// Path of the time.
    #[serde(default)]
    pub time: Option<String>,
    /// `rfc3339` (default; also PowerShell's `/Date(ms)/`), `unix` or `unix_ms`.
    #[serde(default)]
    pub time_format: Option<String>,
    /// Path of the client's address.
    #[serde(default)]
    pub source: Option<String>,
    /// Path of the client's port.
    #[serde(default)]
    pub port: Option<String>,
    /// Path of the user name.
    #[serde(default)]
    pub user: Option<String>,
    /// Path of a session or request id.
    #[serde(default)]
    pub session: Option<String>,
    /// Path of the logging host.
    #[serde(default)]
    pub host: Option<String>,
    /// Path of the outcome.
    pub outcome: String,
    /// Outcome value → `success` or a failure reason (`bad_password`, ...).
    pub outcomes: BTreeMap<String, String>,
    /// The protocol of every record (`http`, `imap`, ...), if one.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A mapping that failed its check: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomJsonError {
    /// The mapping's name (or its position when it has none).
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CustomJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parse.json_formats {}: {}", self.rule, self.message)
    }
}

impl std::error::Error for CustomJsonError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    Rfc3339,
    Unix,
    UnixMs,
}

/// A dotted field path (`client.ip`), split once when the mapping is checked.
#[derive(Debug, Clone)]
struct FieldPath(Box<[Box<str>]>);

impl FieldPath {
    fn new(dotted: &str) -> Self {
        Self(dotted.split('.').map(Box::from).collect())
    }

    /// The value at this path; each segment is an object key.
    fn find<'t, V: JsonNode<'t>>(&self, v: V) -> Option<V> {
        self.0.iter().try_fold(v, |v, key| v.get(key))
    }
}

/// A checked mapping.
#[derive(Debug, Clone)]
pub struct CustomJson {
    name: String,
    when: Vec<(FieldPath, String)>,
    time: Option<FieldPath>,
    time_format: TimeFormat,
    source: Option<FieldPath>,
    port: Option<FieldPath>,
    user: Option<FieldPath>,
    session: Option<FieldPath>,
    host: Option<FieldPath>,
    outcome: FieldPath,
    /// Outcome values and their meanings: a mapping lists a few, and a scan of a
    /// few short strings costs less than hashing one.
    outcomes: Vec<(Box<str>, Outcome)>,
    protocol: Option<Protocol>,
}

/// Checks every mapping; the first error found is returned.
pub fn compile(specs: &[CustomJsonSpec]) -> Result<Vec<CustomJson>, CustomJsonError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let rule = if s.name.trim().is_empty() {
            format!("[{i}]")
        } else {
            format!("{:?}", s.name)
        };
        let err = |message: String| CustomJsonError {
            rule: rule.clone(),
            message,
        };
        if s.name.trim().is_empty() {
            return Err(err("name must not be empty".into()));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(err("another mapping has the same name".into()));
        }
        let check_path = |key: &str, p: &Option<String>| -> Result<(), CustomJsonError> {
            match p {
                Some(p) if p.split('.').any(|seg| seg.is_empty()) => Err(err(format!(
                    "{key} = {p:?} is not a field path like \"client.ip\""
                ))),
                _ => Ok(()),
            }
        };
        for (key, p) in [
            ("time", &s.time),
            ("source", &s.source),
            ("port", &s.port),
            ("user", &s.user),
            ("session", &s.session),
            ("host", &s.host),
            ("outcome", &Some(s.outcome.clone())),
        ] {
            check_path(key, p)?;
        }
        for k in s.when.keys() {
            check_path("when", &Some(k.clone()))?;
        }
        if s.source.is_none() && s.user.is_none() {
            return Err(err("needs source or user (or both)".into()));
        }
        if s.outcomes.is_empty() {
            return Err(err("outcomes must map at least one value".into()));
        }
        let mut outcomes = Vec::with_capacity(s.outcomes.len());
        for (value, meaning) in &s.outcomes {
            let o = if meaning == "success" {
                Outcome::Success
            } else if let Some(r) = Reason::from_name(meaning) {
                Outcome::Failure(r)
            } else {
                let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
                return Err(err(format!(
                    "outcomes: {value:?} = {meaning:?} is neither success nor a failure reason ({})",
                    names.join(", ")
                )));
            };
            // The table's keys are distinct already: `outcomes` is a map as written.
            outcomes.push((Box::from(value.as_str()), o));
        }
        let time_format = match s.time_format.as_deref() {
            None | Some("rfc3339") => TimeFormat::Rfc3339,
            Some("unix") => TimeFormat::Unix,
            Some("unix_ms") => TimeFormat::UnixMs,
            Some(other) => {
                return Err(err(format!(
                    "time_format = {other:?}: use rfc3339, unix or unix_ms"
                )));
            }
        };
        let protocol = match s.protocol.as_deref() {
            None => None,
            Some(p) => Some(Protocol::from_name(p).ok_or_else(|| {
                let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
                err(format!("protocol = {p:?}: use one of {}", names.join(", ")))
            })?),
        };
        out.push(CustomJson {
            name: s.name.clone(),
            when: s
                .when
                .iter()
                .map(|(k, v)| (FieldPath::new(k), v.clone()))
                .collect(),
            time: s.time.as_deref().map(FieldPath::new),
            time_format,
            source: s.source.as_deref().map(FieldPath::new),
            port: s.port.as_deref().map(FieldPath::new),
            user: s.user.as_deref().map(FieldPath::new),
            session: s.session.as_deref().map(FieldPath::new),
            host: s.host.as_deref().map(FieldPath::new),
            outcome: FieldPath::new(&s.outcome),
            outcomes,
            protocol,
        });
    }
    Ok(out)
}

impl CustomJson {
    /// The mapping's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every object key the mapping's paths name (`client.ip` names `client` and
    /// `ip`): the keys a record parsed for it must keep.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let paths = [
            &self.time,
            &self.source,
            &self.port,
            &self.user,
            &self.session,
            &self.host,
        ];
        paths
            .into_iter()
            .flatten()
            .chain(std::iter::once(&self.outcome))
            .chain(self.when.iter().map(|(p, _)| p))
            .flat_map(|p| p.0.iter().map(|k| &**k))
    }

    /// Reads `v` if this mapping takes it: `None` if not, `Some(true)` if read (an
    /// event, or a known value that is no attempt), `Some(false)` if it was taken but
    /// its time could not be read.
    pub fn read<'t, V: JsonNode<'t>>(
        &self,
        v: V,
        origin: &Origin,
        out: &mut Vec<Event>,
    ) -> Option<bool> {
        for (p, want) in &self.when {
            if text_ref(p.find(v)).as_deref() != Some(want.as_str()) {
                return None;
            }
        }
        let value = self.outcome.find(v)?;
        let Some(outcome) = text_ref(Some(value)).and_then(|t| {
            self.outcomes
                .iter()
                .find(|(v, _)| **v == *t)
                .map(|(_, o)| *o)
        }) else {
            return Some(true);
        };
        let get = |p: &Option<FieldPath>| p.as_ref().and_then(|p| p.find(v));
        let time = match (&self.time, self.time_format) {
            (None, _) => None,
            (Some(_), TimeFormat::Rfc3339) => match get(&self.time) {
                Some(t) if t.as_str().is_some() => {
                    Some(t.as_str().and_then(rfc3339).or_else(|| any_time(Some(t))))
                }
                t => Some(any_time(t)),
            },
            (Some(_), TimeFormat::Unix) => {
                Some(number(get(&self.time)).and_then(|s| unix_millis(s.checked_mul(1000)?)))
            }
            (Some(_), TimeFormat::UnixMs) => Some(number(get(&self.time)).and_then(unix_millis)),
        };
        if time == Some(None) {
            return Some(false);
        }
        let mut e = Event::new(Service::Custom, outcome);
        e.time = time.flatten();
        let ip = text(get(&self.source));
        e.source = ip.as_deref().and_then(address::parse);
        if e.source.is_none() {
            e.source_name = ip.filter(|s| address::is_host_name(s));
        }
        e.port = number(get(&self.port)).and_then(|p| u16::try_from(p).ok());
        e.user = text(get(&self.user));
        e.session = text(get(&self.session));
        e.host = text(get(&self.host));
        e.protocol = self.protocol;
        e.origin = origin.clone();
        out.push(e);
        Some(true)
    }
}

#[cfg(test)]
mod tests;
