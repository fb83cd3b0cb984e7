//! Portcullis' pure domain model.
//!
//! This crate holds what every other part of Portcullis agrees on: one login attempt as a
//! normalised [`Event`], the identities it names ([`address`] for the source,
//! [`account`] for the user) and, later, the detection engine that turns events into
//! findings.
//!
//! It is not for reading files, talking to the network or looking at the clock: it does
//! no I/O and never reads the wall clock, so that the same code drives live protection
//! and batch replays, and a test is a list of events.
//!
//! # Layout
//! - [`event`]: the normalised login attempt and its vocabulary (service, protocol,
//!   outcome, failure reason, origin).
//! - [`address`]: canonical source addresses (IPv4-mapped IPv6 folded to IPv4).
//! - [`engine`]: the detection engine: events in, verdicts and a report out.
//! - [`calendar`]: day counts to dates, for writing stamps fast.
//! - [`account`]: canonical account names (case folding, `user@domain`, `DOMAIN\user`).
//! - [`name_forms`]: notices one person under two names (`j.smith`, `j.smith@domain`).
//! - [`json`]: fast JSON for events, byte for byte what `serde_json` writes.
//! - [`report`]: the report contract (`analyze --format json`), read by `eval`.
#![deny(missing_docs)]

pub mod account;
pub mod address;
pub mod calendar;
pub mod engine;
pub mod event;
pub mod json;
pub mod name_forms;
pub mod report;

pub use account::AccountRules;
pub use event::{Event, EventTime, Origin, Outcome, Protocol, Reason, SecondFactor, Service};
