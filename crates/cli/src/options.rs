//! Options shared by every command that reads logs.

use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::tz::{Offset, TimeZone};
use portcullis_core::AccountRules;
use portcullis_core::account::{DomainRule, WindowsDomainRule};
use portcullis_parse::{RuleConfig, Rules};
use serde::Deserialize;
use std::sync::Arc;

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

    /// Custom parse rules: a TOML file with `[[parse.rules]]` entries (the daemon's
    /// configuration file will do; its other sections are ignored).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<std::path::PathBuf>,
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

    /// The custom rules of `--rules`, compiled and checked.
    pub fn parse_rules(&self) -> Result<Option<Arc<Rules>>> {
        let Some(path) = &self.rules else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let rules = rules_of(&text).with_context(|| format!("{} is not valid", path.display()))?;
        Ok(Some(Arc::new(rules)))
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

/// The `[[parse.rules]]` of a TOML document.
fn rules_of(text: &str) -> Result<Rules> {
    #[derive(Deserialize, Default)]
    struct File {
        #[serde(default)]
        parse: Parse,
    }
    #[derive(Deserialize, Default)]
    struct Parse {
        #[serde(default)]
        rules: Vec<RuleConfig>,
    }
    let file: File = toml::from_str(text)?;
    if file.parse.rules.is_empty() {
        bail!("it has no [[parse.rules]]");
    }
    Ok(Rules::new(&file.parse.rules)?)
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
        let r = rules_of(
            "[daemon]\nstate_dir = \"/x\"\n[[parse.rules]]\nname = \"app\"\nregex = \"bad login <USER> from <ADDR>\"\noutcome = \"failure\"\n",
        )
        .unwrap();
        assert_eq!(r.names().collect::<Vec<_>>(), ["app"]);
        let e =
            rules_of("[[parse.rules]]\nname = \"broken\"\nregex = \"(\"\noutcome = \"failure\"\n")
                .unwrap_err();
        assert!(format!("{e:#}").contains("\"broken\""), "{e:#}");
        assert!(rules_of("[daemon]\n").is_err());
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
