//! The webhook against a real HTTP server on 127.0.0.1, started by each test, that
//! answers from a script and records what it received.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use portcullis_actions::webhook::{Webhook, WebhookConfig};
use portcullis_actions::{Notice, NoticeAction};
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

struct Script {
    /// Statuses to answer, in order; 200 once they run out.
    answers: Mutex<VecDeque<u16>>,
    /// Each request is answered only after taking a permit: none means it waits.
    gate: Semaphore,
    /// Every request, as it arrives (before the gate).
    arrived: mpsc::UnboundedSender<Received>,
}

struct Server {
    url: String,
    script: Arc<Script>,
    arrived: mpsc::UnboundedReceiver<Received>,
}

impl Server {
    /// A server answering `answers`, then 200; `open` says whether requests pass the
    /// gate at once.
    async fn start(answers: &[u16], open: bool) -> Server {
        let (tx, arrived) = mpsc::unbounded_channel();
        let script = Arc::new(Script {
            answers: Mutex::new(answers.iter().copied().collect()),
            gate: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
            arrived: tx,
        });
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            url: format!("http://{addr}/hook"),
            script,
            arrived,
        }
    }

    /// The next request, within 10 s.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.arrived.recv())
            .await
            .expect("a request within 10 s")
            .expect("the server is running")
    }

    /// Every request received so far.
    fn all(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.arrived.try_recv() {
            out.push(r);
        }
        out
    }

    fn release(&self) {
        self.script.gate.add_permits(1000);
    }
}

async fn hook(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = script.arrived.send(Received { headers, body });
    let _permit = script.gate.acquire().await;
    let status = script.answers.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

fn notice() -> Notice {
    Notice {
        action: NoticeAction::Ban,
        time: "2017-06-23T09:14:05+01:00".into(),
        address: Some("2001:db8::7".parse().unwrap()),
        prefix: Some("2001:db8::/64".parse().unwrap()),
        account: None,
        kind: Some("brute_force".into()),
        reason: "200 failures in 1 minute on \"j.smith\"".into(),
        duration_secs: Some(86_400),
        dry_run: false,
    }
}

fn config(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        backoff: Duration::from_millis(10),
        ..WebhookConfig::default()
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

const GRACE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_notice_is_posted_as_json_with_a_signature_the_receiver_can_check() {
    let mut server = Server::start(&[], true).await;
    let secret = "correct horse battery staple";
    let hook = Webhook::spawn(WebhookConfig {
        secret: Some(secret.into()),
        ..config(&server.url)
    })
    .unwrap();
    assert!(hook.send(&notice()));
    let got = server.next().await;
    let counters = hook.counters().clone();
    hook.shutdown(GRACE).await;
    assert_eq!(load(&counters.sent), 1);

    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "action": "ban", "time": "2017-06-23T09:14:05+01:00",
            "address": "2001:db8::7", "prefix": "2001:db8::/64", "kind": "brute_force",
            "reason": "200 failures in 1 minute on \"j.smith\"", "duration_secs": 86400,
            "dry_run": false,
        })
    );
    let header = |name: &str| {
        got.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        header("user-agent"),
        Some(format!("portcullis/{}", env!("CARGO_PKG_VERSION")))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&got.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header("x-portcullis-signature-256"), Some(expected));
}

#[tokio::test]
async fn without_a_secret_there_is_no_signature() {
    let mut server = Server::start(&[], true).await;
    let hook = Webhook::spawn(config(&server.url)).unwrap();
    assert!(hook.send(&notice()));
    let got = server.next().await;
    hook.shutdown(GRACE).await;
    assert!(got.headers.get("x-portcullis-signature-256").is_none());
}

#[tokio::test]
async fn unavailable_twice_then_delivered_on_the_third_try() {
    let mut server = Server::start(&[503, 503], true).await;
    let hook = Webhook::spawn(config(&server.url)).unwrap();
    assert!(hook.send(&notice()));
    let counters = hook.counters().clone();
    hook.shutdown(GRACE).await;
    let got = server.all();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every try sends the same body"
    );
    assert_eq!(load(&counters.sent), 1);
    assert_eq!(load(&counters.retries), 2);
    assert_eq!(load(&counters.failed), 0);
    let last = counters.last_error().unwrap();
    assert!(last.contains("503"), "{last}");
}

#[tokio::test]
async fn a_bad_request_answer_is_final_and_not_retried() {
    let mut server = Server::start(&[400], true).await;
    let hook = Webhook::spawn(config(&server.url)).unwrap();
    assert!(hook.send(&notice()));
    let counters = hook.counters().clone();
    hook.shutdown(GRACE).await;
    assert_eq!(server.all().len(), 1);
    assert_eq!(load(&counters.failed), 1);
    assert_eq!(load(&counters.retries), 0);
    assert_eq!(load(&counters.sent), 0);
    let last = counters.last_error().unwrap();
    assert!(
        last.contains("400") && last.contains("not retried"),
        "{last}"
    );
}

#[tokio::test]
async fn too_many_requests_is_retried_until_the_attempts_run_out() {
    let mut server = Server::start(&[429, 429, 429], true).await;
    let hook = Webhook::spawn(WebhookConfig {
        max_attempts: 3,
        ..config(&server.url)
    })
    .unwrap();
    assert!(hook.send(&notice()));
    let counters = hook.counters().clone();
    hook.shutdown(GRACE).await;
    assert_eq!(server.all().len(), 3);
    assert_eq!(load(&counters.failed), 1);
    assert_eq!(load(&counters.retries), 2);
    assert!(
        counters
            .last_error()
            .unwrap()
            .contains("gave up after 3 tries")
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let hook = Webhook::spawn(WebhookConfig {
        max_attempts: 2,
        ..config(&format!("http://127.0.0.1:{port}/hook"))
    })
    .unwrap();
    assert!(hook.send(&notice()));
    let counters = hook.counters().clone();
    hook.shutdown(GRACE).await;
    assert_eq!(load(&counters.retries), 1);
    assert_eq!(load(&counters.failed), 1);
    assert!(counters.last_error().unwrap().contains("request failed"));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_the_rest_is_delivered() {
    let mut server = Server::start(&[], false).await;
    let hook = Webhook::spawn(WebhookConfig {
        queue: 1,
        ..config(&server.url)
    })
    .unwrap();
    let counters = hook.counters().clone();
    assert!(hook.send(&notice()));
    // The first is at the server, held there; the second waits; the third has no room.
    server.next().await;
    assert!(hook.send(&notice()));
    assert!(!hook.send(&notice()));
    assert_eq!(load(&counters.dropped), 1);
    assert_eq!(load(&counters.queued), 1);
    server.release();
    hook.shutdown(GRACE).await;
    assert_eq!(load(&counters.sent), 2);
    assert_eq!(load(&counters.dropped), 1);
    assert_eq!(load(&counters.queued), 0);
    assert_eq!(load(&counters.abandoned), 0);
}

#[tokio::test]
async fn shutdown_gives_up_after_its_grace_and_counts_what_is_left() {
    let mut server = Server::start(&[], false).await;
    let hook = Webhook::spawn(WebhookConfig {
        queue: 4,
        ..config(&server.url)
    })
    .unwrap();
    let counters = hook.counters().clone();
    assert!(hook.send(&notice()));
    server.next().await;
    assert!(hook.send(&notice()));
    assert!(hook.send(&notice()));
    hook.shutdown(Duration::from_millis(100)).await;
    assert_eq!(load(&counters.abandoned), 3);
    assert_eq!(load(&counters.sent), 0);
    assert_eq!(load(&counters.queued), 0);
    // Let the request still held at the server end, so the blocking pool is idle.
    server.release();
}
