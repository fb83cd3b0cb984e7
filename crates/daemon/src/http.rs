//! The daemon's HTTP side: the admin API, the report endpoint, metrics and health.
//!
//! | path | token | what |
//! | --- | --- | --- |
//! | `GET /healthz` | none | `ok` while the engine runs |
//! | `GET /metrics` | none | Prometheus text format |
//! | `POST /v1/events` | report (or admin) | login attempts from applications |
//! | `GET /v1/status` | admin | counts, engine progress, bans and locks in force |
//! | `GET/POST/DELETE /v1/bans` | admin | list, add (`{"network", "duration", "reason"}`), remove (`?network=`) |
//! | `GET/POST/DELETE /v1/locks` | admin | list, lock (`{"account", "duration", "reason"}`), unlock (`?account=`) |
//! | `GET/POST/DELETE /v1/allowlist` | admin | list, add (`{"network", "note"}`), remove (`?network=`) |
//! | `GET /v1/familiar?account=` | admin | the networks an account logged in from |
//! | `GET/POST /v1/lockdown` | admin | lockdown state; switch it (`{"on": true, "duration"?}` or `{"on": false}`) |
//!
//! Tokens go in `Authorization: Bearer …` and are compared in constant time (SHA-256
//! digests compared with `subtle`). Without a valid token every `/v1/` path, known or
//! not, answers the same 401 with no body beyond `{"error":"unauthorized"}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ipnet::IpNet;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::error::TrySendError;

use crate::config::parse_duration;
use crate::daemon::Shared;
use crate::decide::BanOutcome;
use crate::metrics::{Exposition, render_own};
use crate::reported;

/// A bearer token, kept only as its digest.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl Token {
    /// The token for this secret.
    pub fn new(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    fn matches(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        bool::from(digest.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    let admin = Router::new()
        .route("/status", get(status))
        .route("/bans", get(list_bans).post(add_ban).delete(remove_ban))
        .route("/locks", get(list_locks).post(add_lock).delete(remove_lock))
        .route("/familiar", get(familiar))
        .route("/lockdown", get(lockdown).post(set_lockdown))
        .route(
            "/allowlist",
            get(list_allow).post(add_allow).delete(remove_allow),
        )
        .fallback(not_found)
        // `layer`, not `route_layer`: unknown paths are refused the same way.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_admin,
        ));
    let events = Router::new()
        .route("/", axum::routing::post(report))
        .layer(DefaultBodyLimit::max(shared.max_body))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_reporter,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/v1/events", events)
        .nest("/v1", admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(shared.max_body))
        .with_state(shared)
}

fn unauthorized(shared: &Shared) -> Response {
    shared.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "unauthorized"})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn require_admin(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match &s.admin_token {
        Some(t) if t.matches(req.headers()) => next.run(req).await,
        _ => unauthorized(&s),
    }
}

async fn require_reporter(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let ok = [&s.report_token, &s.admin_token]
        .into_iter()
        .flatten()
        .any(|t| t.matches(req.headers()));
    if ok {
        next.run(req).await
    } else {
        unauthorized(&s)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    if s.engine_alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut x = Exposition::default();
    render_own(&s.metrics, &mut x);
    (s.source_metrics)(&mut x);
    s.policy.render(&mut x);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        x.finish(),
    )
        .into_response()
}

async fn report(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let events = match reported::read(&body, &s.rules, Timestamp::now()) {
        Ok(v) => v,
        Err(e) => {
            s.metrics.reported_malformed.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    let n = events.len();
    match s.reports.try_send(events) {
        Ok(()) => {
            s.metrics.reported.fetch_add(n as u64, Ordering::Relaxed);
            (StatusCode::ACCEPTED, Json(json!({"accepted": n}))).into_response()
        }
        Err(TrySendError::Full(_)) => {
            s.metrics.reported_dropped.fetch_add(1, Ordering::Relaxed);
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "queue full, retry later");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(TrySendError::Closed(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}

fn store_failed(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("state store: {e}"),
    )
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let m = &s.metrics;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (bans, locks) = {
        let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
        (d.bans().len(), d.locks().len())
    };
    let event_time = load(&m.event_time);
    let files: serde_json::Map<String, serde_json::Value> = m
        .consumed
        .lock()
        .map(|c| {
            c.iter()
                .map(|(p, o)| (p.display().to_string(), json!(o)))
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started": s.started.to_string(),
        "dry_run": s.dry_run,
        "lines": load(&m.lines),
        "events": m.events.iter().flatten().map(load).sum::<u64>(),
        "engine_events": load(&m.engine_events),
        "files": files,
        "event_time": (event_time > 0).then(|| Timestamp::from_second(event_time as i64).map(|t| t.to_string()).unwrap_or_default()),
        "bans_active": bans,
        "locks_active": locks,
        "bans_issued": load(&m.bans),
        "attackers_found": load(&m.findings[0]),
        "accounts_compromised": load(&m.findings[2]),
        "campaigns": load(&m.findings[3]),
        "dropped": load(&m.reported_dropped) + load(&m.actions_dropped),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct NetworkQuery {
    network: String,
}

#[derive(Deserialize)]
struct AccountQuery {
    account: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    network: String,
    duration: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRequest {
    account: String,
    duration: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowRequest {
    network: String,
    note: Option<String>,
}

/// An address or a network, as an operator types it.
fn network(text: &str) -> Result<IpNet, Box<Response>> {
    let t = text.trim();
    t.parse::<IpNet>()
        .or_else(|_| {
            t.parse::<std::net::IpAddr>()
                .map(|a| IpNet::from(a.to_canonical()))
        })
        .map(|n| n.trunc())
        .map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("{t:?} is not an address or a network like 203.0.113.0/24"),
            ))
        })
}

fn now() -> i64 {
    Timestamp::now().as_second()
}

async fn list_bans(State(s): State<Arc<Shared>>) -> Response {
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({"bans": d.bans()})).into_response()
}

async fn add_ban(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: BanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let net = match network(&req.network) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let duration = match req.duration.as_deref().map(parse_duration).transpose() {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let reason = req.reason.unwrap_or_else(|| "banned by an operator".into());
    let outcome = {
        let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
        // Without a duration: `bans.duration` as configured now (it follows reloads).
        let duration = duration.unwrap_or_else(|| d.ban_duration());
        let r = d.ban(net, &reason, None, Some(duration), now());
        s.dispatch(d.take_effects());
        r
    };
    match outcome {
        Ok(BanOutcome::Banned(b)) => (StatusCode::CREATED, Json(json!({"ban": b}))).into_response(),
        Ok(BanOutcome::Allowlisted) => error(
            StatusCode::CONFLICT,
            format!("{net} is in the allowlist: remove it from there first"),
        ),
        Ok(BanOutcome::Full) => error(StatusCode::INSUFFICIENT_STORAGE, "bans.max_bans reached"),
        Ok(BanOutcome::AlreadyBanned) => error(StatusCode::CONFLICT, "already banned"),
        Err(e) => store_failed(e),
    }
}

async fn remove_ban(State(s): State<Arc<Shared>>, Query(q): Query<NetworkQuery>) -> Response {
    let net = match network(&q.network) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = d.unban(net);
    s.dispatch(d.take_effects());
    match r {
        Ok(Some(b)) => Json(json!({"removed": b})).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("{net} is not banned")),
        Err(e) => store_failed(e),
    }
}

async fn list_locks(State(s): State<Arc<Shared>>) -> Response {
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({"locks": d.locks()})).into_response()
}

async fn add_lock(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: LockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(account) = s.rules.canonical(&req.account) else {
        return error(StatusCode::BAD_REQUEST, "empty account name");
    };
    let duration = match req.duration.as_deref().map(parse_duration).transpose() {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let reason = req.reason.unwrap_or_else(|| "locked by an operator".into());
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let duration = duration.unwrap_or_else(|| d.lock_duration());
    let r = d.lock(&account, &reason, Some(duration), now());
    s.dispatch(d.take_effects());
    match r {
        Ok(l) => (StatusCode::CREATED, Json(json!({"lock": l}))).into_response(),
        Err(e) => store_failed(e),
    }
}

async fn remove_lock(State(s): State<Arc<Shared>>, Query(q): Query<AccountQuery>) -> Response {
    let account = s.rules.canonical(&q.account).unwrap_or_default();
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = d.unlock(&account);
    s.dispatch(d.take_effects());
    match r {
        Ok(Some(l)) => Json(json!({"unlocked": l})).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("{account:?} is not locked")),
        Err(e) => store_failed(e),
    }
}

/// Where an account has logged in from (networks, most recent first).
async fn familiar(State(s): State<Arc<Shared>>, Query(q): Query<AccountQuery>) -> Response {
    let account = s.rules.canonical(&q.account).unwrap_or_default();
    match s.store.familiar(&account) {
        Ok(list) => Json(json!({
            "account": account,
            "familiar": list
                .into_iter()
                .map(|(n, at)| json!({"network": n.to_string(), "last": at}))
                .collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => store_failed(e),
    }
}

async fn list_allow(State(s): State<Arc<Shared>>) -> Response {
    let d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let list: Vec<_> = d
        .allowlist()
        .into_iter()
        .map(|(n, note)| json!({"network": n.to_string(), "note": note}))
        .collect();
    Json(json!({"allowlist": list})).into_response()
}

async fn add_allow(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: AllowRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let net = match network(&req.network) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = d.allow(net, req.note.as_deref().unwrap_or("added by an operator"));
    s.dispatch(d.take_effects());
    sync_allowlist(&s, &d);
    match r {
        Ok(added) => (
            if added {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(json!({"network": net.to_string(), "added": added})),
        )
            .into_response(),
        Err(e) => store_failed(e),
    }
}

async fn remove_allow(State(s): State<Arc<Shared>>, Query(q): Query<NetworkQuery>) -> Response {
    let net = match network(&q.network) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let mut d = s.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let r = d.disallow(net);
    sync_allowlist(&s, &d);
    match r {
        Ok(true) => Json(json!({"removed": net.to_string()})).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("{net} was not added at run time (entries from the configuration stay)"),
        ),
        Err(e) => store_failed(e),
    }
}

/// The policy server's copy of the allowlist follows every change.
fn sync_allowlist(s: &Shared, d: &crate::decide::Decisions) {
    s.policy
        .policy
        .set_allowlist(d.allowlist().into_iter().map(|(n, _)| n));
}

fn lockdown_json(l: Option<&portcullis_store::Lockdown>) -> serde_json::Value {
    let time = |t: i64| {
        Timestamp::from_second(t)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    match l {
        None => json!({"lockdown": false}),
        Some(l) => json!({
            "lockdown": true,
            "since": time(l.since),
            "until": l.until.map(time),
            "automatic": l.automatic,
        }),
    }
}

/// Lockdown: on or off, since and until when.
async fn lockdown(State(s): State<Arc<Shared>>) -> Response {
    Json(lockdown_json(s.policy.lockdown(now()).as_ref())).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockdownRequest {
    on: bool,
    duration: Option<String>,
}

/// Switches lockdown on (until switched off, or for `duration`) or off.
async fn set_lockdown(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: LockdownRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let duration = match req.duration.as_deref().map(parse_duration).transpose() {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let now = now();
    let l = req.on.then(|| portcullis_store::Lockdown {
        since: s.policy.lockdown(now).map_or(now, |l| l.since),
        until: duration.map(|d| now.saturating_add(d.as_secs() as i64)),
        automatic: false,
    });
    match s.policy.set_lockdown(&s.store, l.clone()) {
        Ok(()) => {
            eprintln!(
                "portcullis: lockdown {} by an operator",
                if req.on { "on" } else { "off" }
            );
            Json(lockdown_json(l.as_ref())).into_response()
        }
        Err(e) => store_failed(e),
    }
}
