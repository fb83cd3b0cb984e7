//! The `<ADDR>` capture rewritten so that the one-pass capture engine can run it.
//!
//! `<ADDR>` expands to an alternation of an IPv4 and an IPv6 shape ([`super::ADDR`]).
//! Both begin with digits, so a capture engine cannot tell at the first digit which
//! branch it is in: the pattern is not one-pass, and the regex crate captures with
//! its bounded backtracker, the dearest part of reading a line. Here the expanded
//! pattern's syntax tree gets, in place of each `addr` group whose body is exactly
//! that alternation, the same two shapes with their common beginning factored out
//! ([`ONE_PASS`]). An anchored rule is then one-pass as a whole (when the rest of it
//! is), and the regex crate's meta engine captures with its one-pass DFA: one scan of
//! the match, no backtracking.
//!
//! Why the rule matches the same lines with the same captures. How a sub-pattern
//! takes part in a leftmost-first match (the regex crate's semantics: the first match
//! a backtracking search would find) depends only on the ends it can reach from each
//! start, in the order it prefers them, and on its own groups (here none). Let `H` be
//! a hex digit. From a start `p` the IPv4 branch needs `p`'s run of digits (1 to 3 of
//! them) to be followed by `.`, the IPv6 branch needs `p`'s run of `H` (0 to 4) to be
//! followed by `:`; the runs begin alike, so the byte after the run is `.` for one and
//! `:` for the other, and at most one branch can match from any start. Inside a
//! branch, the leading `{1,3}` or `{0,4}` can only stop at the end of the run (a
//! shorter stop is followed by a digit, not by the `.` or `:` required), so each
//! branch's ends are those of its tail, in the tail's order. The rewrite spells out
//! the leading run byte by byte (first a digit or not, up to four) and keeps both
//! tails as they were (`(?:\.[0-9]{1,3}){3}` and `[0-9A-Fa-f:.]*`), so from every
//! start it reaches the same ends in the same order. The unit tests compare the two on
//! random and mutated lines.
//!
//! Only a group equal to the expansion under default flags is replaced: under `(?U)`,
//! `(?-u)` or any flag that changes its tree, or where `<ADDR>` was written somewhere
//! it is not a group (inside a class), the pattern is left as it was.

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};

use super::ADDR;

/// The body of `<ADDR>` with the leading run factored: `:` (no hex digit before it),
/// a letter and up to three more hex digits, or one to three decimal digits each
/// followed by the choice of `.` (IPv4), `:` or a letter (IPv6), or another digit.
const ONE_PASS: &str = concat!(
    r"(?P<addr>",
    r":[0-9A-Fa-f:.]*",
    r"|[A-Fa-f][0-9A-Fa-f]{0,3}:[0-9A-Fa-f:.]*",
    r"|[0-9](?:(?:\.[0-9]{1,3}){3}|:[0-9A-Fa-f:.]*|[A-Fa-f][0-9A-Fa-f]{0,2}:[0-9A-Fa-f:.]*",
    r"|[0-9](?:(?:\.[0-9]{1,3}){3}|:[0-9A-Fa-f:.]*|[A-Fa-f][0-9A-Fa-f]?:[0-9A-Fa-f:.]*",
    r"|[0-9](?:(?:\.[0-9]{1,3}){3}|:[0-9A-Fa-f:.]*|[0-9A-Fa-f]:[0-9A-Fa-f:.]*))))",
);

/// The syntax the regex crate parses a `Regex` with (regex 1.x `builders.rs`:
/// `syntax::Config::default()`, UTF-8).
fn syntax_config() -> syntax::Config {
    syntax::Config::new().utf8(true)
}

/// A meta regex configured as the regex crate configures a `Regex` (regex 1.x
/// `builders.rs`: a 10 MiB NFA limit, a 2 MiB lazy DFA cache, leftmost-first, empty
/// matches never splitting a character).
fn meta_builder() -> meta::Builder {
    let mut b = meta::Builder::new();
    b.configure(
        meta::Config::new()
            .nfa_size_limit(Some(10 * (1 << 20)))
            .hybrid_cache_capacity(2 * (1 << 20))
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(true),
    );
    b
}

/// The body of the one `addr` group of a shorthand pattern.
fn body(pattern: &str) -> Option<Hir> {
    match syntax::parse_with(pattern, &syntax_config())
        .ok()?
        .into_kind()
    {
        HirKind::Capture(c) => Some(*c.sub),
        _ => None,
    }
}

/// The regex for an expanded rule pattern (one the regex crate accepted), with its
/// `<ADDR>` groups in their one-pass form; `None` if it cannot be built, and the
/// caller then uses the pattern as written.
pub(super) fn compile(pattern: &str) -> Option<meta::Regex> {
    let hir = syntax::parse_with(pattern, &syntax_config()).ok()?;
    let (from, to) = (body(ADDR)?, body(ONE_PASS)?);
    let hir = replace(&hir, &from, &to).unwrap_or(hir);
    meta_builder().build_from_hir(&hir).ok()
}

/// The pattern as the regex crate would build it, without any rewriting (the oracle
/// of the tests, and the fallback).
pub(super) fn compile_as_written(pattern: &str) -> Option<meta::Regex> {
    let hir = syntax::parse_with(pattern, &syntax_config()).ok()?;
    meta_builder().build_from_hir(&hir).ok()
}

/// `hir` with every `addr` group whose body is `from` given the body `to`; `None`
/// when there is none (the tree is then used as it is, not rebuilt).
fn replace(hir: &Hir, from: &Hir, to: &Hir) -> Option<Hir> {
    match hir.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("addr") && *c.sub == *from => {
            Some(Hir::capture(Capture {
                index: c.index,
                name: c.name.clone(),
                sub: Box::new(to.clone()),
            }))
        }
        HirKind::Capture(c) => replace(&c.sub, from, to).map(|sub| {
            Hir::capture(Capture {
                index: c.index,
                name: c.name.clone(),
                sub: Box::new(sub),
            })
        }),
        HirKind::Repetition(r) => replace(&r.sub, from, to).map(|sub| {
            Hir::repetition(Repetition {
                min: r.min,
                max: r.max,
                greedy: r.greedy,
                sub: Box::new(sub),
            })
        }),
        HirKind::Concat(subs) => replace_all(subs, from, to).map(Hir::concat),
        HirKind::Alternation(subs) => replace_all(subs, from, to).map(Hir::alternation),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => None,
    }
}

fn replace_all(subs: &[Hir], from: &Hir, to: &Hir) -> Option<Vec<Hir>> {
    let new: Vec<Option<Hir>> = subs.iter().map(|h| replace(h, from, to)).collect();
    new.iter().any(Option::is_some).then(|| {
        new.into_iter()
            .zip(subs)
            .map(|(n, old)| n.unwrap_or_else(|| old.clone()))
            .collect()
    })
}

#[cfg(test)]
mod tests;
