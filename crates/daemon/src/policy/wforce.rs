//! Weakforced's administrative commands, so that sites integrated with wforce can
//! switch by changing a URL (request and answer shapes of wforce's REST API,
//! `docs/swagger/wforce_api.7.yml` and `wforce/wforce-web.cc` in PowerDNS/weakforced):
//!
//! - `ping` → `{"status":"ok"}`;
//! - `reset` `{"ip"?, "login"?}` → forgets the policy's failures, lifts the ban of
//!   that address and the lock of that account → `{"status":"ok"}`;
//! - `addBLEntry` `{"ip"|"netmask"|"login", "expire_secs", "reason"}` → a ban (address
//!   or network) or an account lock, as the admin API makes them;
//! - `delBLEntry` `{"ip"|"netmask"|"login"}` → lifts it;
//! - `getBL` → `{"bl_entries":[{"ip"|"login": …, "expiration": "2026-Nov-29
//!   12:00:00", "reason": …}]}` (networks appear under `ip`, in CIDR form);
//! - `getDBStats` `{"ip"?, "login"?}` → `{"key_name", "blacklisted", "bl_expire"?,
//!   "bl_reason"?, "stats": {"policy": {counters}}}`;
//! - `stats` → `{"reports", "allows", "denieds", "uptime", "commandstats"}`.
//!
//! Errors answer `{"status":"failure","reason":"…"}` with 400, as wforce does.
//! Combined ip+login entries (`iplogin`) do not exist in Portcullis: refused.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use ipnet::IpNet;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{failure, json_response};
use crate::daemon::Shared;
use crate::decide::{BanOutcome, host};

#[derive(Debug, Default, Deserialize)]
struct Entry {
    ip: Option<String>,
    netmask: Option<String>,
    login: Option<String>,
    expire_secs: Option<u64>,
    reason: Option<String>,
}

/// Serves one administrative command.
pub(crate) async fn command(s: &Arc<Shared>, name: &str, body: &[u8]) -> Response {
    s.policy.metrics.commands.fetch_add(1, Ordering::Relaxed);
    let entry = || -> Result<Entry, Refusal> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Entry::default());
        }
        serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))
    };
    let ok = || json_response(StatusCode::OK, r#"{"status":"ok"}"#);
    match name {
        "ping" => ok(),
        "stats" => stats(s),
        "getBL" => get_bl(s),
        "reset" => entry()
            .and_then(|e| reset(s, &e))
            .map_or_else(Refusal::answer, |()| ok()),
        "addBLEntry" => entry()
            .and_then(|e| add(s, &e))
            .map_or_else(Refusal::answer, |()| ok()),
        "delBLEntry" => entry()
            .and_then(|e| del(s, &e))
            .map_or_else(Refusal::answer, |()| ok()),
        "getDBStats" => entry().map_or_else(Refusal::answer, |e| db_stats(s, &e)),
        _ => failure(StatusCode::NOT_FOUND, &format!("unknown command {name:?}")),
    }
}

/// A command refused: the status and wforce's `reason`.
struct Refusal(StatusCode, String);

impl Refusal {
    fn answer(self) -> Response {
        failure(self.0, &self.1)
    }
}

fn bad(msg: &str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, msg.to_owned())
}

fn net_of(e: &Entry) -> Result<Option<IpNet>, Refusal> {
    let text = match (&e.ip, &e.netmask) {
        (Some(_), Some(_)) => return Err(bad("ip and netmask are mutually exclusive")),
        (Some(t), None) | (None, Some(t)) => t.trim(),
        (None, None) => return Ok(None),
    };
    text.parse::<IpNet>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|a| host(a.to_canonical()))
        })
        .map(|n| Some(n.trunc()))
        .map_err(|_| bad(&format!("{text:?} is not an address or a network")))
}

fn account_of(s: &Shared, e: &Entry) -> Option<String> {
    e.login.as_deref().and_then(|l| s.rules.canonical(l))
}

fn now() -> i64 {
    Timestamp::now().as_second()
}

/// `Ok(())` answers `{"status":"ok"}`.
fn reset(s: &Shared, e: &Entry) -> Result<(), Refusal> {
    let net = net_of(e)?;
    let account = account_of(s, e);
    if net.is_none() && account.is_none() {
        return Err(bad("reset needs ip or login"));
    }
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = net {
        if n.prefix_len() == n.max_prefix_len() {
            s.policy.policy.reset_source(n.addr());
        }
        if d.unban(n).is_err() {
            return Err(store_error());
        }
    }
    if let Some(a) = &account {
        s.policy.policy.reset_account(a);
        if d.unlock(a).is_err() {
            return Err(store_error());
        }
    }
    s.dispatch(d.take_effects());
    Ok(())
}

/// `Ok(())` answers `{"status":"ok"}`.
fn add(s: &Shared, e: &Entry) -> Result<(), Refusal> {
    let net = net_of(e)?;
    let account = account_of(s, e);
    let Some(secs) = e.expire_secs else {
        return Err(bad("Missing mandatory expire_secs field"));
    };
    let Some(reason) = e.reason.as_deref() else {
        return Err(bad("Missing mandatory reason field"));
    };
    let duration = Duration::from_secs(secs.max(1));
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = match (net, account) {
        (Some(_), Some(_)) => return Err(bad("ip+login entries are not supported")),
        (None, None) => return Err(bad("addBLEntry needs ip, netmask or login")),
        (Some(n), None) => match d.ban(n, reason, None, Some(duration), now()) {
            Ok(BanOutcome::Banned(_) | BanOutcome::AlreadyBanned) => Ok(()),
            Ok(BanOutcome::Allowlisted) => Err(bad(&format!("{n} is in the allowlist"))),
            Ok(BanOutcome::Full) => Err(bad("bans.max_bans reached")),
            Err(_) => Err(store_error()),
        },
        (None, Some(a)) => d
            .lock(&a, reason, Some(duration), now())
            .map(|_| ())
            .map_err(|_| store_error()),
    };
    s.dispatch(d.take_effects());
    r
}

/// `Ok(())` answers `{"status":"ok"}`.
fn del(s: &Shared, e: &Entry) -> Result<(), Refusal> {
    let net = net_of(e)?;
    let account = account_of(s, e);
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = match (net, account) {
        (Some(_), Some(_)) => Err(bad("ip+login entries are not supported")),
        (None, None) => Err(bad("delBLEntry needs ip, netmask or login")),
        (Some(n), None) => d.unban(n).map(|_| ()).map_err(|_| store_error()),
        (None, Some(a)) => d.unlock(&a).map(|_| ()).map_err(|_| store_error()),
    };
    s.dispatch(d.take_effects());
    r
}

fn store_error() -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, "state store".into())
}

/// Boost's `to_simple_string`, which wforce uses: `2026-Nov-29 12:00:00` (UTC).
fn expiration(t: i64) -> String {
    Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%b-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn get_bl(s: &Shared) -> Response {
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let mut entries: Vec<Value> = Vec::new();
    for b in d.bans() {
        let key = if b.net.prefix_len() == b.net.max_prefix_len() {
            b.net.addr().to_string()
        } else {
            b.net.to_string()
        };
        entries.push(json!({"ip": key, "expiration": expiration(b.until), "reason": b.reason}));
    }
    for l in d.locks() {
        entries.push(
            json!({"login": l.account, "expiration": expiration(l.until), "reason": l.reason}),
        );
    }
    json_response(StatusCode::OK, json!({ "bl_entries": entries }).to_string())
}

fn db_stats(s: &Shared, e: &Entry) -> Response {
    let net = match net_of(e) {
        Ok(n) => n,
        Err(r) => return r.answer(),
    };
    let account = account_of(s, e);
    let now = now();
    let stats = s.policy.policy.stats(
        account.as_deref(),
        net.filter(|n| n.prefix_len() == n.max_prefix_len())
            .map(|n| n.addr()),
        now.clamp(0, i64::from(u32::MAX)) as u32,
    );
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let (key_name, bl) = match (&account, net) {
        (Some(a), None) => (
            a.clone(),
            d.locks()
                .into_iter()
                .find(|l| &l.account == a)
                .map(|l| (l.until, l.reason)),
        ),
        (None, Some(n)) => (
            n.to_string(),
            if n.prefix_len() == n.max_prefix_len() {
                d.ban_of(n.addr()).map(|b| (b.until, b.reason.clone()))
            } else {
                d.bans()
                    .into_iter()
                    .find(|b| b.net == n)
                    .map(|b| (b.until, b.reason))
            },
        ),
        _ => return bad("getDBStats needs ip or login (not both)").answer(),
    };
    let mut v = json!({
        "key_name": key_name,
        "blacklisted": bl.is_some(),
        "stats": {"policy": {
            "countFailures": stats.account_failures + stats.source_failures,
            "familiarFailures": stats.familiar_failures,
            "familiarPlaces": stats.familiar_places,
            "diffLogins": stats.source_accounts,
        }},
    });
    if let Some((until, reason)) = bl {
        v["bl_expire"] = json!(expiration(until));
        v["bl_reason"] = json!(reason);
    }
    if let Some(u) = stats.locked_out_until {
        v["locked_out_until"] = json!(expiration(i64::from(u)));
    }
    json_response(StatusCode::OK, v.to_string())
}

fn stats(s: &Shared) -> Response {
    let m = &s.policy.metrics;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let allows = load(&m.decisions[0]) + load(&m.decisions[1]);
    let denieds: u64 = m.decisions[2..].iter().map(load).sum();
    let reports: u64 = m.reports.iter().map(load).sum();
    let uptime = (now() - s.started.as_second()).max(0);
    json_response(
        StatusCode::OK,
        json!({
            "reports": reports,
            "allows": allows,
            "denieds": denieds,
            "uptime": uptime,
            "commandstats": {
                "allow": allows + denieds,
                "allow_allowed": load(&m.decisions[0]),
                "allow_tarpitted": load(&m.decisions[1]),
                "allow_denied": denieds,
                "report": reports,
            },
        })
        .to_string(),
    )
}
