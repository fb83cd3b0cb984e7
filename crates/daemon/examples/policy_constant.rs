//! A bare axum server that answers every policy request with a constant: the
//! baseline of benches/policy.sh.
//!
//! It runs on the same runtime as `portcullis run` (tokio, two worker threads) and the
//! same HTTP server loop (`portcullis_daemon::serve`), takes the body and answers
//! `{"status":0,"msg":"","r_attrs":{}}`, with no authentication, parsing or decision,
//! so its throughput is what HTTP on this machine can do; the policy server's figure
//! is compared with it in the same run.
//!
//! ```sh
//! cargo run --release -p portcullis-daemon --example policy_constant -- 127.0.0.1:0
//! ```
//!
//! It says on stderr where it listens, and runs until killed.

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::any;

async fn constant(_body: Bytes) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":0,"msg":"","r_attrs":{}}"#,
    )
}

fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        eprintln!("policy_constant on http://{}", listener.local_addr()?);
        let app = Router::new().fallback(any(constant));
        portcullis_daemon::serve::serve(
            listener,
            app,
            portcullis_daemon::serve::Limits::default(),
            std::future::pending(),
        )
        .await;
        Ok(())
    })
}
