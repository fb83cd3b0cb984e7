//! [`Rules::parse`] against the way rules were first applied, kept here as the oracle:
//! a regex set over the message, the first matching rule in order that fits the
//! program, its captures by the regex crate. Both with few rules (tried in turn) and
//! with many (the set first).

use portcullis_core::{Event, Outcome, Reason, address};
use proptest::prelude::*;

use super::{RuleConfig, Rules, TRY_IN_TURN, expand};
use crate::Verdict;

/// A failure rule; its reason tells which rule read a line (the `n`th reason).
fn rule(n: usize, regex: &str, program: Option<&str>) -> RuleConfig {
    RuleConfig {
        name: format!("r{n}"),
        regex: regex.into(),
        outcome: "failure".into(),
        reason: Some(Reason::ALL[n].as_str().into()),
        program: program.map(str::to_owned),
        service: None,
    }
}

/// Rules that overlap, so that which one wins matters.
fn configs() -> Vec<RuleConfig> {
    vec![
        rule(0, r"^DENIED user=<USER> src=<ADDR> ", Some("myvpn")),
        rule(1, r"user=<USER> src=<ADDR>", Some("my*")),
        rule(2, r"from <ADDR>:<PORT>", None),
        rule(3, r"^ACCEPTED user=<USER> src=<ADDR>$", Some("myvpn")),
        rule(4, r"src=<HOST>", None),
        rule(5, r"for <USER>", Some("other")),
        rule(6, r"(?i)from \[<ADDR>\]", None),
    ]
}

/// Which rule the first way picks, and the source, user and port it reads; `Err` for
/// a matching line whose address is none.
type Read = Result<(usize, Option<String>, Option<String>, Option<u16>), ()>;

fn oracle(configs: &[RuleConfig], program: Option<&str>, msg: &str) -> Option<Read> {
    let patterns: Vec<String> = configs.iter().map(|c| expand(&c.regex)).collect();
    let set = regex::RegexSet::new(&patterns).unwrap();
    let fits = |c: &RuleConfig| match (c.program.as_deref(), program) {
        (None, _) => true,
        (Some(p), Some(prog)) => match p.strip_suffix('*') {
            Some(prefix) => prog.starts_with(prefix),
            None => p == prog,
        },
        (Some(_), None) => false,
    };
    let i = set.matches(msg).iter().find(|&i| fits(&configs[i]))?;
    let caps = regex::Regex::new(&patterns[i]).unwrap().captures(msg)?;
    let source = match caps.name("addr") {
        Some(a) => match address::parse(a.as_str()) {
            Some(a) => Some(a.to_string()),
            None => return Some(Err(())),
        },
        None => None,
    };
    let user = caps
        .name("user")
        .map(|u| u.as_str().to_owned())
        .filter(|u| !u.is_empty());
    let port = caps.name("port").and_then(|p| p.as_str().parse().ok());
    Some(Ok((i, source, user, port)))
}

fn read(rules: &Rules, program: Option<&str>, msg: &str) -> (Option<Verdict>, Vec<Event>) {
    crate::testutil::run(|line, ctx, out| rules.parse(line, ctx, out), program, msg)
}

fn agree(configs: &[RuleConfig], rules: &Rules, program: Option<&str>, msg: &str) {
    let (verdict, out) = read(rules, program, msg);
    let got = match verdict {
        None => None,
        Some(Verdict::Unrecognised) => Some(Err(())),
        Some(Verdict::Recognised) => {
            let e = &out[0];
            let Outcome::Failure(reason) = e.outcome else {
                panic!("{e:?}")
            };
            let i = Reason::ALL.iter().position(|r| *r == reason).unwrap();
            Some(Ok((
                i,
                e.source.map(|a| a.to_string()),
                e.user.clone(),
                e.port,
            )))
        }
    };
    assert_eq!(got, oracle(configs, program, msg), "{program:?} {msg:?}");
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "DENIED ",
            "ACCEPTED ",
            "user=",
            "bob",
            " src=",
            "from ",
            "FROM ",
            " for ",
            "[",
            "]",
            ":",
            ".",
            "::",
            " ",
            "192.0.2.1",
            "2001:db8::1",
            "1.2.3",
            "22",
            "99999",
            "fe80",
            "x",
        ][..],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_same_rule_reads_the_same_line(
        pieces in prop::collection::vec(piece(), 0..14),
        program in prop::sample::select(&[None, Some("myvpn"), Some("myvpn-x"), Some("other")][..]),
        many in any::<bool>(),
    ) {
        let msg = pieces.concat();
        let all = configs();
        // Few rules are tried in turn; more go through the set first.
        let configs = if many { &all[..] } else { &all[..TRY_IN_TURN] };
        assert_eq!(configs.len() > TRY_IN_TURN, many);
        let rules = Rules::new(configs).unwrap();
        agree(configs, &rules, program, &msg);
    }
}
