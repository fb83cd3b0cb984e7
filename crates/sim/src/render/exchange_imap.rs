//! Exchange Server's IMAP4 protocol log, as its front end writes it (Exchange 2013 and
//! later): one CSV line per client command, `#Fields:
//! dateTime,sessionId,seqNumber,sIp,cIp,user,duration,rqsize,rpsize,command,parameters,context`,
//! the time in UTC with milliseconds, the password masked in `parameters`, the
//! server's answer in `context` as `R=…`.
//!
//! Each attempt is its own connection: `OpenSession`, `capability`, the `login` with
//! its answer, then `logout` and `CloseSession` for a success or `CloseSession` alone
//! after a failure. A success is logged with the user in the `user` column and the
//! front end's proxying to the mailbox server in `context`; a failure as Exchange's
//! `NO LOGIN failed.`, whatever the reason (Exchange does not tell a wrong password
//! from an unknown name). The reader is `portcullis_parse::exchange_popimap`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use portcullis_core::Outcome;

use super::utc;
use crate::Attempt;

/// The directives Exchange writes at the top of a log file.
pub(super) fn header(buf: &mut Vec<u8>, start_ms: i64) -> u64 {
    buf.extend_from_slice(
        b"#Software: Microsoft Exchange Server\n#Version: 15.02.1118.007\n#Log-type: IMAP4 Protocol Log\n#Date: ",
    );
    utc(buf, start_ms, 'T', true);
    buf.extend_from_slice(b"Z\n#Fields: dateTime,sessionId,seqNumber,sIp,cIp,user,duration,rqsize,rpsize,command,parameters,context\n");
    5
}

/// The connection's id: 16 hex digits, as Exchange writes them.
pub fn session(a: &Attempt) -> String {
    format!("{:016X}", crate::rng::mix(a.tag ^ 0x1a4))
}

/// Writes one attempt's connection; returns the lines written.
pub(super) fn attempt(buf: &mut Vec<u8>, a: &Attempt, name: &str, server: IpAddr) -> u64 {
    let session = session(a);
    // `203.0.113.7:50001`, `[2001:db8::7]:50001`.
    let client = SocketAddr::new(a.source, a.port);
    let server = SocketAddr::new(server, 993);
    // A name with a comma or a quote is one CSV field, quoted.
    let csv = |v: &str| {
        if v.contains([',', '"']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    let mut seq = 0;
    let mut line = |buf: &mut Vec<u8>, user: &str, command: &str, params: &str, context: &str| {
        utc(buf, a.at_ms, 'T', true);
        let _ = writeln!(
            buf,
            "Z,{session},{seq},{server},{client},{},1,20,60,{command},{},{context}",
            csv(user),
            csv(params)
        );
        seq += 1;
    };
    let given = format!("{name} *****");
    line(buf, "", "OpenSession", "", "");
    line(buf, "", "capability", "", "R=OK");
    if a.outcome == Outcome::Success {
        line(
            buf,
            name,
            "login",
            &given,
            "\"R=OK;Msg=\"\"Proxy:mbx01:1993:SSL;ProxySuccess\"\"\"",
        );
        line(buf, name, "logout", "", "R=OK");
        line(buf, name, "CloseSession", "", "");
        5
    } else {
        line(
            buf,
            "",
            "login",
            &given,
            "\"R=\"\"a1 NO LOGIN failed.\"\"\"",
        );
        line(buf, "", "CloseSession", "", "");
        4
    }
}
