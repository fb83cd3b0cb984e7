//! Keycloak login events.
//!
//! Two forms of the same event are read:
//!
//! - The event representation of the admin REST API (`GET
//!   /admin/realms/{realm}/events`, an array) and of event-listener exports: `time`
//!   (Unix milliseconds), `type`, `realmId`, `clientId`, `userId`, `sessionId`,
//!   `ipAddress`, `error`, `details.username`
//!   (<https://www.keycloak.org/docs-api/latest/rest-api/index.html#EventRepresentation>).
//! - Keycloak's own JSON console log (`--log-console-output=json`), whose `message`
//!   from logger `org.keycloak.events` is the jboss-logging listener's
//!   `type="LOGIN_ERROR", realmId="...", ..., error="user_not_found", username="..."`
//!   (quoted since Keycloak 24, bare before).
//!
//! `LOGIN` is a success and `LOGIN_ERROR` a failure; the error names the reason
//! (<https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/events/Errors.html>):
//! `invalid_user_credentials` bad password, `user_not_found` unknown account,
//! `user_disabled` disabled, `user_temporarily_disabled` locked (brute-force
//! detection), `expired_code`, `invalid_user`, anything else `other`. Other event types
//! (`CODE_TO_TOKEN`, `LOGOUT`, client logins) are known and are no user's login.

use crate::jsondoc::JsonNode;
use crate::jsonlog::{any_time, rfc3339, str_of, text};
use portcullis_core::{Event, Origin, Outcome, Protocol, Reason, Service, address};

/// The failure reason of a Keycloak error name.
pub fn reason(error: Option<&str>) -> Reason {
    match error {
        Some("invalid_user_credentials") => Reason::BadPassword,
        Some("user_not_found") => Reason::UnknownAccount,
        Some("user_disabled") => Reason::Disabled,
        Some("user_temporarily_disabled") => Reason::Locked,
        _ => Reason::Other,
    }
}

/// The fields of one event, whichever form it came in.
#[derive(Debug, Default)]
struct Fields {
    kind: Option<String>,
    error: Option<String>,
    ip: Option<String>,
    username: Option<String>,
    session: Option<String>,
}

/// Reads `v` if it is a Keycloak event; false if it is not one.
pub fn read<'t, V: JsonNode<'t>>(v: V, origin: &Origin, out: &mut Vec<Event>) -> bool {
    let (fields, time) = if v.get("type").is_some()
        && (v.get("realmId").is_some() || v.get("realmName").is_some())
    {
        let f = Fields {
            kind: text(v.get("type")),
            error: text(v.get("error")),
            ip: text(v.get("ipAddress")),
            username: text(v.get("details").and_then(|d| d.get("username"))),
            session: text(v.get("sessionId")),
        };
        (f, any_time(v.get("time")))
    } else if str_of(v.get("loggerName")) == Some("org.keycloak.events") {
        let Some(message) = str_of(v.get("message")) else {
            return true;
        };
        let mut f = Fields::default();
        for (k, val) in pairs(message) {
            let slot = match k {
                "type" => &mut f.kind,
                "error" => &mut f.error,
                "ipAddress" => &mut f.ip,
                "username" => &mut f.username,
                "sessionId" => &mut f.session,
                _ => continue,
            };
            if slot.is_none() && !val.is_empty() && val != "null" {
                *slot = Some(val.to_owned());
            }
        }
        (f, str_of(v.get("timestamp")).and_then(rfc3339))
    } else {
        return false;
    };
    let outcome = match fields.kind.as_deref() {
        Some("LOGIN") => Outcome::Success,
        Some("LOGIN_ERROR") => Outcome::Failure(reason(fields.error.as_deref())),
        _ => return true,
    };
    let mut e = Event::new(Service::Keycloak, outcome);
    e.time = time;
    e.protocol = Some(Protocol::Http);
    let ip = fields.ip.as_deref();
    e.source = ip.and_then(address::parse);
    if e.source.is_none() {
        e.source_name = ip.filter(|s| address::is_host_name(s)).map(str::to_owned);
    }
    e.user = fields.username;
    e.session = fields.session;
    e.origin = origin.clone();
    out.push(e);
    true
}

/// `key=value, key="value", ...` as the jboss-logging event listener writes it. A
/// quoted value may contain `, ` and `\"`; a bare value runs to the next `, `.
fn pairs(message: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = message.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim();
        if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            out.push((key, value));
            rest = q[end..].trim_start_matches([',', ' ']);
        } else {
            let (value, next) = after.split_once(", ").unwrap_or((after, ""));
            out.push((key, value.to_owned()));
            rest = next;
        }
    }
    out
}

#[cfg(test)]
mod tests;
