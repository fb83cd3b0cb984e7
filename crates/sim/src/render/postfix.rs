//! Postfix submission (SMTP AUTH): the SASL warning or the `sasl_username=` line,
//! between `connect` and `disconnect`. Postfix logs no user for a failed SASL login.

use portcullis_core::Outcome;

use super::{Lines, pid, queue_id};
use crate::Attempt;

pub(super) fn attempt(lines: &mut Lines<'_>, a: &Attempt, name: &str) {
    let (p, ip) = (pid(a.tag, 5000), a.source);
    lines.line(format_args!(
        "postfix/submission/smtpd[{p}]: connect from unknown[{ip}]"
    ));
    match a.outcome {
        Outcome::Success => {
            lines.line(format_args!(
                "postfix/submission/smtpd[{p}]: {}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username={name}",
                queue_id(a.tag)
            ));
            lines.line(format_args!(
                "postfix/submission/smtpd[{p}]: disconnect from unknown[{ip}] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6"
            ));
        }
        Outcome::Failure(_) => {
            lines.line(format_args!(
                "postfix/submission/smtpd[{p}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
            ));
            lines.line(format_args!(
                "postfix/submission/smtpd[{p}]: disconnect from unknown[{ip}] ehlo=1 auth=0/1 quit=1 commands=2/3"
            ));
        }
    }
}
