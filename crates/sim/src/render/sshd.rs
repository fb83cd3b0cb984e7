//! OpenSSH: `Accepted`, `Failed password`, and for unknown names `Invalid user` first;
//! the connection's close follows (Portcullis counts each attempt once).

use portcullis_core::Outcome;

use super::{Lines, pid};
use crate::{Attempt, Target};

pub(super) fn attempt(lines: &mut Lines<'_>, a: &Attempt, name: &str) {
    let (p, ip, port) = (pid(a.tag, 10_000), a.source, a.port);
    match (a.outcome, a.target) {
        (Outcome::Success, _) => {
            lines.line(format_args!(
                "sshd[{p}]: Accepted password for {name} from {ip} port {port} ssh2"
            ));
            lines.line(format_args!("sshd[{p}]: pam_unix(sshd:session): session opened for user {name}(uid=1000) by (uid=0)"));
        }
        (Outcome::Failure(_), Target::Unknown(..)) => {
            lines.line(format_args!(
                "sshd[{p}]: Invalid user {name} from {ip} port {port}"
            ));
            lines.line(format_args!(
                "sshd[{p}]: Failed password for invalid user {name} from {ip} port {port} ssh2"
            ));
            lines.line(format_args!(
                "sshd[{p}]: Connection closed by invalid user {name} {ip} port {port} [preauth]"
            ));
        }
        (Outcome::Failure(_), Target::Account(_)) => {
            lines.line(format_args!(
                "sshd[{p}]: Failed password for {name} from {ip} port {port} ssh2"
            ));
            lines.line(format_args!("sshd[{p}]: Connection closed by authenticating user {name} {ip} port {port} [preauth]"));
        }
    }
}
