//! The policy server: answers "may this login go ahead?" before the password is
//! checked, on its own listener (`[policy] listen`), for three kinds of client.
//!
//! | path | client | what |
//! | --- | --- | --- |
//! | `POST /?command=allow`, `POST /?command=report` (also `…&command=`) | Dovecot 2.3/2.4 `auth_policy_server_url` | Dovecot's auth policy protocol |
//! | `/command/NAME` and `/?command=NAME` | Weakforced clients | `allow`, `report`, `reset`, `getBL`, `addBLEntry`, `delBLEntry`, `getDBStats`, `ping`, `stats` ([`wforce`]) |
//! | `POST /v1/allow`, `POST /v1/report` | applications, SSO | Portcullis' own JSON, with an optional organisation-wide password fingerprint |
//!
//! **Dovecot** (`src/auth/auth-policy.c` in dovecot/core): the URL gets
//! `?command=allow` or `?command=report` appended (`command=…` alone after a URL
//! ending in `&`); the body is a JSON object built from `auth_policy_request_attributes`
//! (defaults `login pwhash remote device_id protocol session_id`, 2.4 adds
//! `fail_type`): values are strings, `a/b` keys become nested objects (ignored here
//! unless named below), `tls` is added as a JSON boolean, and reports carry the
//! booleans `success` and `policy_reject`. The answer is `{"status":N,"msg":"…"}`:
//! negative rejects (Dovecot shows `msg` as the failure reason), 0 allows, positive
//! makes Dovecot wait N seconds before going on (a tarpit). Dovecot sends
//! `auth_policy_server_api_header` as is (`Name: value`, or `X-API-Key: value` when
//! it has no colon) and user info in the URL as HTTP Basic auth.
//!
//! `pwhash` is `H(nonce || login || NUL || password)` truncated: the same wrong
//! password on the same account gives the same value, so it is counted once.
//!
//! **Fail-safe**: a decision runs on memory only, without waiting for the engine or
//! the disk; should a table be busy longer than `[policy] budget`, the configured
//! fallback answer (`allow` by default) goes out and is counted, so a client's own
//! timeout (Dovecot's 2 s) is never the failure mode.
//!
//! Reports are also handed to the detection engine as events (unless
//! `report_to_engine = false`) on the bounded queue `POST /v1/events` uses; a full
//! queue drops them and counts it.

pub mod wforce;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use jiff::Timestamp;
use portcullis_core::{Event, EventTime, Outcome, Protocol, Reason as EventReason, Service};
use portcullis_policy::{Attempt, Decision, Outcome as Learnt, Policy, Reason};
use portcullis_store::{Lockdown, Store, StoreError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Fallback, PolicySettings};
use crate::daemon::Shared;
use crate::metrics::{Exposition, Family};

/// The policy and what the policy listener needs around it.
pub struct PolicyRuntime {
    /// The decisions.
    pub policy: Policy,
    /// The settings a reload can change, read once per request.
    knobs: RwLock<Knobs>,
    /// Lockdown as stored.
    lockdown: Mutex<Option<Lockdown>>,
    /// Counters.
    pub metrics: PolicyMetrics,
}

/// The listener's own settings (the policy's thresholds live in the policy).
#[derive(Debug, Clone, Copy)]
struct Knobs {
    /// The clients' secret, as its digest.
    secret: Option<[u8; 32]>,
    budget: Duration,
    fallback: Fallback,
    report_to_engine: bool,
    auto_lockdown: Option<Duration>,
}

impl Knobs {
    fn new(settings: &PolicySettings) -> anyhow::Result<Self> {
        Ok(Self {
            secret: settings
                .secret_file
                .as_deref()
                .map(crate::config::read_secret)
                .transpose()?
                .map(|s| Sha256::digest(s.as_bytes()).into()),
            budget: settings.budget,
            fallback: settings.fallback,
            report_to_engine: settings.report_to_engine,
            auto_lockdown: settings
                .lockdown_auto
                .then_some(settings.lockdown_auto_duration),
        })
    }
}

/// The policy server's counters.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    /// Allowed, tarpitted, then rejected per [`Reason::ALL`].
    pub decisions: [AtomicU64; 2 + Reason::ALL.len()],
    /// Answers given by the fallback because the budget ran out.
    pub fallbacks: AtomicU64,
    /// Reports: success, failure, ignored.
    pub reports: [AtomicU64; 3],
    /// Reports not learnt from because the budget ran out.
    pub reports_dropped: AtomicU64,
    /// Reports not handed to the engine because its queue was full.
    pub engine_dropped: AtomicU64,
    /// Requests refused for a wrong or missing secret.
    pub unauthorized: AtomicU64,
    /// Requests refused as malformed.
    pub malformed: AtomicU64,
    /// Weakforced administrative commands served.
    pub commands: AtomicU64,
}

impl PolicyRuntime {
    /// Builds the policy from the settings and the lockdown the store holds.
    pub fn new(settings: &PolicySettings, store: &Store) -> anyhow::Result<Self> {
        let knobs = Knobs::new(settings)?;
        let policy = Policy::new(settings.rules());
        let lockdown = store.lockdown()?;
        if let Some(l) = &lockdown {
            policy.set_lockdown(l.until);
        }
        Ok(Self {
            policy,
            knobs: RwLock::new(knobs),
            lockdown: Mutex::new(lockdown),
            metrics: PolicyMetrics::default(),
        })
    }

    fn knobs(&self) -> Knobs {
        *self.knobs.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes reloaded settings at once, keeping everything learnt (a SIGHUP). The
    /// listener's address and the tables' sizes and prefix lengths wait for a restart:
    /// returns `Ok(false)` when they were asked to change. A secret file that cannot be
    /// read refuses the policy's part of the reload, keeping its running settings.
    pub fn reload(&self, settings: &PolicySettings) -> anyhow::Result<bool> {
        let knobs = Knobs::new(settings)?;
        *self.knobs.write().unwrap_or_else(|p| p.into_inner()) = knobs;
        Ok(self.policy.set_rules(settings.rules()))
    }

    /// The lockdown in force at `now`, if any.
    pub fn lockdown(&self, now: i64) -> Option<Lockdown> {
        let l = self.lockdown.lock().unwrap_or_else(|p| p.into_inner());
        l.clone().filter(|l| l.until.is_none_or(|u| u > now))
    }

    /// Switches lockdown on (until `until`, or until switched off) or off; stored first.
    pub fn set_lockdown(&self, store: &Store, l: Option<Lockdown>) -> Result<(), StoreError> {
        let mut held = self.lockdown.lock().unwrap_or_else(|p| p.into_inner());
        store.set_lockdown(l.as_ref())?;
        self.policy.set_lockdown(match &l {
            None => Some(0),
            Some(l) => l.until,
        });
        *held = l;
        Ok(())
    }

    /// A distributed spray was found at `now`: lockdown on (or longer), unless off in
    /// the configuration or already on until switched off. Returns the new lockdown.
    pub fn campaign_found(&self, store: &Store, now: i64) -> Option<Lockdown> {
        let hold = self.knobs().auto_lockdown?;
        let current = self.lockdown(now);
        if current.as_ref().is_some_and(|l| l.until.is_none()) {
            return None;
        }
        let l = Lockdown {
            since: current.as_ref().map_or(now, |l| l.since),
            until: Some(now.saturating_add(hold.as_secs() as i64)),
            automatic: true,
        };
        match self.set_lockdown(store, Some(l.clone())) {
            Ok(()) => Some(l),
            Err(e) => {
                eprintln!("portcullis: cannot record the lockdown: {e}");
                None
            }
        }
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = &self.knobs().secret else {
            return true;
        };
        let matches = |given: &[u8]| -> bool {
            let d: [u8; 32] = Sha256::digest(given).into();
            bool::from(d.ct_eq(secret))
        };
        if let Some(k) = headers.get("x-api-key") {
            return matches(k.as_bytes().trim_ascii());
        }
        let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
        else {
            return false;
        };
        if let Some(t) = auth.strip_prefix("Bearer ") {
            return matches(t.trim().as_bytes());
        }
        if let Some(b) = auth.strip_prefix("Basic ") {
            use base64::Engine as _;
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
                return false;
            };
            // Weakforced's convention: any user name, the password is the secret.
            let password = match raw.iter().position(|&c| c == b':') {
                Some(i) => &raw[i + 1..],
                None => &raw[..],
            };
            return matches(password);
        }
        false
    }

    /// Decides within the budget.
    async fn decide(&self, a: &Attempt<'_>, now: u32) -> Decision {
        let d = match self.policy.try_decide(a, now) {
            Some(d) => d,
            None => {
                let wait = async {
                    loop {
                        tokio::task::yield_now().await;
                        if let Some(d) = self.policy.try_decide(a, now) {
                            return d;
                        }
                    }
                };
                let knobs = self.knobs();
                match tokio::time::timeout(knobs.budget, wait).await {
                    Ok(d) => d,
                    Err(_) => {
                        self.metrics.fallbacks.fetch_add(1, Ordering::Relaxed);
                        match knobs.fallback {
                            Fallback::Allow => Decision::Allow,
                            Fallback::Reject => Decision::Reject(Reason::Unavailable),
                        }
                    }
                }
            }
        };
        let slot = match d {
            Decision::Allow => 0,
            Decision::Tarpit(_) => 1,
            Decision::Reject(r) => 2 + Reason::ALL.iter().position(|x| *x == r).unwrap_or(0),
        };
        self.metrics.decisions[slot].fetch_add(1, Ordering::Relaxed);
        d
    }

    /// Learns from a report within the budget.
    async fn learn(&self, a: &Attempt<'_>, result: Learnt, now: u32) {
        let slot = match result {
            Learnt::Success => 0,
            Learnt::Failure => 1,
            Learnt::Ignored => 2,
        };
        self.metrics.reports[slot].fetch_add(1, Ordering::Relaxed);
        if self.policy.try_report(a, result, now) {
            return;
        }
        let wait = async {
            loop {
                tokio::task::yield_now().await;
                if self.policy.try_report(a, result, now) {
                    return;
                }
            }
        };
        if tokio::time::timeout(self.knobs().budget, wait)
            .await
            .is_err()
        {
            self.metrics.reports_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders the counters and table sizes.
    pub fn render(&self, x: &mut Exposition) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let m = &self.metrics;
        let mut samples = vec![
            (
                "decision=\"allow\",reason=\"\"".to_string(),
                load(&m.decisions[0]),
            ),
            (
                "decision=\"tarpit\",reason=\"\"".to_string(),
                load(&m.decisions[1]),
            ),
        ];
        for (i, r) in Reason::ALL.iter().enumerate() {
            samples.push((
                format!("decision=\"reject\",reason=\"{}\"", r.as_str()),
                load(&m.decisions[2 + i]),
            ));
        }
        x.family(Family {
            name: "portcullis_policy_decisions_total",
            kind: "counter",
            help: "Policy answers, by decision and reason for rejects.",
            samples,
        });
        x.family(Family {
            name: "portcullis_policy_fallbacks_total",
            kind: "counter",
            help: "Policy answers given by the fallback because the budget ran out.",
            samples: vec![(String::new(), load(&m.fallbacks))],
        });
        x.family(Family {
            name: "portcullis_policy_reports_total",
            kind: "counter",
            help: "Login outcomes reported to the policy server.",
            samples: vec![
                ("result=\"success\"".into(), load(&m.reports[0])),
                ("result=\"failure\"".into(), load(&m.reports[1])),
                ("result=\"ignored\"".into(), load(&m.reports[2])),
            ],
        });
        x.family(Family {
            name: "portcullis_policy_dropped_total",
            kind: "counter",
            help: "Reports not learnt from (budget ran out) or not handed to the engine (queue full).",
            samples: vec![
                ("stage=\"policy\"".into(), load(&m.reports_dropped)),
                ("stage=\"engine\"".into(), load(&m.engine_dropped)),
            ],
        });
        x.family(Family {
            name: "portcullis_policy_refused_total",
            kind: "counter",
            help: "Policy requests refused: wrong or missing secret, malformed.",
            samples: vec![
                ("why=\"unauthorized\"".into(), load(&m.unauthorized)),
                ("why=\"malformed\"".into(), load(&m.malformed)),
            ],
        });
        let s = self.policy.sizes();
        x.family(Family {
            name: "portcullis_policy_entries",
            kind: "gauge",
            help: "Entries the policy tracks, by table.",
            samples: vec![
                ("table=\"accounts\"".into(), s.accounts as u64),
                ("table=\"sources\"".into(), s.sources as u64),
                ("table=\"fingerprints\"".into(), s.fingerprints as u64),
            ],
        });
        x.family(Family {
            name: "portcullis_policy_evicted_total",
            kind: "counter",
            help: "Policy entries forgotten to stay within the caps.",
            samples: vec![(String::new(), s.evicted)],
        });
        x.family(Family {
            name: "portcullis_policy_lockdown",
            kind: "gauge",
            help: "1 while lockdown is on.",
            samples: vec![(
                String::new(),
                u64::from(self.lockdown(Timestamp::now().as_second()).is_some()),
            )],
        });
    }
}

/// A string of a request body: borrowed from the body unless it has escapes.
///
/// serde borrows a `Cow<str>` field only when it is the field's whole type, not inside
/// an `Option`; this newtype makes `Option<Text>` borrow too, so that reading a login
/// allocates only for escaped strings.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A login as any of the three kinds of client describes it. Unknown keys (nested
/// `attrs`, Dovecot's `session_id`, …) are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Login<'a> {
    #[serde(borrow, alias = "account", alias = "user")]
    login: Option<Text<'a>>,
    #[serde(borrow, alias = "source")]
    remote: Option<Text<'a>>,
    #[serde(borrow, alias = "password")]
    pwhash: Option<Text<'a>>,
    #[serde(borrow)]
    fingerprint: Option<Text<'a>>,
    #[serde(borrow, alias = "device")]
    device_id: Option<Text<'a>>,
    #[serde(borrow)]
    protocol: Option<Text<'a>>,
    success: Option<bool>,
    policy_reject: Option<bool>,
    #[serde(borrow)]
    fail_type: Option<Text<'a>>,
    /// `/v1/report`: `success` or `failure`.
    #[serde(borrow)]
    outcome: Option<Text<'a>>,
}

/// Longest text field taken (longer is malformed).
const MAX_FIELD: usize = 512;

/// A parsed login: the canonical account, the source, and the attempt.
pub(crate) struct Parsed<'a> {
    account: String,
    source: Option<IpAddr>,
    login: Login<'a>,
}

impl<'a> Parsed<'a> {
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            account: &self.account,
            source: self.source,
            device: self.login.device_id.as_deref(),
            password: self.login.pwhash.as_deref(),
            fingerprint: self.login.fingerprint.as_deref(),
        }
    }

    /// What the outcome teaches the policy, and the event's outcome for the engine.
    fn outcome(&self) -> Result<(Learnt, Outcome), String> {
        let l = &self.login;
        let success = match (l.success, l.outcome.as_deref()) {
            (Some(s), _) => s,
            (None, Some("success")) => true,
            (None, Some("failure")) => false,
            (None, Some(x)) => {
                return Err(format!(
                    "outcome must be \"success\" or \"failure\", not {x:?}"
                ));
            }
            (None, None) => return Err("a report needs success (true/false) or outcome".into()),
        };
        if success {
            return Ok((Learnt::Success, Outcome::Success));
        }
        if l.policy_reject == Some(true) {
            return Ok((Learnt::Ignored, Outcome::Failure(EventReason::Locked)));
        }
        // Dovecot 2.4's fail_type; without it (2.3), a failure is a wrong password.
        Ok(match l.fail_type.as_deref() {
            None | Some("credentials") | Some("") => {
                (Learnt::Failure, Outcome::Failure(EventReason::BadPassword))
            }
            Some("account") => (
                Learnt::Failure,
                Outcome::Failure(EventReason::UnknownAccount),
            ),
            Some("expired") => (Learnt::Ignored, Outcome::Failure(EventReason::Expired)),
            Some("disabled") => (Learnt::Ignored, Outcome::Failure(EventReason::Disabled)),
            Some("policy") => (Learnt::Ignored, Outcome::Failure(EventReason::Locked)),
            Some(_) => (Learnt::Ignored, Outcome::Failure(EventReason::Other)),
        })
    }
}

/// Reads a login from a request body.
pub(crate) fn parse<'a>(body: &'a [u8], shared: &Shared) -> Result<Parsed<'a>, String> {
    let login: Login<'a> =
        serde_json::from_slice(body).map_err(|e| format!("not a login request: {e}"))?;
    for v in [
        &login.login,
        &login.remote,
        &login.pwhash,
        &login.fingerprint,
        &login.device_id,
        &login.protocol,
    ]
    .into_iter()
    .flatten()
    {
        if v.len() > MAX_FIELD {
            return Err(format!("a field is longer than {MAX_FIELD} bytes"));
        }
    }
    let account = login
        .login
        .as_deref()
        .and_then(|l| shared.rules.canonical(l))
        .unwrap_or_default();
    // Dovecot sends an empty remote for local logins; anything else must be an address.
    let source = match login.remote.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(
            r.parse::<IpAddr>()
                .map_err(|_| format!("remote {r:?} is not an IP address"))?
                .to_canonical(),
        ),
    };
    Ok(Parsed {
        account,
        source,
        login,
    })
}

/// The policy listener's router.
pub fn router(shared: Arc<Shared>) -> Router {
    let max_body = shared.max_body.min(64 * 1024);
    Router::new()
        .route("/", any(query_command))
        .route("/command/{name}", any(path_command))
        .route("/v1/allow", post(own_allow))
        .route("/v1/report", post(own_report))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_secret,
        ))
        .with_state(shared)
}

async fn require_secret(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if s.policy.authorised(req.headers()) {
        next.run(req).await
    } else {
        s.policy
            .metrics
            .unauthorized
            .fetch_add(1, Ordering::Relaxed);
        let mut r = failure(StatusCode::UNAUTHORIZED, "Unauthorized");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
        r
    }
}

/// An error in Weakforced's shape, which Dovecot treats as a failed request.
pub(crate) fn failure(status: StatusCode, reason: &str) -> Response {
    json_response(
        status,
        serde_json::json!({"status": "failure", "reason": reason}).to_string(),
    )
}

pub(crate) fn json_response(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "no such endpoint")
}

#[derive(Deserialize)]
struct CommandQuery {
    command: Option<String>,
}

async fn query_command(
    State(s): State<Arc<Shared>>,
    Query(q): Query<CommandQuery>,
    body: Bytes,
) -> Response {
    match q.command {
        Some(c) => command(&s, &c, &body, Service::Dovecot).await,
        None => failure(StatusCode::BAD_REQUEST, "no command= in the query"),
    }
}

async fn path_command(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    command(&s, &name, &body, Service::Api).await
}

async fn command(s: &Arc<Shared>, name: &str, body: &[u8], service: Service) -> Response {
    match name {
        "allow" => match parse(body, s) {
            Ok(p) => {
                let (status, msg) = match s.policy.decide(&p.attempt(), now32()).await {
                    // The common answer is written once.
                    Decision::Allow => {
                        return json_response(
                            StatusCode::OK,
                            r#"{"status":0,"msg":"","r_attrs":{}}"#,
                        );
                    }
                    Decision::Tarpit(n) => (i64::from(n), ""),
                    Decision::Reject(r) => (-1, r.message()),
                };
                json_response(
                    StatusCode::OK,
                    format!(
                        "{{\"status\":{status},\"msg\":{},\"r_attrs\":{{}}}}",
                        serde_json::Value::from(msg)
                    ),
                )
            }
            Err(e) => malformed(s, &e),
        },
        "report" => match parse(body, s) {
            Ok(p) => match report(s, &p, service).await {
                Ok(()) => json_response(StatusCode::OK, r#"{"status":"ok"}"#),
                Err(e) => malformed(s, &e),
            },
            Err(e) => malformed(s, &e),
        },
        other => wforce::command(s, other, body).await,
    }
}

fn malformed(s: &Shared, e: &str) -> Response {
    s.policy.metrics.malformed.fetch_add(1, Ordering::Relaxed);
    failure(StatusCode::BAD_REQUEST, e)
}

/// Learns from a report and hands it to the engine.
async fn report(s: &Shared, p: &Parsed<'_>, service: Service) -> Result<(), String> {
    let (learnt, outcome) = p.outcome()?;
    s.policy.learn(&p.attempt(), learnt, now32()).await;
    if s.policy.knobs().report_to_engine
        && let Some(source) = p.source
    {
        let mut e = Event::new(service, outcome);
        e.time = Some(EventTime::utc(Timestamp::now()));
        e.source = Some(source);
        e.user = p.login.login.as_deref().map(str::to_owned);
        e.account = (!p.account.is_empty()).then(|| p.account.clone());
        e.protocol = p.login.protocol.as_deref().and_then(Protocol::from_name);
        if s.reports.try_send(vec![e]).is_err() {
            s.policy
                .metrics
                .engine_dropped
                .fetch_add(1, Ordering::Relaxed);
            s.metrics.reported_dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            s.metrics.reported.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// `POST /v1/allow`: `{"decision":"allow"|"tarpit"|"reject", "delay":N, "reason", "message"}`.
async fn own_allow(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let p = match parse(&body, &s) {
        Ok(p) if !p.account.is_empty() => p,
        Ok(_) => return malformed(&s, "account (or user, login) is required"),
        Err(e) => return malformed(&s, &e),
    };
    let d = s.policy.decide(&p.attempt(), now32()).await;
    let v = match d {
        Decision::Allow => serde_json::json!({"decision": "allow", "delay": 0}),
        Decision::Tarpit(n) => serde_json::json!({"decision": "tarpit", "delay": n}),
        Decision::Reject(r) => serde_json::json!({
            "decision": "reject", "delay": 0, "reason": r.as_str(), "message": r.message()
        }),
    };
    json_response(StatusCode::OK, v.to_string())
}

/// `POST /v1/report`: `{"accepted":true}`.
async fn own_report(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let p = match parse(&body, &s) {
        Ok(p) if !p.account.is_empty() => p,
        Ok(_) => return malformed(&s, "account (or user, login) is required"),
        Err(e) => return malformed(&s, &e),
    };
    match report(&s, &p, Service::Api).await {
        Ok(()) => json_response(StatusCode::OK, r#"{"accepted":true}"#),
        Err(e) => malformed(&s, &e),
    }
}

fn now32() -> u32 {
    Timestamp::now()
        .as_second()
        .clamp(0, i64::from(u32::MAX - 1)) as u32
}

#[cfg(test)]
mod tests;
