//! Dovecot 2.3: the auth-worker verdict and the login process's summary, sharing the
//! session id (as Dovecot logs them; Portcullis counts such a pair once).

use std::net::IpAddr;

use portcullis_core::{Outcome, Reason};

use super::{Lines, pid, session};
use crate::Attempt;
use crate::scenario::Service;

pub(super) fn attempt(lines: &mut Lines<'_>, a: &Attempt, name: &str, server: IpAddr) {
    let proto = if a.service == Service::Imap {
        "imap"
    } else {
        "pop3"
    };
    let (ip, sid) = (a.source, session(a.tag));
    match a.outcome {
        Outcome::Success => lines.line(format_args!(
            "dovecot: {proto}-login: Login: user=<{name}>, method=PLAIN, rip={ip}, lip={server}, mpid={}, TLS, session=<{sid}>",
            pid(a.tag, 2000)
        )),
        Outcome::Failure(reason) => {
            let verdict = if reason == Reason::UnknownAccount { "unknown user" } else { "Password mismatch" };
            lines.line(format_args!("dovecot: auth-worker({}): sql({name},{ip},<{sid}>): {verdict}", pid(a.tag, 900)));
            lines.line(format_args!(
                "dovecot: {proto}-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{name}>, method=PLAIN, rip={ip}, lip={server}, TLS, session=<{sid}>"
            ));
        }
    }
}
