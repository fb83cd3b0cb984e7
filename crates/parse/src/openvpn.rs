//! OpenVPN server: client authentication.
//!
//! In server mode every message about one client starts with the client's prefix,
//! `ADDR:PORT ` or, once its certificate or user name is known, `NAME/ADDR:PORT ` (IPv6
//! peers without a port: `mroute.c`, `mroute_addr_print_ex`). Lines read
//! (`ssl_verify.c`, `multi.c`):
//! - `TLS Auth Error: Auth Username/Password verification failed for peer`: a wrong
//!   user name or password (`--auth-user-pass-verify`, a plugin, or the management
//!   interface said no);
//! - `VERIFY ERROR: depth=N, error=…`: the client's certificate was refused;
//! - `[NAME] Peer Connection Initiated with [AF_INET]ADDR:PORT`: the client is in, as
//!   NAME (the certificate's common name, or the user name with
//!   `username-as-common-name`): a success.
//!
//! TLS handshake failures, HMAC (`tls-auth`) failures and connection resets are scanners
//! and broken clients, not logins: recognised, no event. The prefix is written by the
//! server before anything the client chose, so it is where the address comes from.

use portcullis_core::{Event, Outcome, Reason, Service};

use crate::text::{addr_port, user};
use crate::{Ctx, Line, Verdict};

/// Reads one message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    let Some((prefix, text)) = msg.split_once(' ') else {
        return Verdict::Unrecognised;
    };
    let (name, peer) = match prefix.rsplit_once('/') {
        Some((n, p)) => (Some(n), p),
        None => (None, prefix),
    };
    let Some((addr, port)) = addr_port(peer) else {
        // Lines without a client prefix (`TLS Error: cannot locate HMAC in incoming
        // packet from …`, start-up chatter) are no login attempts.
        return if is_noise(msg) {
            Verdict::Recognised
        } else {
            Verdict::Unrecognised
        };
    };
    let (outcome, who) =
        if text.starts_with("TLS Auth Error: Auth Username/Password verification failed") {
            (Outcome::Failure(Reason::BadPassword), name)
        } else if text.starts_with("VERIFY ERROR: ") {
            (Outcome::Failure(Reason::Other), None)
        } else if let Some(rest) = text.strip_prefix('[')
            && let Some((cn, rest)) = rest.split_once("] ")
            && rest.starts_with("Peer Connection Initiated with ")
        {
            (Outcome::Success, Some(cn))
        } else if is_noise(text) || text.starts_with("TLS: Username/Password authentication") {
            // The success line is `Peer Connection Initiated`; this one precedes it.
            return Verdict::Recognised;
        } else {
            return Verdict::Unrecognised;
        };
    let mut e = ctx.event(Service::Openvpn, outcome);
    e.source = Some(addr);
    e.port = port;
    e.user = who.and_then(user);
    out.push(e);
    Verdict::Recognised
}

fn is_noise(text: &str) -> bool {
    text.starts_with("TLS Error: ")
        || text.starts_with("SIGUSR1[")
        || text.starts_with("Connection reset")
        || text.starts_with("WARNING: Bad encapsulated packet")
        || text.starts_with("TLS handshake failed")
        || text.starts_with("TCP connection established")
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Reason};

    use super::parse;
    use crate::testutil::{ip, none, one, unrecognised};

    #[test]
    fn authentication() {
        let e = one(
            parse,
            Some("ovpn-server"),
            "192.0.2.254:64480 TLS Auth Error: Auth Username/Password verification failed for peer",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("192.0.2.254"));
        assert_eq!(e.port, Some(64480));
        let e = one(
            parse,
            Some("openvpn"),
            "192.0.2.251:55329 VERIFY ERROR: depth=2, error=unable to get issuer certificate: <ROOT CA>",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::Other));
        let e = one(
            parse,
            Some("openvpn"),
            "2001:db8::9 [alice] Peer Connection Initiated with [AF_INET6]2001:db8::9",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("2001:db8::9"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e = one(
            parse,
            Some("openvpn"),
            "bob/192.0.2.3:1194 TLS Auth Error: Auth Username/Password verification failed for peer",
        );
        assert_eq!(e.user.as_deref(), Some("bob"));
        assert_eq!(e.source, ip("192.0.2.3"));
    }

    #[test]
    fn connection_noise() {
        for msg in [
            "83.97.20.30:10107 SIGUSR1[soft,connection-reset] received, client-instance restarting",
            "192.0.2.252:55330 TLS Error: TLS handshake failed",
            "TLS Error: cannot locate HMAC in incoming packet from [AF_INET]192.0.2.253:55340",
            "83.97.20.30:10107 Connection reset, restarting [0]",
        ] {
            none(parse, Some("ovpn-server"), msg);
        }
        unrecognised(parse, Some("openvpn"), "Initialization Sequence Completed");
        unrecognised(parse, Some("openvpn"), "");
    }

    #[test]
    fn names_never_move_the_address() {
        // A common name with a slash: the address is after the last one.
        let e = one(
            parse,
            Some("openvpn"),
            "6.6.6.6:1/x/192.0.2.4:1194 TLS Auth Error: Auth Username/Password verification failed for peer",
        );
        assert_eq!(e.source, ip("192.0.2.4"));
    }
}
