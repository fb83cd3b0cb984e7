//! journald.
