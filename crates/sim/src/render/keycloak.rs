//! Keycloak single sign-on: login events as the admin REST API returns them (`GET
//! /admin/realms/{realm}/events`, an `EventRepresentation` each), saved one JSON object
//! a line: `time` (Unix milliseconds), `type`, `realmId`, `clientId`, `userId`,
//! `sessionId`, `ipAddress`, `error`, `details` with `username`
//! (<https://www.keycloak.org/docs-api/latest/rest-api/index.html#EventRepresentation>).
//!
//! `LOGIN` is a success, with the new user session's id as `sessionId` and as
//! `details.code_id`; `LOGIN_ERROR` a failure, without a session, its `error` one of
//! Keycloak's names (<https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/events/Errors.html>):
//! `invalid_user_credentials` (wrong password), `user_not_found` (no such user, and no
//! `userId`), `user_temporarily_disabled` (locked by brute-force detection).

use std::io::Write;

use portcullis_core::{Outcome, Reason};

use super::guid;
use crate::Attempt;

/// The `error` of a failure; `None` for a success. Every failure but these two is
/// written as a wrong password.
fn error(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Success => None,
        Outcome::Failure(Reason::UnknownAccount) => Some("user_not_found"),
        Outcome::Failure(Reason::Locked) => Some("user_temporarily_disabled"),
        Outcome::Failure(_) => Some("invalid_user_credentials"),
    }
}

/// The user session a `LOGIN` opens; failures open none.
pub fn session(a: &Attempt) -> Option<String> {
    (a.outcome == Outcome::Success).then(|| guid(a.tag ^ 0x5e))
}

/// A stable id for a name (Keycloak's user and realm ids are UUIDs).
fn id_of(name: &str) -> String {
    guid(name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }))
}

/// Writes one event; returns the lines written.
pub(super) fn attempt(buf: &mut Vec<u8>, a: &Attempt, name: &str, domain: &str) -> u64 {
    let kind = if a.outcome == Outcome::Success {
        "LOGIN"
    } else {
        "LOGIN_ERROR"
    };
    // Keycloak knows no user for a name it did not find.
    let user_id = (a.outcome != Outcome::Failure(Reason::UnknownAccount)).then(|| id_of(name));
    let quoted = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), |v| format!("\"{v}\""));
    let session = session(a);
    // Simulated names need no escaping; serde_json writes them anyway, so that an odd
    // scenario domain stays valid JSON.
    let user = serde_json::to_string(name).unwrap_or_default();
    let redirect =
        serde_json::to_string(&format!("https://mail.{domain}/sso/callback")).unwrap_or_default();
    let code_id = session.clone().unwrap_or_else(|| guid(a.tag ^ 0xc0de));
    let _ = writeln!(
        buf,
        "{{\"time\":{},\"type\":\"{kind}\",\"realmId\":\"{}\",\"clientId\":\"webmail\",\"userId\":{},\"sessionId\":{},\"ipAddress\":\"{}\",\"error\":{},\"details\":{{\"auth_method\":\"openid-connect\",\"auth_type\":\"code\",\"redirect_uri\":{redirect},\"code_id\":\"{code_id}\",\"username\":{user}}}}}",
        a.at_ms,
        id_of(domain),
        quoted(user_id.as_deref()),
        quoted(session.as_deref()),
        a.source,
        quoted(error(a.outcome)),
    );
    1
}
