//! Entra ID (Azure AD) sign-ins as Microsoft Graph `signIn` records, one JSON object a
//! line (what `GET /auditLogs/signIns` pages hold, saved as JSON lines).
//!
//! `status.errorCode`: 0 signed in; 50126 wrong password; 50034 no such user; 50053
//! locked by smart lockout (after ten failures); 50074 the password was right and the
//! account's second factor was then demanded, which a password sprayer cannot give.
//! Resource: <https://learn.microsoft.com/graph/api/resources/signin>; codes:
//! <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>.

use std::io::Write;

use portcullis_core::{Outcome, Protocol, Reason};

use super::{guid, utc};
use crate::{Actor, Attempt};

/// Failures in a row after which smart lockout answers 50053 (Entra's default
/// lockout threshold is 10).
pub const LOCKOUT_THRESHOLD: u64 = 10;

/// `clientAppUsed` and the protocol Portcullis reads from it: people use browsers and
/// Outlook; sprayers mostly legacy protocols, which take a password alone.
pub fn client_app(a: &Attempt) -> (&'static str, Protocol) {
    match a.actor {
        Actor::Benign(_) => match a.tag % 3 {
            0 => ("Mobile Apps and Desktop clients", Protocol::Http),
            _ => ("Browser", Protocol::Http),
        },
        Actor::Attacker(_) => match a.tag % 4 {
            0 => ("Browser", Protocol::Http),
            1 => ("IMAP4", Protocol::Imap),
            _ => ("Authenticated SMTP", Protocol::Smtp),
        },
    }
}

/// The sign-in's `correlationId`.
pub fn correlation_id(tag: u64) -> String {
    guid(tag ^ 0xc0)
}

fn code(a: &Attempt, mfa_stopped: bool) -> (u32, &'static str) {
    match a.outcome {
        Outcome::Success if mfa_stopped => (50074, "Strong Authentication is required."),
        Outcome::Success => (0, "Other."),
        Outcome::Failure(Reason::UnknownAccount) => {
            (50034, "The user account does not exist in the directory.")
        }
        Outcome::Failure(Reason::Locked) => (
            50053,
            "Account is locked because user tried to sign in too many times with an incorrect user ID or password.",
        ),
        Outcome::Failure(_) => (
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
    }
}

/// Writes one sign-in record; returns the lines written.
pub(super) fn attempt(buf: &mut Vec<u8>, a: &Attempt, name: &str, mfa_stopped: bool) -> u64 {
    let (code, why) = code(a, mfa_stopped);
    let (app, _) = client_app(a);
    buf.extend_from_slice(b"{\"id\":\"");
    buf.extend_from_slice(guid(a.tag).as_bytes());
    buf.extend_from_slice(b"\",\"createdDateTime\":\"");
    utc(buf, a.at_ms, 'T', false);
    // Names here are simulated (letters, dots, digits): no JSON escaping is needed, but
    // serde_json writes them anyway so that a scenario's odd domain stays valid JSON.
    let user = serde_json::to_string(name).unwrap_or_default();
    let _ = writeln!(
        buf,
        "Z\",\"userDisplayName\":null,\"userPrincipalName\":{user},\"appId\":\"00000002-0000-0ff1-ce00-000000000000\",\"appDisplayName\":\"Office 365 Exchange Online\",\"ipAddress\":\"{}\",\"clientAppUsed\":\"{app}\",\"correlationId\":\"{}\",\"conditionalAccessStatus\":\"notApplied\",\"isInteractive\":true,\"resourceDisplayName\":\"Office 365 Exchange Online\",\"status\":{{\"errorCode\":{code},\"failureReason\":\"{why}\",\"additionalDetails\":null}}}}",
        a.source,
        correlation_id(a.tag)
    );
    1
}
