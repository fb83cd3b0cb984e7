//! Each [`Notice`] as a signed JSON POST to one URL: a SOAR, a chat bridge, a SIEM.
//!
//! The body is the notice's JSON, `Content-Type: application/json`, `User-Agent:
//! portcullis/VERSION`. With a secret, `X-Portcullis-Signature-256: sha256=HEX` carries
//! the lowercase hex HMAC-SHA256 of the exact body bytes under that secret, so the
//! receiver can check that the notice came from us, unchanged.
//!
//! Notices wait in a bounded queue (a full queue drops the notice and counts it) and go
//! out one at a time, in order. A 2xx answer is success; 408, 429, any 5xx and network
//! errors are tried again after a backoff that starts at `backoff` and doubles up to
//! [`MAX_BACKOFF`], `max_attempts` tries in all; any other answer (a 4xx, a redirect,
//! which is not followed) is final. Either way of giving up counts as `failed`.
//!
//! The secret appears in no `Debug` output and no error message.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use ureq::http::Uri;

use crate::Notice;

/// The longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The longest queue a configuration may ask for.
pub const MAX_QUEUE: usize = 1 << 20;

/// The longest time given to one request.
pub const MAX_REQUEST_TIME: Duration = Duration::from_secs(3600);

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature-256";

const USER_AGENT: &str = concat!("portcullis/", env!("CARGO_PKG_VERSION"));

/// The most of an answer's body kept for the error message.
const ANSWER_KEPT: usize = 512;

/// Where to post and how hard to try.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The URL, `http://` or `https://`.
    pub url: String,
    /// The HMAC key for the signature header; none means unsigned posts.
    pub secret: Option<String>,
    /// How long one request may take, connection included (default 5 s; at most
    /// [`MAX_REQUEST_TIME`], and longer is taken as that).
    pub timeout: Duration,
    /// Tries per notice, the first included (default 5).
    pub max_attempts: u32,
    /// The wait before the first retry, doubled for each next one up to
    /// [`MAX_BACKOFF`] (default 1 s).
    pub backoff: Duration,
    /// How many notices may wait, at most (default 1024; 1 to [`MAX_QUEUE`]).
    pub queue: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            secret: None,
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            queue: 1024,
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Why a [`Webhook`] could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The URL is not an `http://` or `https://` URL with a host.
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The secret is empty.
    EmptySecret,
    /// `timeout`, `max_attempts` or `backoff` is zero, or `queue` is outside its range.
    OutOfRange {
        /// Which one.
        field: &'static str,
        /// What it may be.
        allowed: &'static str,
    },
    /// [`Webhook::spawn`] was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::Url { url, reason } => write!(f, "webhook: URL {url:?}: {reason}"),
            WebhookError::EmptySecret => f.write_str("webhook: the secret is empty"),
            WebhookError::OutOfRange { field, allowed } => {
                write!(f, "webhook: {field} must be {allowed}")
            }
            WebhookError::NoRuntime => {
                f.write_str("webhook: must be started within a tokio runtime")
            }
        }
    }
}

impl std::error::Error for WebhookError {}

/// What the webhook did, as counters the daemon can export.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    /// Notices delivered (answered 2xx).
    pub sent: AtomicU64,
    /// Notices given up: refused with a final answer, or still failing after
    /// `max_attempts` tries.
    pub failed: AtomicU64,
    /// Tries after a first one.
    pub retries: AtomicU64,
    /// Notices dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Notices waiting in the queue now.
    pub queued: AtomicU64,
    /// Notices waiting or being delivered when shutdown's grace ran out.
    pub abandoned: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl WebhookCounters {
    /// The newest failed try in words (the answer's status and first bytes, or the
    /// network error), for the daemon to log when `failed` or `retries` moves.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|l| l.clone())
    }

    fn note(&self, message: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message);
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The running webhook.
#[derive(Debug)]
pub struct Webhook {
    bodies: mpsc::Sender<Vec<u8>>,
    counters: Arc<WebhookCounters>,
    task: JoinHandle<()>,
}

/// Everything the worker needs; holds the key, so it has no `Debug`.
struct Target {
    agent: ureq::Agent,
    url: String,
    mac: Option<Hmac<Sha256>>,
    max_attempts: u32,
    backoff: Duration,
}

impl Webhook {
    /// Checks the configuration and starts the worker task. Must be called within a
    /// tokio runtime.
    pub fn spawn(config: WebhookConfig) -> Result<Webhook, WebhookError> {
        check_url(&config.url)?;
        for (field, bad, allowed) in [
            ("timeout", config.timeout.is_zero(), "more than zero"),
            ("max_attempts", config.max_attempts == 0, "at least 1"),
            ("backoff", config.backoff.is_zero(), "more than zero"),
            (
                "queue",
                !(1..=MAX_QUEUE).contains(&config.queue),
                "1 to 1048576",
            ),
        ] {
            if bad {
                return Err(WebhookError::OutOfRange { field, allowed });
            }
        }
        let mac = match &config.secret {
            None => None,
            Some(s) if s.is_empty() => return Err(WebhookError::EmptySecret),
            // HMAC takes a key of any length, so this cannot fail.
            Some(s) => Some(
                Hmac::<Sha256>::new_from_slice(s.as_bytes())
                    .map_err(|_| WebhookError::EmptySecret)?,
            ),
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WebhookError::NoRuntime)?;
        let agent = ureq::Agent::config_builder()
            // The client adds this to a clock reading, which must not overflow.
            .timeout_global(Some(config.timeout.min(MAX_REQUEST_TIME)))
            .http_status_as_error(false)
            // A redirect would resend the signed body somewhere we were not told of.
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .build()
            .new_agent();
        let target = Target {
            agent,
            url: config.url,
            mac,
            max_attempts: config.max_attempts,
            backoff: config.backoff,
        };
        let (bodies, rx) = mpsc::channel(config.queue);
        let counters = Arc::new(WebhookCounters::default());
        let task = runtime.spawn(deliver_all(rx, target, Arc::clone(&counters)));
        Ok(Webhook {
            bodies,
            counters,
            task,
        })
    }

    /// Queues `notice`; `false` (and counted as dropped) when the queue is full.
    pub fn send(&self, notice: &Notice) -> bool {
        let Ok(body) = serde_json::to_vec(notice) else {
            // A notice is strings and numbers: it always serialises.
            bump(&self.counters.failed);
            return false;
        };
        // Counted before it can be taken, so the gauge never goes below zero.
        bump(&self.counters.queued);
        if self.bodies.try_send(body).is_ok() {
            return true;
        }
        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        bump(&self.counters.dropped);
        false
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<WebhookCounters> {
        &self.counters
    }

    /// Takes no more notices and delivers what it can within `grace`; what is left is
    /// counted as abandoned. A request under way at that moment is not waited for; it
    /// ends within the configured timeout.
    pub async fn shutdown(self, grace: Duration) {
        let Webhook {
            bodies,
            counters,
            mut task,
        } = self;
        drop(bodies);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        let left = counters.queued.swap(0, Ordering::Relaxed);
        counters.abandoned.fetch_add(left, Ordering::Relaxed);
    }
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let bad = |reason| WebhookError::Url {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("only http:// and https:// are supported")),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(bad("no host")),
    }
}

async fn deliver_all(
    mut bodies: mpsc::Receiver<Vec<u8>>,
    target: Target,
    counters: Arc<WebhookCounters>,
) {
    let target = Arc::new(target);
    while let Some(body) = bodies.recv().await {
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        // Counted as abandoned if shutdown stops it mid-way.
        let mut pending = Abandoned(Some(Arc::clone(&counters)));
        deliver(&target, body, &counters).await;
        pending.0 = None;
    }
}

struct Abandoned(Option<Arc<WebhookCounters>>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take() {
            bump(&counters.abandoned);
        }
    }
}

async fn deliver(target: &Arc<Target>, body: Vec<u8>, counters: &WebhookCounters) {
    let signature = target.mac.as_ref().map(|mac| sign(mac, &body));
    let body = Arc::new(body);
    for attempt in 1..=target.max_attempts {
        let outcome = post(Arc::clone(target), Arc::clone(&body), signature.clone()).await;
        match outcome {
            Outcome::Delivered => {
                bump(&counters.sent);
                return;
            }
            Outcome::Final(why) => {
                counters.note(format!("webhook: {why}; not retried"));
                bump(&counters.failed);
                return;
            }
            Outcome::Retry(why) if attempt == target.max_attempts => {
                counters.note(format!("webhook: {why}; gave up after {attempt} tries"));
                bump(&counters.failed);
                return;
            }
            Outcome::Retry(why) => {
                counters.note(format!(
                    "webhook: {why}; try {attempt} of {}",
                    target.max_attempts
                ));
                bump(&counters.retries);
                tokio::time::sleep(backoff(target.backoff, attempt)).await;
            }
        }
    }
}

/// The signature header's value: `sha256=` and the lowercase hex HMAC-SHA256 of `body`.
fn sign(mac: &Hmac<Sha256>, body: &[u8]) -> String {
    let mut mac = mac.clone();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after the `failures`-th failed try: `first`, doubled for each failure before
/// it, at most [`MAX_BACKOFF`].
fn backoff(first: Duration, failures: u32) -> Duration {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1));
    first.saturating_mul(doubling).min(MAX_BACKOFF)
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry(String),
    Final(String),
}

/// One POST, on the blocking pool (ureq is a blocking client).
async fn post(target: Arc<Target>, body: Arc<Vec<u8>>, signature: Option<String>) -> Outcome {
    let request = tokio::task::spawn_blocking(move || {
        let mut request = target
            .agent
            .post(&target.url)
            .content_type("application/json");
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let mut answer = request.send(&body[..])?;
        let status = answer.status().as_u16();
        let text = if (200..300).contains(&status) {
            String::new()
        } else {
            let mut kept = Vec::new();
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(answer.body_mut().as_reader(), ANSWER_KEPT as u64),
                &mut kept,
            );
            crate::bounded_text(&kept, ANSWER_KEPT, 0)
        };
        Ok::<_, ureq::Error>((status, text))
    });
    match request.await {
        Ok(Ok((status, text))) => outcome(status, &text),
        Ok(Err(e)) => Outcome::Retry(format!("request failed: {e}")),
        Err(e) => Outcome::Retry(format!("request task failed: {e}")),
    }
}

fn outcome(status: u16, answer: &str) -> Outcome {
    let said = if answer.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {answer:?}")
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry(said),
        _ => Outcome::Final(said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_delivered_retried_or_final() {
        for s in [200, 201, 204, 299] {
            assert_eq!(outcome(s, ""), Outcome::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(matches!(outcome(s, ""), Outcome::Retry(_)), "{s}");
        }
        for s in [100, 301, 302, 400, 401, 403, 404, 410, 422] {
            assert!(matches!(outcome(s, ""), Outcome::Final(_)), "{s}");
        }
        assert_eq!(
            outcome(503, "busy"),
            Outcome::Retry("answered 503: \"busy\"".into())
        );
    }

    /// The example of docs/actions.md, as `openssl dgst -sha256 -hmac` computes it.
    #[test]
    fn the_signature_is_the_one_openssl_computes() {
        let body = br#"{"action":"ban","time":"2017-06-23T09:14:05+01:00","address":"203.0.113.7","prefix":"203.0.113.7/32","kind":"password_spray","reason":"17 accounts, 1 attempt each","duration_secs":3600,"dry_run":false}"#;
        let mac = Hmac::<Sha256>::new_from_slice(b"correct horse battery staple").unwrap();
        assert_eq!(
            sign(&mac, body),
            "sha256=997561572c9382b37b9b377aca93ca10e93e5f139bd4e27accf25abf99c6e626"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_a_minute() {
        let waits: Vec<_> = (1..=9)
            .map(|n| backoff(Duration::from_secs(1), n).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(Duration::from_secs(1), u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(600), 1), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_millis(10), 3),
            Duration::from_millis(40)
        );
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://soar.example/api/hooks?x=1",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "ftp://x/",
            "file:///etc/passwd",
            "http://",
            "/relative",
            "soar.example",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let config = WebhookConfig {
            url: "https://soar.example/hook".into(),
            secret: Some("hunter2-very-secret".into()),
            ..WebhookConfig::default()
        };
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let base = || WebhookConfig {
            url: "http://127.0.0.1:9/".into(),
            ..WebhookConfig::default()
        };
        let cases = [
            WebhookConfig {
                url: "gopher://x/".into(),
                ..base()
            },
            WebhookConfig {
                secret: Some(String::new()),
                ..base()
            },
            WebhookConfig { queue: 0, ..base() },
            WebhookConfig {
                max_attempts: 0,
                ..base()
            },
            WebhookConfig {
                backoff: Duration::ZERO,
                ..base()
            },
        ];
        for config in cases {
            let err = Webhook::spawn(config.clone()).unwrap_err();
            assert_ne!(err, WebhookError::NoRuntime, "{config:?}");
        }
        assert_eq!(Webhook::spawn(base()).unwrap_err(), WebhookError::NoRuntime);
    }
}
