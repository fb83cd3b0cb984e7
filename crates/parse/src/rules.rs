//! Custom rules: regular expressions from the configuration for log formats Portcullis
//! has no parser for.
//!
//! A rule is matched against a line's message (the text after the envelope's stamp,
//! host and program tag). Its named captures give the event: `addr` the source address,
//! `user` the user name, `port` the port. Shorthands, in the manner of fail2ban's tags:
//!
//! | shorthand | becomes |
//! | --- | --- |
//! | `<ADDR>` (or `<HOST>`) | `(?P<addr>…)`: an IPv4 or IPv6 address (brackets are written around it in the pattern when the log has them) |
//! | `<USER>` | `(?P<user>\S+)`: a run of non-space characters |
//! | `<PORT>` | `(?P<port>[0-9]{1,5})` |
//!
//! `<USER>` deliberately stops at a space: a user name is the client's text, and one
//! that could hold spaces could hold a forged ` from 6.6.6.6` that a lazy pattern would
//! take for the address. A rule that needs names with spaces writes its own
//! `(?P<user>…)` and takes that risk knowingly.
//!
//! Rules are validated when the configuration is loaded: a bad pattern, an unknown
//! outcome, reason or service, a rule with neither `<ADDR>` nor `<USER>`, or a
//! duplicate name is an error naming the rule. At run time the first rule (in
//! configuration order) that matches a line wins and the built-in parsers do not see
//! it; a matching line whose `addr` is not an address makes no event and is counted as
//! not understood.
//!
//! The cost of a line: a rule whose `program` does not fit is skipped by a string
//! compare, before any regex runs. With few rules each fitting rule is then tried in
//! order, capturing into slots kept in a [`RuleScratch`] (no allocation, no look-up of
//! group names); with many, one pass of a regex set over the message first says which
//! rules can match, and only the first of those that fits captures. `<ADDR>` is
//! compiled in a form the one-pass capture engine can run ([`addr`]), which matches
//! the same text with the same captures.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_core::{Event, Outcome, Reason, Service, address};
use regex::{Regex, RegexSet};
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Input, PatternID, meta};
use serde::Deserialize;

use crate::{Ctx, Line, Verdict};

/// One `[[parse.rules]]` entry as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for messages and errors.
    pub name: String,
    /// The pattern, with `<ADDR>`, `<HOST>`, `<USER>`, `<PORT>` shorthands.
    pub regex: String,
    /// `failure` or `success`.
    pub outcome: String,
    /// For failures: `bad_password`, `unknown_account`, … (default `other`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Only lines with this program tag (`name`, or `prefix*`); default: any line.
    #[serde(default)]
    pub program: Option<String>,
    /// The `service` of the events (default `custom`).
    #[serde(default)]
    pub service: Option<String>,
}

/// A rule that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule's name (or its position when it has none).
    pub rule: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parse rule {:?}: {}", self.rule, self.problem)
    }
}

impl std::error::Error for RuleError {}

mod addr;
#[cfg(test)]
mod order_tests;

#[derive(Debug)]
struct Rule {
    name: String,
    /// The pattern with its shorthands expanded (for the regex sets).
    pattern: String,
    /// What lines are matched and captured with: the pattern as the regex crate builds
    /// it, with `<ADDR>` in its one-pass form.
    regex: meta::Regex,
    /// Capture group indices of `addr`, `user` and `port`, looked up once.
    addr: Option<usize>,
    user: Option<usize>,
    port: Option<usize>,
    program: Option<Program>,
    outcome: Outcome,
    service: Service,
}

#[derive(Debug)]
enum Program {
    Exact(String),
    Prefix(String),
}

impl Program {
    fn matches(&self, p: Option<&str>) -> bool {
        match (self, p) {
            (Program::Exact(x), Some(p)) => x == p,
            (Program::Prefix(x), Some(p)) => p.starts_with(x.as_str()),
            (_, None) => false,
        }
    }
}

/// Up to this many rules, each rule that fits a line's program is tried in turn; with
/// more, a regex set says first which can match. Trying a rule that does not match is
/// one scan of the message (or less, when it is anchored or has a literal to look for),
/// and the set's pass is one scan that must go to the end of the message; with a few
/// rules, trying them costs less than the set's pass plus the capture.
const TRY_IN_TURN: usize = 4;

/// Tells one [`Rules`] from another, so that a [`RuleScratch`] is never used with slots
/// made for other rules.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The compiled rules of one configuration.
#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    id: u64,
    /// All patterns, for one pass over a message (when there are more than
    /// [`TRY_IN_TURN`]).
    set: RegexSet,
    /// The patterns without a leading `^`, over whole raw lines: a superset of the lines
    /// the rules can match, for the prefilter.
    lines: regex::bytes::RegexSet,
}

/// The `addr` capture: dotted quad, or anything IPv6-shaped (validated after).
const ADDR: &str = r"(?P<addr>[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*)";

impl Rules {
    /// Compiles and checks rules.
    pub fn new(configs: &[RuleConfig]) -> Result<Self, RuleError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let label = if c.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                c.name.clone()
            };
            let err = |problem: String| RuleError {
                rule: label.clone(),
                problem,
            };
            if c.name.is_empty() {
                return Err(err("has no name".into()));
            }
            if rules.iter().any(|r| r.name == c.name) {
                return Err(err("the name is used by an earlier rule".into()));
            }
            let pattern = expand(&c.regex);
            // The regex crate checks the pattern and words the error.
            Regex::new(&pattern).map_err(|e| err(format!("invalid regex: {e}")))?;
            let regex = addr::compile(&pattern)
                .or_else(|| addr::compile_as_written(&pattern))
                .ok_or_else(|| err("invalid regex: it cannot be built".into()))?;
            let group = |name: &str| regex.group_info().to_index(PatternID::ZERO, name);
            let (addr, user, port) = (group("addr"), group("user"), group("port"));
            if addr.is_none() && user.is_none() {
                return Err(err(
                    "the regex captures neither <ADDR> nor <USER>: its events would say nothing"
                        .into(),
                ));
            }
            let reason = match c.reason.as_deref() {
                None => None,
                Some(r) => Some(Reason::from_name(r).ok_or_else(|| {
                    err(format!(
                        "unknown reason {r:?} (one of {})",
                        names_of(Reason::ALL.iter().map(|r| r.as_str()))
                    ))
                })?),
            };
            let outcome = match c.outcome.as_str() {
                "failure" => Outcome::Failure(reason.unwrap_or(Reason::Other)),
                "success" if reason.is_some() => {
                    return Err(err("a success has no reason".into()));
                }
                "success" => Outcome::Success,
                o => {
                    return Err(err(format!(
                        "outcome must be failure or success, not {o:?}"
                    )));
                }
            };
            let service = match c.service.as_deref() {
                None => Service::Custom,
                Some(s) => Service::from_name(s).ok_or_else(|| {
                    err(format!(
                        "unknown service {s:?} (one of {})",
                        names_of(Service::ALL.iter().map(|s| s.as_str()))
                    ))
                })?,
            };
            let program = match c.program.as_deref() {
                None => None,
                Some("") => return Err(err("program is empty".into())),
                Some(p) => Some(match p.strip_suffix('*') {
                    Some(prefix) => Program::Prefix(prefix.to_owned()),
                    None => Program::Exact(p.to_owned()),
                }),
            };
            rules.push(Rule {
                name: c.name.clone(),
                pattern,
                regex,
                addr,
                user,
                port,
                program,
                outcome,
                service,
            });
        }
        let set =
            RegexSet::new(rules.iter().map(|r| r.pattern.as_str())).map_err(|e| RuleError {
                rule: "(all)".into(),
                problem: format!("the rules do not compile together: {e}"),
            })?;
        let lines = regex::bytes::RegexSet::new(
            rules
                .iter()
                .map(|r| r.pattern.strip_prefix('^').unwrap_or(r.pattern.as_str())),
        )
        .map_err(|e| RuleError {
            rule: "(all)".into(),
            problem: format!("the rules do not compile together: {e}"),
        })?;
        Ok(Self {
            rules,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            set,
            lines,
        })
    }

    /// Scratch for [`Self::parse_with`]: capture slots for each rule.
    pub fn scratch(&self) -> RuleScratch {
        RuleScratch {
            rules: Some(self.id),
            slots: self
                .rules
                .iter()
                .map(|r| {
                    let slots = vec![None; r.regex.group_info().slot_len()];
                    (r.regex.create_cache(), slots)
                })
                .collect(),
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule may match this raw line (the prefilter's question).
    pub fn may_match(&self, raw: &[u8]) -> bool {
        !self.rules.is_empty() && self.lines.is_match(raw)
    }

    /// The first matching rule's verdict, or `None` when no rule matches the line.
    /// Allocates capture slots for the call; a parser reading many lines keeps a
    /// [`RuleScratch`] and calls [`Self::parse_with`].
    pub fn parse(&self, line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Option<Verdict> {
        self.parse_with(&mut RuleScratch::default(), line, ctx, out)
    }

    /// [`Self::parse`] with capture slots from `scratch` (made by [`Self::scratch`];
    /// one made for other rules, or a default one, is remade first).
    pub fn parse_with(
        &self,
        scratch: &mut RuleScratch,
        line: &Line<'_>,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) -> Option<Verdict> {
        if self.rules.is_empty() {
            return None;
        }
        if scratch.rules != Some(self.id) {
            *scratch = self.scratch();
        }
        let msg: &str = &line.message;
        let program = line.program.as_deref();
        let input = Input::new(msg);
        let fits = |r: &Rule| r.program.as_ref().is_none_or(|p| p.matches(program));
        // The first rule in order that fits the program and matches: tried in turn, or
        // among those the set says match. Either way the same rule, as a rule matches
        // the message exactly when its pattern in the set does.
        let i = if self.rules.len() <= TRY_IN_TURN {
            let slots = &mut scratch.slots;
            self.rules
                .iter()
                .zip(slots.iter_mut())
                .position(|(r, (cache, slots))| {
                    fits(r) && r.regex.search_slots_with(cache, &input, slots).is_some()
                })?
        } else {
            let i = self
                .set
                .matches(msg)
                .iter()
                .find(|&i| fits(&self.rules[i]))?;
            let (cache, slots) = &mut scratch.slots[i];
            self.rules[i]
                .regex
                .search_slots_with(cache, &input, slots)?;
            i
        };
        let slots = &scratch.slots[i].1;
        let rule = &self.rules[i];
        let group = |g: Option<usize>| match g.map(|g| (slots.get(2 * g), slots.get(2 * g + 1))) {
            Some((Some(Some(s)), Some(Some(e)))) => Some(&msg[s.get()..e.get()]),
            _ => None,
        };
        let mut e = ctx.event(rule.service, rule.outcome);
        if let Some(a) = group(rule.addr) {
            let Some(addr) = address::parse(a) else {
                return Some(Verdict::Unrecognised);
            };
            e.source = Some(addr);
        }
        e.user = group(rule.user)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        e.port = group(rule.port).and_then(|p| p.parse().ok());
        out.push(e);
        Some(Verdict::Recognised)
    }

    /// The names of the rules, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }
}

/// Capture slots for [`Rules::parse_with`], kept by one parser so that a line costs no
/// allocation. [`Rules`] is shared between threads; its scratch is not.
#[derive(Debug, Default)]
pub struct RuleScratch {
    /// Which [`Rules`] the slots were made for.
    rules: Option<u64>,
    /// Each rule's search cache and capture slots.
    slots: Vec<(meta::Cache, Vec<Option<NonMaxUsize>>)>,
}

fn names_of<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// Replaces the shorthands.
fn expand(pattern: &str) -> String {
    pattern
        .replace("<ADDR>", ADDR)
        .replace("<HOST>", ADDR)
        .replace("<USER>", r"(?P<user>\S+)")
        .replace("<PORT>", "(?P<port>[0-9]{1,5})")
}

#[cfg(test)]
mod tests {

    use portcullis_core::{Outcome, Reason, Service};

    use super::{RuleConfig, Rules};
    use crate::Verdict;

    fn rule(name: &str, regex: &str, outcome: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            regex: regex.into(),
            outcome: outcome.into(),
            reason: None,
            program: None,
            service: None,
        }
    }

    fn run(
        rules: &Rules,
        program: Option<&str>,
        msg: &str,
    ) -> (Option<Verdict>, Vec<portcullis_core::Event>) {
        crate::testutil::run(|line, ctx, out| rules.parse(line, ctx, out), program, msg)
    }

    #[test]
    fn shorthands_capture_address_user_and_port() {
        let mut bad = rule(
            "app-bad",
            r"^login failed for <USER> from <ADDR> port <PORT>$",
            "failure",
        );
        bad.reason = Some("bad_password".into());
        bad.program = Some("myapp*".into());
        let mut good = rule("app-ok", r"^login ok for <USER> from \[<HOST>\]", "success");
        good.service = Some("nginx".into());
        let rules = Rules::new(&[bad, good]).unwrap();
        let (v, out) = run(
            &rules,
            Some("myapp-web"),
            "login failed for bob from 2001:db8::1 port 4711",
        );
        assert_eq!(v, Some(Verdict::Recognised));
        assert_eq!(out[0].outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(out[0].source, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(out[0].user.as_deref(), Some("bob"));
        assert_eq!(out[0].port, Some(4711));
        assert_eq!(out[0].service, Service::Custom);
        // The program filter.
        let (v, _) = run(
            &rules,
            Some("other"),
            "login failed for bob from 192.0.2.1 port 1",
        );
        assert_eq!(v, None);
        let (v, out) = run(&rules, None, "login ok for carol from [192.0.2.9]");
        assert_eq!(v, Some(Verdict::Recognised));
        assert_eq!(out[0].outcome, Outcome::Success);
        assert_eq!(out[0].service, Service::Nginx);
        assert!(rules.may_match(b"Jun 1 00:00:00 h x: login ok for carol from [192.0.2.9]"));
        assert!(!rules.may_match(b"Jun 1 00:00:00 h x: unrelated"));
    }

    #[test]
    fn user_names_with_spaces_cannot_move_the_address() {
        let rules = Rules::new(&[rule("r", r"failed for <USER> from <ADDR>$", "failure")]).unwrap();
        let (_, out) = run(&rules, None, "failed for x from 6.6.6.6 y from 192.0.2.4");
        // `<USER>` cannot span the forged part, so the rule does not match at all.
        assert!(out.is_empty(), "{out:?}");
        let (v, out) = run(&rules, None, "failed for x from 999.1.1.1");
        assert_eq!(v, Some(Verdict::Unrecognised));
        assert!(out.is_empty());
    }

    #[test]
    fn bad_rules_are_refused_by_name() {
        let cases = [
            (rule("a", "(unclosed", "failure"), "invalid regex"),
            (
                rule("b", "no captures", "failure"),
                "neither <ADDR> nor <USER>",
            ),
            (rule("c", "<ADDR>", "maybe"), "outcome must be"),
            (
                RuleConfig {
                    reason: Some("nope".into()),
                    ..rule("d", "<ADDR>", "failure")
                },
                "unknown reason",
            ),
            (
                RuleConfig {
                    service: Some("nope".into()),
                    ..rule("e", "<ADDR>", "failure")
                },
                "unknown service",
            ),
            (
                RuleConfig {
                    reason: Some("locked".into()),
                    ..rule("f", "<ADDR>", "success")
                },
                "a success has no reason",
            ),
            (rule("", "<ADDR>", "failure"), "has no name"),
        ];
        for (c, want) in cases {
            let name = c.name.clone();
            let e = Rules::new(&[c]).unwrap_err();
            assert!(e.problem.contains(want), "{e}");
            assert!(
                e.to_string()
                    .contains(if name.is_empty() { "#1" } else { &name }),
                "{e}"
            );
        }
        let e = Rules::new(&[
            rule("x", "<ADDR>", "failure"),
            rule("x", "<USER>", "failure"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("\"x\""), "{e}");
        assert!(e.problem.contains("used by an earlier rule"));
    }
}
