//! Windows Security events: logons (4624), failed logons (4625), Kerberos
//! pre-authentication failures (4771), NTLM credential validation (4776) and account
//! lockouts (4740).
//!
//! Four JSON shapes of the same events are read:
//!
//! - winlogbeat / Elastic Common Schema: `winlog.event_id`, `winlog.event_data.*`,
//!   `@timestamp`, `winlog.computer_name`
//!   (<https://www.elastic.co/guide/en/beats/winlogbeat/current/exported-fields-winlog.html>).
//! - `Get-WinEvent ... | ConvertTo-Json`: `Id`, `TimeCreated` (`/Date(ms)/` in
//!   Windows PowerShell 5, RFC 3339 in PowerShell 7), `MachineName`, and the event data
//!   as the positional `Properties[].Value`, read by each event's documented field
//!   order.
//! - The `evtx` crate's JSON of an `.evtx` record: `Event.System.EventID`,
//!   `Event.System.TimeCreated.#attributes.SystemTime`, `Event.EventData.*`.
//! - Flat records (Sentinel's `SecurityEvent`, NXLog): `EventID` and the data fields at
//!   the top level.
//!
//! Field names, order and codes are Microsoft's:
//! 4624 <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4624>,
//! 4625 <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4625>,
//! 4771 <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4771>,
//! 4776 <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4776>,
//! 4740 <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4740>.
//!
//! Deliberate choices: a 4624 counts only for the logon types a person or a guesser
//! uses (2 interactive, 3 network, 7 unlock, 8 network cleartext, 10 remote
//! interactive, 11 cached), and never for computer accounts (`NAME$`) or `ANONYMOUS
//! LOGON`; a 4740 (no address, the caller computer as `source_name`) is a `locked`
//! failure, so the lockout is visible to the engine.

use crate::jsondoc::JsonNode;
use crate::jsonlog::{any_time, number, path, rfc3339, str_of, text, text_ref};
use portcullis_core::{Event, EventTime, Origin, Outcome, Reason, Service, address};

/// An NTSTATUS code of a failed logon (4625 Status/SubStatus, 4776 Error Code) → reason.
pub fn ntstatus_reason(code: i64) -> Reason {
    match code {
        0xC000_006A | 0xC000_006D => Reason::BadPassword,
        0xC000_0064 => Reason::UnknownAccount,
        0xC000_0234 => Reason::Locked,
        0xC000_0072 | 0xC000_006F | 0xC000_0070 | 0xC000_015B | 0xC000_0413 => Reason::Disabled,
        0xC000_0071 | 0xC000_0193 | 0xC000_0224 => Reason::Expired,
        _ => Reason::Other,
    }
}

/// A Kerberos error code of a 4771 → reason (RFC 4120 section 7.5.9).
pub fn kerberos_reason(code: i64) -> Reason {
    match code {
        0x18 => Reason::BadPassword,
        0x6 => Reason::UnknownAccount,
        0x12 => Reason::Disabled,
        0x17 => Reason::Expired,
        _ => Reason::Other,
    }
}

/// Every `EventData` field [`read`] looks at. The `.evtx` fast path
/// ([`crate::eventlog`]) takes these, and only these, out of a record, and a JSON
/// record keeps them among the keys it is parsed with ([`crate::jsonlog`]).
pub const EVTX_DATA_FIELDS: [&str; 9] = [
    "TargetUserName",
    "TargetDomainName",
    "Status",
    "SubStatus",
    "LogonType",
    "IpAddress",
    "IpPort",
    "Workstation",
    "WorkstationName",
];

/// Positional field names of the event data, per event id (the order of the XML
/// template, which `Properties` follows).
fn field_names(id: i64) -> &'static [&'static str] {
    match id {
        4624 => &[
            "SubjectUserSid",
            "SubjectUserName",
            "SubjectDomainName",
            "SubjectLogonId",
            "TargetUserSid",
            "TargetUserName",
            "TargetDomainName",
            "TargetLogonId",
            "LogonType",
            "LogonProcessName",
            "AuthenticationPackageName",
            "WorkstationName",
            "LogonGuid",
            "TransmittedServices",
            "LmPackageName",
            "KeyLength",
            "ProcessId",
            "ProcessName",
            "IpAddress",
            "IpPort",
        ],
        4625 => &[
            "SubjectUserSid",
            "SubjectUserName",
            "SubjectDomainName",
            "SubjectLogonId",
            "TargetUserSid",
            "TargetUserName",
            "TargetDomainName",
            "Status",
            "FailureReason",
            "SubStatus",
            "LogonType",
            "LogonProcessName",
            "AuthenticationPackageName",
            "WorkstationName",
            "TransmittedServices",
            "LmPackageName",
            "KeyLength",
            "ProcessId",
            "ProcessName",
            "IpAddress",
            "IpPort",
        ],
        4771 => &[
            "TargetUserName",
            "TargetSid",
            "ServiceName",
            "TicketOptions",
            "Status",
            "PreAuthType",
            "IpAddress",
            "IpPort",
        ],
        4776 => &["PackageName", "TargetUserName", "Workstation", "Status"],
        4740 => &[
            "TargetUserName",
            "TargetDomainName",
            "TargetSid",
            "SubjectUserSid",
            "SubjectUserName",
            "SubjectDomainName",
            "SubjectLogonId",
        ],
        _ => &[],
    }
}

/// The event data, by name whatever the shape.
#[derive(Clone, Copy)]
enum Data<V> {
    /// Named fields of an object (none if the event has no data).
    Named(Option<V>),
    /// The `Properties` array, read by the event id's field order.
    Positional(V, i64),
}

impl<'t, V: JsonNode<'t>> Data<V> {
    fn get(self, name: &str) -> Option<V> {
        match self {
            Data::Named(v) => v?.get(name),
            Data::Positional(items, id) => {
                let i = field_names(id).iter().position(|n| *n == name)?;
                let item = items.items()?.nth(i)?;
                Some(item.get("Value").unwrap_or(item))
            }
        }
    }

    fn text(self, name: &str) -> Option<String> {
        text(self.get(name))
    }

    fn text_ref(self, name: &str) -> Option<std::borrow::Cow<'t, str>> {
        text_ref(self.get(name))
    }
}

/// One event, whatever its shape.
struct WinEvent<V> {
    id: i64,
    time: Option<EventTime>,
    computer: Option<String>,
    data: Data<V>,
}

fn shape<'t, V: JsonNode<'t>>(v: V) -> Option<WinEvent<V>> {
    if let Some(w) = v.get("winlog") {
        return Some(WinEvent {
            id: number(w.get("event_id")).or_else(|| number(path(v, "event.code")))?,
            time: str_of(v.get("@timestamp")).and_then(rfc3339),
            computer: text(w.get("computer_name")).or_else(|| text(path(v, "host.name"))),
            data: Data::Named(w.get("event_data")),
        });
    }
    if let Some(system) = path(v, "Event.System") {
        let id = system.get("EventID")?;
        let id = number(Some(id)).or_else(|| number(id.get("#text")))?;
        return Some(WinEvent {
            id,
            time: str_of(path(system, "TimeCreated.#attributes.SystemTime")).and_then(rfc3339),
            computer: text(system.get("Computer")),
            data: Data::Named(path(v, "Event.EventData")),
        });
    }
    if let (Some(id), Some(props)) = (
        v.get("Id"),
        v.get("Properties").filter(|p| p.items().is_some()),
    ) {
        let id = number(Some(id))?;
        return Some(WinEvent {
            id,
            time: any_time(v.get("TimeCreated")),
            computer: text(v.get("MachineName")),
            data: Data::Positional(props, id),
        });
    }
    if let Some(id) = v.get("EventID") {
        return Some(WinEvent {
            id: number(Some(id))?,
            time: any_time(v.get("TimeGenerated"))
                .or_else(|| any_time(v.get("TimeCreated")))
                .or_else(|| any_time(v.get("EventTime"))),
            computer: text(v.get("Computer")).or_else(|| text(v.get("Hostname"))),
            data: Data::Named(Some(v)),
        });
    }
    None
}

/// Reads `v` if it is a Windows event; false if it is not one.
pub fn read<'t, V: JsonNode<'t>>(v: V, origin: &Origin, out: &mut Vec<Event>) -> bool {
    let Some(w) = shape(v) else {
        return false;
    };
    let d = w.data;
    let (outcome, user) = match w.id {
        4624 => {
            let logon_type = number(d.get("LogonType"));
            if !matches!(logon_type, Some(2 | 3 | 7 | 8 | 10 | 11)) {
                return true;
            }
            (Outcome::Success, target_user(d))
        }
        4625 => {
            let sub = number(d.get("SubStatus")).filter(|c| *c != 0);
            let code = sub.or_else(|| number(d.get("Status"))).unwrap_or(0);
            (Outcome::Failure(ntstatus_reason(code)), target_user(d))
        }
        4771 => {
            let code = number(d.get("Status")).unwrap_or(-1);
            (
                Outcome::Failure(kerberos_reason(code)),
                d.text("TargetUserName"),
            )
        }
        4776 => {
            let code = number(d.get("Status")).unwrap_or(-1);
            let outcome = if code == 0 {
                Outcome::Success
            } else {
                Outcome::Failure(ntstatus_reason(code))
            };
            (outcome, d.text("TargetUserName"))
        }
        4740 => (Outcome::Failure(Reason::Locked), d.text("TargetUserName")),
        _ => return true,
    };
    let Some(user) = user else {
        return true;
    };
    // Judged on the name without the `DOMAIN\` that `target_user` may have added.
    let bare = match user.as_bytes().iter().rposition(|b| *b == b'\\') {
        Some(at) => &user[at + 1..],
        None => &user,
    };
    if bare.ends_with('$') || bare.eq_ignore_ascii_case("ANONYMOUS LOGON") {
        return true;
    }
    let mut e = Event::new(Service::Windows, outcome);
    e.time = w.time;
    e.host = w.computer;
    let ip = d.text_ref("IpAddress");
    e.source = ip.as_deref().and_then(address::parse);
    e.port = d
        .text_ref("IpPort")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p != 0);
    e.source_name = match w.id {
        4776 => d.text("Workstation"),
        4740 => d.text("TargetDomainName"),
        _ if e.source.is_none() => d.text("WorkstationName"),
        _ => None,
    };
    e.user = Some(user);
    e.origin = origin.clone();
    out.push(e);
    true
}

/// `DOMAIN\user` when the event names the domain, as Windows shows it.
fn target_user<'t, V: JsonNode<'t>>(d: Data<V>) -> Option<String> {
    let user = d.text_ref("TargetUserName")?;
    Some(match d.text_ref("TargetDomainName") {
        Some(domain) if !user.bytes().any(|b| b == b'@' || b == b'\\') => {
            let mut both = String::with_capacity(domain.len() + 1 + user.len());
            both.push_str(&domain);
            both.push('\\');
            both.push_str(&user);
            both
        }
        _ => user.into_owned(),
    })
}

#[cfg(test)]
mod tests;
