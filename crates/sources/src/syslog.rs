//! syslog.
