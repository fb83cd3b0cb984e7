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
        Some(portcullis_parse::InputFormat::Evtx) | None => Err(serde::de::Error::custom(format!(
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
        assert!(e.to_string().contains("evtx"), "{e}");
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
