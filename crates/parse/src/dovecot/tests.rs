//! Dovecot parser tests: one per line shape (real corpus lines), correlation,
//! injection, a property test, and a corpus report for the developer.

use std::borrow::Cow;
use std::net::IpAddr;

use jiff::Timestamp;
use portcullis_core::{Event, EventTime, Origin, Outcome, Protocol, Reason};
use proptest::prelude::*;

use super::Dovecot;
use crate::{Ctx, Line, Verdict};

fn line<'a>(program: Option<&'a str>, message: &'a str) -> Line<'a> {
    Line {
        time: None,
        host: None,
        program: program.map(Cow::Borrowed),
        pid: None,
        message: Cow::Borrowed(message),
    }
}

fn at(secs: i64) -> Option<EventTime> {
    Timestamp::from_second(1_100_000_000 + secs)
        .ok()
        .map(EventTime::utc)
}

fn run_at(
    p: &mut Dovecot,
    program: Option<&str>,
    message: &str,
    time: Option<EventTime>,
) -> (Verdict, Vec<Event>) {
    let origin = Origin {
        file: Some("test.log".into()),
        line: 7,
        offset: 0,
    };
    let ctx = Ctx {
        time,
        host: Some("mx"),
        origin: &origin,
    };
    let mut out = Vec::new();
    let v = p.parse(&line(program, message), &ctx, &mut out);
    (v, out)
}

fn one(program: Option<&str>, message: &str) -> Event {
    let (v, out) = run_at(&mut Dovecot::new(), program, message, None);
    assert_eq!(v, Verdict::Recognised, "{message}");
    assert_eq!(out.len(), 1, "{message}: {out:?}");
    out.into_iter().next().unwrap()
}

fn none(program: Option<&str>, message: &str) {
    let (v, out) = run_at(&mut Dovecot::new(), program, message, None);
    assert_eq!(v, Verdict::Recognised, "{message}");
    assert!(out.is_empty(), "{message}: {out:?}");
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn fail(r: Reason) -> Outcome {
    Outcome::Failure(r)
}

#[test]
fn login_aborted_auth_failed_syslog() {
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 2 attempts): user=<username.bob>, method=PLAIN, rip=49.176.98.87, lip=113.212.99.194, TLS",
    );
    assert_eq!(e.outcome, fail(Reason::BadPassword));
    assert_eq!(e.source, ip("49.176.98.87"));
    assert_eq!(e.user.as_deref(), Some("username.bob"));
    assert_eq!(e.attempts, 2);
    assert_eq!(e.protocol, Some(Protocol::Imap));
    assert_eq!(e.session, None);
    assert_eq!(e.host.as_deref(), Some("mx"));
    assert_eq!(e.origin.line, 7);
}

#[test]
fn login_process_as_program() {
    let e = one(
        Some("pop3-login"),
        "Info: Aborted login (auth failed, 1 attempts in 62 secs): user=<carl.matx@sxxxxxxx.net>, method=PLAIN, rip=1.2.3.4, TLS",
    );
    assert_eq!(e.outcome, fail(Reason::BadPassword));
    assert_eq!(e.source, ip("1.2.3.4"));
    assert_eq!(e.user.as_deref(), Some("carl.matx@sxxxxxxx.net"));
    assert_eq!(e.protocol, Some(Protocol::Pop3));
}

#[test]
fn login_process_in_message_without_program() {
    let e = one(
        None,
        "imap-login: Info: Aborted login (auth failed, 1 attempts): user=<martin@waschbuesch.de>, method=CRAM-MD5, rip=80.187.101.33, lip=80.254.129.240, TLS",
    );
    assert_eq!(e.source, ip("80.187.101.33"));
    assert_eq!(e.user.as_deref(), Some("martin@waschbuesch.de"));
}

#[test]
fn login_v24_login_aborted_with_session() {
    let e = one(
        Some("dovecot"),
        "imap-login: Login aborted: Connection closed (auth failed, 3 attempts in 16 secs) (auth_failed): user=<test>, method=PLAIN, rip=192.0.2.241, lip=203.0.113.104, TLS, session=<9ZHq02g3J8S60fan>",
    );
    assert_eq!(e.attempts, 3);
    assert_eq!(e.source, ip("192.0.2.241"));
    assert_eq!(e.session.as_deref(), Some("9ZHq02g3J8S60fan"));
    let e = one(
        Some("dovecot"),
        "managesieve-login: Login aborted: Logged out (auth failed, 1 attempts in 10 secs) (auth_failed): user=<user@domain>, method=PLAIN, rip=192.0.2.241, lip=203.0.113.104, TLS, session=<Dp8j1Ho3suQYdo+k>",
    );
    assert_eq!(e.protocol, Some(Protocol::ManageSieve));
    assert_eq!(e.session.as_deref(), Some("Dp8j1Ho3suQYdo+k"));
}

#[test]
fn login_without_user_and_free_text() {
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts): method=PLAIN, rip=59.167.242.100, lip=113.212.99.194, TLS: Disconnected",
    );
    assert_eq!(e.user, None);
    assert_eq!(e.source, ip("59.167.242.100"));
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected: Connection closed: read(size=1003) failed: Connection reset by peer (auth failed, 1 attempts in 0 secs): user=<test@example.com>, rip=192.0.2.4, lip=127.0.0.19, session=<Lsz0Oo7WXti3b7xe>",
    );
    assert_eq!(e.user.as_deref(), Some("test@example.com"));
    assert_eq!(e.source, ip("192.0.2.4"));
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts): user=<>, method=PLAIN, rip=192.0.2.9, lip=127.0.0.19",
    );
    assert_eq!(e.user, None);
    assert_eq!(e.outcome, fail(Reason::BadPassword));
}

#[test]
fn submission_is_smtp_and_rport_is_port() {
    let e = one(
        Some("dovecot"),
        "submission-login: Client has quit the connection (auth failed, 1 attempts in 2 secs): user=<user1>, method=LOGIN, rip=192.0.2.133, lip=0.0.0.0",
    );
    assert_eq!(e.protocol, Some(Protocol::Smtp));
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<u>, method=PLAIN, rip=192.0.2.1, rport=51234, lip=192.0.2.2, lport=993, session=<abc>",
    );
    assert_eq!(e.port, Some(51234));
}

#[test]
fn plaintext_refused_and_proxy() {
    let e = one(
        Some("dovecot"),
        "pop3-login: Aborted login (tried to use disabled plaintext auth): rip=190.210.136.21, lip=113.212.99.193",
    );
    assert_eq!(e.outcome, fail(Reason::PlaintextRefused));
    assert_eq!(e.source, ip("190.210.136.21"));
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected: Too many invalid commands (tried to use disallowed plaintext auth): user=<test>, rip=192.0.2.1, lip=192.168.1.1, session=<S5dIdTFCDKUWWMbU>",
    );
    assert_eq!(e.outcome, fail(Reason::PlaintextRefused));
    assert_eq!(e.user.as_deref(), Some("test"));
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (proxy dest auth failed): user=<rtomes@acenet.com.au>, method=PLAIN, rip=192.0.2.4, lip=192.168.1.2, session=<NTI4FiZxcQCSud4G>",
    );
    assert_eq!(e.outcome, fail(Reason::BadPassword));
}

#[test]
fn sasl_not_finished_is_aborted() {
    let e = one(
        Some("dovecot"),
        "imap-login: Disconnected (client didn't finish SASL auth, waited 2 secs): user=<>, method=PLAIN, rip=192.0.2.6, lip=192.168.1.2, TLS: SSL_read() syscall failed: Connection reset by peer, TLSv1.2 with cipher DHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
    );
    assert_eq!(e.outcome, fail(Reason::Aborted));
    assert_eq!(e.source, ip("192.0.2.6"));
    none(
        Some("dovecot"),
        "imap-login: Disconnected (client didn't finish SASL auth, waited 2 secs): user=<>, rip=192.0.2.6, lip=192.168.1.2",
    );
}

#[test]
fn no_attempt_lines_emit_nothing() {
    for m in [
        "pop3-login: Disconnected (no auth attempts): rip=121.44.24.254, lip=113.212.99.194, TLS: Disconnected",
        "imap-login: Disconnected: Connection closed: SSL_accept() failed: error:1408F10B:SSL routines:ssl3_get_record:wrong version number (no auth attempts in 0 secs): user=<>, rip=192.0.2.5, lip=127.0.0.1, TLS handshaking: SSL_accept() failed: error:1408F10B:SSL routines:ssl3_get_record:wrong version number",
        "imap-login: Login aborted: Connection closed: read(size=653) failed: Connection reset by peer (no auth attempts in 1 secs) (no_auth_attempts): user=<>, rip=192.0.2.6, lip=192.0.2.1, TLS: read(size=653) failed: Connection reset by peer, session=<qMLsbvY8PLSkXGoP>",
        "imap-login: Disconnected (disconnected before auth was ready, waited 0 secs): user=<>, rip=192.0.2.5, lip=192.168.1.2, TLS handshaking: SSL_accept() syscall failed: Connection reset by peer",
        "imap-login: Login aborted: Connection closed: SSL_accept() failed: error:0A0000EB:SSL routines::no application protocol (disconnected during TLS handshake) (tls_handshake_not_finished): user=<>, rip=192.0.2.7, lip=192.0.2.1, TLS handshaking: SSL_accept() failed: error:0A0000EB:SSL routines::no application protocol, session=<J5HwbvY8QrSkXGoP>",
        "imap-login: Disconnected: a: a: a: a: test no match",
    ] {
        none(Some("dovecot"), m);
    }
}

#[test]
fn successful_login() {
    let e = one(
        Some("dovecot"),
        "imap-login: Login: user=<j.smith@example.org>, method=PLAIN, rip=203.0.113.7, lip=192.0.2.1, mpid=4242, TLS, session=<Ab3dEf9GhIjK>",
    );
    assert_eq!(e.outcome, Outcome::Success);
    assert_eq!(e.user.as_deref(), Some("j.smith@example.org"));
    assert_eq!(e.source, ip("203.0.113.7"));
    assert_eq!(e.session.as_deref(), Some("Ab3dEf9GhIjK"));
    assert_eq!(e.attempts, 1);
}

#[test]
fn auth_process_shapes() {
    /// program, message, source, user, reason, attempts, session
    type Case<'a> = (
        Option<&'a str>,
        &'a str,
        &'a str,
        Option<&'a str>,
        Reason,
        u32,
        Option<&'a str>,
    );
    let cases: &[Case<'_>] = &[
        (
            Some("dovecot"),
            "auth: passwd-file(username,1.2.3.4): unknown user",
            "1.2.3.4",
            Some("username"),
            Reason::UnknownAccount,
            1,
            None,
        ),
        (
            Some("dovecot"),
            "auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
            "1.2.3.4",
            Some("username"),
            Reason::BadPassword,
            1,
            None,
        ),
        (
            Some("dovecot"),
            "auth-worker(31326): pam(username,1.2.3.4): unknown user",
            "1.2.3.4",
            Some("username"),
            Reason::UnknownAccount,
            1,
            None,
        ),
        (
            Some("dovecot"),
            "dovecot: auth(default): pam(account@MYSERVERNAME.com,200.76.17.206): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)",
            "200.76.17.206",
            Some("account@MYSERVERNAME.com"),
            Reason::UnknownAccount,
            2,
            None,
        ),
        (
            // A multi-byte character just before the repeat count (a mangled line
            // once made the count's start land inside it).
            Some("dovecot"),
            "dovecot: auth(default): pam(a,200.76.17.206): pam_authenticate() failed: User not known to the underlying authentication module: \u{20ac}2 Time(s)",
            "200.76.17.206",
            Some("a"),
            Reason::UnknownAccount,
            2,
            None,
        ),
        (
            Some("auth-worker(default)"),
            "Info: pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
            "1.2.3.4",
            Some("username"),
            Reason::BadPassword,
            1,
            None,
        ),
        (
            Some("auth-worker(22401)"),
            "Info: sql(admin@example.de,192.0.2.5,<n4JLdHNVngZGpV2j>): unknown user",
            "192.0.2.5",
            Some("admin@example.de"),
            Reason::UnknownAccount,
            1,
            Some("n4JLdHNVngZGpV2j"),
        ),
        (
            Some("dovecot"),
            "auth: ldap(user@server.org,192.168.178.25,<LZmGp6mZaMrAqLIZ>): unknown user (SHA1 of given password: f638ff)",
            "192.168.178.25",
            Some("user@server.org"),
            Reason::UnknownAccount,
            1,
            Some("LZmGp6mZaMrAqLIZ"),
        ),
        (
            Some("dovecot"),
            "auth: ldap(user@server.org,192.168.178.25,<LZmGp6mZaMrAqLIZ>): Password mismatch (for LDAP bind) (SHA1 of given password: f638ff)",
            "192.168.178.25",
            Some("user@server.org"),
            Reason::BadPassword,
            1,
            Some("LZmGp6mZaMrAqLIZ"),
        ),
        (
            Some("auth-worker(80180)"),
            "Info: conn unix:auth-worker (uid=143): auth-worker<13247>: sql(support,192.0.2.6): unknown user",
            "192.0.2.6",
            Some("support"),
            Reason::UnknownAccount,
            1,
            None,
        ),
        (
            Some("dovecot"),
            "auth-worker(5787): conn unix:auth-worker (pid=27359,uid=97): auth-worker<55>: pam(webapps,192.0.2.7): unknown user",
            "192.0.2.7",
            Some("webapps"),
            Reason::UnknownAccount,
            1,
            None,
        ),
        (
            Some("dovecot[24941]"),
            "auth-worker(30165): pam(user@example.com,192.0.2.6,<PNHQq8pZhqIKAQGd>): pam_authenticate() failed: Permission denied",
            "192.0.2.6",
            Some("user@example.com"),
            Reason::BadPassword,
            1,
            Some("PNHQq8pZhqIKAQGd"),
        ),
        (
            Some("auth"),
            "Info: ldap(dog,52.37.139.121,): invalid credentials",
            "52.37.139.121",
            Some("dog"),
            Reason::BadPassword,
            1,
            None,
        ),
        (
            None,
            "auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)",
            "192.0.2.110",
            Some("info@example.com"),
            Reason::BadPassword,
            1,
            Some("CvN+E95Uf4e7eEnj"),
        ),
        (
            Some("dovecot"),
            "auth: shadow(bob,192.0.2.8,master,<x1>): account expired",
            "192.0.2.8",
            Some("bob"),
            Reason::Expired,
            1,
            Some("x1"),
        ),
        (
            Some("dovecot"),
            "auth: Info: passwd-file(?,192.0.2.9): Password mismatch",
            "192.0.2.9",
            None,
            Reason::BadPassword,
            1,
            None,
        ),
    ];
    for (prog, msg, addr, user, reason, attempts, session) in cases {
        let e = one(*prog, msg);
        assert_eq!(e.outcome, fail(*reason), "{msg}");
        assert_eq!(e.source, ip(addr), "{msg}");
        assert_eq!(e.user.as_deref(), *user, "{msg}");
        assert_eq!(e.attempts, *attempts, "{msg}");
        assert_eq!(e.session.as_deref(), *session, "{msg}");
        assert_eq!(e.protocol, None, "{msg}");
        assert!(
            !format!("{e:?}").contains("XxxxXXxx123"),
            "password leaked: {e:?}"
        );
    }
}

#[test]
fn auth_non_attempts() {
    none(
        Some("dovecot"),
        "auth-worker(1): Error: sql(bob,192.0.2.1,<a>): Password query failed: Lost connection to MySQL",
    );
    none(
        Some("dovecot"),
        "auth: Debug: sql(bob,192.0.2.1,<a>): unknown user",
    );
    let (v, out) = run_at(
        &mut Dovecot::new(),
        Some("dovecot"),
        "auth: Info: sql(bob,192.0.2.1): lookup something odd",
        None,
    );
    assert_eq!(v, Verdict::Unrecognised);
    assert!(out.is_empty());
}

#[test]
fn pam_unix_lines() {
    let cases = [
        (
            "dovecot-auth",
            "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=web rhost=176.61.140.224",
            "176.61.140.224",
            "web",
        ),
        (
            "dovecot-auth",
            "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=rhost=1.2.3.4 rhost=192.0.43.10",
            "192.0.43.10",
            "rhost=1.2.3.4",
        ),
        (
            "dovecot-auth",
            "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=root rhost=176.61.140.225  user=root",
            "176.61.140.225",
            "root",
        ),
        (
            "auth",
            "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=informix rhost=80.255.3.104",
            "80.255.3.104",
            "informix",
        ),
        (
            "auth",
            "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser= rhost=80.255.3.105  user=x",
            "80.255.3.105",
            "x",
        ),
    ];
    for (prog, msg, addr, user) in cases {
        let e = one(Some(prog), msg);
        assert_eq!(e.source, ip(addr), "{msg}");
        assert_eq!(e.user.as_deref(), Some(user), "{msg}");
        assert_eq!(e.outcome, fail(Reason::BadPassword));
    }
}

#[test]
fn pam_unix_injection_through_user_field() {
    // ruser and user are the same client-chosen name; the crafted name carries a fake
    // rhost and a fake user= tail.
    let name = "a rhost=6.6.6.6  user=a";
    let msg = format!(
        "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser={name} rhost=1.2.3.4  user={name}"
    );
    let e = one(Some("auth"), &msg);
    assert_eq!(e.source, ip("1.2.3.4"));
    assert_eq!(e.user.as_deref(), Some(name));
    // With an empty ruser the user= tail is free text; a second consistent cut naming
    // another address makes the line ambiguous, and nothing is trusted.
    let msg = "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser= rhost=80.255.3.105  user=x rhost=6.6.6.6";
    let (_, out) = run_at(&mut Dovecot::new(), Some("auth"), msg, None);
    assert!(out.is_empty(), "{out:?}");
}

// ---- correlation -------------------------------------------------------------------

#[test]
fn v24_auth_then_login_counts_once() {
    let mut p = Dovecot::new();
    let (_, a) = run_at(
        &mut p,
        None,
        "auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)",
        at(0),
    );
    let (_, b) = run_at(
        &mut p,
        Some("imap-login"),
        "Info: Login aborted: Connection closed (auth failed, 3 attempts in 16 secs) (auth_failed): user=<info@example.com>, method=PLAIN, rip=192.0.2.110, lip=0.0.0.0, TLS, session=<CvN+E95Uf4e7eEnj>",
        at(8),
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].attempts, 1);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].attempts, 2);
    assert_eq!(b[0].protocol, Some(Protocol::Imap));
    assert_eq!(p.table.len(), 0, "matched entries are forgotten");
}

#[test]
fn session_match_ignores_user_spelling() {
    let mut p = Dovecot::new();
    for i in 0..3 {
        run_at(
            &mut p,
            Some("dovecot"),
            "auth: sql(bob@example.org,192.0.2.1,<S1>): Password mismatch",
            at(i),
        );
    }
    let (_, b) = run_at(
        &mut p,
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 3 attempts in 5 secs): user=<Bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, session=<S1>",
        at(5),
    );
    assert!(b.is_empty(), "{b:?}");
}

#[test]
fn no_session_matches_address_and_user_in_window() {
    let mut p = Dovecot::new();
    let (_, a) = run_at(
        &mut p,
        Some("dovecot"),
        "auth-worker(3): pam(Alice,192.0.2.3): pam_authenticate() failed: Authentication failure (password mismatch?)",
        at(0),
    );
    assert_eq!(a.len(), 1);
    let (_, b) = run_at(
        &mut p,
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 2 attempts in 10 secs): user=<alice>, method=PLAIN, rip=192.0.2.3, lip=192.0.2.2",
        at(9),
    );
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].attempts, 1);
}

#[test]
fn outside_window_counts_twice() {
    let mut p = Dovecot::new();
    run_at(
        &mut p,
        Some("dovecot"),
        "auth: passwd-file(alice,192.0.2.3): Password mismatch",
        at(0),
    );
    let (_, b) = run_at(
        &mut p,
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.3, lip=192.0.2.2",
        at(100),
    );
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].attempts, 1);
}

#[test]
fn different_session_is_another_connection() {
    let mut p = Dovecot::new();
    run_at(
        &mut p,
        Some("dovecot"),
        "auth: sql(alice,192.0.2.3,<A>): Password mismatch",
        at(0),
    );
    let (_, b) = run_at(
        &mut p,
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.3, lip=192.0.2.2, session=<B>",
        at(1),
    );
    assert_eq!(b.len(), 1);
}

#[test]
fn more_auth_lines_than_login_attempts() {
    let mut p = Dovecot::new();
    for i in 0..4 {
        run_at(
            &mut p,
            Some("dovecot"),
            "auth: sql(alice,192.0.2.3,<K>): Password mismatch",
            at(i),
        );
    }
    let (v, b) = run_at(
        &mut p,
        Some("dovecot"),
        "pop3-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<alice>, method=PLAIN, rip=192.0.2.3, session=<K>",
        at(4),
    );
    assert_eq!(v, Verdict::Recognised);
    assert!(b.is_empty());
    assert_eq!(p.table.len(), 0);
}

#[test]
fn pam_module_and_dovecot_pam_line_are_one_attempt() {
    let mut p = Dovecot::new();
    let (_, a) = run_at(
        &mut p,
        Some("auth"),
        "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=root rhost=192.0.2.50  user=root",
        at(0),
    );
    let (_, b) = run_at(
        &mut p,
        Some("dovecot"),
        "auth-worker(7): pam(root,192.0.2.50,<Q>): pam_authenticate() failed: Authentication failure (password mismatch?)",
        at(2),
    );
    let (_, c) = run_at(
        &mut p,
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 1 attempts in 3 secs): user=<root>, method=PLAIN, rip=192.0.2.50, session=<Q>",
        at(3),
    );
    assert_eq!(a.len() + b.len() + c.len(), 1, "{a:?} {b:?} {c:?}");
}

#[test]
fn entries_expire_in_event_time() {
    let mut p = Dovecot::new();
    run_at(
        &mut p,
        Some("dovecot"),
        "auth: sql(alice,192.0.2.3,<K>): Password mismatch",
        at(0),
    );
    assert_eq!(p.table.len(), 1);
    run_at(
        &mut p,
        Some("dovecot"),
        "auth: sql(bob,192.0.2.4,<L>): Password mismatch",
        at(601),
    );
    assert_eq!(p.table.len(), 1);
}

#[test]
fn table_is_capped() {
    let cap = super::correlate::DEFAULT_CAP;
    let mut p = Dovecot::new();
    let mut out = Vec::new();
    let origin = Origin::default();
    for i in 0..200_000u32 {
        let msg = format!("auth: sql(u{i},192.0.2.1,<s{i}>): Password mismatch");
        let ctx = Ctx {
            time: at(i64::from(i / 1000)),
            host: None,
            origin: &origin,
        };
        out.clear();
        p.parse(&line(Some("dovecot"), &msg), &ctx, &mut out);
        assert!(p.table.len() <= cap);
    }
    assert_eq!(p.table.len(), cap);
    let mut small = Dovecot::with_cap(10);
    for i in 0..1000 {
        run_at(
            &mut small,
            Some("dovecot"),
            &format!("auth: sql(u{i},192.0.2.1,<s{i}>): Password mismatch"),
            None,
        );
        assert!(small.table.len() <= 10);
    }
}

// ---- injection ---------------------------------------------------------------------

#[test]
fn crafted_login_user_never_moves_address() {
    let users = [
        ">, method=PLAIN, rip=6.6.6.6, lip=7.7.7.7, session=<evil>",
        "x, rip=6.6.6.6",
        "a>: user=<b>, rip=6.6.6.6",
        "(auth failed, 99 attempts in 1 secs)",
        "\u{1b}[31mred, rip=6.6.6.6\u{1b}[0m",
        ">, rport=1, session=<F>",
    ];
    for u in users {
        let msg = format!(
            "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{u}>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, session=<real>"
        );
        let e = one(Some("dovecot"), &msg);
        assert_eq!(e.source, ip("192.0.2.10"), "{u}");
        assert_eq!(e.attempts, 1, "{u}");
        assert_eq!(e.session.as_deref(), Some("real"), "{u}");
        assert_eq!(e.port, None, "{u}");
        assert_eq!(e.user.as_deref(), Some(u), "{u}");
    }
}

#[test]
fn crafted_auth_user_never_moves_address() {
    let users = [
        "x,6.6.6.6",
        "x,6.6.6.6): unknown user",
        "x,6.6.6.6,<s>): unknown user",
        "x)",
        "x,6.6.6.6)<ab>: unknown user",
        "rip=6.6.6.6",
    ];
    for u in users {
        for msg in [
            format!("auth: sql({u},192.0.2.20,<real>): Password mismatch"),
            format!("auth: passwd-file({u},192.0.2.20): Password mismatch"),
            format!(
                "auth({u},192.0.2.20,sasl:plain)<real>: Info: sql: Password mismatch (given password: p)"
            ),
        ] {
            let e = one(Some("dovecot"), &msg);
            assert_eq!(e.source, ip("192.0.2.20"), "{msg}");
            assert_eq!(e.user.as_deref(), Some(u), "{msg}");
        }
    }
}

#[test]
fn crafted_password_never_moves_address() {
    let msg = "auth(bob,192.0.2.30,sasl:plain)<real>: Info: sql: Password mismatch (given password: x,6.6.6.6)<zz>: unknown user)";
    let e = one(None, msg);
    assert_eq!(e.source, ip("192.0.2.30"));
    assert_eq!(e.outcome, fail(Reason::BadPassword));
    assert!(!format!("{e:?}").contains("6.6.6.6"));
    let msg = "auth: passwd-file(bob,192.0.2.30): Password mismatch (given password: ,6.6.6.6): unknown user)";
    let e = one(Some("dovecot"), msg);
    assert_eq!(e.source, ip("192.0.2.30"));
}

// ---- properties --------------------------------------------------------------------

/// Every address spelled anywhere in `text`.
fn addresses_in(text: &str) -> Vec<IpAddr> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .flat_map(|tok| {
            // A token may glue an address to a port or a trailing colon.
            let mut v = Vec::new();
            for cand in [tok, tok.trim_end_matches(':'), tok.trim_matches('.')] {
                if let Some(a) = portcullis_core::address::parse(cand) {
                    v.push(a);
                }
            }
            v
        })
        .collect()
}

const SAMPLES: &[(Option<&str>, &str)] = &[
    (
        Some("dovecot"),
        "imap-login: Disconnected (auth failed, 2 attempts in 3 secs): user=<bob>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, TLS, session=<abc>",
    ),
    (
        Some("dovecot"),
        "auth: sql(admin@example.ru,192.168.144.226,<6rXunFtu493AqJDi>): Password mismatch",
    ),
    (
        None,
        "auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: XxxxXXxx123)",
    ),
    (
        Some("auth"),
        "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=root rhost=176.61.140.225  user=root",
    ),
    (
        Some("dovecot"),
        "imap-login: Login: user=<j>, method=PLAIN, rip=2001:db8::1, lip=::1, mpid=1, session=<x>",
    ),
    (
        Some("dovecot"),
        "dovecot: auth(default): pam(a,200.76.17.206): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)",
    ),
];

proptest! {
    #[test]
    fn random_text_never_panics_nor_invents_addresses(prog in proptest::option::of("[a-z()0-9-]{0,12}"), msg in "\\PC{0,200}") {
        let (_, out) = run_at(&mut Dovecot::new(), prog.as_deref(), &msg, None);
        let found = addresses_in(&msg);
        for e in out {
            if let Some(a) = e.source { prop_assert!(found.contains(&a), "{msg}: {a}"); }
        }
    }

    #[test]
    fn mutated_lines_never_panic_nor_invent_addresses(
        idx in 0..SAMPLES.len(),
        cut in 0usize..200,
        at in 0usize..200,
        insert in "[ ,:<>()=a-z0-9.\\[\\]]{0,30}",
    ) {
        let (prog, base) = SAMPLES[idx];
        let mut s: String = base.to_owned();
        let cut = cut.min(s.len());
        let cut = (0..=cut).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        let at = at.min(cut);
        let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut.max(at));
        s.insert_str(at, &insert);
        let (_, out) = run_at(&mut Dovecot::new(), prog, &s, None);
        let found = addresses_in(&s);
        for e in out {
            if let Some(a) = e.source { prop_assert!(found.contains(&a), "{s}: {a}"); }
        }
    }
}

// ---- corpus report -----------------------------------------------------------------

/// A crude envelope splitter for the corpus report: `(program, message)` after a
/// syslog, ISO or TAI64N stamp and an optional host. Only for this developer aid.
pub(crate) fn split_envelope(raw: &str) -> (Option<String>, String) {
    let mut rest = raw;
    if rest.starts_with('@') {
        rest = rest.split_once(' ').map_or("", |x| x.1);
    } else if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        // 2013-08-11 03:56:40
        rest = rest.splitn(3, ' ').nth(2).unwrap_or("");
    } else {
        // Mmm dd hh:mm:ss (day may be space-padded)
        let mut it = rest.split_whitespace();
        let n: usize = [it.next(), it.next(), it.next()]
            .iter()
            .flatten()
            .map(|s| s.len())
            .sum();
        let mut consumed = 0;
        let mut seen = 0;
        for (i, c) in rest.char_indices() {
            if !c.is_whitespace() {
                seen += c.len_utf8();
            }
            if seen == n {
                consumed = i + c.len_utf8();
                break;
            }
        }
        rest = rest[consumed..].trim_start();
    }
    let is_prog = |t: &str| -> Option<String> {
        let t = t.strip_suffix(':')?;
        let base = t.split('[').next().unwrap_or(t);
        let ok = !base.is_empty()
            && base
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_/.()".contains(&c))
            && !base.contains(',');
        ok.then(|| base.to_owned())
    };
    let mut tokens = rest.splitn(3, ' ');
    let t1 = tokens.next().unwrap_or("");
    let t2 = tokens.next().unwrap_or("");
    if let Some(p) = is_prog(t1) {
        return (Some(p), rest[t1.len()..].trim_start().to_owned());
    }
    let hostlike = portcullis_core::address::is_host_name(t1);
    if hostlike {
        if let Some(p) = is_prog(t2) {
            let after = rest[t1.len()..].trim_start();
            return (Some(p), after[t2.len()..].trim_start().to_owned());
        }
    }
    (None, rest.to_owned())
}

/// `(annotation, line)` pairs of a corpus file.
pub(crate) fn corpus(name: &str) -> Vec<(serde_json::Value, String)> {
    let path = format!(
        "{}/../../../shared/corpora/fail2ban/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut pending: Option<serde_json::Value> = None;
    let mut options = String::new();
    for l in text.lines() {
        let t = l.trim_start();
        if let Some(o) = t.strip_prefix("# filterOptions:") {
            options = o.trim().to_owned();
        } else if let Some(j) = t
            .strip_prefix("# failJSON:")
            .or_else(|| t.strip_prefix("#failJSON:"))
        {
            pending = serde_json::from_str(j.trim()).ok();
        } else if t.starts_with('#') || t.is_empty() {
        } else if let Some(mut a) = pending.take() {
            if let Some(obj) = a.as_object_mut() {
                obj.insert("_options".into(), options.clone().into());
            }
            out.push((a, l.to_owned()));
        }
    }
    out
}

/// Prints where the parser disagrees with fail2ban's annotations (run with
/// `--nocapture`); never fails, the conformance test lives in `tests/`.
#[test]
fn corpus_report() {
    let mut p = Dovecot::new();
    let (mut agree, mut disagree) = (0, 0);
    for (ann, raw) in corpus("dovecot.log") {
        let (prog, msg) = split_envelope(&raw);
        let (v, out) = run_at(&mut p, prog.as_deref(), &msg, None);
        let want = ann
            .get("match")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let host = ann.get("host").and_then(|h| h.as_str()).map(str::to_owned);
        let got_fail = out.iter().any(|e| e.outcome.is_failure());
        let host_ok = !want || out.iter().any(|e| e.source.map(|a| a.to_string()) == host);
        if got_fail == want && host_ok {
            agree += 1;
        } else {
            disagree += 1;
            let opts = ann.get("_options").and_then(|o| o.as_str()).unwrap_or("");
            // Aggressive-only matches are connection-level events (no credentials were
            // tried): deliberately not login attempts.
            if opts.contains("aggressive") && !opts.contains("{}") {
                println!("(deliberate: aggressive-mode only, not an attempt)");
            }
            println!(
                "DISAGREE want={want} got={got_fail} verdict={v:?} prog={prog:?}\n  {raw}\n  {out:?}"
            );
        }
    }
    println!("dovecot corpus: {agree} agree, {disagree} disagree");
}
