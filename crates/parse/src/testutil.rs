//! Helpers for the service parsers' unit tests.

use std::borrow::Cow;
use std::net::IpAddr;

use portcullis_core::{Event, Origin};

use crate::{Ctx, Line, Verdict};

/// A stateless service parser's entry point.
pub(crate) type ParseFn = fn(&Line<'_>, &Ctx<'_>, &mut Vec<Event>) -> Verdict;

/// Runs `parse` (a service parser, or anything read like one) on one message with this
/// program tag.
pub(crate) fn run<R>(
    parse: impl FnOnce(&Line<'_>, &Ctx<'_>, &mut Vec<Event>) -> R,
    program: Option<&str>,
    message: &str,
) -> (R, Vec<Event>) {
    let origin = Origin {
        file: Some("test.log".into()),
        line: 7,
        offset: 0,
    };
    let ctx = Ctx {
        time: None,
        host: Some("srv"),
        origin: &origin,
    };
    let line = Line {
        time: None,
        host: None,
        program: program.map(Cow::Borrowed),
        pid: None,
        message: Cow::Borrowed(message),
    };
    let mut out = Vec::new();
    let v = parse(&line, &ctx, &mut out);
    (v, out)
}

/// Exactly one event, from a recognised line.
pub(crate) fn one(parse: ParseFn, program: Option<&str>, message: &str) -> Event {
    let (v, out) = run(parse, program, message);
    assert_eq!(v, Verdict::Recognised, "{message}");
    assert_eq!(out.len(), 1, "{message}: {out:?}");
    out.into_iter().next().unwrap()
}

/// A recognised line that is not a login attempt.
pub(crate) fn none(parse: ParseFn, program: Option<&str>, message: &str) {
    let (v, out) = run(parse, program, message);
    assert_eq!(v, Verdict::Recognised, "{message}");
    assert!(out.is_empty(), "{message}: {out:?}");
}

/// A line the parser does not claim.
pub(crate) fn unrecognised(parse: ParseFn, program: Option<&str>, message: &str) {
    let (v, out) = run(parse, program, message);
    assert_eq!(v, Verdict::Unrecognised, "{message}: {out:?}");
    assert!(out.is_empty(), "{message}: {out:?}");
}

pub(crate) fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}
