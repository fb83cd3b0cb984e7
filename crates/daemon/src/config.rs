//! `portcullis.toml`: the daemon's configuration, every key with a default.
//!
//! docs/configuration.md documents each key; `portcullis check-config` loads a file
//! through [`Config::load`] and reports the first problem with its key. Unknown keys are
//! errors (a misspelt `allowlist` must not silently allow nothing).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use jiff::{Span, SpanRelativeTo};
use portcullis_core::engine::EngineConfig;
use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where state lives, dry-run, queues.
    pub daemon: DaemonConfig,
    /// What is read.
    pub sources: SourcesConfig,
    /// How log lines are read (time zone, account names).
    pub parse: ParseSettings,
    /// The detection thresholds (the same keys as `portcullis analyze --config`).
    pub engine: EngineConfig,
    /// When and how long to ban.
    pub bans: BanConfig,
    /// When to lock accounts.
    pub locks: LockConfig,
    /// The firewall.
    pub firewall: FirewallConfig,
    /// Webhooks and programs to run on decisions.
    pub actions: ActionsConfig,
    /// The admin API, the report endpoint and metrics.
    pub http: HttpConfig,
    /// The policy server (Dovecot, Weakforced clients, `/v1/allow`).
    pub policy: PolicySettings,
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// The state directory: the store (`state.redb`) lives here.
    pub state_dir: PathBuf,
    /// Record and report decisions without touching the firewall or running actions.
    pub dry_run: bool,
    /// How often the engine's state and the file positions are saved together.
    #[serde(deserialize_with = "duration")]
    pub snapshot_interval: Duration,
    /// Capacity of the queue of syslog and journal lines waiting for the engine. These
    /// sources cannot wait (a UDP sender does not), so it must hold what arrives while
    /// the engine pauses to serialise a snapshot; files and reported events have queues
    /// of their own that wait or answer 503 instead.
    pub queue: usize,
    /// How far event time may lag the wall clock before the engine is told that time
    /// has moved on (the watermark) while sources are quiet.
    #[serde(deserialize_with = "duration")]
    pub watermark_lag: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/portcullis"),
            dry_run: false,
            snapshot_interval: Duration::from_secs(30),
            queue: 262_144,
            watermark_lag: Duration::from_secs(10),
        }
    }
}

/// `[sources]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// `[sources.files]`.
    pub files: FilesConfig,
    /// `[sources.syslog]`.
    pub syslog: SyslogSettings,
    /// `[sources.journald]`.
    pub journald: JournaldSettings,
}

/// `[sources.files]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Glob patterns of log files to follow.
    pub include: Vec<String>,
    /// Where files found at the very first start begin: `end` or `beginning`.
    pub start_at: StartAt,
    /// How often files are checked for growth.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// How often the patterns are expanded again.
    #[serde(deserialize_with = "duration")]
    pub glob_interval: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        // The tailer's own defaults, stated once in portcullis-sources.
        let tail = portcullis_sources::file::FileConfig::default();
        Self {
            include: Vec::new(),
            start_at: StartAt::End,
            poll_interval: tail.poll_interval,
            glob_interval: tail.glob_interval,
        }
    }
}

/// Where files seen at the first start begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Only what is written from now on.
    #[default]
    End,
    /// Their whole content.
    Beginning,
}

/// `[sources.syslog]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogSettings {
    /// UDP address to receive on (none by default).
    pub udp: Option<SocketAddr>,
    /// TCP address to accept on (none by default).
    pub tcp: Option<SocketAddr>,
    /// Longest message, bytes.
    pub max_message: usize,
    /// Most TCP connections at once.
    pub max_connections: usize,
    /// Receive buffer asked for the UDP socket, bytes (0: the kernel's default); the
    /// kernel grants at most `net.core.rmem_max`.
    pub udp_receive_buffer: usize,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        // The receiver's own defaults, stated once in portcullis-sources.
        let rx = portcullis_sources::syslog::SyslogConfig::default();
        Self {
            udp: None,
            tcp: None,
            max_message: rx.max_message,
            max_connections: rx.max_connections,
            udp_receive_buffer: 8 * 1024 * 1024,
        }
    }
}

/// `[sources.journald]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournaldSettings {
    /// Run `journalctl -f -o json`.
    pub enabled: bool,
    /// The program.
    pub program: PathBuf,
    /// Extra arguments (`--unit=dovecot`, ...).
    pub args: Vec<String>,
}

impl Default for JournaldSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            program: PathBuf::from("journalctl"),
            args: Vec::new(),
        }
    }
}

/// `[parse]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParseSettings {
    /// Time zone of stamps without an offset (IANA name); default: the system's.
    pub timezone: Option<String>,
    /// How user names become accounts.
    pub accounts: portcullis_core::AccountRules,
    /// The format of the followed files: `auto` (from each file's first line),
    /// `syslog`, `w3c`, `json`, `entra`, `windows`, `keycloak`. Syslog and journald
    /// input is always read as syslog lines.
    #[serde(deserialize_with = "input_format")]
    pub format: portcullis_parse::InputFormat,
    /// Load balancers whose `X-Forwarded-For` is believed in W3C logs.
    pub trusted_proxies: Vec<IpNet>,
    /// Custom JSON mappings (`[[parse.json_formats]]`), checked at load.
    pub json_formats: Vec<portcullis_parse::CustomJsonSpec>,
    /// Custom rules for formats without a built-in parser (`[[parse.rules]]`).
    pub rules: Vec<portcullis_parse::RuleConfig>,
}

fn input_format<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<portcullis_parse::InputFormat, D::Error> {
    let name = String::deserialize(d)?;
    match portcullis_parse::InputFormat::from_name(&name) {
        Some(portcullis_parse::InputFormat::Evtx) => Err(serde::de::Error::custom(
            "\"evtx\" is not a format a followed file can have: Windows rewrites .evtx files in place, they are not appended lines; forward the events as JSON (winlogbeat, NXLog) and read them with format = \"windows\", or read .evtx files with `portcullis analyze`",
        )),
        None => Err(serde::de::Error::custom(format!(
            "{name:?} is not a format a followed file can have (auto, syslog, w3c, json, entra, windows, keycloak)"
        ))),
        Some(f) => Ok(f),
    }
}

/// `[bans]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BanConfig {
    /// The first ban of an address or network.
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
    /// Each further ban of the same network lasts this many times longer ...
    pub escalation: f64,
    /// ... up to this.
    #[serde(deserialize_with = "duration")]
    pub max_duration: Duration,
    /// An IPv4 /`prefix_v4` is banned whole once this many of its addresses are.
    pub prefix_v4: u8,
    /// The same for IPv6.
    pub prefix_v6: u8,
    /// How many banned addresses make a network banned (0: never ban networks for this).
    pub prefix_members: usize,
    /// Networks never banned: the organisation's offices, VPN, monitoring. Empty by
    /// default: fill it in.
    pub allowlist: Vec<IpNet>,
    /// Most bans held at once; beyond it new bans are refused and counted.
    pub max_bans: usize,
}

impl Default for BanConfig {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(3600),
            escalation: 4.0,
            max_duration: Duration::from_secs(7 * 86_400),
            prefix_v4: 24,
            prefix_v6: 64,
            prefix_members: 3,
            allowlist: Vec::new(),
            max_bans: 1_000_000,
        }
    }
}

/// `[locks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockConfig {
    /// Lock an account when an attacker logged in to it (the lock is recorded, sent to
    /// the actions, and enforced by the policy server).
    pub compromised: bool,
    /// How long.
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            compromised: true,
            duration: Duration::from_secs(86_400),
        }
    }
}

/// `[firewall]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallConfig {
    /// `none` (the default: the firewall is never touched) or `nftables`.
    pub backend: FirewallBackend,
    /// The `nft` command, with any prefix (`["ip", "netns", "exec", "x", "nft"]`).
    pub command: Vec<String>,
    /// The nftables table (family `inet`).
    pub table: String,
    /// How often the firewall is reconciled with the stored bans.
    #[serde(deserialize_with = "duration")]
    pub reconcile_interval: Duration,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            backend: FirewallBackend::None,
            command: vec!["nft".into()],
            table: "portcullis".into(),
            reconcile_interval: Duration::from_secs(300),
        }
    }
}

/// Which firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirewallBackend {
    /// None: bans are recorded and sent to actions only.
    #[default]
    None,
    /// nftables sets with timeouts.
    Nftables,
}

/// `[actions]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// `[[actions.webhook]]`.
    pub webhook: Vec<WebhookSettings>,
    /// `[[actions.exec]]`.
    pub exec: Vec<ExecSettings>,
}

/// One webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where to POST.
    pub url: String,
    /// A file holding the HMAC key (the signature header is sent only with one).
    pub secret_file: Option<PathBuf>,
    /// Attempts before giving up.
    #[serde(default = "five")]
    pub max_attempts: u32,
}

fn five() -> u32 {
    5
}

/// One program to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSettings {
    /// Program and arguments, with placeholders (`{address}`, `{prefix}`, `{account}`,
    /// `{action}`, `{kind}`, `{reason}`, `{duration}`, `{time}`). No shell.
    pub argv: Vec<String>,
    /// Kill it after this long.
    #[serde(default = "ten_secs", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn ten_secs() -> Duration {
    Duration::from_secs(10)
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the admin API, `/v1/events`, `/metrics` and `/healthz` listen.
    /// Loopback by default; `"off"` serves nothing.
    #[serde(deserialize_with = "listen")]
    pub listen: Option<SocketAddr>,
    /// A file holding the admin bearer token (required for the admin API).
    pub token_file: Option<PathBuf>,
    /// A file holding the token applications use for `POST /v1/events` (default: the
    /// admin token).
    pub report_token_file: Option<PathBuf>,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Most connections at once.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9470))),
            token_file: None,
            report_token_file: None,
            max_body: 1 << 20,
            max_connections: 1024,
        }
    }
}

/// Reads `"off"` as no address.
/// `[policy]`: the policy server, asked before every login (docs/policy.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Where the policy listener listens; off unless set.
    #[serde(deserialize_with = "listen")]
    pub listen: Option<SocketAddr>,
    /// The shared secret clients prove: the password of HTTP Basic auth (any user
    /// name), an `X-API-Key` header, or a bearer token. Without it, no check (loopback
    /// only, then).
    pub secret_file: Option<PathBuf>,
    /// The longest a decision may take before the fallback answer is given.
    #[serde(deserialize_with = "duration")]
    pub budget: Duration,
    /// The answer when the budget runs out: `allow` or `reject`.
    pub fallback: Fallback,
    /// Whether reported logins also go to the detection engine as events. Turn off when
    /// the same logins are read from the server's logs too.
    pub report_to_engine: bool,
    /// Connections served at once.
    pub max_connections: usize,
    /// Unfamiliar failures before an account is locked for unfamiliar places.
    pub lockout_threshold: u16,
    /// Failures from familiar places before it is locked for those too.
    pub familiar_threshold: u16,
    /// The first lockout.
    #[serde(deserialize_with = "duration")]
    pub lockout_duration: Duration,
    /// Each further lockout lasts this many times the one before.
    pub lockout_escalation: f64,
    /// The longest lockout.
    #[serde(deserialize_with = "duration")]
    pub lockout_max_duration: Duration,
    /// Failure counters and escalation are forgotten after this long without a failure.
    #[serde(deserialize_with = "duration")]
    pub lockout_reset: Duration,
    /// A place stays familiar this long after the account's last success there.
    #[serde(deserialize_with = "duration")]
    pub familiar_for: Duration,
    /// The network of a familiar IPv4 address.
    pub familiar_prefix_v4: u8,
    /// The network of a familiar IPv6 address.
    pub familiar_prefix_v6: u8,
    /// Counted failures from one source before it is slowed down (0: never).
    pub tarpit_after: u16,
    /// The first delay.
    #[serde(deserialize_with = "duration")]
    pub tarpit: Duration,
    /// The longest delay.
    #[serde(deserialize_with = "duration")]
    pub tarpit_max: Duration,
    /// Distinct accounts one source failed on before its unfamiliar attempts are
    /// refused (0: never).
    pub source_accounts: u16,
    /// How long a source's failures count.
    #[serde(deserialize_with = "duration")]
    pub source_window: Duration,
    /// Distinct accounts one password fingerprint failed on before it is refused on
    /// unfamiliar attempts (0: never).
    pub fingerprint_accounts: u16,
    /// How long a fingerprint's failures count.
    #[serde(deserialize_with = "duration")]
    pub fingerprint_window: Duration,
    /// Accounts tracked at most.
    pub max_accounts: usize,
    /// Sources tracked at most.
    pub max_sources: usize,
    /// Password fingerprints tracked at most.
    pub max_fingerprints: usize,
    /// Lockdown on by itself when the engine finds a distributed campaign.
    pub lockdown_auto: bool,
    /// How long an automatic lockdown lasts after the last distributed campaign found.
    #[serde(deserialize_with = "duration")]
    pub lockdown_auto_duration: Duration,
}

/// The answer when the budget runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Let the login go ahead (the server still checks the password).
    #[default]
    Allow,
    /// Refuse it.
    Reject,
}

impl Default for PolicySettings {
    fn default() -> Self {
        let r = portcullis_policy::Rules::default();
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Self {
            listen: None,
            secret_file: None,
            budget: Duration::from_millis(50),
            fallback: Fallback::Allow,
            report_to_engine: true,
            max_connections: 4096,
            lockout_threshold: r.lockout_threshold,
            familiar_threshold: r.familiar_threshold,
            lockout_duration: secs(r.lockout_secs),
            lockout_escalation: r.lockout_escalation,
            lockout_max_duration: secs(r.lockout_max_secs),
            lockout_reset: secs(r.lockout_reset_secs),
            familiar_for: secs(r.familiar_secs),
            familiar_prefix_v4: r.prefix_v4,
            familiar_prefix_v6: r.prefix_v6,
            tarpit_after: r.tarpit_after,
            tarpit: secs(r.tarpit_secs),
            tarpit_max: secs(r.tarpit_max_secs),
            source_accounts: r.source_accounts,
            source_window: secs(r.source_window_secs),
            fingerprint_accounts: r.fingerprint_accounts,
            fingerprint_window: secs(r.fingerprint_window_secs),
            max_accounts: r.max_accounts,
            max_sources: r.max_sources,
            max_fingerprints: r.max_fingerprints,
            lockdown_auto: true,
            lockdown_auto_duration: Duration::from_secs(3600),
        }
    }
}

impl PolicySettings {
    /// The policy's rules.
    pub fn rules(&self) -> portcullis_policy::Rules {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        portcullis_policy::Rules {
            lockout_threshold: self.lockout_threshold,
            familiar_threshold: self.familiar_threshold,
            lockout_secs: secs(self.lockout_duration),
            lockout_escalation: self.lockout_escalation,
            lockout_max_secs: secs(self.lockout_max_duration),
            lockout_reset_secs: secs(self.lockout_reset),
            familiar_secs: secs(self.familiar_for),
            prefix_v4: self.familiar_prefix_v4,
            prefix_v6: self.familiar_prefix_v6,
            tarpit_after: self.tarpit_after,
            tarpit_secs: secs(self.tarpit),
            tarpit_max_secs: secs(self.tarpit_max),
            source_accounts: self.source_accounts,
            source_window_secs: secs(self.source_window),
            fingerprint_accounts: self.fingerprint_accounts,
            fingerprint_window_secs: secs(self.fingerprint_window),
            max_accounts: self.max_accounts,
            max_sources: self.max_sources,
            max_fingerprints: self.max_fingerprints,
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.lockout_escalation >= 1.0 && self.lockout_escalation.is_finite()) {
            bail!("policy.lockout_escalation must be at least 1");
        }
        if self.lockout_duration.is_zero() || self.lockout_max_duration < self.lockout_duration {
            bail!(
                "policy.lockout_duration must be positive and at most policy.lockout_max_duration"
            );
        }
        if self.tarpit.is_zero() || self.tarpit_max < self.tarpit {
            bail!("policy.tarpit must be positive and at most policy.tarpit_max");
        }
        if !(8..=32).contains(&self.familiar_prefix_v4)
            || !(16..=128).contains(&self.familiar_prefix_v6)
        {
            bail!(
                "policy.familiar_prefix_v4 must be 8..=32 and policy.familiar_prefix_v6 16..=128"
            );
        }
        if self.budget.is_zero() || self.budget > Duration::from_secs(1) {
            bail!("policy.budget must be between 1ms and 1s (Dovecot gives up after 2 s)");
        }
        if self.max_accounts == 0 || self.max_sources == 0 || self.max_fingerprints == 0 {
            bail!("policy.max_accounts, max_sources and max_fingerprints must be positive");
        }
        if let Some(f) = &self.secret_file {
            read_secret(f).context("policy.secret_file")?;
        }
        Ok(())
    }
}

fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address and port like \"127.0.0.1:9470\", or \"off\""
        ))
    })
}

/// Reads durations as `"90s"`, `"1h 30m"`, `"7d"` (days of 24 hours).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// A duration in the friendly format (`"90s"`, `"1h 30m"`, `"7d"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: Span = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like \"90s\" or \"1h\": {e}"))?;
    let d = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("{text:?} is negative"))
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        config
            .check()
            .with_context(|| format!("{} is not valid", path.display()))?;
        Ok(config)
    }

    /// Checks what types cannot: ranges, files that must exist, combinations.
    pub fn check(&self) -> Result<()> {
        let b = &self.bans;
        if !(b.escalation >= 1.0 && b.escalation.is_finite()) {
            bail!("bans.escalation must be at least 1 (got {})", b.escalation);
        }
        if b.duration.is_zero() || b.max_duration < b.duration {
            bail!("bans.duration must be positive and at most bans.max_duration");
        }
        if !(8..=32).contains(&b.prefix_v4) || !(16..=128).contains(&b.prefix_v6) {
            bail!("bans.prefix_v4 must be 8..=32 and bans.prefix_v6 16..=128");
        }
        if self.daemon.queue == 0 || self.daemon.queue > 10_000_000 {
            bail!("daemon.queue must be between 1 and 10000000");
        }
        if self.sources.syslog.udp_receive_buffer > 1 << 30 {
            bail!("sources.syslog.udp_receive_buffer must be at most 1 GiB (1073741824)");
        }
        if self.daemon.snapshot_interval.is_zero() {
            bail!("daemon.snapshot_interval must be positive");
        }
        portcullis_parse::custom_json::compile(&self.parse.json_formats)?;
        portcullis_parse::Rules::new(&self.parse.rules)?;
        if let Some(tz) = &self.parse.timezone {
            jiff::tz::TimeZone::get(tz)
                .with_context(|| format!("parse.timezone {tz:?} is not a known time zone"))?;
        }
        for p in &self.sources.files.include {
            glob::Pattern::new(p)
                .with_context(|| format!("sources.files.include: {p:?} is not a valid pattern"))?;
        }
        if self.firewall.backend == FirewallBackend::Nftables && self.firewall.command.is_empty() {
            bail!("firewall.command must name the nft program");
        }
        for (i, w) in self.actions.webhook.iter().enumerate() {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                bail!("actions.webhook[{i}].url must be an http:// or https:// URL");
            }
            if let Some(f) = &w.secret_file {
                read_secret(f).with_context(|| format!("actions.webhook[{i}].secret_file"))?;
            }
        }
        for (i, x) in self.actions.exec.iter().enumerate() {
            if x.argv.is_empty() {
                bail!("actions.exec[{i}].argv must name a program");
            }
        }
        self.policy.check()?;
        if self.http.listen.is_some() {
            match &self.http.token_file {
                Some(f) => {
                    read_secret(f).context("http.token_file")?;
                }
                None => bail!(
                    "http.token_file is required when http.listen is set: the admin API needs a token"
                ),
            }
            if let Some(f) = &self.http.report_token_file {
                read_secret(f).context("http.report_token_file")?;
            }
        }
        Ok(())
    }
}

/// Reads a secret from a file: trimmed, at least 16 bytes, never printed.
pub fn read_secret(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let secret = text.trim().to_owned();
    if secret.len() < 16 {
        bail!(
            "{} holds fewer than 16 characters: use a long random token (openssl rand -hex 32)",
            path.display()
        );
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1y").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_key() {
        let e = toml::from_str::<Config>("[bans]\nallowlst = []\n").unwrap_err();
        assert!(e.to_string().contains("allowlst"), "{e}");
        let e = toml::from_str::<Config>("[bans]\nduration = \"forever\"\n").unwrap_err();
        assert!(e.to_string().contains("forever"), "{e}");
        let c: Config = toml::from_str("[http]\n").unwrap();
        let e = c.check().unwrap_err();
        assert!(e.to_string().contains("token_file"), "{e}");
        let mut c: Config = toml::from_str("[http]\nlisten = \"off\"\n").unwrap();
        assert_eq!(c.http.listen, None);
        c.check().unwrap();
        let e = toml::from_str::<Config>("[http]\nlisten = \"everywhere\"\n").unwrap_err();
        assert!(e.to_string().contains("everywhere"), "{e}");
        c.bans.escalation = 0.5;
        assert!(c.check().unwrap_err().to_string().contains("escalation"));
        let c: Config = toml::from_str(
            "[http]\nlisten = \"off\"\n[sources.syslog]\nudp_receive_buffer = 2147483648\n",
        )
        .unwrap();
        let e = c.check().unwrap_err();
        assert!(e.to_string().contains("udp_receive_buffer"), "{e}");
    }

    #[test]
    fn document_formats_are_checked_at_load() {
        let base = "[http]\nlisten = \"off\"\n[parse]\nformat = \"w3c\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n";
        let c: Config = toml::from_str(base).unwrap();
        assert_eq!(c.parse.format, portcullis_parse::InputFormat::W3c);
        c.check().unwrap();
        let e = toml::from_str::<Config>("[parse]\nformat = \"evtx\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("\"evtx\" is not a format a followed file can have"),
            "{e}"
        );
        let c: Config = toml::from_str(&format!(
            "{base}[[parse.json_formats]]\nname = \"portal\"\nuser = \"u\"\noutcome = \"r\"\noutcomes = {{ ok = \"fine\" }}\n"
        ))
        .unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("parse.json_formats \"portal\": outcomes"), "{e}");
    }

    #[test]
    fn parse_rules_are_checked_by_name() {
        let c: Config = toml::from_str(
            "[http]\nlisten = \"off\"\n[[parse.rules]]\nname = \"vpn\"\nregex = \"denied <USER> from <ADDR>\"\noutcome = \"failure\"\nreason = \"bad_password\"\nprogram = \"myvpn\"\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.parse.rules[0].program.as_deref(), Some("myvpn"));
        let c: Config = toml::from_str(
            "[http]\nlisten = \"off\"\n[[parse.rules]]\nname = \"vpn\"\nregex = \"denied from\"\noutcome = \"failure\"\n",
        )
        .unwrap();
        let e = c.check().unwrap_err();
        assert!(e.to_string().contains("parse rule \"vpn\""), "{e}");
        let e = toml::from_str::<Config>("[[parse.rules]]\nname = \"x\"\nregex = \"<ADDR>\"\noutcome = \"failure\"\nprogrm = \"y\"\n").unwrap_err();
        assert!(e.to_string().contains("progrm"), "{e}");
    }
}
