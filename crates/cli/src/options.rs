//! Options shared by every command that reads logs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::tz::{Offset, TimeZone};
use portcullis_core::AccountRules;
use portcullis_core::account::{DomainRule, WindowsDomainRule};
use portcullis_parse::InputFormat;
use portcullis_parse::custom_json::{self, CustomJson, CustomJsonSpec};
use portcullis_parse::{RuleConfig, Rules};

/// How to read time stamps and user names.
#[derive(Debug, Clone, Args)]
pub struct ReadOptions {
    /// Year of the first line for year-less syslog stamps (default: inferred from each
    /// file's modification time, so that no line lands in the future).
    #[arg(long, value_name = "YEAR", value_parser = clap::value_parser!(i16).range(1970..=9999))]
    pub year: Option<i16>,

    /// Time zone of stamps that carry no offset: an IANA name (`Europe/London`), `UTC`
    /// or a fixed offset (`+01:00`). Default: the system's.
    #[arg(long, value_name = "ZONE", allow_hyphen_values = true)]
    pub timezone: Option<String>,

    /// What to do with `@domain` in user names: `keep`, `strip`, or `default:DOMAIN`
    /// to add DOMAIN to names that have none.
    #[arg(long, value_name = "RULE", default_value = "keep")]
    pub domain: String,

    /// Keep `DOMAIN\user` names whole instead of dropping `DOMAIN\`.
    #[arg(long)]
    pub keep_windows_domain: bool,

    /// Compare account names case-sensitively (default: case-insensitive).
    #[arg(long)]
    pub case_sensitive: bool,

    /// Skip (and count) lines longer than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = portcullis_parse::reader::DEFAULT_MAX_LINE)]
    pub max_line: usize,

    /// The log format, for every file: auto (detected per file), syslog, w3c (IIS,
    /// Exchange), json (Entra, Windows, Keycloak and custom records), entra, windows,
    /// keycloak, evtx.
    #[arg(long, value_name = "NAME", default_value = "auto", value_parser = parse_input_format)]
    pub input_format: InputFormat,

    /// A load balancer (address or CIDR) whose X-Forwarded-For is believed in W3C
    /// logs; repeat for several.
    #[arg(long, value_name = "CIDR", value_parser = parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// Read custom line rules (`[[parse.rules]]`), custom JSON mappings
    /// (`[[parse.json_formats]]`) and trusted proxies (`parse.trusted_proxies`) from
    /// this TOML file, e.g. portcullis.toml (its other sections are ignored).
    #[arg(long, visible_alias = "rules", value_name = "FILE")]
    pub parse_config: Option<PathBuf>,
}

fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    InputFormat::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = InputFormat::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown format {s:?}; use one of {}", names.join(", "))
    })
}

/// An address or a network.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a network like 10.0.0.0/8"))
}

/// The `[parse]` keys of a configuration file that reading logs uses; the rest of the
/// file is the daemon's and is not looked at here.
#[derive(Debug, Default, serde::Deserialize)]
struct ParseFile {
    #[serde(default)]
    parse: ParseTable,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ParseTable {
    #[serde(default)]
    json_formats: Vec<CustomJsonSpec>,
    #[serde(default)]
    trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

/// What reading documents needs besides stamps and names.
#[derive(Debug, Clone, Default)]
pub struct DocumentOptions {
    /// Forced format, or auto.
    pub format: InputFormat,
    /// Trusted load balancers.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Checked custom JSON mappings.
    pub json_formats: Arc<[CustomJson]>,
}

impl ReadOptions {
    pub fn time_zone(&self) -> Result<TimeZone> {
        let Some(name) = self.timezone.as_deref() else {
            return Ok(TimeZone::system());
        };
        if let Some(offset) = parse_fixed_offset(name) {
            return Ok(TimeZone::fixed(offset));
        }
        TimeZone::get(name).with_context(|| format!("unknown time zone {name:?} (use an IANA name such as Europe/London, or an offset such as +01:00)"))
    }

    /// The format, trusted proxies and custom mappings (checked).
    pub fn documents(&self) -> Result<DocumentOptions> {
        let mut trusted = self.trusted_proxy.clone();
        let mut specs = Vec::new();
        if let Some(file) = self.parse_file()? {
            trusted.extend(file.parse.trusted_proxies);
            specs = file.parse.json_formats;
        }
        let compiled = custom_json::compile(&specs).with_context(|| match &self.parse_config {
            Some(p) => format!("in {}", p.display()),
            None => String::new(),
        })?;
        Ok(DocumentOptions {
            format: self.input_format,
            trusted_proxies: trusted,
            json_formats: Arc::from(compiled),
        })
    }

    /// The custom rules (`[[parse.rules]]`) of `--parse-config`, compiled and checked;
    /// `None` without any.
    pub fn parse_rules(&self) -> Result<Option<Arc<Rules>>> {
        let Some(file) = self.parse_file()? else {
            return Ok(None);
        };
        let rules = rules_of(&file.parse).with_context(|| match &self.parse_config {
            Some(p) => format!("{} is not valid", p.display()),
            None => String::new(),
        })?;
        Ok(rules.map(Arc::new))
    }

    /// The `[parse]` table of `--parse-config`, if given.
    fn parse_file(&self) -> Result<Option<ParseFile>> {
        let Some(path) = &self.parse_config else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file = parse_file(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        Ok(Some(file))
    }

    pub fn account_rules(&self) -> Result<AccountRules> {
        let domain = match self.domain.as_str() {
            "keep" => DomainRule::Keep,
            "strip" => DomainRule::Strip,
            other => match other.strip_prefix("default:") {
                Some(d) if !d.is_empty() && !d.contains('@') => {
                    DomainRule::Default(d.to_lowercase())
                }
                _ => bail!("--domain must be keep, strip or default:DOMAIN, not {other:?}"),
            },
        };
        Ok(AccountRules {
            case_fold: !self.case_sensitive,
            domain,
            windows_domain: if self.keep_windows_domain {
                WindowsDomainRule::Keep
            } else {
                WindowsDomainRule::Strip
            },
        })
    }
}

/// The `[parse]` table of a TOML document (its other tables are not looked at).
fn parse_file(text: &str) -> Result<ParseFile> {
    Ok(toml::from_str(text)?)
}

/// The custom rules of a `[parse]` table, compiled and checked; `None` without any.
fn rules_of(table: &ParseTable) -> Result<Option<Rules>> {
    if table.rules.is_empty() {
        return Ok(None);
    }
    Ok(Some(Rules::new(&table.rules)?))
}

/// `UTC`, `Z`, `+01:00`, `-0500`, `+1`.
fn parse_fixed_offset(s: &str) -> Option<Offset> {
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Some(Offset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    if !(0..=25).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_files() {
        let rules = |text: &str| rules_of(&parse_file(text).unwrap().parse);
        let r = rules(
            "[daemon]\nstate_dir = \"/x\"\n[[parse.rules]]\nname = \"app\"\nregex = \"bad login <USER> from <ADDR>\"\noutcome = \"failure\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.names().collect::<Vec<_>>(), ["app"]);
        let e = rules("[[parse.rules]]\nname = \"broken\"\nregex = \"(\"\noutcome = \"failure\"\n")
            .unwrap_err();
        assert!(format!("{e:#}").contains("\"broken\""), "{e:#}");
        assert!(rules("[daemon]\n").unwrap().is_none());
    }

    #[test]
    fn fixed_offsets() {
        assert_eq!(parse_fixed_offset("+01:00").unwrap().seconds(), 3600);
        assert_eq!(
            parse_fixed_offset("-0530").unwrap().seconds(),
            -(5 * 3600 + 30 * 60)
        );
        assert_eq!(parse_fixed_offset("+2").unwrap().seconds(), 7200);
        assert_eq!(parse_fixed_offset("UTC").unwrap().seconds(), 0);
        assert!(parse_fixed_offset("Europe/London").is_none());
        assert!(parse_fixed_offset("+99:00").is_none());
    }
}
