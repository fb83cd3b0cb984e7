//! Microsoft Entra ID (Azure AD) sign-in logs.
//!
//! Three shapes of the same record are read:
//!
//! - Microsoft Graph `signIn` resources (`GET /auditLogs/signIns`, saved as a page,
//!   an array or JSON lines): `createdDateTime`, `userPrincipalName`, `ipAddress`,
//!   `clientAppUsed`, `correlationId`, `status.errorCode`
//!   (<https://learn.microsoft.com/graph/api/resources/signin>,
//!   <https://learn.microsoft.com/graph/api/resources/signinstatus>).
//! - The Log Analytics `SigninLogs` table, exported: `TimeGenerated`/`CreatedDateTime`,
//!   `UserPrincipalName`, `IPAddress`, `ResultType` (the error code as a string),
//!   `ClientAppUsed`, `CorrelationId`
//!   (<https://learn.microsoft.com/azure/azure-monitor/reference/tables/signinlogs>).
//! - Diagnostic-settings exports (storage, Event Hubs): `{"category": "SignInLogs",
//!   "properties": {...Graph fields...}}`.
//!
//! Error codes (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes>):
//! 0 success; 50126 bad password; 50034 unknown user; 50053 locked (smart lockout);
//! 50055 password expired; 50057 disabled. 50074, 50076, 50079 and 50158 (a second
//! factor or external challenge demanded) and 500121 (the second factor failed) come
//! *after* the password was accepted: they are successes with
//! [`SecondFactor`] set, because whoever sent them knows the password. Every other
//! code is a failure with reason `other`.

use crate::jsondoc::JsonNode;
use crate::jsonlog::{any_time, number, str_of, text};
use portcullis_core::{Event, Origin, Outcome, Protocol, Reason, SecondFactor, Service, address};

/// The outcome of an Entra error code.
pub fn outcome(code: i64) -> (Outcome, Option<SecondFactor>) {
    match code {
        0 => (Outcome::Success, None),
        50074 | 50076 | 50079 | 50158 => (Outcome::Success, Some(SecondFactor::Required)),
        500121 => (Outcome::Success, Some(SecondFactor::Failed)),
        50126 => (Outcome::Failure(Reason::BadPassword), None),
        50034 => (Outcome::Failure(Reason::UnknownAccount), None),
        50053 => (Outcome::Failure(Reason::Locked), None),
        50055 => (Outcome::Failure(Reason::Expired), None),
        50057 => (Outcome::Failure(Reason::Disabled), None),
        _ => (Outcome::Failure(Reason::Other), None),
    }
}

/// `clientAppUsed` → protocol: the legacy mail protocols by name, everything else HTTP.
fn protocol(client_app: Option<&str>) -> Protocol {
    match client_app {
        Some("IMAP4" | "IMAP") => Protocol::Imap,
        Some("POP3" | "POP") => Protocol::Pop3,
        Some("Authenticated SMTP" | "SMTP") => Protocol::Smtp,
        _ => Protocol::Http,
    }
}

/// Reads `v` if it is a sign-in record; false if it is not one.
pub fn read<'t, V: JsonNode<'t>>(v: V, origin: &Origin, out: &mut Vec<Event>) -> bool {
    let v = match (
        v.get("category").and_then(JsonNode::as_str),
        v.get("properties"),
    ) {
        (Some(c), Some(p))
            if c.eq_ignore_ascii_case("SignInLogs")
                || c.eq_ignore_ascii_case("NonInteractiveUserSignInLogs") =>
        {
            p
        }
        _ => v,
    };
    // Graph names are camelCase, Log Analytics' PascalCase.
    let graph = v.get("userPrincipalName").is_some() && v.get("status").is_some();
    let analytics = v.get("UserPrincipalName").is_some() && v.get("ResultType").is_some();
    if !graph && !analytics {
        return false;
    }
    let code = if graph {
        number(v.get("status").and_then(|s| s.get("errorCode")))
    } else {
        number(v.get("ResultType"))
    };
    let Some(code) = code else {
        // A sign-in record with no readable result: known, but no attempt to report.
        return true;
    };
    let (outcome, second) = outcome(code);
    let mut e = Event::new(Service::Entra, outcome);
    e.second_factor = second;
    let pick = |camel: &str, pascal: &str| {
        if graph { v.get(camel) } else { v.get(pascal) }
    };
    e.time = any_time(pick("createdDateTime", "TimeGenerated"))
        .or_else(|| any_time(pick("createdDateTime", "CreatedDateTime")));
    let ip = str_of(pick("ipAddress", "IPAddress"));
    e.source = ip.and_then(address::parse);
    if e.source.is_none() {
        e.source_name = ip.filter(|s| address::is_host_name(s)).map(str::to_owned);
    }
    e.user = text(pick("userPrincipalName", "UserPrincipalName"));
    e.protocol = Some(protocol(str_of(pick("clientAppUsed", "ClientAppUsed"))));
    e.session = text(pick("correlationId", "CorrelationId"));
    e.origin = origin.clone();
    out.push(e);
    true
}

#[cfg(test)]
mod tests;
