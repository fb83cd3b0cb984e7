//! Portcullis' live protection daemon (`portcullis run`): log sources feed the
//! detection engine; its findings become bans (nftables), account locks, webhooks and
//! programs; an admin API, a report endpoint and Prometheus metrics serve operators and
//! applications; state survives restarts.
//!
//! What it is for: running unattended on a mail server, with every queue bounded,
//! every loss counted, and nothing lost or repeated across a crash.
//!
//! What it is not for: detection logic (the pure engine in `portcullis-core`), parsing
//! (`portcullis-parse`), reading logs (`portcullis-sources`), storage and firewall
//! details (`portcullis-store`, `portcullis-actions`). This crate wires them together
//! and decides what to do with verdicts.
//!
//! # Layout
//!
//! - [`config`]: `portcullis.toml`, every key with a default (docs/configuration.md).
//! - [`daemon`]: the wiring, the engine thread, snapshots, signals.
//! - [`decide`]: bans (escalation, networks, allowlist) and locks from findings.
//! - [`http`]: admin API, `POST /v1/events`, `/metrics`, `/healthz`.
//! - [`reported`]: reading reported events.
//! - [`policy`]: the policy server (Dovecot, Weakforced clients, `/v1/allow`) and
//!   lockdown, around the pure `portcullis-policy`.
//! - [`metrics`]: counters and their Prometheus text.
//! - [`serve`]: the bounded HTTP server loop (also used by `breach serve`).
//! - [`writer`]: the store writer thread: decisions and snapshots, off the engine thread.
#![deny(missing_docs)]

pub mod config;
pub mod daemon;
pub mod decide;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod reported;
pub mod serve;
pub mod writer;

pub use config::Config;
pub use daemon::{RunOptions, cleanup, run};
