//! `portcullis run`, `portcullis check-config`, and the admin client
//! (`portcullis status|ban|unban|unlock|lockdown`) for a running daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use portcullis_daemon::Config;
use serde_json::{Value, json};

/// `portcullis run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  portcullis run -c /etc/portcullis/portcullis.toml
  portcullis run -c portcullis.toml --cleanup     # remove the nftables table and exit

Reloads its configuration on SIGHUP; stops cleanly on SIGTERM. See docs/daemon.md.")]
pub struct RunArgs {
    /// The configuration file (docs/configuration.md).
    #[arg(short, long, default_value = "/etc/portcullis/portcullis.toml")]
    pub config: PathBuf,
    /// Remove the firewall table Portcullis created, then exit.
    #[arg(long)]
    pub cleanup: bool,
}

/// `portcullis check-config`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  portcullis check-config -c /etc/portcullis/portcullis.toml")]
pub struct CheckConfigArgs {
    /// The configuration file.
    #[arg(short, long, default_value = "/etc/portcullis/portcullis.toml")]
    pub config: PathBuf,
}

/// Where the daemon is and how to prove who we are.
#[derive(Debug, Args)]
pub struct Client {
    /// The daemon's configuration (for `http.listen` and `http.token_file`).
    #[arg(short, long, default_value = "/etc/portcullis/portcullis.toml")]
    pub config: PathBuf,
    /// The admin API's URL, instead of the configuration's `http.listen`.
    #[arg(long)]
    pub url: Option<String>,
    /// A file holding the admin token, instead of the configuration's `http.token_file`.
    /// (`PORTCULLIS_TOKEN` in the environment also works.)
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print the daemon's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `portcullis status`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  portcullis status -c /etc/portcullis/portcullis.toml")]
pub struct StatusArgs {
    #[command(flatten)]
    client: Client,
}

/// `portcullis ban`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  portcullis ban 203.0.113.7
  portcullis ban 198.51.100.0/24 --duration 1d --reason 'spray from this network'")]
pub struct BanArgs {
    /// An address or a network.
    network: String,
    /// How long (default: bans.duration).
    #[arg(long)]
    duration: Option<String>,
    /// Why (recorded, sent to webhooks).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    client: Client,
}

/// `portcullis unban`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  portcullis unban 203.0.113.7")]
pub struct UnbanArgs {
    /// The address or network banned.
    network: String,
    #[command(flatten)]
    client: Client,
}

/// `portcullis unlock`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  portcullis unlock j.smith@example.org")]
pub struct UnlockArgs {
    /// The account.
    account: String,
    #[command(flatten)]
    client: Client,
}

/// `portcullis lockdown`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  portcullis lockdown on                  # until switched off
  portcullis lockdown on --duration 4h
  portcullis lockdown off
  portcullis lockdown status

In lockdown the policy server lets in only familiar places (networks and devices an
account logged in from before) and allowlisted networks. See docs/policy.md.")]
pub struct LockdownArgs {
    /// `on`, `off` or `status`.
    #[arg(value_parser = ["on", "off", "status"])]
    state: String,
    /// With `on`: how long (default: until switched off).
    #[arg(long)]
    duration: Option<String>,
    #[command(flatten)]
    client: Client,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    if args.cleanup {
        let config = Config::load(&args.config)?;
        portcullis_daemon::cleanup(&config)?;
    } else {
        portcullis_daemon::run(&portcullis_daemon::RunOptions {
            config: args.config.clone(),
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check_config(args: &CheckConfigArgs) -> Result<ExitCode> {
    let c = Config::load(&args.config)?;
    println!(
        "{}: valid. {} file pattern(s), syslog {}, journald {}, firewall {}, {} webhook(s), {} program(s), admin API {}, policy server {}{}",
        args.config.display(),
        c.sources.files.include.len(),
        match (c.sources.syslog.udp, c.sources.syslog.tcp) {
            (None, None) => "off".to_string(),
            (u, t) => format!(
                "{}{}",
                u.map(|a| format!("udp {a} ")).unwrap_or_default(),
                t.map(|a| format!("tcp {a}")).unwrap_or_default()
            )
            .trim()
            .to_string(),
        },
        if c.sources.journald.enabled {
            "on"
        } else {
            "off"
        },
        match c.firewall.backend {
            portcullis_daemon::config::FirewallBackend::None => "none (bans are recorded only)",
            portcullis_daemon::config::FirewallBackend::Nftables => "nftables",
        },
        c.actions.webhook.len(),
        c.actions.exec.len(),
        c.http
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        c.policy
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        if c.daemon.dry_run { "; DRY RUN" } else { "" },
    );
    if c.bans.allowlist.is_empty() {
        eprintln!(
            "portcullis: note: bans.allowlist is empty: list your offices, VPN and monitoring networks so they are never banned"
        );
    }
    Ok(ExitCode::SUCCESS)
}

impl Client {
    /// The base URL and the token.
    fn target(&self) -> Result<(String, String)> {
        let config = if self.url.is_none() || self.token_file.is_none() {
            Some(Config::load(&self.config)?)
        } else {
            None
        };
        let url = match (&self.url, &config) {
            (Some(u), _) => u.trim_end_matches('/').to_owned(),
            (None, Some(c)) => match c.http.listen {
                Some(a) => format!("http://{a}"),
                None => bail!(
                    "{}: http.listen is not set: the daemon serves no admin API",
                    self.config.display()
                ),
            },
            (None, None) => unreachable!("config loaded when no URL is given"),
        };
        let token = if let Ok(t) = std::env::var("PORTCULLIS_TOKEN") {
            t
        } else {
            let file =
                match (&self.token_file, &config) {
                    (Some(f), _) => f.clone(),
                    (None, Some(c)) => c.http.token_file.clone().context(
                        "no token: set http.token_file, --token-file or PORTCULLIS_TOKEN",
                    )?,
                    (None, None) => unreachable!(),
                };
            portcullis_daemon::config::read_secret(&file)?
        };
        Ok((url, token))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let (url, token) = self.target()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let full = format!("{url}{path}");
        let auth = format!("Bearer {token}");
        let resp = match (method, body) {
            ("GET", _) => agent.get(&full).header("Authorization", &auth).call(),
            ("DELETE", _) => agent.delete(&full).header("Authorization", &auth).call(),
            (_, Some(b)) => agent
                .post(&full)
                .header("Authorization", &auth)
                .content_type("application/json")
                .send(b.to_string().as_bytes()),
            (_, None) => agent
                .post(&full)
                .header("Authorization", &auth)
                .send_empty(),
        }
        .with_context(|| format!("cannot reach the daemon at {url}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .context("cannot read the daemon's answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !(200..300).contains(&status) {
            let msg = value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!("the daemon answered {status}: {msg}");
        }
        Ok(value)
    }
}

/// Percent-encodes a query value (addresses, networks and account names).
fn query(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn print(json_out: bool, v: &Value, text: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("{}", text(v));
    }
}

pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let c = &args.client;
    let s = c.call("GET", "/v1/status", None)?;
    let bans = c.call("GET", "/v1/bans", None)?;
    let locks = c.call("GET", "/v1/locks", None)?;
    let all = json!({"status": s, "bans": bans["bans"], "locks": locks["locks"]});
    print(c.json, &all, |v| {
        let s = &v["status"];
        let mut out = format!(
            "portcullis {} running since {}{}\n{} lines, {} events (event time {}), {} attackers found, {} accounts compromised, {} campaigns\n{} bans and {} locks in force; {} dropped",
            s["version"].as_str().unwrap_or("?"),
            s["started"].as_str().unwrap_or("?"),
            if s["dry_run"].as_bool() == Some(true) {
                " (dry run)"
            } else {
                ""
            },
            s["lines"],
            s["engine_events"],
            s["event_time"].as_str().unwrap_or("none yet"),
            s["attackers_found"],
            s["accounts_compromised"],
            s["campaigns"],
            s["bans_active"],
            s["locks_active"],
            s["dropped"],
        );
        for b in v["bans"].as_array().into_iter().flatten().take(20) {
            out.push_str(&format!(
                "\n  ban  {:<20} until {}  {}",
                b["net"].as_str().unwrap_or("?"),
                jiff::Timestamp::from_second(b["until"].as_i64().unwrap_or(0))
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                b["reason"].as_str().unwrap_or("")
            ));
        }
        for l in v["locks"].as_array().into_iter().flatten().take(20) {
            out.push_str(&format!(
                "\n  lock {:<20} {}",
                l["account"].as_str().unwrap_or("?"),
                l["reason"].as_str().unwrap_or("")
            ));
        }
        out
    });
    Ok(ExitCode::SUCCESS)
}

pub fn ban(args: &BanArgs) -> Result<ExitCode> {
    let mut body = json!({"network": args.network});
    if let Some(d) = &args.duration {
        body["duration"] = json!(d);
    }
    if let Some(r) = &args.reason {
        body["reason"] = json!(r);
    }
    let v = args.client.call("POST", "/v1/bans", Some(body))?;
    print(args.client.json, &v, |v| {
        format!(
            "banned {} for {} s",
            v["ban"]["net"].as_str().unwrap_or("?"),
            v["ban"]["until"].as_i64().unwrap_or(0) - v["ban"]["since"].as_i64().unwrap_or(0)
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn unban(args: &UnbanArgs) -> Result<ExitCode> {
    let v = args.client.call(
        "DELETE",
        &format!("/v1/bans?network={}", query(&args.network)),
        None,
    )?;
    print(args.client.json, &v, |v| {
        format!("unbanned {}", v["removed"]["net"].as_str().unwrap_or("?"))
    });
    Ok(ExitCode::SUCCESS)
}

pub fn unlock(args: &UnlockArgs) -> Result<ExitCode> {
    let v = args.client.call(
        "DELETE",
        &format!("/v1/locks?account={}", query(&args.account)),
        None,
    )?;
    print(args.client.json, &v, |v| {
        format!(
            "unlocked {}",
            v["unlocked"]["account"].as_str().unwrap_or("?")
        )
    });
    Ok(ExitCode::SUCCESS)
}

pub fn lockdown(args: &LockdownArgs) -> Result<ExitCode> {
    if args.duration.is_some() && args.state != "on" {
        bail!("--duration goes with `lockdown on`");
    }
    let v = match args.state.as_str() {
        "status" => args.client.call("GET", "/v1/lockdown", None)?,
        state => {
            let mut body = json!({"on": state == "on"});
            if let Some(d) = &args.duration {
                body["duration"] = json!(d);
            }
            args.client.call("POST", "/v1/lockdown", Some(body))?
        }
    };
    print(args.client.json, &v, |v| {
        if v["lockdown"].as_bool() != Some(true) {
            return "lockdown is off".to_string();
        }
        format!(
            "lockdown is on{} since {}, until {}",
            if v["automatic"].as_bool() == Some(true) {
                " (automatic: a distributed spray was found)"
            } else {
                ""
            },
            v["since"].as_str().unwrap_or("?"),
            v["until"].as_str().unwrap_or("switched off"),
        )
    });
    Ok(ExitCode::SUCCESS)
}
