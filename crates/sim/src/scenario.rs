//! Scenario files: the organisation, its ordinary traffic, and the attacks.
//!
//! A scenario is TOML (see `scenarios/` and `docs/simulate.md` for every key). It is
//! read strictly: an unknown key or a value out of range is an error naming the key,
//! so a typo never silently becomes a default.

use std::collections::BTreeMap;
use std::fmt;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Deserializer};

/// The built-in scenarios, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "westminster",
        include_str!("../../../scenarios/westminster.toml"),
    ),
    (
        "small-office",
        include_str!("../../../scenarios/small-office.toml"),
    ),
    (
        "ssh-exposed",
        include_str!("../../../scenarios/ssh-exposed.toml"),
    ),
    ("slow-vip", include_str!("../../../scenarios/slow-vip.toml")),
    (
        "exchange-site",
        include_str!("../../../scenarios/exchange-site.toml"),
    ),
];

/// Why a scenario cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

fn bad(msg: impl Into<String>) -> ScenarioError {
    ScenarioError(msg.into())
}

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (`westminster`).
    pub name: String,
    /// What it simulates, for people.
    #[serde(default)]
    pub description: String,
    /// First instant, RFC 3339 with offset.
    #[serde(deserialize_with = "timestamp")]
    pub start: Timestamp,
    /// How many hours of traffic.
    pub hours: u32,
    /// The zone the servers log in (IANA name).
    pub time_zone: String,
    /// The organisation.
    pub organisation: Organisation,
    /// Its ordinary traffic.
    #[serde(default)]
    pub benign: Benign,
    /// What files to write.
    #[serde(default)]
    pub output: Output,
    /// The attacks, each a campaign.
    #[serde(default, rename = "attack")]
    pub attacks: Vec<Attack>,
}

/// The organisation being attacked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// Mail domain of the accounts.
    pub domain: String,
    /// Number of accounts.
    pub accounts: u32,
    /// Share of accounts whose password is on the attackers' short list of common
    /// passwords (these fall to a spray that reaches them).
    #[serde(default = "default_weak_share")]
    pub weak_share: f64,
    /// Very important accounts (targets of slow guessing); local parts.
    #[serde(default)]
    pub vip: Vec<String>,
    /// Accounts that also log in over SSH (administrators).
    #[serde(default)]
    pub ssh_users: u32,
    /// Share of accounts enrolled in a second factor at Entra ID: an attacker who
    /// guesses such a password is stopped by the second factor (Entra logs 50074).
    #[serde(default)]
    pub mfa_share: f64,
}

fn default_weak_share() -> f64 {
    0.01
}

/// The organisation's ordinary login traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Benign {
    /// Logins per account per average day, across all of a user's devices.
    pub logins_per_day: f64,
    /// Share of logins that are SMTP submission (sending mail).
    pub smtp_share: f64,
    /// Share of logins that are POP3.
    pub pop3_share: f64,
    /// Weights of the doors ordinary logins go through (`imap = 60, owa = 25, ...`);
    /// when set, replaces `smtp_share` and `pop3_share`. SSH stays for `ssh_users`.
    pub doors: Option<BTreeMap<Service, f64>>,
    /// Office NAT gateways: every office user shares these few addresses.
    pub office_gateways: u32,
    /// Share of working-hours logins that come from the office.
    pub office_share: f64,
    /// VPN gateways (shared like the office ones).
    pub vpn_gateways: u32,
    /// Share of logins outside the office that come through the VPN.
    pub vpn_share: f64,
    /// Mobile carriers' CGNAT pools.
    pub cgnat_pools: u32,
    /// Addresses per CGNAT pool (each shared by dozens of users).
    pub cgnat_pool_size: u32,
    /// Share of logins outside the office that come from a phone on a carrier.
    pub mobile_share: f64,
    /// Share of home addresses that are IPv6.
    pub ipv6_share: f64,
    /// Share of logins preceded by a mistyped password (one, sometimes two failures).
    pub typo_rate: f64,
    /// Devices still holding an old password, retrying for hours.
    pub stale_devices: u32,
    /// How often a stale device retries.
    #[serde(deserialize_with = "duration")]
    pub stale_retry: SignedDuration,
    /// How long a stale device keeps retrying before its owner fixes it.
    #[serde(deserialize_with = "duration")]
    pub stale_for: SignedDuration,
    /// Share of users travelling (logging in from hotel and roaming addresses).
    pub travellers: f64,
    /// A password-reset campaign: users change passwords and their other devices fail.
    pub reset: Option<Reset>,
    /// Mail deliveries per account per day (non-login noise lines in the mail log).
    pub deliveries_per_day: f64,
    /// Local working hours, start and end.
    pub working_hours: [u8; 2],
    /// Weekend traffic relative to a weekday.
    pub weekend_factor: f64,
}

impl Default for Benign {
    fn default() -> Self {
        Self {
            logins_per_day: 30.0,
            smtp_share: 0.15,
            pop3_share: 0.05,
            doors: None,
            office_gateways: 4,
            office_share: 0.7,
            vpn_gateways: 2,
            vpn_share: 0.2,
            cgnat_pools: 20,
            cgnat_pool_size: 8,
            mobile_share: 0.4,
            ipv6_share: 0.2,
            typo_rate: 0.02,
            stale_devices: 10,
            stale_retry: SignedDuration::from_mins(10),
            stale_for: SignedDuration::from_hours(8),
            travellers: 0.02,
            reset: None,
            deliveries_per_day: 20.0,
            working_hours: [8, 18],
            weekend_factor: 0.25,
        }
    }
}

/// A password-reset day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// When, from the scenario start.
    #[serde(deserialize_with = "duration")]
    pub at: SignedDuration,
    /// Share of users who change their password.
    pub share: f64,
}

/// Which log files to write and how to stamp them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    /// `mail` (Dovecot + Postfix, `mail.log`) and/or `ssh` (OpenSSH, `auth.log`).
    pub formats: Vec<Format>,
    /// Time stamps.
    pub stamp: StampStyle,
    /// The logging host's name.
    pub host: String,
}

impl Default for Output {
    fn default() -> Self {
        Self {
            formats: vec![Format::Mail],
            stamp: StampStyle::Rfc3164,
            host: "mail01".into(),
        }
    }
}

/// A log file format the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Dovecot and Postfix in one syslog file, with delivery noise.
    Mail,
    /// OpenSSH.
    Ssh,
    /// Exchange Server's IIS W3C log (OWA, ActiveSync).
    Exchange,
    /// Entra ID sign-ins, Graph `signIn` records as JSON lines.
    Entra,
    /// Windows Security events 4624/4625 as winlogbeat JSON lines.
    Windows,
    /// OpenVPN server in syslog.
    Openvpn,
    /// Keycloak login events as the admin REST API returns them, one JSON object a
    /// line.
    Keycloak,
    /// Exchange Server's IMAP4 protocol log (its front end).
    ExchangeImap,
}

impl Format {
    /// Every format, in file order.
    pub const ALL: [Format; 8] = [
        Format::Mail,
        Format::Ssh,
        Format::Exchange,
        Format::Entra,
        Format::Windows,
        Format::Openvpn,
        Format::Keycloak,
        Format::ExchangeImap,
    ];

    /// The file the format is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Mail => "mail.log",
            Format::Ssh => "auth.log",
            Format::Exchange => "u_ex.log",
            Format::Entra => "signins.jsonl",
            Format::Windows => "security.jsonl",
            Format::Openvpn => "openvpn.log",
            Format::Keycloak => "keycloak.jsonl",
            Format::ExchangeImap => "imap4.log",
        }
    }

    /// The scenario's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mail => "mail",
            Format::Ssh => "ssh",
            Format::Exchange => "exchange",
            Format::Entra => "entra",
            Format::Windows => "windows",
            Format::Openvpn => "openvpn",
            Format::Keycloak => "keycloak",
            Format::ExchangeImap => "exchange_imap",
        }
    }

    /// Its position in [`Format::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How lines are stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampStyle {
    /// `Jun 23 09:14:05` (year-less, local time).
    Rfc3164,
    /// `2017-06-23T09:14:05.123456+01:00` (rsyslog high precision).
    Iso8601,
}

/// The kind of an attack; names match the report contract's campaign kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// Many guesses against one or a few accounts.
    BruteForce,
    /// A few common passwords against many accounts.
    PasswordSpray,
    /// Leaked name/password pairs, many names not existing here.
    CredentialStuffing,
    /// Slow, distributed guessing on one account.
    Targeted,
}

impl AttackKind {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackKind::BruteForce => "brute_force",
            AttackKind::PasswordSpray => "password_spray",
            AttackKind::CredentialStuffing => "credential_stuffing",
            AttackKind::Targeted => "targeted",
        }
    }
}

/// One attack campaign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    /// What kind.
    pub kind: AttackKind,
    /// When it starts, from the scenario start.
    #[serde(deserialize_with = "duration")]
    pub start: SignedDuration,
    /// How long it runs, pauses included.
    #[serde(deserialize_with = "duration")]
    pub duration: SignedDuration,
    /// How many source addresses (for rotating IPv6 sources: how many /64s).
    pub sources: u32,
    /// Share of sources that are IPv6.
    #[serde(default)]
    pub ipv6_share: f64,
    /// IPv6 sources take a new address inside their /64 for every attempt.
    #[serde(default)]
    pub rotate_ipv6: bool,
    /// Accounts targeted (spray and stuffing; default: all for a spray).
    pub accounts: Option<u32>,
    /// Guesses per account (spray: how many common passwords it goes through).
    #[serde(default = "one")]
    pub passwords: u32,
    /// Total attempts (brute force and targeted).
    pub attempts: Option<u32>,
    /// Share of tried names that do not exist here.
    #[serde(default)]
    pub unknown_share: f64,
    /// Credential stuffing: share of existing names whose leaked password still works.
    #[serde(default)]
    pub success_share: f64,
    /// Brute force / targeted: the account's local part (`vip` = the first VIP).
    pub target: Option<String>,
    /// Quiet periods, from the attack's start.
    #[serde(default, rename = "pause")]
    pub pauses: Vec<Pause>,
    /// Protocols it logs in with.
    #[serde(default = "default_services")]
    pub services: Vec<Service>,
}

fn one() -> u32 {
    1
}

fn default_services() -> Vec<Service> {
    vec![Service::Imap]
}

/// A quiet period inside an attack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// From the attack's start.
    #[serde(deserialize_with = "duration")]
    pub at: SignedDuration,
    /// How long.
    #[serde(rename = "for", deserialize_with = "duration")]
    pub length: SignedDuration,
}

/// A door an attack (or a user) logs in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Dovecot IMAP.
    Imap,
    /// Dovecot POP3.
    Pop3,
    /// Postfix submission (SMTP AUTH).
    Smtp,
    /// OpenSSH.
    Ssh,
    /// Outlook on the web: Exchange's forms logon.
    Owa,
    /// Exchange ActiveSync (phones), HTTP Basic authentication.
    Activesync,
    /// Entra ID (Azure AD) cloud sign-in.
    Entra,
    /// OpenVPN with user name and password.
    Vpn,
    /// Remote Desktop to a Windows server (Security events 4624/4625).
    Rdp,
    /// Single sign-on through Keycloak (its login form).
    Sso,
    /// IMAP to Exchange Server (its IMAP4 service).
    ExchangeImap,
}

impl Service {
    /// The file format that carries it.
    pub fn format(self) -> Format {
        match self {
            Service::Imap | Service::Pop3 | Service::Smtp => Format::Mail,
            Service::Ssh => Format::Ssh,
            Service::Owa | Service::Activesync => Format::Exchange,
            Service::Entra => Format::Entra,
            Service::Vpn => Format::Openvpn,
            Service::Rdp => Format::Windows,
            Service::Sso => Format::Keycloak,
            Service::ExchangeImap => Format::ExchangeImap,
        }
    }

    /// The scenario's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Smtp => "smtp",
            Service::Ssh => "ssh",
            Service::Owa => "owa",
            Service::Activesync => "activesync",
            Service::Entra => "entra",
            Service::Vpn => "vpn",
            Service::Rdp => "rdp",
            Service::Sso => "sso",
            Service::ExchangeImap => "exchange_imap",
        }
    }
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|e| {
        serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time with an offset: {e}"))
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// `12h`, `30m`, `1h30m`, `90s`, `2d`.
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let d: SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration such as 30m, 12h or 1h30m: {e}"))?;
    if d.is_negative() {
        return Err(format!("{s:?}: a duration cannot be negative"));
    }
    Ok(d)
}

impl Scenario {
    /// Reads and checks a scenario.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_owned()))?;
        s.check()?;
        Ok(s)
    }

    /// A built-in scenario by name.
    pub fn built_in(name: &str) -> Result<Self, ScenarioError> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            bad(format!(
                "no built-in scenario {name:?} (there are: {})",
                names.join(", ")
            ))
        })?;
        Self::from_toml(text).map_err(|e| bad(format!("built-in scenario {name}: {e}")))
    }

    /// The zone lines are stamped in.
    pub fn zone(&self) -> Result<TimeZone, ScenarioError> {
        TimeZone::get(&self.time_zone)
            .map_err(|e| bad(format!("time_zone {:?}: {e}", self.time_zone)))
    }

    /// The start in the scenario's zone.
    pub fn start_zoned(&self) -> Result<Zoned, ScenarioError> {
        Ok(self.start.to_zoned(self.zone()?))
    }

    /// Checks every value, naming the key of the first one out of range.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(bad(format!("{name} must be between 0 and 1, not {v}")))
            }
        };
        self.zone()?;
        if self.hours == 0 || self.hours > 24 * 366 {
            return Err(bad(format!(
                "hours must be between 1 and 8784, not {}",
                self.hours
            )));
        }
        let o = &self.organisation;
        if o.accounts == 0 || o.accounts > 10_000_000 {
            return Err(bad(format!(
                "organisation.accounts must be between 1 and 10000000, not {}",
                o.accounts
            )));
        }
        if o.domain.is_empty() || o.domain.contains(['@', ' ']) {
            return Err(bad(format!(
                "organisation.domain {:?} is not a domain",
                o.domain
            )));
        }
        share("organisation.weak_share", o.weak_share)?;
        share("organisation.mfa_share", o.mfa_share)?;
        if o.ssh_users > o.accounts {
            return Err(bad(
                "organisation.ssh_users cannot exceed organisation.accounts",
            ));
        }
        let b = &self.benign;
        for (n, v) in [
            ("benign.smtp_share", b.smtp_share),
            ("benign.pop3_share", b.pop3_share),
            ("benign.office_share", b.office_share),
            ("benign.vpn_share", b.vpn_share),
            ("benign.mobile_share", b.mobile_share),
            ("benign.ipv6_share", b.ipv6_share),
            ("benign.typo_rate", b.typo_rate),
            ("benign.travellers", b.travellers),
            ("benign.weekend_factor", b.weekend_factor),
        ] {
            share(n, v)?;
        }
        if b.smtp_share + b.pop3_share > 1.0 {
            return Err(bad("benign.smtp_share + benign.pop3_share cannot exceed 1"));
        }
        if !(0.0..=100_000.0).contains(&b.logins_per_day)
            || !(0.0..=100_000.0).contains(&b.deliveries_per_day)
        {
            return Err(bad(
                "benign.logins_per_day and benign.deliveries_per_day must be between 0 and 100000",
            ));
        }
        if b.office_gateways == 0
            || b.vpn_gateways == 0
            || b.cgnat_pools == 0
            || b.cgnat_pool_size == 0
        {
            return Err(bad(
                "benign.office_gateways, vpn_gateways, cgnat_pools and cgnat_pool_size must be at least 1",
            ));
        }
        if b.stale_devices > o.accounts {
            return Err(bad(
                "benign.stale_devices cannot exceed organisation.accounts",
            ));
        }
        if b.stale_retry < SignedDuration::from_secs(10) {
            return Err(bad("benign.stale_retry must be at least 10s"));
        }
        let [h0, h1] = b.working_hours;
        if h0 >= h1 || h1 > 24 {
            return Err(bad(
                "benign.working_hours must be [start, end] with start < end <= 24",
            ));
        }
        if let Some(r) = &b.reset {
            share("benign.reset.share", r.share)?;
        }
        if self.output.formats.is_empty() {
            return Err(bad(
                "output.formats must name at least one of mail, ssh, exchange, entra, windows, openvpn, keycloak, exchange_imap",
            ));
        }
        if let Some(doors) = &b.doors {
            if doors.values().any(|w| !(w.is_finite() && *w >= 0.0))
                || doors.values().sum::<f64>() <= 0.0
            {
                return Err(bad(
                    "benign.doors: weights must be 0 or more, and not all 0",
                ));
            }
            for (s, w) in doors {
                if *s == Service::Ssh {
                    return Err(bad(
                        "benign.doors: ssh is for organisation.ssh_users, not a door weight",
                    ));
                }
                if *w > 0.0 && !self.output.formats.contains(&s.format()) {
                    return Err(bad(format!(
                        "benign.doors uses {} but output.formats does not include {}",
                        s.as_str(),
                        s.format().as_str()
                    )));
                }
            }
        } else if !self.output.formats.contains(&Format::Mail) {
            return Err(bad(
                "without benign.doors, ordinary logins go to mail: output.formats must include mail",
            ));
        }
        let span = SignedDuration::from_hours(i64::from(self.hours));
        for (i, a) in self.attacks.iter().enumerate() {
            let at = |m: &str| bad(format!("attack {} ({}): {m}", i + 1, a.kind.as_str()));
            if a.duration.is_zero() {
                return Err(at("duration must be more than 0"));
            }
            if a.start + a.duration > span {
                return Err(at(
                    "ends after the scenario does (start + duration > hours)",
                ));
            }
            if a.sources == 0 || a.sources > 10_000_000 {
                return Err(at("sources must be between 1 and 10000000"));
            }
            share("ipv6_share", a.ipv6_share).map_err(|e| at(&e.0))?;
            share("unknown_share", a.unknown_share).map_err(|e| at(&e.0))?;
            share("success_share", a.success_share).map_err(|e| at(&e.0))?;
            if a.passwords == 0 || a.passwords > 10_000 {
                return Err(at("passwords must be between 1 and 10000"));
            }
            if a.services.is_empty() {
                return Err(at(
                    "services must name at least one of imap, pop3, smtp, ssh, owa, activesync, entra, vpn, rdp",
                ));
            }
            for s in &a.services {
                if !self.output.formats.contains(&s.format()) {
                    return Err(at(&format!(
                        "uses {} but output.formats does not include {}",
                        s.as_str(),
                        s.format().as_str()
                    )));
                }
            }
            match a.kind {
                AttackKind::BruteForce | AttackKind::Targeted => {
                    if a.attempts.is_none_or(|n| n == 0 || n > 100_000_000) {
                        return Err(at("attempts (between 1 and 100000000) is required"));
                    }
                    if a.target.as_deref() == Some("vip") && o.vip.is_empty() {
                        return Err(at("target = \"vip\" but organisation.vip is empty"));
                    }
                }
                AttackKind::PasswordSpray | AttackKind::CredentialStuffing => {
                    if let Some(n) = a.accounts
                        && (n == 0 || n > 100_000_000)
                    {
                        return Err(at("accounts must be between 1 and 100000000"));
                    }
                }
            }
            let mut paused = SignedDuration::ZERO;
            for p in &a.pauses {
                if p.at + p.length > a.duration {
                    return Err(at("a pause ends after the attack does"));
                }
                paused += p.length;
            }
            if paused >= a.duration {
                return Err(at("pauses cover the whole attack"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_are_valid() {
        for (name, _) in BUILT_IN {
            Scenario::built_in(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(
            Scenario::built_in("nope")
                .unwrap_err()
                .0
                .contains("westminster")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let base = Scenario::BUILT_IN_SMALL;
        let e =
            Scenario::from_toml(&base.replace("hours = 12", "hours = 12\nhorus = 1")).unwrap_err();
        assert!(e.0.contains("horus"), "{e}");
        let e = Scenario::from_toml(&base.replace("weak_share = 0.02", "weak_share = 2.0"))
            .unwrap_err();
        assert!(e.0.contains("organisation.weak_share"), "{e}");
        let e = Scenario::from_toml(&base.replace("duration = \"6h\"", "duration = \"soon\""))
            .unwrap_err();
        assert!(e.0.contains("not a duration"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_duration("90s").unwrap(),
            SignedDuration::from_secs(90)
        );
        assert!(parse_duration("-5m").is_err());
    }

    impl Scenario {
        const BUILT_IN_SMALL: &'static str = include_str!("../../../scenarios/small-office.toml");
    }
}
