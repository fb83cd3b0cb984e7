//! The one-pass `<ADDR>` against the expansion as written, with the regex crate as
//! the oracle.

use std::sync::OnceLock;

use proptest::prelude::*;
use regex_automata::Input;
use regex_automata::dfa::onepass;
use regex_automata::nfa::thompson;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;

use super::{ADDR, ONE_PASS, body, compile, replace, syntax_config};
use crate::rules::expand;

/// Rule patterns in the shapes configurations use, and some odd ones.
const PATTERNS: &[&str] = &[
    r"^DENIED user=<USER> src=<ADDR> ",
    r"^ACCEPTED user=<USER> src=<ADDR>$",
    r"failed for <USER> from <ADDR>$",
    r"from <ADDR>:<PORT>",
    r"from <ADDR> port <PORT>",
    r"\[<HOST>\]",
    r"<ADDR>",
    r"^<ADDR>[0-9a-f]",
    r"(?:<ADDR>,)+;",
    r"(?i)FROM <ADDR>(?: |$)",
    r"(?s)src=<ADDR>.",
    // Flags that change the group's tree: left as written.
    r"(?U)src=<ADDR>(?: |$)",
    r"(?-u:src=<ADDR>)",
    // `<ADDR>` where it is no group.
    r"[<ADDR>]",
];

/// Each pattern with its oracle, the regex crate on the pattern expanded as
/// configured, and the regex rules are matched with; compiled once.
fn compiled() -> &'static [(&'static str, regex::Regex, regex_automata::meta::Regex)] {
    static COMPILED: OnceLock<Vec<(&str, regex::Regex, regex_automata::meta::Regex)>> =
        OnceLock::new();
    COMPILED.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|p| {
                let oracle = regex::Regex::new(&expand(p)).expect("the test patterns are valid");
                let new = compile(&expand(p)).expect("the test patterns compile");
                (*p, oracle, new)
            })
            .collect()
    })
}

fn spans(re: &regex::Regex, line: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let mut locs = re.capture_locations();
    re.captures_read(&mut locs, line)?;
    Some((0..locs.len()).map(|i| locs.get(i)).collect())
}

fn new_spans(re: &regex_automata::meta::Regex, line: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let mut caps = Captures::all(re.group_info().clone());
    re.search_captures(&Input::new(line), &mut caps);
    caps.is_match().then(|| {
        (0..caps.group_len())
            .map(|i| caps.get_group(i).map(|s| (s.start, s.end)))
            .collect()
    })
}

fn same_everywhere(line: &str) {
    for (p, oracle, new) in compiled() {
        assert_eq!(
            new_spans(new, line),
            spans(oracle, line),
            "pattern {p:?} on {line:?}"
        );
    }
}

#[test]
fn the_rewrite_applies_where_the_tree_is_the_expansion() {
    let (from, to) = (body(ADDR).unwrap(), body(ONE_PASS).unwrap());
    let rewritten = |p: &str| {
        let hir = syntax::parse_with(&expand(p), &syntax_config()).unwrap();
        replace(&hir, &from, &to).is_some()
    };
    for p in &PATTERNS[..11] {
        assert!(rewritten(p), "{p}");
    }
    for p in &PATTERNS[11..] {
        assert!(!rewritten(p), "{p}");
    }
}

#[test]
fn anchored_rules_become_one_pass() {
    let one_pass = |p: &str, rewrite: bool| {
        let mut hir = syntax::parse_with(&expand(p), &syntax_config()).unwrap();
        if rewrite {
            hir = replace(&hir, &body(ADDR).unwrap(), &body(ONE_PASS).unwrap()).unwrap();
        }
        let nfa = thompson::Compiler::new().build_from_hir(&hir).unwrap();
        onepass::Builder::new().build_from_nfa(nfa).is_ok()
    };
    for p in [
        r"^DENIED user=<USER> src=<ADDR> ",
        r"^ACCEPTED user=<USER> src=<ADDR>$",
        r"^login failed for <USER> from <ADDR> port <PORT>$",
    ] {
        assert!(!one_pass(p, false), "{p} as written");
        assert!(one_pass(p, true), "{p} rewritten");
    }
}

#[test]
fn addresses_and_near_misses() {
    for line in [
        "DENIED user=bob src=192.0.2.1 reason=x",
        "DENIED user=bob src=2001:db8::1 reason=x",
        "ACCEPTED user=a@b src=::ffff:192.0.2.1",
        "ACCEPTED user=a@b src=1.2.3.4567",
        "from 1.2.3.4:22 and [fe80::1%eth0] and [1:2]",
        "from abcd:1 port 7, 12:: port 8, 123a: port 9, 1234: port 1",
        "from 12345:1 port 2 from 1.2.3 port 3 from 1.2.3.4.5 port 4",
        "1.2.3.4,::1,;",
        "src=1.2.3.4 src=FE80::A\n",
        "1.1.1.1a 999.999.999.999f 0:0 :",
    ] {
        same_everywhere(line);
    }
}

/// Text near the shapes: pieces of addresses, rule words and separators.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "DENIED user=",
            "ACCEPTED user=",
            "failed for ",
            "bob",
            "a@b",
            " src=",
            " from ",
            "from ",
            " port ",
            "[",
            "]",
            ":",
            ".",
            "::",
            ",",
            ";",
            " ",
            "0",
            "1",
            "12",
            "192",
            "255",
            "1234",
            "12345",
            "a",
            "abcd",
            "fe80",
            "F",
            "g",
            "é",
            "\n",
            "FROM ",
        ][..],
    )
}

fn line_of_pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|v| v.concat())
}

/// A line that matches, edited at a few places.
fn mutated() -> impl Strategy<Value = String> {
    let base = prop::sample::select(
        &[
            "DENIED user=bob src=192.0.2.1 reason=x",
            "DENIED user=root src=2001:db8:a:b::1 reason=x",
            "ACCEPTED user=a@b src=198.51.100.255",
            "ACCEPTED user=a@b src=fe80::1:2",
            "failed for x from 10.0.0.1 port 22",
            "from [2001:db8::7]:4711",
        ][..],
    );
    let edit = (
        any::<prop::sample::Index>(),
        "[0-9a-fA-F:. g\\]\\[]",
        0..3u8,
    );
    (base, prop::collection::vec(edit, 0..4)).prop_map(|(base, edits)| {
        let mut s: Vec<char> = base.chars().collect();
        for (at, c, kind) in edits {
            let i = at.index(s.len() + 1);
            let c = c.chars().next().unwrap_or('.');
            match kind {
                0 => s.insert(i, c),
                1 if i < s.len() => {
                    s.remove(i);
                }
                _ if i < s.len() => s[i] = c,
                _ => s.push(c),
            }
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn same_matches_and_captures_on_pieces(line in line_of_pieces()) {
        same_everywhere(&line);
    }

    #[test]
    fn same_matches_and_captures_on_mutated_lines(line in mutated()) {
        same_everywhere(&line);
    }

    #[test]
    fn same_matches_and_captures_on_any_text(line in "[0-9a-fA-F:. x\\[\\]]{0,40}") {
        same_everywhere(&line);
    }
}
