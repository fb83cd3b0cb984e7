//! Postfix `smtpd` SASL logins.
//!
//! Postfix logs a failed SMTP AUTH as `warning: HOST[ADDR]: SASL MECH authentication
//! failed: TEXT` (no user, except in newer versions' `, sasl_username=U` suffix) and a
//! successful one only when a message is submitted: `QUEUEID: client=HOST[ADDR],
//! sasl_method=M, sasl_username=U`. Everything else smtpd logs (connects, rejects,
//! pipelining, `auth=0/1` disconnect counters, postscreen) is connection or spam
//! policy, not a password attempt, and is recognised without an event.
//!
//! The client's reverse-DNS name precedes the address and is under the client's
//! control (its PTR record), so the address is read from the last `[...]` before the
//! `: SASL` marker. A PID is not a session, so events carry none.

use crate::text::{find, rfind};
use std::net::IpAddr;

use portcullis_core::{Event, Outcome, Protocol, Reason, Service, address};

use crate::{Ctx, Line, Verdict};

/// Postfix parser. Postfix needs no correlation, so it holds no state; the type exists
/// so every service parser has the same shape.
#[derive(Debug, Default)]
pub struct Postfix {}

impl Postfix {
    /// A new parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one line routed to Postfix (program `postfix*`), appending any events.
    pub fn parse(&mut self, line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
        let program = line.program.as_deref().unwrap_or("");
        let daemon = program.rsplit('/').next().unwrap_or(program);
        // Only smtpd authenticates clients; qmgr, cleanup, smtp, postscreen, ... never
        // log a login attempt.
        if daemon != "smtpd" {
            return if program.starts_with("postfix") {
                Verdict::Recognised
            } else {
                Verdict::Unrecognised
            };
        }
        let msg: &str = &line.message;
        if let Some(rest) = msg.strip_prefix("warning: ") {
            if let Some(f) = sasl_failure(rest) {
                if let Some(reason) = f.reason {
                    let mut e = ctx.event(Service::Postfix, Outcome::Failure(reason));
                    e.protocol = Some(Protocol::Smtp);
                    e.source = f.addr;
                    e.port = f.port;
                    e.user = f.user.map(str::to_owned);
                    out.push(e);
                }
                return Verdict::Recognised;
            }
            // Other warnings (Cyrus SASL's detail line for the same attempt, DNS
            // mismatches, rate limits, TLS trouble) are not attempts of their own.
            return Verdict::Recognised;
        }
        const NOT_ATTEMPTS: [&str; 14] = [
            "connect from ",
            "disconnect from ",
            "lost connection ",
            "improper command pipelining ",
            "too many errors ",
            "timeout after ",
            "NOQUEUE: ",
            "Anonymous TLS ",
            "Trusted TLS ",
            "Untrusted TLS ",
            "Verified TLS ",
            "SSL_accept ",
            "setting up TLS ",
            "discarding EHLO ",
        ];
        if let Some(rest) = msg.strip_prefix("NOQUEUE: client=") {
            return self.client(rest, ctx, out);
        }
        if NOT_ATTEMPTS.iter().any(|p| msg.starts_with(p)) {
            return Verdict::Recognised;
        }
        // `QUEUEID: ...`: a queue id is an upper-case hex or long-form base-52 token.
        if let Some((id, rest)) = msg.split_once(": ") {
            if !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric()) {
                if let Some(client) = rest.strip_prefix("client=") {
                    return self.client(client, ctx, out);
                }
                return Verdict::Recognised;
            }
        }
        Verdict::Unrecognised
    }

    /// Postfix holds nothing between lines.
    pub fn flush(&mut self, _out: &mut Vec<Event>) {}

    /// `HOST[ADDR][:PORT], sasl_method=M, sasl_username=U[, sasl_sender=S]`: a success
    /// when a SASL user is named, otherwise a plain connection.
    fn client(&self, rest: &str, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
        let Some(u) = find!(rest.as_bytes(), b", sasl_username=") else {
            return Verdict::Recognised;
        };
        let host = rest.split_once(", ").map_or(rest, |(h, _)| h);
        let (addr, port) = host_addr(host);
        let user = &rest[u + 16..];
        // Server-written fields that may follow the user.
        let end = [
            find!(user.as_bytes(), b", sasl_sender="),
            find!(user.as_bytes(), b", orig_queue_id="),
            find!(user.as_bytes(), b", orig_client="),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(user.len());
        let user = &user[..end];
        let mut e = ctx.event(Service::Postfix, Outcome::Success);
        e.protocol = Some(Protocol::Smtp);
        e.source = addr;
        e.port = port;
        e.user = (!user.is_empty()).then(|| user.to_owned());
        out.push(e);
        Verdict::Recognised
    }
}

/// A parsed `HOST[ADDR]: SASL MECH authentication failed: TEXT`.
#[derive(Debug)]
struct SaslFailure<'a> {
    addr: Option<IpAddr>,
    port: Option<u16>,
    user: Option<&'a str>,
    /// `None` when the line is not a password attempt (server fault, bad mechanism).
    reason: Option<Reason>,
}

fn sasl_failure(rest: &str) -> Option<SaslFailure<'_>> {
    let i = find!(rest.as_bytes(), b": SASL ")?;
    let (addr, port) = host_addr(&rest[..i]);
    let after = &rest[i + 7..];
    let j = find!(after.as_bytes(), b" authentication failed")?;
    let mech = &after[..j];
    if mech.is_empty() || mech.contains(' ') {
        return None;
    }
    let text = after[j + 22..]
        .strip_prefix(':')
        .unwrap_or(&after[j + 22..])
        .trim();
    let (text, user) = match rfind!(text.as_bytes(), b", sasl_username=") {
        Some(k) => (&text[..k], Some(&text[k + 16..]).filter(|u| !u.is_empty())),
        None => (text, None),
    };
    Some(SaslFailure {
        addr,
        port,
        user,
        reason: classify(text),
    })
}

/// The failure reason for the SASL library's text.
fn classify(text: &str) -> Option<Reason> {
    let lower = text.to_ascii_lowercase();
    // The server could not reach its authentication backend: nobody's password was
    // judged. A mechanism the server does not offer is not a password attempt either.
    if lower.contains("connection lost to authentication server")
        || lower.contains("invalid authentication mechanism")
    {
        return None;
    }
    Some(if lower.contains("user not found") {
        Reason::UnknownAccount
    } else if lower.contains("expired") {
        Reason::Expired
    } else if lower.contains("account disabled") {
        Reason::Disabled
    } else if lower.contains("locked") {
        Reason::Locked
    } else if lower.contains("generic failure") {
        Reason::Other
    } else {
        // `authentication failure`, empty text, base64 challenges (`UGFzc3dvcmQ6`),
        // `Password:`, `(reason unavailable)`.
        Reason::BadPassword
    })
}

/// `HOST[ADDR]` or `HOST[ADDR]:PORT`: the address in the last brackets, since the host
/// name before them is the client's reverse DNS.
fn host_addr(s: &str) -> (Option<IpAddr>, Option<u16>) {
    let Some(close) = s.rfind(']') else {
        return (None, None);
    };
    let Some(open) = s[..close].rfind('[') else {
        return (None, None);
    };
    let addr = address::parse(&s[open + 1..close]);
    let port = s[close + 1..]
        .strip_prefix(':')
        .and_then(|p| p.parse().ok());
    (addr, port)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::IpAddr;

    use portcullis_core::{Event, Origin, Outcome, Protocol, Reason};
    use proptest::prelude::*;

    use super::Postfix;
    use crate::{Ctx, Line, Verdict};

    fn run(program: &str, message: &str) -> (Verdict, Vec<Event>) {
        let origin = Origin {
            file: Some("mail.log".into()),
            line: 3,
            offset: 0,
        };
        let ctx = Ctx {
            time: None,
            host: Some("mx"),
            origin: &origin,
        };
        let line = Line {
            time: None,
            host: None,
            program: Some(Cow::Borrowed(program)),
            pid: Some(42),
            message: Cow::Borrowed(message),
        };
        let mut out = Vec::new();
        let v = Postfix::new().parse(&line, &ctx, &mut out);
        (v, out)
    }

    fn one(program: &str, message: &str) -> Event {
        let (v, out) = run(program, message);
        assert_eq!(v, Verdict::Recognised, "{message}");
        assert_eq!(out.len(), 1, "{message}: {out:?}");
        out.into_iter().next().unwrap()
    }

    fn none(program: &str, message: &str) {
        let (v, out) = run(program, message);
        assert_eq!(v, Verdict::Recognised, "{message}");
        assert!(out.is_empty(), "{message}: {out:?}");
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn sasl_failures() {
        let cases = [
            (
                "postfix/smtpd",
                "warning: 114-44-142-233.dynamic.hinet.net[114.44.142.233]: SASL CRAM-MD5 authentication failed: PDc3OTEwNTkyNTEyMzA2NDIuMTIyODI1MzA2MUBoZWw+",
                "114.44.142.233",
                None,
            ),
            (
                "postfix/smtpd",
                "warning: HOSTNAME[1.1.1.1]: SASL LOGIN authentication failed: authentication failure",
                "1.1.1.1",
                None,
            ),
            (
                "postfix/submission/smtpd",
                "warning: unknown[82.221.106.233]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
                "82.221.106.233",
                None,
            ),
            (
                "postfix/submission/smtpd",
                "warning: unknown[82.221.106.233]: SASL login authentication failed: UGFzc3dvcmQ6",
                "82.221.106.233",
                None,
            ),
            (
                "postfix-incoming/smtpd",
                "warning: unknown[1.1.1.1]: SASL LOGIN authentication failed: Password:",
                "1.1.1.1",
                None,
            ),
            (
                "postfix/smtps/smtpd",
                "warning: astra4139.startdedicated.de[62.138.2.143]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
                "62.138.2.143",
                None,
            ),
            (
                "postfix/smtpd",
                "warning: mail.foldsandwalker.com[98.191.84.74]: SASL Plain authentication failed:",
                "98.191.84.74",
                None,
            ),
            (
                "postfix/submission/smtpd",
                "warning: unknown[192.0.2.150]: SASL PLAIN authentication failed: ",
                "192.0.2.150",
                None,
            ),
            (
                "postfix/smtpd",
                "warning: unknown[192.0.2.152]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=admin",
                "192.0.2.152",
                Some("admin"),
            ),
            (
                "postfix/smtpd",
                "warning: unknown[2001:db8::7]: SASL PLAIN authentication failed: authentication failure",
                "2001:db8::7",
                None,
            ),
        ];
        for (prog, msg, addr, user) in cases {
            let e = one(prog, msg);
            assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword), "{msg}");
            assert_eq!(e.source, ip(addr), "{msg}");
            assert_eq!(e.user.as_deref(), user, "{msg}");
            assert_eq!(e.protocol, Some(Protocol::Smtp));
            assert_eq!(e.session, None);
            assert_eq!(e.attempts, 1);
            assert_eq!(e.port, None);
        }
    }

    #[test]
    fn port_after_address() {
        let e = one(
            "postfix/smtpd",
            "warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: authentication failure",
        );
        assert_eq!(e.source, ip("192.0.2.237"));
        assert_eq!(e.port, Some(55729));
    }

    #[test]
    fn sasl_non_attempts() {
        none(
            "postfix/smtpd",
            "warning: unknown[1.1.1.1]: SASL LOGIN authentication failed: Connection lost to authentication server",
        );
        none(
            "postfix/smtpd",
            "warning: host[192.0.2.5]: SASL CRAM-MD5 authentication failed: Invalid authentication mechanism",
        );
        none(
            "postfix/smtpd",
            "warning: SASL authentication failure: Password verification failed",
        );
    }

    #[test]
    fn success_with_sasl_user() {
        let e = one(
            "postfix/submission/smtpd",
            "4Fq2Kx1bZ9z9sXk: client=unknown[192.0.2.9]:41234, sasl_method=PLAIN, sasl_username=alice@example.org, sasl_sender=bob@example.org",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.source, ip("192.0.2.9"));
        assert_eq!(e.port, Some(41234));
        assert_eq!(e.user.as_deref(), Some("alice@example.org"));
        let e = one(
            "postfix/smtpd",
            "NOQUEUE: client=mail.example.com[192.0.2.10], sasl_method=LOGIN, sasl_username=bob",
        );
        assert_eq!(e.user.as_deref(), Some("bob"));
        none(
            "postfix/smtpd",
            "00ADB3C0899: client=example.com[192.0.2.1]",
        );
    }

    #[test]
    fn policy_and_connection_lines_are_not_attempts() {
        for (prog, msg) in [
            (
                "postfix/smtpd",
                "disconnect from unknown[192.0.2.1] helo=1 auth=0/1 quit=1 commands=2/3",
            ),
            ("postfix/smtpd", "connect from unknown[192.0.2.1]"),
            (
                "postfix/smtpd",
                "lost connection after AUTH from unknown[192.0.2.23]",
            ),
            (
                "postfix/smtpd",
                "NOQUEUE: reject: RCPT from unknown[192.0.2.116]: 504 5.5.2 <WIN-6A0KEE6QVP5>: Helo command rejected: need fully-qualified hostname; from=<spameri@example.com> to=<spameri@example.com> proto=ESMTP helo=<WIN-6A0KEE6QVP5>",
            ),
            (
                "postfix/smtpd",
                "00ADB3C0899: reject: RCPT from example.com[192.0.2.1]: 550 5.1.1 <sales@server.com>: Recipient address rejected: User unknown in local recipient table",
            ),
            (
                "postfix/smtpd",
                "improper command pipelining after AUTH from unknown[1.2.3.4]: QUIT",
            ),
            (
                "postfix/smtpd",
                "too many errors after RCPT from example.com[192.0.2.11]",
            ),
            (
                "postfix/smtpd",
                "warning: hostname bad.example.com does not resolve to address 192.0.2.44: Name or service not known",
            ),
            (
                "postfix/postscreen",
                "PREGREET 14 after 0.08 from [192.0.2.2]:59415: EHLO ylmf-pc\\r\\n",
            ),
            (
                "postfix/qmgr",
                "00ADB3C0899: from=<a@b>, size=1, nrcpt=1 (queue active)",
            ),
            (
                "postfix/smtp",
                "00ADB3C0899: to=<a@b>, relay=none, status=sent",
            ),
        ] {
            none(prog, msg);
        }
    }

    #[test]
    fn crafted_names_never_move_address() {
        // Postfix logs `unknown` for a PTR name that is not a valid host name, so the
        // name holds no brackets or colons; the address is read from the last brackets
        // before the first `: SASL ` regardless.
        let e = one(
            "postfix/smtpd",
            "warning: evil-6.6.6.6.example[192.0.2.60]: SASL LOGIN authentication failed: authentication failure",
        );
        assert_eq!(e.source, ip("192.0.2.60"));
        // The sasl_username suffix is the client's text and comes after the address.
        let user = "x]: SASL LOGIN authentication failed: [6.6.6.6";
        let msg = format!(
            "warning: unknown[192.0.2.61]: SASL LOGIN authentication failed: (reason unavailable), sasl_username={user}"
        );
        let e = one("postfix/smtpd", &msg);
        assert_eq!(e.source, ip("192.0.2.61"));
        assert_eq!(e.user.as_deref(), Some(user));
        let msg = "warning: unknown[192.0.2.62]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=a, sasl_username=b";
        let e = one("postfix/smtpd", msg);
        assert_eq!(e.source, ip("192.0.2.62"));
        // A forged success suffix in a failed user's name stays one failure.
        let (_, out) = run(
            "postfix/smtpd",
            "warning: unknown[192.0.2.63]: SASL PLAIN authentication failed: x, sasl_username=q\n1: client=h[6.6.6.6], sasl_method=PLAIN, sasl_username=r",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source, ip("192.0.2.63"));
    }

    fn addresses_in(text: &str) -> Vec<IpAddr> {
        text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
            .flat_map(|t| [t, t.trim_end_matches(':'), t.trim_matches('.')])
            .filter_map(portcullis_core::address::parse)
            .collect()
    }

    const SAMPLES: &[&str] = &[
        "warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: authentication failure",
        "warning: unknown[192.0.2.152]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=admin",
        "4Fq2Kx1bZ9z9sXk: client=unknown[192.0.2.9]:41234, sasl_method=PLAIN, sasl_username=alice@example.org",
    ];

    proptest! {
        #[test]
        fn random_text_never_panics_nor_invents_addresses(msg in "\\PC{0,200}") {
            let (_, out) = run("postfix/smtpd", &msg);
            let found = addresses_in(&msg);
            for e in out {
                if let Some(a) = e.source { prop_assert!(found.contains(&a), "{msg}: {a}"); }
            }
        }

        #[test]
        fn mutated_lines_never_panic_nor_invent_addresses(
            idx in 0..SAMPLES.len(),
            cut in 0usize..150,
            at in 0usize..150,
            insert in "[ ,:<>()=a-z0-9.\\[\\]]{0,30}",
        ) {
            let mut s = SAMPLES[idx].to_owned();
            let cut = cut.min(s.len());
            let at = at.min(cut);
            s.truncate(cut);
            s.insert_str(at, &insert);
            let (_, out) = run("postfix/smtpd", &s);
            let found = addresses_in(&s);
            for e in out {
                if let Some(a) = e.source { prop_assert!(found.contains(&a), "{s}: {a}"); }
            }
        }
    }

    /// Prints where the parser disagrees with fail2ban's annotations (run with
    /// `--nocapture`). fail2ban's postfix.log mostly annotates spam and connection
    /// policy, which we deliberately do not count; only SASL lines are logins.
    #[test]
    fn corpus_report() {
        use crate::dovecot::tests::{corpus, split_envelope};
        let (mut agree, mut deliberate, mut disagree) = (0, 0, 0);
        for (ann, raw) in corpus("postfix.log") {
            let (prog, msg) = split_envelope(&raw);
            let Some(prog) = prog else {
                println!("NO PROGRAM: {raw}");
                continue;
            };
            let (v, out) = run(&prog, &msg);
            let want = ann
                .get("match")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let host = ann.get("host").and_then(|h| h.as_str()).map(str::to_owned);
            let got = out.iter().any(|e| e.outcome.is_failure());
            let host_ok = !want || out.iter().any(|e| e.source.map(|a| a.to_string()) == host);
            if got == want && host_ok {
                agree += 1;
            } else if want && !got && v == Verdict::Recognised && !msg.contains(": SASL ") {
                deliberate += 1;
                println!("deliberate (not a login attempt): {raw}");
            } else {
                disagree += 1;
                if msg.contains("Invalid authentication mechanism") {
                    // Annotated twice: no match in fail2ban's auth mode, a match in its
                    // aggressive mode. Not a password attempt; we side with auth mode.
                    println!("(deliberate: aggressive-mode only)");
                }
                println!("DISAGREE want={want} got={got} verdict={v:?}\n  {raw}\n  {out:?}");
            }
        }
        println!("postfix corpus: {agree} agree, {deliberate} deliberate, {disagree} disagree");
    }
}
