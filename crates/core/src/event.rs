//! One login attempt, normalised.
//!
//! Every parser produces [`Event`]s and everything downstream (the engine, `portcullis
//! events`, SIEM export) reads only them. The JSON form is the event contract of
//! DESIGN.md: stable field names, and a field that is not known is left out, never
//! invented (Postfix does not log the user of a failed SASL login, so such an event has
//! no `user`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// When an attempt happened: the instant, plus the UTC offset the log wrote it in, so
/// that reports can show times as the operator's own logs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTime {
    /// The instant.
    pub instant: Timestamp,
    /// The offset of the original stamp (or of the configured zone for stamps without
    /// one).
    pub offset: Offset,
}

impl EventTime {
    /// An instant shown in UTC.
    pub fn utc(instant: Timestamp) -> Self {
        Self {
            instant,
            offset: Offset::UTC,
        }
    }
}

impl PartialOrd for EventTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EventTime {
    /// Orders by instant alone; the offset is presentation.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.instant
            .cmp(&other.instant)
            .then(self.offset.seconds().cmp(&other.offset.seconds()))
    }
}

impl fmt::Display for EventTime {
    /// RFC 3339 with the original offset, e.g. `2017-06-23T09:14:05+01:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.instant.display_with_offset(self.offset))
    }
}

macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable lower-case name used in JSON, CSV and configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value with this stable name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

name_enum! {
    /// The program that logged the attempt.
    Service {
        /// Dovecot IMAP/POP3/ManageSieve/submission and its auth processes.
        Dovecot => "dovecot",
        /// Postfix smtpd SASL authentication.
        Postfix => "postfix",
        /// OpenSSH `sshd` / `sshd-session`.
        Sshd => "sshd",
        /// An application that reported the attempt itself (`POST /v1/events`).
        Api => "api",
        /// A record read through a custom JSON mapping, or a line matched by a custom
        /// rule, of the configuration.
        Custom => "custom",
        /// Microsoft Entra ID (Azure AD) sign-in logs.
        Entra => "entra",
        /// Exchange Server's web doors (OWA, ActiveSync, EWS, MAPI, ...) in IIS logs.
        Exchange => "exchange",
        /// Another site's IIS W3C log (HTTP authentication that is not Exchange's).
        Iis => "iis",
        /// Keycloak login events.
        Keycloak => "keycloak",
        /// Windows Security events (4624, 4625, 4771, 4776, 4740).
        Windows => "windows",
        /// OpenVPN server (`openvpn`, `ovpn-*`).
        Openvpn => "openvpn",
        /// nginx HTTP basic authentication (error log).
        Nginx => "nginx",
        /// Apache httpd basic and digest authentication (error log).
        Apache => "apache",
        /// Roundcube webmail.
        Roundcube => "roundcube",
        /// SOGo groupware.
        Sogo => "sogo",
        /// Exim SMTP AUTH.
        Exim => "exim",
        /// Courier IMAP/POP3 and ESMTP.
        Courier => "courier",
        /// Cyrus IMAP/POP3.
        Cyrus => "cyrus",
        /// `pam_unix` authentication failures of any other program.
        Pam => "pam",
        /// FreeRADIUS.
        Radius => "radius",
    }
}

impl Service {
    /// This service's bit in a set of services kept as a `u32` (see [`Service::set`]).
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The services of a set made of [`Service::bit`]s, in declaration order.
    pub fn set(bits: u32) -> impl Iterator<Item = Service> {
        Service::ALL
            .iter()
            .copied()
            .filter(move |s| bits & s.bit() != 0)
    }
}

// Sets of services are `u32` bit sets.
const _: () = assert!(Service::ALL.len() <= 32);

name_enum! {
    /// The protocol the client logged in with.
    Protocol {
        /// IMAP.
        Imap => "imap",
        /// POP3.
        Pop3 => "pop3",
        /// SMTP AUTH (including submission and smtps).
        Smtp => "smtp",
        /// ManageSieve.
        ManageSieve => "managesieve",
        /// LMTP.
        Lmtp => "lmtp",
        /// SSH.
        Ssh => "ssh",
        /// HTTP (webmail, API).
        Http => "http",
    }
}

name_enum! {
    /// Why a login failed.
    Reason {
        /// The account exists and the password (or key) was wrong.
        BadPassword => "bad_password",
        /// The account does not exist.
        UnknownAccount => "unknown_account",
        /// The account is locked.
        Locked => "locked",
        /// The account is disabled or not allowed to log in here.
        Disabled => "disabled",
        /// The password or account has expired.
        Expired => "expired",
        /// The client tried a plaintext mechanism the server refuses.
        PlaintextRefused => "plaintext_refused",
        /// The client began to authenticate and gave up, or was cut off, before a verdict.
        Aborted => "aborted",
        /// A failure whose reason the log does not tell.
        Other => "other",
    }
}

name_enum! {
    /// What stopped a login after its password was accepted. The attempt's outcome is
    /// then [`Outcome::Success`]: whoever sent it knows the password.
    SecondFactor {
        /// A second factor was demanded and not given (Entra 50074, 50076, 50079, 50158).
        Required => "required",
        /// The second factor was given and failed or was denied (Entra 500121).
        Failed => "failed",
    }
}

/// The verdict on an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The credentials were accepted.
    Success,
    /// The login failed, for this reason.
    Failure(Reason),
}

impl Outcome {
    /// `"success"` or `"failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure(_) => "failure",
        }
    }

    /// The failure reason, if this is a failure.
    pub fn reason(self) -> Option<Reason> {
        match self {
            Outcome::Success => None,
            Outcome::Failure(r) => Some(r),
        }
    }

    /// True for failures.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure(_))
    }
}

/// Where an event was read, for evidence: an operator must be able to open the log at
/// the line that made Portcullis decide.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The file name as given on the command line (`-` for standard input), if any.
    pub file: Option<Arc<str>>,
    /// 1-based line number within `file`.
    pub line: u64,
    /// Byte offset of the start of the line within the (decompressed) stream.
    pub offset: u64,
}

/// One login attempt (or several identical ones, see [`Event::attempts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened; `None` only for lines that carry no time at all.
    pub time: Option<EventTime>,
    /// The program that logged it.
    pub service: Service,
    /// The protocol, when the log tells.
    pub protocol: Option<Protocol>,
    /// The client's address, canonical (see [`crate::address`]).
    pub source: Option<IpAddr>,
    /// The client's host name, when the server logged a name instead of an address.
    pub source_name: Option<String>,
    /// The client's port, when logged.
    pub port: Option<u16>,
    /// The user name exactly as logged (attacker-controlled text: data, never parsed).
    pub user: Option<String>,
    /// The canonical account name (see [`crate::account`]).
    pub account: Option<String>,
    /// Success or failure with a reason.
    pub outcome: Outcome,
    /// For a success: the password was right but a second factor then stopped the
    /// login (`None`: no second factor was asked for, or the log does not tell).
    pub second_factor: Option<SecondFactor>,
    /// How many attempts this event stands for (`auth failed, 3 attempts`); at least 1.
    pub attempts: u32,
    /// The server's session or connection id, when logged.
    pub session: Option<String>,
    /// The host that logged the line.
    pub host: Option<String>,
    /// Where it was read.
    pub origin: Origin,
}

impl Event {
    /// A new event with only the mandatory parts set; parsers fill in the rest.
    pub fn new(service: Service, outcome: Outcome) -> Self {
        Self {
            time: None,
            service,
            protocol: None,
            source: None,
            source_name: None,
            port: None,
            user: None,
            account: None,
            outcome,
            second_factor: None,
            attempts: 1,
            session: None,
            host: None,
            origin: Origin::default(),
        }
    }
}

impl Serialize for Event {
    /// The event contract of DESIGN.md, fields in contract order, unknown fields omitted.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(t) = &self.time {
            m.serialize_entry("time", &t.to_string())?;
        }
        m.serialize_entry("service", &self.service)?;
        if let Some(p) = self.protocol {
            m.serialize_entry("protocol", &p)?;
        }
        if let Some(a) = &self.source {
            m.serialize_entry("source", &a.to_string())?;
        }
        if let Some(n) = &self.source_name {
            m.serialize_entry("source_name", n)?;
        }
        if let Some(p) = self.port {
            m.serialize_entry("port", &p)?;
        }
        if let Some(u) = &self.user {
            m.serialize_entry("user", u)?;
        }
        if let Some(a) = &self.account {
            m.serialize_entry("account", a)?;
        }
        m.serialize_entry("outcome", self.outcome.as_str())?;
        if let Some(r) = self.outcome.reason() {
            m.serialize_entry("reason", &r)?;
        }
        if let Some(f) = self.second_factor {
            m.serialize_entry("second_factor", &f)?;
        }
        m.serialize_entry("attempts", &self.attempts)?;
        if let Some(sid) = &self.session {
            m.serialize_entry("session", sid)?;
        }
        if let Some(h) = &self.host {
            m.serialize_entry("host", h)?;
        }
        if let Some(f) = &self.origin.file {
            m.serialize_entry("file", &**f)?;
        }
        m.serialize_entry("line", &self.origin.line)?;
        m.serialize_entry("offset", &self.origin.offset)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_follows_the_contract() {
        let mut e = Event::new(Service::Dovecot, Outcome::Failure(Reason::BadPassword));
        e.time = Some(EventTime {
            instant: "2017-06-23T08:14:05Z".parse().unwrap(),
            offset: Offset::constant(1),
        });
        e.protocol = Some(Protocol::Imap);
        e.source = Some("203.0.113.7".parse().unwrap());
        e.port = Some(51234);
        e.user = Some("J.Smith@parliament.example".into());
        e.account = Some("j.smith@parliament.example".into());
        e.session = Some("Ab3dEf9GhIjK".into());
        e.host = Some("mail01".into());
        e.origin = Origin {
            file: Some("mail.log".into()),
            line: 1042,
            offset: 98211,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2017-06-23T09:14:05+01:00","service":"dovecot","protocol":"imap","source":"203.0.113.7","port":51234,"user":"J.Smith@parliament.example","account":"j.smith@parliament.example","outcome":"failure","reason":"bad_password","attempts":1,"session":"Ab3dEf9GhIjK","host":"mail01","file":"mail.log","line":1042,"offset":98211}"#
        );
    }

    #[test]
    fn a_second_factor_follows_the_outcome() {
        let mut e = Event::new(Service::Entra, Outcome::Success);
        e.second_factor = Some(SecondFactor::Required);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"service":"entra","outcome":"success","second_factor":"required","attempts":1,"line":0,"offset":0}"#
        );
    }

    #[test]
    fn unknown_fields_are_omitted() {
        let e = Event::new(Service::Postfix, Outcome::Success);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"service":"postfix","outcome":"success","attempts":1,"line":0,"offset":0}"#
        );
    }

    #[test]
    fn names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_name(r.as_str()), Some(*r));
        }
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_name(p.as_str()), Some(*p));
        }
        for s in Service::ALL {
            assert_eq!(Service::from_name(s.as_str()), Some(*s));
        }
        for f in SecondFactor::ALL {
            assert_eq!(SecondFactor::from_name(f.as_str()), Some(*f));
        }
    }
}
