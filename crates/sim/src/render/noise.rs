//! A mail delivery: the queue chatter that makes up most of a real mail log, from
//! Postfix's smtpd, cleanup, qmgr and lmtp, and Dovecot's LMTP. No login in it.

use std::net::IpAddr;

use super::{Lines, pid, queue_id, session};

/// An address for a sending mail server (no login is ever made from it).
fn sender(tag: u64) -> IpAddr {
    let x = crate::rng::mix(tag ^ 0x3a11);
    let first = [23u8, 40, 52, 64, 74, 91, 104, 136, 148, 185, 209, 212][(x % 12) as usize];
    IpAddr::from([
        first,
        (x >> 8) as u8,
        (x >> 16) as u8,
        1 + (x >> 24) as u8 % 250,
    ])
}

pub(super) fn delivery(lines: &mut Lines<'_>, name: &str, tag: u64, host: &str) {
    let ip = sender(tag);
    let qid = queue_id(tag);
    let (p, c, q, l) = (
        pid(tag, 5000),
        pid(tag, 7000),
        pid(tag, 800),
        pid(tag, 8000),
    );
    let sid = session(tag);
    let msgid = crate::rng::mix(tag);
    let size = 2_000 + crate::rng::mix(tag ^ 7) % 200_000;
    lines.line(format_args!(
        "postfix/smtpd[{p}]: connect from mail.sender.example[{ip}]"
    ));
    lines.line(format_args!(
        "postfix/smtpd[{p}]: {qid}: client=mail.sender.example[{ip}]"
    ));
    lines.line(format_args!(
        "postfix/cleanup[{c}]: {qid}: message-id=<{msgid:016x}@sender.example>"
    ));
    lines.line(format_args!(
        "postfix/qmgr[{q}]: {qid}: from=<news@sender.example>, size={size}, nrcpt=1 (queue active)"
    ));
    lines.line(format_args!(
        "postfix/smtpd[{p}]: disconnect from mail.sender.example[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
    ));
    lines.line(format_args!(
        "postfix/lmtp[{l}]: {qid}: to=<{name}>, relay={host}[private/dovecot-lmtp], delay=0.12, delays=0.05/0.01/0.02/0.04, dsn=2.0.0, status=sent (250 2.0.0 <{name}> {sid} Saved)"
    ));
    lines.line(format_args!("dovecot: lmtp({name})<{l}><{sid}>: msgid=<{msgid:016x}@sender.example>: saved mail to INBOX"));
    lines.line(format_args!("postfix/qmgr[{q}]: {qid}: removed"));
}
