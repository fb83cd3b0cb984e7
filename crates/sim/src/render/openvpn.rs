//! OpenVPN 2.x in server mode with `auth-user-pass-verify` and
//! `username-as-common-name`, through syslog. Each message about a client starts with
//! its address (`ADDR:PORT`, an IPv6 peer without the port). A wrong name or password
//! is `TLS Auth Error: Auth Username/Password verification failed for peer`, with no
//! user name (the server logs none); a right one is `TLS: Username/Password
//! authentication succeeded for username 'NAME' [CN SET]`, then `[NAME] Peer Connection
//! Initiated with …` (`ssl_verify.c`, `verify_user_pass`; `ssl.c`).

use portcullis_core::Outcome;

use super::{Lines, pid};
use crate::Attempt;

pub(super) fn attempt(lines: &mut Lines<'_>, a: &Attempt, name: &str) {
    let p = pid(a.tag, 600);
    let (peer, with) = if a.source.is_ipv6() {
        (a.source.to_string(), format!("[AF_INET6]{}", a.source))
    } else {
        (
            format!("{}:{}", a.source, a.port),
            format!("[AF_INET]{}:{}", a.source, a.port),
        )
    };
    match a.outcome {
        Outcome::Success => {
            lines.line(format_args!(
                "openvpn[{p}]: {peer} TLS: Username/Password authentication succeeded for username '{name}' [CN SET]"
            ));
            lines.line(format_args!(
                "openvpn[{p}]: {peer} [{name}] Peer Connection Initiated with {with}"
            ));
        }
        Outcome::Failure(_) => {
            lines.line(format_args!(
                "openvpn[{p}]: {peer} TLS Auth Error: Auth Username/Password verification failed for peer"
            ));
            lines.line(format_args!(
                "openvpn[{p}]: {peer} TLS Error: TLS handshake failed"
            ));
        }
    }
}
