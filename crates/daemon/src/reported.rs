//! `POST /v1/events`: login attempts reported by applications that log users in
//! themselves (webmail, SSO, VPN portals), in the event contract of docs/events.md.
//!
//! The body is one event object or an array of them. Required: `source` (an IP
//! address), `outcome` (`success` or `failure`). Optional: `time` (RFC 3339; default:
//! when it was received), `service` (default `api`), `protocol`, `port`, `user`,
//! `account` (default: the canonical form of `user`), `reason` (failures; default
//! `other`), `attempts` (1 to 1000), `session`, `host`. Unknown fields are ignored (the
//! contract grows); a wrong type or value refuses the whole request with 400 and the
//! first problem, so a client learns its mistake and nothing half-arrives.

use std::net::IpAddr;

use jiff::Timestamp;
use portcullis_core::{AccountRules, Event, EventTime, Outcome, Protocol, Reason, Service};
use serde::Deserialize;

/// Most events in one request.
pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Reported {
    time: Option<String>,
    service: Option<String>,
    protocol: Option<String>,
    source: String,
    port: Option<u16>,
    user: Option<String>,
    account: Option<String>,
    outcome: String,
    reason: Option<String>,
    attempts: Option<u32>,
    session: Option<String>,
    host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Body {
    Many(Vec<Reported>),
    One(Box<Reported>),
}

/// Longest text field accepted (user names, sessions, hosts).
const MAX_FIELD: usize = 512;

/// Reads a request body into events, or says what is wrong with it.
pub fn read(body: &[u8], rules: &AccountRules, now: Timestamp) -> Result<Vec<Event>, String> {
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| format!("not an event or a list of events: {e}"))?;
    let list = match parsed {
        Body::Many(v) => v,
        Body::One(e) => vec![*e],
    };
    if list.len() > MAX_BATCH {
        return Err(format!(
            "{} events in one request; at most {MAX_BATCH}",
            list.len()
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, r)| convert(r, rules, now).map_err(|e| format!("event {i}: {e}")))
        .collect()
}

fn convert(r: Reported, rules: &AccountRules, now: Timestamp) -> Result<Event, String> {
    let outcome = match r.outcome.as_str() {
        "success" => Outcome::Success,
        "failure" => Outcome::Failure(match r.reason.as_deref() {
            None => Reason::Other,
            Some(x) => Reason::from_name(x).ok_or_else(|| format!("unknown reason {x:?}"))?,
        }),
        x => {
            return Err(format!(
                "outcome must be \"success\" or \"failure\", not {x:?}"
            ));
        }
    };
    let service = match r.service.as_deref() {
        None => Service::Api,
        Some(x) => Service::from_name(x).ok_or_else(|| format!("unknown service {x:?}"))?,
    };
    let mut e = Event::new(service, outcome);
    let source: IpAddr = r
        .source
        .parse()
        .map_err(|_| format!("source {:?} is not an IP address", r.source))?;
    // Canonical: an IPv4-mapped IPv6 address is the IPv4 address.
    e.source = Some(source.to_canonical());
    e.time = Some(match r.time {
        None => EventTime::utc(now),
        Some(t) => {
            let z: jiff::Zoned = t
                .parse::<Timestamp>()
                .map_err(|err| format!("time {t:?} is not RFC 3339: {err}"))?
                .to_zoned(jiff::tz::TimeZone::UTC);
            EventTime::utc(z.timestamp())
        }
    });
    if let Some(p) = r.protocol {
        e.protocol =
            Some(Protocol::from_name(&p).ok_or_else(|| format!("unknown protocol {p:?}"))?);
    }
    e.port = r.port;
    for (name, v) in [
        ("user", &r.user),
        ("account", &r.account),
        ("session", &r.session),
        ("host", &r.host),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > MAX_FIELD) {
            return Err(format!("{name} longer than {MAX_FIELD} bytes"));
        }
    }
    e.account = match (&r.account, &r.user) {
        (Some(a), _) => rules.canonical(a),
        (None, Some(u)) => rules.canonical(u),
        (None, None) => None,
    };
    e.user = r.user;
    match r.attempts {
        None => {}
        Some(n @ 1..=1000) => e.attempts = n,
        Some(n) => return Err(format!("attempts must be 1 to 1000, not {n}")),
    }
    e.session = r.session;
    e.host = r.host;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-29T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn one_event_or_many_with_defaults() {
        let rules = AccountRules::default();
        let one = read(
            br#"{"source":"::ffff:203.0.113.7","user":"J.Smith@Example.org","outcome":"failure","reason":"bad_password","extra":1}"#,
            &rules,
            now(),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        let e = &one[0];
        assert_eq!(e.source, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(e.service, Service::Api);
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.time.unwrap().instant, now());
        assert_eq!(
            e.account.as_deref(),
            rules.canonical("J.Smith@Example.org").as_deref()
        );
        let many = read(
            br#"[{"source":"192.0.2.1","outcome":"success","time":"2026-11-29T13:00:00+01:00","service":"dovecot","protocol":"imap"},
                 {"source":"2001:db8::1","outcome":"failure"}]"#,
            &rules,
            now(),
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].time.unwrap().instant, now());
        assert_eq!(many[1].outcome, Outcome::Failure(Reason::Other));
    }

    #[test]
    fn bad_events_are_refused_with_the_first_problem() {
        let rules = AccountRules::default();
        for (body, says) in [
            (&b"{"[..], "not an event"),
            (br#"{"outcome":"failure"}"#, "not an event"),
            (br#"{"source":"mail.example","outcome":"failure"}"#, "not an IP"),
            (br#"[{"source":"192.0.2.1","outcome":"success"},{"source":"192.0.2.1","outcome":"maybe"}]"#, "event 1: outcome"),
            (br#"{"source":"192.0.2.1","outcome":"failure","reason":"sunspots"}"#, "unknown reason"),
            (br#"{"source":"192.0.2.1","outcome":"failure","time":"yesterday"}"#, "RFC 3339"),
            (br#"{"source":"192.0.2.1","outcome":"failure","attempts":0}"#, "attempts"),
            (br#"{"source":"192.0.2.1","outcome":"failure","service":"telnet"}"#, "unknown service"),
        ] {
            let e = read(body, &rules, now()).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let long = format!(
            r#"{{"source":"192.0.2.1","outcome":"failure","user":"{}"}}"#,
            "x".repeat(600)
        );
        assert!(
            read(long.as_bytes(), &rules, now())
                .unwrap_err()
                .contains("longer")
        );
    }
}
