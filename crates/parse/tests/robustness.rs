//! Bad input never panics and never yields a wrong event.
//!
//! Random bytes, and real corpus lines mutated at random, go through the whole driver
//! (envelope, routing, every service parser, correlation). Whatever comes out must be
//! anchored in the input: an event's source address appears in the line that produced
//! it (or, for an attempt correlated across lines, a line of the input).

use std::net::IpAddr;
use std::sync::Arc;

use portcullis_core::{Event, Origin};
use portcullis_parse::{LineReader, LogParser, ParseConfig};
use proptest::prelude::*;

fn corpus_lines() -> Vec<String> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/fail2ban");
    let mut lines = Vec::new();
    for f in [
        "dovecot.log",
        "postfix.log",
        "sshd.log",
        "sshd-journal.log",
        "apache-auth.log",
        "nginx-http-auth.log",
        "courier-auth.log",
        "courier-smtp.log",
        "cyrus-imap.log",
        "exim.log",
        "openvpn.log",
        "pam-generic.log",
        "roundcube-auth.log",
        "sogo-auth.log",
    ] {
        let text =
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("corpus {f}: {e}"));
        lines.extend(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    // Shapes the corpus lacks: successes and FreeRADIUS.
    lines.extend(EXTRA.iter().map(|l| (*l).to_owned()));
    lines
}

const EXTRA: &[&str] = &[
    "Tue Mar 10 14:30:56 2020 : Auth: (9) Login incorrect (pap: Cleartext password does not match): [alice] (from client vpn port 0 cli 192.0.2.77)",
    "Mar 10 14:30:57 radius radiusd[77]: (3) Login OK: [bob/secret] (from client nas port 1 cli 2001:db8::7)",
    "Mar 10 14:30:58 vpn openvpn[5]: 2001:db8::9 [carol] Peer Connection Initiated with [AF_INET6]2001:db8::9",
    "Mar 10 14:30:59 mail cyrus/imap[6]: login: mail.example.com [192.0.2.8] dave PLAIN+TLS User logged in SESSIONID=<x>",
    "2024-03-10 14:31:00 1ahr79-0006jK-G9 <= e@example.org H=(laptop) [192.0.2.44]:51234 I=[192.0.2.1]:587 P=esmtpsa A=dovecot_plain:e@example.org S=1",
    "[10-Mar-2024 14:31:01 +0100]: <abc> Successful login for frank (ID: 3) from 192.0.2.50 in session abc",
    "Mar 10 14:31:02 web sogod[8]: SOGoRootPage successful login from '192.0.2.4, 10.0.0.1' for user 'gina' - expire = -1  grace = -1",
    "Mar 10 14:31:03 mail imapd-ssl: LOGIN, user=hank, ip=[::ffff:192.0.2.6], port=[4312], protocol=IMAP",
    "2024-03-10 14:31:04 [7513] dovecot_login authenticator failed for (User) [192.0.2.37]:21298 I=[192.0.2.1]:465: 535 Incorrect authentication data (set_id=ivy)",
];

/// Every spelling of `addr` that may stand in a log line.
fn spelled_in(addr: IpAddr, text: &str) -> bool {
    text.contains(&addr.to_string())
        || match addr {
            IpAddr::V6(v6) => {
                text.to_ascii_lowercase().contains(&v6.to_string()) || expanded_v6_present(v6, text)
            }
            IpAddr::V4(_) => false,
        }
}

fn expanded_v6_present(v6: std::net::Ipv6Addr, text: &str) -> bool {
    // Any token in the text that parses to the same address.
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .filter_map(|t| {
            t.trim_matches(':')
                .parse::<IpAddr>()
                .ok()
                .or_else(|| t.parse().ok())
        })
        .any(|a| a == IpAddr::V6(v6))
}

fn feed(lines: &[Vec<u8>]) -> Vec<Event> {
    let mut p = LogParser::new(ParseConfig::default());
    let mut out = Vec::new();
    let file: Arc<str> = Arc::from("fuzz");
    for (i, l) in lines.iter().enumerate() {
        p.push(
            l,
            &Origin {
                file: Some(file.clone()),
                line: i as u64 + 1,
                offset: 0,
            },
            &mut out,
        );
    }
    p.finish(&mut out);
    out
}

fn check_anchored(lines: &[Vec<u8>], events: &[Event]) -> Result<(), TestCaseError> {
    for e in events {
        prop_assert!(e.attempts >= 1);
        prop_assert!(e.origin.line >= 1 && e.origin.line as usize <= lines.len());
        if let Some(src) = e.source {
            // Correlated events may take the address from a later line of the same
            // connection (sshd names the peer only on the close), so the address must
            // be in the input, preferably on the event's own line.
            let own = String::from_utf8_lossy(&lines[e.origin.line as usize - 1]).into_owned();
            let anywhere = spelled_in(src, &own)
                || lines
                    .iter()
                    .any(|l| spelled_in(src, &String::from_utf8_lossy(l)));
            prop_assert!(
                anywhere,
                "source {src} is in no input line (event at {own:?})"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..40)) {
        let events = feed(&lines);
        check_anchored(&lines, &events)?;
    }

    #[test]
    fn mutated_real_lines(picks in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..6)), 1..30)) {
        let corpus = corpus_lines();
        let lines: Vec<Vec<u8>> = picks.iter().map(|(pick, edits)| {
            let mut l = corpus[pick.index(corpus.len())].clone().into_bytes();
            for (at, byte, op) in edits {
                if l.is_empty() { break; }
                let i = at.index(l.len());
                match op {
                    0 => l[i] = *byte,
                    1 => { l.remove(i); }
                    2 => l.insert(i, *byte),
                    _ => l.truncate(i),
                }
            }
            l
        }).collect();
        let events = feed(&lines);
        check_anchored(&lines, &events)?;
    }
}

#[test]
fn every_corpus_line_alone() {
    // Each real line on its own, and the whole corpus in one stream: no panic, anchored.
    let corpus: Vec<Vec<u8>> = corpus_lines().into_iter().map(String::into_bytes).collect();
    for l in &corpus {
        let one = vec![l.clone()];
        let events = feed(&one);
        check_anchored(&one, &events).unwrap();
    }
    let events = feed(&corpus);
    check_anchored(&corpus, &events).unwrap();
    assert!(!events.is_empty());
}

/// Feeds `input` line by line and block by block; both must give the same events and
/// counts.
fn both_paths(input: &[u8], max_line: usize) -> Result<(), TestCaseError> {
    let file: Arc<str> = Arc::from("x");
    let mut by_line = LogParser::new(ParseConfig::default());
    let mut a = Vec::new();
    let mut r = LineReader::with_max_line(input, max_line);
    while let Some(l) = r.next_line().unwrap() {
        by_line.push(
            l.bytes,
            &Origin {
                file: Some(file.clone()),
                line: l.number,
                offset: l.offset,
            },
            &mut a,
        );
    }
    by_line.finish(&mut a);
    by_line.count_oversized(r.oversized());

    let mut by_block = LogParser::new(ParseConfig::default());
    let mut b = Vec::new();
    let mut r = LineReader::with_max_line(input, max_line);
    while let Some(block) = r.next_block().unwrap() {
        by_block.push_block(&block, Some(&file), max_line, &mut b);
    }
    by_block.finish(&mut b);
    by_block.count_oversized(r.oversized());
    prop_assert_eq!(a, b);
    prop_assert_eq!(by_line.stats(), by_block.stats());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn block_path_equals_line_path(picks in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..40), 0u8..8), 1..60), max_line in 20usize..400) {
        let corpus = corpus_lines();
        let mut input = Vec::new();
        for (pick, junk, how) in &picks {
            match how {
                0 => input.extend_from_slice(junk),
                1 => input.extend(std::iter::repeat_n(b'a', max_line + junk.len())),
                _ => input.extend_from_slice(corpus[pick.index(corpus.len())].as_bytes()),
            }
            if *how != 7 {
                input.push(b'\n');
            }
        }
        both_paths(&input, max_line)?;
    }
}

#[test]
fn block_path_equals_line_path_on_the_corpus() {
    let all = corpus_lines().join("\n");
    both_paths(all.as_bytes(), portcullis_parse::reader::DEFAULT_MAX_LINE).unwrap();
}

/// The document fixtures, mutated byte by byte, through the document readers: never a
/// panic, and every source an event reports is written in its record.
fn documents() -> Vec<(portcullis_parse::InputFormat, Vec<u8>)> {
    use portcullis_parse::InputFormat;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        ("exchange-iis.log", InputFormat::W3c),
        ("exchange-smtp-receive.log", InputFormat::W3c),
        ("exchange-popimap.log", InputFormat::W3c),
        ("entra-graph.json", InputFormat::Json),
        ("entra-signinlogs.jsonl", InputFormat::Json),
        ("windows-winlogbeat.jsonl", InputFormat::Json),
        ("windows-get-winevent.json", InputFormat::Json),
        ("keycloak-events.json", InputFormat::Json),
        ("keycloak-log.jsonl", InputFormat::Json),
    ]
    .iter()
    .map(|(name, f)| (*f, std::fs::read(dir.join(name)).expect("fixture")))
    .collect()
}

fn feed_document(format: portcullis_parse::InputFormat, bytes: &[u8]) -> Vec<Event> {
    use portcullis_parse::{Candidates, Prefilter, RecordSplitter};
    let mut picked = Candidates::default();
    if format == portcullis_parse::InputFormat::W3c {
        let mut reader = LineReader::new(bytes);
        let mut pre = Prefilter::new();
        while let Ok(Some(block)) = reader.next_block() {
            pre.take_all(&block, 1 << 16, &mut picked);
        }
    } else {
        let mut s = RecordSplitter::new(1 << 20);
        for chunk in bytes.chunks(97) {
            s.push(chunk, &mut picked);
        }
        s.finish(&mut picked);
    }
    let mut p = LogParser::new(ParseConfig {
        format,
        ..ParseConfig::default()
    });
    let mut out = Vec::new();
    p.push_candidates(&picked, None, &mut out);
    p.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_documents(pick in any::<prop::sample::Index>(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..12)) {
        let docs = documents();
        let (format, mut bytes) = docs[pick.index(docs.len())].clone();
        for (at, byte, op) in &edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = *byte,
                1 => { bytes.remove(i); }
                2 => bytes.insert(i, *byte),
                _ => bytes.truncate(i),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for e in feed_document(format, &bytes) {
            if let Some(a) = e.source {
                prop_assert!(spelled_in(a, &text), "source {a} not in the document");
            }
        }
    }
}
/// Lines of each format whose user name is the client's, with `{u}` for the name; the
/// real address is always 192.0.2.1.
const NAMED: &[&str] = &[
    "[Thu Jul 11 01:21:41 2013] [error] [client 192.0.2.1] user {u} not found: /",
    "[Sat Jul 20 21:39:11.978080 2013] [auth_basic:error] [pid 1:tid 2] [client 192.0.2.1:51390] AH01617: user {u}: authentication failure for \"/b\": Password Mismatch",
    "2012/04/09 11:53:29 [error] 1#0: *1 user \"{u}\": password mismatch, client: 192.0.2.1, server: x, request: \"GET / HTTP/1.1\", host: \"h\"",
    "2012/04/09 11:53:29 [error] 1#0: *1 user \"{u}\" was not found in \"/p\", client: 192.0.2.1, server: x",
    "May 26 07:12:40 h roundcube: IMAP Error: Login failed for {u} from 192.0.2.1. AUTHENTICATE PLAIN: Authentication failed. in /r.php on line 1 (POST /)",
    "[10-May-2015 13:02:52 -0400]: Failed login for {u} from 192.0.2.1 in session abc (error: 0)",
    "Mar 24 08:58:32 sogod [1]: SOGoRootPage Login from '192.0.2.1' for user '{u}' might not have worked - password policy: 65535  grace: -1  expire: -1  bound: 0",
    "2013-01-04 17:03:46 login authenticator failed for (x) [192.0.2.1]: 535 Incorrect authentication data (set_id={u})",
    "Apr 23 21:59:01 dns2 imapd: LOGIN FAILED, user={u}, ip=[::ffff:192.0.2.1]",
    "Jan 4 21:51:05 h cyrus/imap[1]: badlogin: h [192.0.2.1] plaintext {u} SASL(-13): authentication failure: checkpass failed",
    "Feb  7 15:10:42 h vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser={u} rhost=192.0.2.1  user={u}",
    "Feb  7 15:10:42 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user={u}",
    "Tue Mar 10 14:30:56 2020 : Auth: (9) Login incorrect: [{u}] (from client vpn port 0 cli 192.0.2.1)",
];

/// Pieces of other formats' fields, so that random names forge them often.
const FORGERIES: &[&str] = &[
    " from 6.6.6.6",
    " from 6.6.6.6.",
    " from 6.6.6.6 in session x (error: 0)",
    ", client: 6.6.6.6, server: ",
    "\": password mismatch",
    "[6.6.6.6]",
    "[client 6.6.6.6]",
    " rhost=6.6.6.6",
    "  user=",
    ", ip=[6.6.6.6]",
    "] (from client a port 0 cli 6.6.6.6)",
    "' for user '",
    "' might not have worked",
    ": 535 x (set_id=",
    " SASL(-13): ",
    " ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn names_never_move_the_address(
        template in 0..NAMED.len(),
        parts in prop::collection::vec((0..FORGERIES.len(), "[a-z0-9 .:,'\"=()\\[\\]-]{0,8}"), 0..6),
    ) {
        let name: String = parts.iter().map(|(f, s)| format!("{}{s}", FORGERIES[*f])).collect();
        let line = NAMED[template].replace("{u}", &name);
        // (A name with a line break would forge a whole line; syslog daemons escape
        // control characters, so names here have none.)
        let real: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        for e in feed(&[line.as_bytes().to_vec()]) {
            prop_assert!(e.source.is_none() || e.source == Some(real), "{line:?}: {e:?}");
        }
    }
}

#[test]
fn every_format_gets_past_the_prefilter() {
    // Each line is one login of a format; read by blocks (the prefilter's scan) as the
    // CLI does, every one must give its event.
    let mut lines: Vec<String> = EXTRA.iter().map(|l| (*l).to_owned()).collect();
    lines.extend(NAMED.iter().map(|l| l.replace("{u}", "alice")));
    for line in &lines {
        let input = format!("{line}\n");
        let mut p = LogParser::new(ParseConfig::default());
        let mut out = Vec::new();
        let mut r = LineReader::new(input.as_bytes());
        while let Some(block) = r.next_block().unwrap() {
            p.push_block(
                &block,
                None,
                portcullis_parse::reader::DEFAULT_MAX_LINE,
                &mut out,
            );
        }
        p.finish(&mut out);
        assert_eq!(out.len(), 1, "{line}: {out:?}");
    }
}
