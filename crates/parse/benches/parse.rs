//! Throughput of the parsing pipeline on generated RFC 3164 mail and SSH logs.
//!
//! `cargo bench -p portcullis-parse` measures, in lines per second:
//!
//! - `push/noise`: mail-server lines that are not about logins (deliveries, queue
//!   chatter, LMTP and IMAP sessions): the prefilter rejects them.
//! - `push/dovecot`: Dovecot 2.3 login, failed-login and auth-worker lines.
//! - `push/postfix`: Postfix SASL failures and SASL-authenticated submissions.
//! - `push/sshd`: OpenSSH failed, invalid-user, accepted and preauth lines.
//! - `push/mix`: a realistic mail log, ~12 % authentication lines, as written by
//!   `benches/gen-mail-log.py`.
//! - `push/openvpn`, `push/nginx`, `push/apache`, `push/roundcube`, `push/sogo`,
//!   `push/exim`, `push/courier`, `push/cyrus`, `push/pam`, `push/radius`: one login line
//!   per event of each format (70 % failures from bots), in the format's usual log
//!   (syslog, or the server's own file: nginx and Apache error logs, Roundcube's
//!   `errors`/`userlogins`, Exim's main log, FreeRADIUS' `radius.log`).
//! - `push/rules`: two custom rules (`[[parse.rules]]`) on the lines they are for.
//! - `envelope/rfc3164`: [`EnvelopeReader::read`] alone on the lines of the mix.
//! - `documents/w3c`: an Exchange IIS log (OWA, ActiveSync, EWS, MAPI requests, ~30 %
//!   of them logins, failures and successes, some OWA logon POSTs).
//! - `documents/entra`, `documents/winlogbeat`, `documents/keycloak`: JSON lines of
//!   sign-ins, 4624/4625/4771 events and Keycloak events, one record a line, about
//!   the size the vendors' exports have (an Entra record ~1 KB).
//! - `documents/custom`: an application's JSON log (~400 B a record, three quarters
//!   logins) read by a `[[parse.json_formats]]` mapping.
//! - `documents/exchange-smtp`, `documents/exchange-popimap`: Exchange's SMTP Receive
//!   and IMAP4 protocol logs, whole sessions (a login in every session, a third of them
//!   failing; the other lines the sessions' greetings, commands and disconnects).
//! - `batches/NAME`: each `documents` input handed to the parser the way `portcullis
//!   events` and `analyze` hand it over: the document cut into records or lines by the
//!   CLI's own splitter and line reader, in batches of 256 KiB whose records lie one
//!   after another in one buffer ([`LogParser::push_candidates`]). `documents/NAME`
//!   pushes each line from a `String` of its own, scattered in memory, which costs the
//!   JSON readers ~10 % more than the CLI's batches (the time to fetch each record's
//!   first bytes from memory).
//! - `evtx/crate`: the `evtx` crate alone rendering every record of a real Security
//!   log (`tests/fixtures/evtx/Security_with_size_t.evtx.gz`, 636 records, 162 of
//!   them logon events) as JSON; `evtx/chunks`: the crate finding, reading and
//!   parsing the chunks and the records' headers walked, the floor of any reader built
//!   on its chunks; `evtx/read`: Portcullis' whole `.evtx` path on the same file
//!   ([`portcullis_parse::eventlog::read`], records read from their substitution
//!   values, and the Windows reader); `evtx/render`: the same with every record
//!   rendered as JSON by the crate (`Path::Render`, the path before), in records per
//!   second.
//!
//! The lines are made by a small deterministic generator below (a port of the Python
//! generator's formats), so the benchmark needs no files. Each `push` iteration runs a
//! fresh [`LogParser`] over the whole set (setup not timed), clearing events as the CLI
//! does, and ends with [`LogParser::finish`].

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use jiff::tz::TimeZone;

use portcullis_parse::{
    EnvelopeConfig, EnvelopeReader, InputFormat, LogParser, ParseConfig, YearRule,
};

/// Lines in each benchmark's input.
const LINES: usize = 100_000;

mod common;
use common::{
    FIRST, LAST, Rng, batches, document_config, documents, rules, run, run_batches, thread_cpu_ns,
};

const LOCAL_DOMAINS: &[&str] = &["parliament.example", "example.org", "mail.example.net"];
const REMOTE_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "gmx.de",
    "web.de",
    "example.com",
    "lists.example.net",
];
const GUESSES: &[&str] = &[
    "admin",
    "info",
    "test",
    "sales",
    "support",
    "office",
    "contact",
    "webmaster",
    "postmaster",
    "user",
    "guest",
    "root",
    "mail",
    "backup",
    "info@parliament.example",
    "admin@example.org",
];
const SSH_GUESSES: &[&str] = &[
    "root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "user", "pi", "ftpuser",
];
const LIPS: &[&str] = &["192.0.2.1", "192.0.2.1", "192.0.2.1", "2001:db8::25"];
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Generates log lines event by event; each event writes one or more lines.
struct Gen {
    rng: Rng,
    /// Seconds since 1 March, 00:00.
    clock_ms: u64,
    prefix: String,
    prefix_sec: u64,
    counter: u64,
    users: Vec<String>,
    clients: Vec<String>,
    bots: Vec<String>,
    peers: Vec<(String, String)>,
    senders: Vec<String>,
}

type Event = fn(&mut Gen, &mut Vec<String>);

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let v4 = |r: &mut Rng| {
            format!(
                "{}.{}.{}.{}",
                11 + r.below(212),
                r.below(256),
                r.below(256),
                1 + r.below(254)
            )
        };
        let v6 = |r: &mut Rng| {
            format!(
                "2001:db8:{:x}:{:x}::{:x}",
                r.below(1 << 16),
                r.below(1 << 16),
                1 + r.below(0xfffe)
            )
        };
        let addr = |r: &mut Rng, i: usize, every: usize| if i % every == 0 { v6(r) } else { v4(r) };
        let users = (0..2000)
            .map(|_| {
                let (f, l, d) = (*rng.pick(FIRST), *rng.pick(LAST), *rng.pick(LOCAL_DOMAINS));
                if rng.chance(70) {
                    format!("{f}.{l}@{d}")
                } else {
                    format!("{f}.{l}{}@{d}", 2 + rng.below(97))
                }
            })
            .collect();
        let clients = (0..3000).map(|i| addr(&mut rng, i, 25)).collect();
        let bots = (0..600).map(|i| addr(&mut rng, i, 30)).collect();
        let peers = (0..4000)
            .map(|i| {
                let ip = addr(&mut rng, i, 40);
                let name = if rng.chance(20) {
                    "unknown".to_owned()
                } else {
                    format!("mail{}.{}", 1 + rng.below(40), rng.pick(REMOTE_DOMAINS))
                };
                (name, ip)
            })
            .collect();
        let senders = (0..3000)
            .map(|_| {
                format!(
                    "{}{}@{}",
                    rng.pick(FIRST).replace('.', ""),
                    1 + rng.below(998),
                    rng.pick(REMOTE_DOMAINS)
                )
            })
            .collect();
        Self {
            rng,
            clock_ms: 0,
            prefix: String::new(),
            prefix_sec: u64::MAX,
            counter: 0,
            users,
            clients,
            bots,
            peers,
            senders,
        }
    }

    /// The `Mmm dd hh:mm:ss mail01 ` prefix for an event of about `lines` lines; log
    /// time advances about 0.1 s a line.
    fn stamp(&mut self, lines: u64) -> String {
        self.clock_ms += self.rng.below(200 * lines);
        let s = self.clock_ms / 1000;
        if s != self.prefix_sec {
            self.prefix_sec = s;
            let (day, h, m, sec) = (1 + s / 86_400 % 31, s / 3600 % 24, s / 60 % 60, s % 60);
            self.prefix = format!("Mar {day:2} {h:02}:{m:02}:{sec:02} mail01 ");
        }
        self.prefix.clone()
    }

    fn pid(&mut self) -> u64 {
        1000 + self.rng.below(60_000)
    }

    fn qid(&mut self) -> String {
        self.counter += 1;
        format!(
            "{:010X}",
            self.counter.wrapping_mul(2_654_435_761) & 0xFF_FFFF_FFFF
        )
    }

    /// A Dovecot session id: 16 base64 characters.
    fn session(&mut self) -> String {
        let mut x = self.rng.next();
        (0..16)
            .map(|_| {
                let c = B64[(x & 63) as usize] as char;
                x = x.rotate_right(6) ^ 0x5851_F42D_4C95_7F2D;
                c
            })
            .collect()
    }

    fn user(&mut self) -> String {
        self.rng.pick(&self.users).clone()
    }

    fn client(&mut self) -> String {
        self.rng.pick(&self.clients).clone()
    }

    fn bot(&mut self) -> String {
        self.rng.pick(&self.bots).clone()
    }

    // --- mail events (formats as in benches/gen-mail-log.py) ----------------------

    fn inbound(&mut self, out: &mut Vec<String>) {
        let (name, ip) = self.rng.pick(&self.peers).clone();
        let (pid, q) = (self.pid(), self.qid());
        let rcpt = self.user();
        let sender = self.rng.pick(&self.senders).clone();
        let size = 2000 + self.rng.below(80_000);
        let msgid = format!(
            "{:x}.{:x}@{}",
            self.rng.next() >> 24,
            self.rng.below(1 << 20),
            self.rng.pick(REMOTE_DOMAINS)
        );
        let st = self.stamp(6);
        out.push(format!(
            "{st}postfix/smtpd[{pid}]: connect from {name}[{ip}]"
        ));
        if self.rng.chance(60) {
            out.push(format!("{st}postfix/smtpd[{pid}]: Anonymous TLS connection established from {name}[{ip}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"));
        }
        out.push(format!(
            "{st}postfix/smtpd[{pid}]: {q}: client={name}[{ip}]"
        ));
        out.push(format!(
            "{st}postfix/cleanup[{}]: {q}: message-id=<{msgid}>",
            pid + 7
        ));
        out.push(format!(
            "{st}postfix/qmgr[1528]: {q}: from=<{sender}>, size={size}, nrcpt=1 (queue active)"
        ));
        out.push(format!("{st}postfix/smtpd[{pid}]: disconnect from {name}[{ip}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"));
        let (lpid, sess) = (self.pid(), self.session());
        let st = self.stamp(4);
        out.push(format!("{st}dovecot: lmtp({lpid}): Connect from local"));
        out.push(format!(
            "{st}dovecot: lmtp({rcpt})<{lpid}><{sess}>: msgid=<{msgid}>: saved mail to INBOX"
        ));
        out.push(format!("{st}postfix/lmtp[{}]: {q}: to=<{rcpt}>, relay=mail01.parliament.example[private/dovecot-lmtp], delay=0.26, delays=0.17/0.01/0.02/0.06, dsn=2.0.0, status=sent (250 2.0.0 <{rcpt}> {sess} Saved)", pid + 13));
        out.push(format!("{st}dovecot: lmtp({lpid}): Disconnect from local: Client has quit the connection (state=READY)"));
        out.push(format!("{st}postfix/qmgr[1528]: {q}: removed"));
    }

    fn submission(&mut self, out: &mut Vec<String>) {
        let (user, ip) = (self.user(), self.client());
        let (pid, q) = (self.pid(), self.qid());
        let rcpt = self.rng.pick(&self.senders).clone();
        let st = self.stamp(7);
        let domain = user.split('@').nth(1).unwrap_or_default();
        out.push(format!(
            "{st}postfix/submission/smtpd[{pid}]: connect from unknown[{ip}]"
        ));
        out.push(format!("{st}postfix/submission/smtpd[{pid}]: {q}: client=unknown[{ip}], sasl_method=PLAIN, sasl_username={user}"));
        out.push(format!(
            "{st}postfix/cleanup[{}]: {q}: message-id=<{}.{q}@{domain}>",
            pid + 7,
            self.clock_ms
        ));
        out.push(format!(
            "{st}opendkim[1531]: {q}: DKIM-Signature field added (s=mail, d={domain})"
        ));
        out.push(format!(
            "{st}postfix/qmgr[1528]: {q}: from=<{user}>, size={}, nrcpt=1 (queue active)",
            1500 + self.rng.below(40_000)
        ));
        out.push(format!("{st}postfix/submission/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8"));
        out.push(format!("{st}postfix/smtp[{}]: {q}: to=<{rcpt}>, relay=mx1.example.com[198.51.100.25]:25, delay=1.4, delays=0.1/0.01/0.42/0.87, dsn=2.0.0, status=sent (250 2.0.0 OK)", pid + 9));
        out.push(format!("{st}postfix/qmgr[1528]: {q}: removed"));
    }

    fn imap_session(&mut self, out: &mut Vec<String>) {
        let (user, ip, lip) = (self.user(), self.client(), *self.rng.pick(LIPS));
        let (pid, sess) = (self.pid(), self.session());
        let st = self.stamp(2);
        out.push(format!("{st}dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={lip}, mpid={pid}, TLS, session=<{sess}>"));
        out.push(format!(
            "{st}dovecot: imap({user})<{pid}><{sess}>: Logged out in={} out={} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=1 body_bytes={}",
            self.rng.below(9000),
            self.rng.below(400_000),
            self.rng.below(90_000)
        ));
    }

    /// Successful Dovecot logins only (no session lines), for the Dovecot group.
    fn dovecot_login(&mut self, out: &mut Vec<String>) {
        let (user, ip, lip) = (self.user(), self.client(), *self.rng.pick(LIPS));
        let (pid, sess) = (self.pid(), self.session());
        let proto = *self
            .rng
            .pick(&["imap", "imap", "imap", "pop3", "submission"]);
        let st = self.stamp(1);
        out.push(format!("{st}dovecot: {proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={lip}, mpid={pid}, TLS, session=<{sess}>"));
    }

    fn dovecot_failed(&mut self, out: &mut Vec<String>) {
        let bot = self.rng.chance(70);
        let (ip, user) = if bot {
            (self.bot(), (*self.rng.pick(GUESSES)).to_owned())
        } else {
            (self.client(), self.user())
        };
        let lip = *self.rng.pick(LIPS);
        let n = if bot { 1 + self.rng.below(3) } else { 1 };
        let proto = *self
            .rng
            .pick(&["imap", "imap", "imap", "pop3", "submission"]);
        let why = if bot && self.rng.chance(50) {
            "unknown user"
        } else {
            "Password mismatch"
        };
        let sess = self.session();
        let st = self.stamp(n + 1);
        for _ in 0..n {
            out.push(format!(
                "{st}dovecot: auth-worker(1316): sql({user},{ip},<{sess}>): {why}"
            ));
        }
        let tls = if self.rng.chance(80) { ", TLS" } else { "" };
        let secs = 2 * n + self.rng.below(4);
        out.push(format!("{st}dovecot: {proto}-login: Disconnected (auth failed, {n} attempts in {secs} secs): user=<{user}>, method=PLAIN, rip={ip}, lip={lip}{tls}, session=<{sess}>"));
    }

    fn sasl_failed(&mut self, out: &mut Vec<String>) {
        let ip = self.bot();
        let pid = self.pid();
        let daemon = if self.rng.chance(50) {
            "submission/smtpd"
        } else {
            "smtpd"
        };
        let (mech, arg) = if self.rng.chance(80) {
            ("LOGIN", "UGFzc3dvcmQ6")
        } else {
            ("PLAIN", "")
        };
        let n = 1 + self.rng.below(2);
        let st = self.stamp(n + 3);
        out.push(format!(
            "{st}postfix/{daemon}[{pid}]: connect from unknown[{ip}]"
        ));
        for _ in 0..n {
            out.push(format!("{st}postfix/{daemon}[{pid}]: warning: unknown[{ip}]: SASL {mech} authentication failed: {arg}"));
        }
        out.push(format!(
            "{st}postfix/{daemon}[{pid}]: lost connection after AUTH from unknown[{ip}]"
        ));
        out.push(format!("{st}postfix/{daemon}[{pid}]: disconnect from unknown[{ip}] ehlo=1 auth=0/{n} commands=1/{}", n + 1));
    }

    fn scanner(&mut self, out: &mut Vec<String>) {
        let ip = self.bot();
        let st = self.stamp(2);
        if self.rng.chance(50) {
            let sess = self.session();
            out.push(format!("{st}dovecot: imap-login: Disconnected (no auth attempts in {} secs): user=<>, rip={ip}, lip=192.0.2.1, session=<{sess}>", self.rng.below(10)));
        } else {
            let pid = self.pid();
            out.push(format!(
                "{st}postfix/smtpd[{pid}]: connect from unknown[{ip}]"
            ));
            out.push(format!(
                "{st}postfix/smtpd[{pid}]: lost connection after EHLO from unknown[{ip}]"
            ));
            out.push(format!(
                "{st}postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 commands=1"
            ));
        }
    }

    // --- other doors (one event, one line each) ------------------------------------

    /// Day, hour, minute, second of the clock for an event of one line.
    fn civil(&mut self) -> (u64, u64, u64, u64) {
        self.stamp(1);
        let s = self.prefix_sec;
        (1 + s / 86_400 % 31, s / 3600 % 24, s / 60 % 60, s % 60)
    }

    /// A failure from a bot (70 %) or a user's login.
    fn who(&mut self) -> (bool, String, String) {
        if self.rng.chance(70) {
            (true, self.bot(), (*self.rng.pick(GUESSES)).to_owned())
        } else {
            (false, self.client(), self.user())
        }
    }

    fn openvpn(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (st, pid, port) = (self.stamp(1), self.pid(), 1024 + self.rng.below(64_000));
        let peer = if ip.contains(':') {
            ip.clone()
        } else {
            format!("{ip}:{port}")
        };
        out.push(if bad {
            format!("{st}ovpn-server[{pid}]: {peer} TLS Auth Error: Auth Username/Password verification failed for peer")
        } else {
            format!("{st}ovpn-server[{pid}]: {peer} [{user}] Peer Connection Initiated with [AF_INET]{peer}")
        });
    }

    fn nginx(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (d, h, m, s) = self.civil();
        let (pid, c) = (self.pid(), self.rng.below(1 << 20));
        let text = if bad && self.rng.chance(50) {
            format!("user \"{user}\" was not found in \"/etc/nginx/.htpasswd\"")
        } else {
            format!("user \"{user}\": password mismatch")
        };
        out.push(format!("2024/03/{d:02} {h:02}:{m:02}:{s:02} [error] {pid}#{pid}: *{c} {text}, client: {ip}, server: www.example.org, request: \"GET /private/ HTTP/1.1\", host: \"www.example.org\""));
    }

    fn apache(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (d, h, m, s) = self.civil();
        let (pid, port) = (self.pid(), 1024 + self.rng.below(64_000));
        let peer = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.clone()
        };
        let text = if bad {
            format!("AH01618: user {user} not found: /private/")
        } else {
            format!(
                "AH01617: user {user}: authentication failure for \"/private/\": Password Mismatch"
            )
        };
        out.push(format!("[Fri Mar {d:02} {h:02}:{m:02}:{s:02}.{:06} 2024] [auth_basic:error] [pid {pid}:tid 140123079128832] [client {peer}:{port}] {text}", self.rng.below(1_000_000)));
    }

    fn roundcube(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (d, h, m, s) = self.civil();
        let sess = self.session().to_lowercase().replace(['+', '/'], "x");
        out.push(if bad {
            format!("[{d:02}-Mar-2024 {h:02}:{m:02}:{s:02} +0100]: <{}> IMAP Error: Login failed for {user} against localhost from {ip}. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)", &sess[..8])
        } else {
            format!("[{d:02}-Mar-2024 {h:02}:{m:02}:{s:02} +0100]: <{}> Successful login for {user} (ID: {}) from {ip} in session {sess}", &sess[..8], self.rng.below(5000))
        });
    }

    fn sogo(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (st, pid) = (self.stamp(1), self.pid());
        out.push(if bad {
            format!("{st}sogod[{pid}]: SOGoRootPage Login from '{ip}' for user '{user}' might not have worked - password policy: 65535  grace: -1  expire: -1  bound: 0")
        } else {
            format!("{st}sogod[{pid}]: SOGoRootPage successful login from '{ip}, 10.0.0.1' for user '{user}' - expire = -1  grace = -1")
        });
    }

    fn exim(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (d, h, m, s) = self.civil();
        let (pid, port, q) = (self.pid(), 1024 + self.rng.below(64_000), self.qid());
        out.push(if bad {
            format!("2024-03-{d:02} {h:02}:{m:02}:{s:02} [{pid}] dovecot_login authenticator failed for (User) [{ip}]:{port} I=[192.0.2.1]:587 Ci={pid}: 535 Incorrect authentication data (set_id={user})")
        } else {
            format!("2024-03-{d:02} {h:02}:{m:02}:{s:02} [{pid}] 1r{q}-000ABC-{} <= {user} H=(laptop) [{ip}]:{port} I=[192.0.2.1]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:{user} S={} id=x@example.org", &q[..2], 1000 + self.rng.below(90_000))
        });
    }

    fn courier(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let st = self.stamp(1);
        let ip = if ip.contains(':') {
            ip
        } else {
            format!("::ffff:{ip}")
        };
        let prog = *self.rng.pick(&["imapd", "imapd-ssl", "pop3d"]);
        out.push(if bad {
            format!("{st}{prog}: LOGIN FAILED, user={user}, ip=[{ip}]")
        } else {
            format!(
                "{st}{prog}: LOGIN, user={user}, ip=[{ip}], port=[{}], protocol=IMAP",
                1024 + self.rng.below(64_000)
            )
        });
    }

    fn cyrus(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (st, pid) = (self.stamp(1), self.pid());
        out.push(if bad {
            format!("{st}cyrus/imap[{pid}]: badlogin: unknown [{ip}] plaintext {user} SASL(-13): authentication failure: checkpass failed")
        } else {
            format!("{st}cyrus/imap[{pid}]: login: client.example.net [{ip}] {user} PLAIN+TLS User logged in SESSIONID=<cyrus-{pid}-1>")
        });
    }

    fn pam(&mut self, out: &mut Vec<String>) {
        let (_, ip, user) = self.who();
        let st = self.stamp(1);
        out.push(format!("{st}vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser={user} rhost={ip}  user={user}"));
    }

    fn radius(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (d, h, m, s) = self.civil();
        let n = self.rng.below(1 << 16);
        let port = self.rng.below(64);
        out.push(if bad {
            format!("Fri Mar {d:2} {h:02}:{m:02}:{s:02} 2024 : Auth: ({n}) Login incorrect (pap: Cleartext password does not match \"known good\" password): [{user}] (from client vpn-nas port {port} cli {ip})")
        } else {
            format!("Fri Mar {d:2} {h:02}:{m:02}:{s:02} 2024 : Auth: ({n}) Login OK: [{user}] (from client vpn-nas port {port} cli {ip})")
        });
    }

    /// Lines for the custom-rules benchmark (see [`rules`]).
    fn custom(&mut self, out: &mut Vec<String>) {
        let (bad, ip, user) = self.who();
        let (st, pid) = (self.stamp(1), self.pid());
        out.push(if bad {
            format!("{st}myvpn[{pid}]: DENIED user={user} src={ip} reason=password")
        } else {
            format!("{st}myvpn[{pid}]: ACCEPTED user={user} src={ip}")
        });
    }

    // --- sshd events -------------------------------------------------------------

    fn ssh_failed(&mut self, out: &mut Vec<String>) {
        let ip = self.bot();
        let (pid, port) = (self.pid(), 1024 + self.rng.below(64_000));
        let user = *self.rng.pick(SSH_GUESSES);
        let st = self.stamp(4);
        if user == "root" {
            out.push(format!("{st}sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"));
            out.push(format!(
                "{st}sshd[{pid}]: Failed password for root from {ip} port {port} ssh2"
            ));
            if self.rng.chance(30) {
                out.push(format!("{st}sshd[{pid}]: message repeated 2 times: [ Failed password for root from {ip} port {port} ssh2]"));
            }
            out.push(format!(
                "{st}sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
            ));
            out.push(format!("{st}sshd[{pid}]: Disconnected from authenticating user root {ip} port {port} [preauth]"));
        } else {
            out.push(format!(
                "{st}sshd[{pid}]: Invalid user {user} from {ip} port {port}"
            ));
            out.push(format!(
                "{st}sshd[{pid}]: pam_unix(sshd:auth): check pass; user unknown"
            ));
            out.push(format!("{st}sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}"));
            out.push(format!("{st}sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2"));
            out.push(format!("{st}sshd[{pid}]: Connection closed by invalid user {user} {ip} port {port} [preauth]"));
        }
    }

    fn ssh_accepted(&mut self, out: &mut Vec<String>) {
        let ip = self.client();
        let (pid, port) = (self.pid(), 1024 + self.rng.below(64_000));
        let user = *self.rng.pick(&["deploy", "backup", "alice", "bob"]);
        let st = self.stamp(3);
        if self.rng.chance(70) {
            out.push(format!("{st}sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0"));
        } else {
            out.push(format!(
                "{st}sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2"
            ));
        }
        out.push(format!("{st}sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"));
        out.push(format!(
            "{st}sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}"
        ));
    }

    fn ssh_preauth(&mut self, out: &mut Vec<String>) {
        let ip = self.bot();
        let (pid, port) = (self.pid(), 1024 + self.rng.below(64_000));
        let st = self.stamp(1);
        if self.rng.chance(50) {
            out.push(format!(
                "{st}sshd[{pid}]: Connection closed by {ip} port {port} [preauth]"
            ));
        } else {
            out.push(format!("{st}sshd[{pid}]: Connection reset by authenticating user root {ip} port {port} [preauth]"));
        }
    }
}

/// The realistic mail log mix (weights as in gen-mail-log.py, minor events left out).
const MIX: &[(u32, Event)] = &[
    (30, Gen::inbound),
    (12, Gen::submission),
    (28, Gen::imap_session),
    (11, Gen::dovecot_failed),
    (8, Gen::sasl_failed),
    (5, Gen::scanner),
];

/// `n` lines from events drawn from `events` by weight, keeping those `keep` accepts.
fn generate(
    seed: u64,
    n: usize,
    events: &[(u32, Event)],
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    let table: Vec<Event> = events
        .iter()
        .flat_map(|&(w, f)| std::iter::repeat_n(f, w as usize))
        .collect();
    let mut g = Gen::new(seed);
    let mut lines = Vec::with_capacity(n + 16);
    let mut buf = Vec::new();
    while lines.len() < n {
        let event = *g.rng.pick(&table);
        event(&mut g, &mut buf);
        lines.extend(buf.drain(..).filter(|l| keep(l)));
    }
    lines.truncate(n);
    lines
}

fn inputs() -> Vec<(&'static str, Vec<String>)> {
    // Noise: lines the driver's prefilter rejects.
    let prefilter = LogParser::new(ParseConfig::default());
    let noise = |l: &str| !prefilter.is_candidate(l.as_bytes());
    let sasl = |l: &str| l.contains("SASL") || l.contains("sasl_username");
    vec![
        ("noise", generate(1, LINES, MIX, noise)),
        (
            "dovecot",
            generate(
                2,
                LINES,
                &[(2, Gen::dovecot_login), (3, Gen::dovecot_failed)],
                |_| true,
            ),
        ),
        (
            "postfix",
            generate(
                3,
                LINES,
                &[(3, Gen::sasl_failed), (2, Gen::submission)],
                sasl,
            ),
        ),
        (
            "sshd",
            generate(
                4,
                LINES,
                &[
                    (5, Gen::ssh_failed),
                    (1, Gen::ssh_accepted),
                    (2, Gen::ssh_preauth),
                ],
                |_| true,
            ),
        ),
        ("mix", generate(5, LINES, MIX, |_| true)),
        (
            "openvpn",
            generate(6, LINES, &[(1, Gen::openvpn)], |_| true),
        ),
        ("nginx", generate(7, LINES, &[(1, Gen::nginx)], |_| true)),
        ("apache", generate(8, LINES, &[(1, Gen::apache)], |_| true)),
        (
            "roundcube",
            generate(9, LINES, &[(1, Gen::roundcube)], |_| true),
        ),
        ("sogo", generate(10, LINES, &[(1, Gen::sogo)], |_| true)),
        ("exim", generate(11, LINES, &[(1, Gen::exim)], |_| true)),
        (
            "courier",
            generate(12, LINES, &[(1, Gen::courier)], |_| true),
        ),
        ("cyrus", generate(13, LINES, &[(1, Gen::cyrus)], |_| true)),
        ("pam", generate(14, LINES, &[(1, Gen::pam)], |_| true)),
        ("radius", generate(15, LINES, &[(1, Gen::radius)], |_| true)),
        ("rules", generate(16, LINES, &[(1, Gen::custom)], |_| true)),
    ]
}

fn config() -> ParseConfig {
    ParseConfig {
        envelope: EnvelopeConfig {
            time_zone: TimeZone::UTC,
            year: YearRule::Fixed(2024),
        },
        ..ParseConfig::default()
    }
}

/// The configuration for one input: `rules` gets the custom rules.
fn config_for(name: &str) -> ParseConfig {
    ParseConfig {
        rules: (name == "rules").then(rules),
        ..config()
    }
}

/// Short runs: 1 s warm-up, 3 s measurement. One iteration is a whole input (tens of
/// milliseconds, more once the real parsers do work), so flat sampling with 10 samples
/// keeps each benchmark within its 3 s.
fn settings<M: criterion::measurement::Measurement>(group: &mut criterion::BenchmarkGroup<'_, M>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
}

/// Records per second of this thread's CPU time over five passes of `pass` over
/// `records` records, if known. On a shared machine wall time depends on the other
/// tenants; the time this thread was on a CPU much less.
fn cpu_rate(records: usize, mut pass: impl FnMut()) -> Option<f64> {
    let before = thread_cpu_ns()?;
    for _ in 0..5 {
        pass();
    }
    let ns = thread_cpu_ns()? - before;
    Some(5.0 * records as f64 / (ns as f64 / 1e9))
}

/// A rate as the benchmark prints it.
fn per_cpu_second(rate: Option<f64>) -> String {
    rate.map_or("?".to_owned(), |r| format!("{:.0} k", r / 1e3))
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    for (name, lines) in &inputs {
        let mut parser = LogParser::new(config_for(name));
        run(&mut parser, lines);
        let s = parser.stats();
        let cpu = cpu_rate(lines.len(), || {
            run(&mut LogParser::new(config_for(name)), lines);
        });
        eprintln!(
            "push/{name}: {} lines, {} bytes; one pass gives {} events, {} auth-looking lines not understood; {} lines per CPU-second",
            s.lines,
            lines.iter().map(|l| l.len() + 1).sum::<usize>(),
            s.events,
            s.unparsed_auth_lines,
            per_cpu_second(cpu),
        );
    }

    let mut group = c.benchmark_group("push");
    settings(&mut group);
    for (name, lines) in &inputs {
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), lines, |b, lines| {
            b.iter_batched(
                || LogParser::new(config_for(name)),
                |mut p| run(&mut p, lines),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();

    let mix = &inputs
        .iter()
        .find(|(name, _)| *name == "mix")
        .expect("the mix is generated")
        .1;
    let mut group = c.benchmark_group("envelope");
    settings(&mut group);
    group.throughput(Throughput::Elements(mix.len() as u64));
    group.bench_function("rfc3164", |b| {
        b.iter_batched(
            || EnvelopeReader::new(config().envelope),
            |mut reader| {
                for line in mix {
                    black_box(reader.read(black_box(line)));
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn document_benches(c: &mut Criterion) {
    let docs = documents(LINES);
    let config = |name: &str, format| ParseConfig {
        format,
        json_formats: document_config(name, format).json_formats,
        ..config()
    };
    let batched: Vec<_> = docs
        .iter()
        .map(|(_, format, lines)| batches(*format, lines))
        .collect();
    for ((name, format, lines), batches) in docs.iter().zip(&batched) {
        let mut parser = LogParser::new(config(name, *format));
        let events = run(&mut parser, lines);
        let s = parser.stats();
        // The same records the CLI's way give the same events.
        let mut by_batch = LogParser::new(config(name, *format));
        assert_eq!(run_batches(&mut by_batch, batches), events, "{name}");
        assert_eq!(by_batch.stats().lines, s.lines, "{name}");
        let cpu = cpu_rate(lines.len(), || {
            run(&mut LogParser::new(config(name, *format)), lines);
        });
        let cpu_batches = cpu_rate(lines.len(), || {
            run_batches(&mut LogParser::new(config(name, *format)), batches);
        });
        eprintln!(
            "documents/{name}: {} lines, {} bytes; one pass gives {} events, {} malformed, {} not understood; {} records per CPU-second one by one, {} in the CLI's batches",
            s.lines,
            lines.iter().map(|l| l.len() + 1).sum::<usize>(),
            s.events,
            s.malformed_records,
            s.unparsed_auth_lines,
            per_cpu_second(cpu),
            per_cpu_second(cpu_batches),
        );
    }
    let mut group = c.benchmark_group("documents");
    settings(&mut group);
    for (name, format, lines) in &docs {
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), lines, |b, lines| {
            b.iter_batched(
                || LogParser::new(config(name, *format)),
                |mut p| run(&mut p, lines),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
    let mut group = c.benchmark_group("batches");
    settings(&mut group);
    for ((name, format, lines), batches) in docs.iter().zip(&batched) {
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), batches, |b, batches| {
            b.iter_batched(
                || LogParser::new(config(name, *format)),
                |mut p| run_batches(&mut p, batches),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// The real Security log of the conformance test, decompressed.
fn security_evtx() -> Vec<u8> {
    use std::io::Read;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evtx/Security_with_size_t.evtx.gz");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("the evtx fixture"))
        .read_to_end(&mut bytes)
        .expect("a gzip file");
    bytes
}

fn evtx_benches(c: &mut Criterion) {
    use portcullis_parse::eventlog::{self, Path};
    let bytes = security_evtx();
    let evtx_settings = || evtx::ParserSettings::new().num_threads(1).indent(false);
    let records = |bytes: &[u8]| {
        let mut p = evtx::EvtxParser::from_buffer(bytes.to_vec())
            .expect("an evtx file")
            .with_configuration(evtx_settings());
        p.records_json_bytes().filter(Result::is_ok).count() as u64
    };
    let n = records(&bytes);
    // Records per CPU-second of the whole path, both ways: 50 passes each, their
    // parsers and copies of the file made before the clock starts.
    for (name, path) in [("read", Path::Fast), ("render", Path::Render)] {
        let setup = || {
            let parser = LogParser::new(ParseConfig {
                format: InputFormat::Evtx,
                ..config()
            });
            (parser, std::io::Cursor::new(bytes.clone()))
        };
        let pass = |(mut parser, file): (LogParser, std::io::Cursor<Vec<u8>>)| {
            let mut out = Vec::new();
            eventlog::read_with(file, path, 256 * 1024, |b| {
                parser.push_candidates(&b, None, &mut out);
                out.clear();
                true
            })
            .expect("an evtx file")
        };
        let counts = pass(setup());
        let inputs: Vec<_> = (0..50).map(|_| setup()).collect();
        let cpu = thread_cpu_ns().and_then(|before| {
            for input in inputs {
                black_box(pass(input));
            }
            let ns = thread_cpu_ns()? - before;
            Some(50.0 * counts.records as f64 / (ns as f64 / 1e9))
        });
        eprintln!(
            "evtx/{name}: {} records, {} rendered, {} template definitions read; {} records per CPU-second",
            counts.records,
            counts.rendered,
            counts.templates_read,
            per_cpu_second(cpu),
        );
    }
    let mut group = c.benchmark_group("evtx");
    settings(&mut group);
    group.throughput(Throughput::Elements(n));
    group.bench_function("crate", |b| b.iter(|| black_box(records(&bytes))));
    // The floor under any reader built on the crate's chunks: the chunks found, read
    // and parsed (string tables), and their records' headers walked.
    group.bench_function("chunks", |b| {
        b.iter_batched(
            || std::io::Cursor::new(bytes.clone()),
            |file| {
                let mut p = evtx::EvtxParser::from_read_seek(file)
                    .expect("an evtx file")
                    .with_configuration(evtx_settings());
                let shared = std::sync::Arc::new(evtx_settings());
                let mut seen = 0u64;
                for chunk in p.chunks() {
                    let Ok(mut chunk) = chunk else { continue };
                    let Ok(chunk) = chunk.parse(std::sync::Arc::clone(&shared)) else {
                        continue;
                    };
                    let mut at = 512;
                    while at < chunk.header.free_space_offset as usize {
                        let Ok(h) = evtx::EvtxRecordHeader::from_bytes_at(chunk.data, at) else {
                            break;
                        };
                        seen += 1;
                        if h.event_record_id == chunk.header.last_event_record_id {
                            break;
                        }
                        at += h.data_size.max(28) as usize;
                    }
                }
                black_box(seen)
            },
            BatchSize::LargeInput,
        );
    });
    for (name, path) in [("read", Path::Fast), ("render", Path::Render)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let parser = LogParser::new(ParseConfig {
                        format: InputFormat::Evtx,
                        ..config()
                    });
                    (parser, std::io::Cursor::new(bytes.clone()))
                },
                |(mut parser, file)| {
                    let mut out = Vec::new();
                    eventlog::read_with(file, path, 256 * 1024, |batch| {
                        parser.push_candidates(&batch, None, &mut out);
                        true
                    })
                    .expect("an evtx file");
                    black_box(out.len())
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(parse, benches, document_benches, evtx_benches);
criterion_main!(parse);
