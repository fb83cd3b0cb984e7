//! Placeholder until the Dovecot parser lands.
use portcullis_core::Event;

use crate::{Ctx, Line, Verdict};

/// Dovecot log parser.
#[derive(Debug, Default)]
pub struct Dovecot;

impl Dovecot {
    /// A new parser.
    pub fn new() -> Self {
        Self
    }

    /// Reads one line.
    pub fn parse(&mut self, _line: &Line<'_>, _ctx: &Ctx<'_>, _out: &mut Vec<Event>) -> Verdict {
        Verdict::Unrecognised
    }

    /// End of input.
    pub fn flush(&mut self, _out: &mut Vec<Event>) {}
}
