//! `portcullis breach serve`: the Pwned Passwords range API over full indexes, so that
//! existing clients can be pointed at a local server instead of the public one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use portcullis_audit::{BreachLookup, CheckRequest, Policy};
use portcullis_breach::input::parse_prefix;
use portcullis_breach::{HashKind, Index, range_body};
use portcullis_daemon::serve::Limits;
use serde::Deserialize;
use tokio::net::TcpListener;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// A client has this long to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection (keep-alive included) is closed after this long.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Bytes buffered for one request's head (method, path, headers).
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Largest body of a password check (a password is at most 256 characters).
const MAX_CHECK_BODY: usize = 16 * 1024;

/// Serve the Pwned Passwords range API (`GET /range/{prefix}`) from full indexes, and
/// the password-change check (`POST /v1/password/check`).
///
/// Answers as api.pwnedpasswords.com does: `SUFFIX:COUNT` lines separated by CRLF,
/// upper-case suffixes, every valid five-digit prefix 200 (an empty body when nothing
/// matches), `?mode=ntlm` from the NTLM index, the `Add-Padding: true` header pads
/// the answer to 800–1,000 entries with random suffixes of count 0. An invalid prefix
/// or mode is a 400 with the reason. Needs indexes built with `--full`. Prints
/// `listening on http://ADDRESS` on standard output once it accepts connections.
///
/// `POST /v1/password/check` takes `{"password": "...", "username": "...", "service":
/// "...", "mfa": false}` and answers the NIST SP 800-63B verdict of `portcullis password
/// check --format json`, with the indexes as the breached list (docs/audit.md).
///
/// Examples:
///   portcullis breach serve --index pwned-full.pcb
///   portcullis breach serve --index sha1.pcb --ntlm-index ntlm.pcb --listen 127.0.0.1:8642
///   curl -H 'Add-Padding: true' http://127.0.0.1:8642/range/5BAA6
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Full SHA-1 index (`breach build --full`).
    #[arg(long, value_name = "INDEX")]
    index: PathBuf,

    /// Full NTLM index for `?mode=ntlm` (without one, such requests get 400).
    #[arg(long, value_name = "INDEX")]
    ntlm_index: Option<PathBuf>,

    /// Address and port to listen on (port 0 picks a free one). Loopback unless you
    /// say otherwise.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8642")]
    listen: SocketAddr,

    /// Organisation words banned in new passwords (its name, products, places), for
    /// `/v1/password/check`. Repeatable.
    #[arg(long, value_name = "WORD")]
    org: Vec<String>,
}

struct Indexes {
    sha1: Index,
    ntlm: Option<Index>,
    /// Organisation words for password checks.
    org: Vec<String>,
}

/// Password checks consult whichever indexes are loaded.
impl BreachLookup for Indexes {
    fn sha1_count(&self, hash: &[u8; 20]) -> Option<u32> {
        self.sha1.sha1_count(hash)
    }

    fn ntlm_count(&self, hash: &[u8; 16]) -> Option<u32> {
        self.ntlm.as_ref().and_then(|i| i.ntlm_count(hash))
    }
}

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let sha1 = open(&args.index, HashKind::Sha1, "--index")?;
    let ntlm = args
        .ntlm_index
        .as_ref()
        .map(|p| open(p, HashKind::Ntlm, "--ntlm-index"))
        .transpose()?;
    let indexes = Arc::new(Indexes {
        sha1,
        ntlm,
        org: args.org.clone(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(serve(indexes, args.listen))?;
    Ok(ExitCode::SUCCESS)
}

fn open(path: &PathBuf, kind: HashKind, option: &str) -> Result<Index> {
    let index = Index::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if index.kind() != kind {
        bail!(
            "{option} {} holds {} hashes; it must hold {kind} hashes",
            path.display(),
            index.kind()
        );
    }
    if !index.is_full() {
        bail!(
            "{option} {}: {}",
            path.display(),
            portcullis_breach::Error::NotFull
        );
    }
    Ok(index)
}

async fn serve(indexes: Arc<Indexes>, listen: SocketAddr) -> Result<()> {
    let app = Router::new()
        .route("/range/{prefix}", get(range))
        .route(
            "/v1/password/check",
            post(password_check).layer(DefaultBodyLimit::max(MAX_CHECK_BODY)),
        )
        .fallback(not_found)
        .with_state(indexes);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{bound}")?;
        out.flush()?;
    }
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        header_timeout: HEADER_TIMEOUT,
        max_head: MAX_REQUEST_HEAD,
        lifetime: CONNECTION_LIFETIME,
    };
    portcullis_daemon::serve::serve(listener, app, limits, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `POST /v1/password/check`. zxcvbn's estimate takes a few milliseconds, so it runs
/// off the connection tasks. A body that is not the documented JSON gets axum's 4xx
/// with the reason.
async fn password_check(
    State(indexes): State<Arc<Indexes>>,
    Json(request): Json<CheckRequest>,
) -> Response {
    let checked = tokio::task::spawn_blocking(move || {
        request.check(&indexes.org, &Policy::default(), Some(indexes.as_ref()))
    })
    .await;
    match checked {
        Ok(verdict) => Json(verdict).into_response(),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the check failed".into()),
    }
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    mode: Option<String>,
}

async fn range(
    State(indexes): State<Arc<Indexes>>,
    Path(prefix): Path<String>,
    Query(query): Query<RangeQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(prefix) = parse_prefix(prefix.as_bytes()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "The hash prefix was not in a valid format: it must be 5 hexadecimal digits".into(),
        );
    };
    let mode = query.mode.unwrap_or_default();
    let index = match mode.to_ascii_lowercase().as_str() {
        "" | "sha1" => &indexes.sha1,
        "ntlm" => match &indexes.ntlm {
            Some(index) => index,
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "This server has no NTLM index: start it with --ntlm-index".into(),
                );
            }
        },
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "The mode must be sha1 or ntlm".into(),
            );
        }
    };
    let padding = headers
        .get("add-padding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut rng = rand::rng();
    let rng: Option<&mut dyn rand::RngCore> = if padding { Some(&mut rng) } else { None };
    match range_body(index, prefix, rng) {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "Not found: this server answers GET /range/{5 hex digits}".into(),
    )
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
