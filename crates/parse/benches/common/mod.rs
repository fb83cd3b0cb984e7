//! Inputs shared by the `parse` benchmark and the `json_pass` and `rules_pass` examples:
//! a deterministic random generator, the documents of the formats read as whole records
//! (W3C lines, Entra sign-ins, winlogbeat events, Keycloak events, an application's JSON
//! log read by a custom mapping), and the custom rules of `push/rules` with lines for
//! them.

use std::hint::black_box;

use portcullis_core::Origin;
use std::sync::Arc;

use portcullis_parse::custom_json::compile;
use portcullis_parse::reader::DEFAULT_MAX_LINE;
use portcullis_parse::{
    Candidates, CustomJson, CustomJsonSpec, InputFormat, LineReader, LogParser, ParseConfig,
    Prefilter, RecordSplitter, RuleConfig, Rules,
};

/// SplitMix64: small, fast and the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub const FIRST: &[&str] = &[
    "anna", "ben", "chloe", "david", "emma", "felix", "grace", "henry", "isla", "jack", "kate",
    "liam", "maria", "noah", "olivia", "paul", "rosa", "sam", "a.jones", "j.smith", "m.brown",
    "t.evans",
];
pub const LAST: &[&str] = &[
    "smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "wright",
    "evans", "walker", "roberts", "green", "patel", "khan", "lewis",
];
/// Documents of each new format, one record or W3C line per element.
pub fn documents(n: usize) -> Vec<(&'static str, InputFormat, Vec<String>)> {
    let mut rng = Rng(7);
    let mut w3c = vec![
        "#Software: Microsoft Internet Information Services 10.0".to_owned(),
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken".to_owned(),
    ];
    let mut entra = Vec::new();
    let mut winlogbeat = Vec::new();
    let mut keycloak = Vec::new();
    for i in 0..n {
        let user = format!("{}.{}", rng.pick(FIRST), rng.pick(LAST));
        let ip = format!("203.0.{}.{}", rng.below(256), rng.below(256));
        let (h, m, sec) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
        let line = match rng.below(10) {
            0 => format!(
                "2024-06-23 {h:02}:{m:02}:{sec:02} 10.1.0.10 POST /owa/auth.owa &CorrelationID=<empty>; 443 {user}@example.org {ip} Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) https://mail.example.org/owa/auth/logon.aspx 302 0 0 46"
            ),
            1 => format!(
                "2024-06-23 {h:02}:{m:02}:{sec:02} 10.1.0.10 GET /owa/auth/logon.aspx replaceCurrent=1&reason=2&url=https%3a%2f%2fmail.example.org%2fowa%2f 443 - {ip} Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15"
            ),
            2 => format!(
                "2024-06-23 {h:02}:{m:02}:{sec:02} 10.1.0.10 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync&User={user}&DeviceId=ABC{i}&DeviceType=iPhone 443 EXAMPLE\\{user} {ip} Apple-iPhone9C1/1402.100 - 401 1 1326 15"
            ),
            3..=5 => format!(
                "2024-06-23 {h:02}:{m:02}:{sec:02} 10.1.0.10 POST /mapi/emsmdb/ mailboxId=x@example.org&CorrelationID=<empty>; 443 {user}@example.org {ip} Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.4266;+Pro) - 200 0 0 120"
            ),
            _ => format!(
                "2024-06-23 {h:02}:{m:02}:{sec:02} 10.1.0.10 GET /owa/service.svc action=GetFolder&UA=0 443 {user}@example.org {ip} Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) https://mail.example.org/owa/ 200 0 0 20"
            ),
        };
        w3c.push(line);
        let code = *rng.pick(&[0, 0, 50126, 50126, 50053, 50076, 50034]);
        entra.push(format!(
            r#"{{"id":"66ea54eb-6301-4ee5-be62-ff5a759b{i:04}","createdDateTime":"2024-06-23T{h:02}:{m:02}:{sec:02}Z","userDisplayName":"{user}","userPrincipalName":"{user}@example.org","userId":"26be570a-ae82-4189-b4e2-a37c6808512d","appId":"00000002-0000-0ff1-ce00-000000000000","appDisplayName":"Office 365 Exchange Online","ipAddress":"{ip}","clientAppUsed":"Browser","correlationId":"c0ffee00-0000-0000-0000-{i:012}","conditionalAccessStatus":"notApplied","isInteractive":true,"riskDetail":"none","riskLevelAggregated":"none","riskLevelDuringSignIn":"none","riskState":"none","riskEventTypes_v2":[],"resourceDisplayName":"Office 365 Exchange Online","resourceId":"00000002-0000-0ff1-ce00-000000000000","status":{{"errorCode":{code},"failureReason":"Other.","additionalDetails":null}},"deviceDetail":{{"deviceId":"","displayName":"","operatingSystem":"Windows 10","browser":"Edge 124.0.0","isCompliant":false,"isManaged":false,"trustType":""}},"location":{{"city":"London","state":"London","countryOrRegion":"GB","geoCoordinates":{{"altitude":null,"latitude":51.5,"longitude":-0.12}}}},"appliedConditionalAccessPolicies":[]}}"#
        ));
        let (id, status) = *rng.pick(&[
            (4625, "0xc000006a"),
            (4625, "0xc0000064"),
            (4624, "0x0"),
            (4771, "0x18"),
        ]);
        winlogbeat.push(format!(
            r#"{{"@timestamp":"2024-06-23T{h:02}:{m:02}:{sec:02}.123Z","event":{{"code":"{id}","kind":"event","provider":"Microsoft-Windows-Security-Auditing","outcome":"failure"}},"host":{{"name":"dc01.example.org"}},"winlog":{{"channel":"Security","computer_name":"DC01.example.org","event_id":"{id}","provider_name":"Microsoft-Windows-Security-Auditing","record_id":{i},"event_data":{{"SubjectUserSid":"S-1-0-0","SubjectUserName":"-","SubjectDomainName":"-","SubjectLogonId":"0x0","TargetUserSid":"S-1-0-0","TargetUserName":"{user}","TargetDomainName":"EXAMPLE","Status":"{status}","FailureReason":"%%2313","SubStatus":"{status}","LogonType":"3","LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM","WorkstationName":"WS-{i}","IpAddress":"{ip}","IpPort":"51234"}}}}}}"#
        ));
        let (kind, error) = *rng.pick(&[
            ("LOGIN", ""),
            ("LOGIN_ERROR", "invalid_user_credentials"),
            ("LOGIN_ERROR", "user_not_found"),
            ("CODE_TO_TOKEN", ""),
        ]);
        keycloak.push(format!(
            r#"{{"time":{},"type":"{kind}","realmId":"example","clientId":"webmail","userId":"2b7a099e-20a4-441b-8ef9-ac7f666dd6e3","sessionId":"dfd53c28-19e3-483c-ab55-{i:012}","ipAddress":"{ip}","error":"{error}","details":{{"auth_method":"openid-connect","auth_type":"code","redirect_uri":"https://mail.example.org/","code_id":"dfd53c28","username":"{user}"}}}}"#,
            1_719_100_800_000u64 + i as u64 * 1000
        ));
    }
    vec![
        ("w3c", InputFormat::W3c, w3c),
        ("entra", InputFormat::Json, entra),
        ("winlogbeat", InputFormat::Json, winlogbeat),
        ("keycloak", InputFormat::Json, keycloak),
        ("custom", InputFormat::Json, custom_records(n)),
        ("exchange-smtp", InputFormat::W3c, smtp_receive_lines(n)),
        ("exchange-popimap", InputFormat::W3c, popimap_lines(n)),
    ]
}

/// Exchange's SMTP Receive protocol log: sessions of client submission, a third of them
/// with a failed `AUTH`, the rest connecting, greeting, authenticating and sending.
fn smtp_receive_lines(n: usize) -> Vec<String> {
    let mut rng = Rng(13);
    let mut out = vec![
        "#Software: Microsoft Exchange Server".to_owned(),
        "#Log-type: SMTP Receive Protocol Log".to_owned(),
        "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context".to_owned(),
    ];
    let mut session = 0u64;
    while out.len() < n {
        session += 1;
        let ip = format!("203.0.{}.{}", rng.below(256), rng.below(256));
        let port = 1024 + rng.below(60_000);
        let (h, m, sec) = ((session / 3600) % 24, (session / 60) % 60, session % 60);
        let line = |seq: u32, event: &str, data: &str, context: &str| {
            format!(
                "2024-06-23T{h:02}:{m:02}:{sec:02}.{seq:03}Z,EX01\\Client Frontend EX01,08DC9A{session:010X},{seq},10.1.0.10:587,{ip}:{port},{event},{data},{context}"
            )
        };
        out.push(line(0, "+", "", ""));
        out.push(line(1, "<", "EHLO [192.168.1.5]", ""));
        out.push(line(2, ">", "\"250  EX01.example.org Hello [203.0.113.7] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS AUTH GSSAPI NTLM LOGIN BINARYMIME CHUNKING\"", ""));
        out.push(line(3, "<", "AUTH LOGIN", ""));
        if rng.below(3) == 0 {
            out.push(line(4, ">", "535 5.7.3 Authentication unsuccessful", ""));
        } else {
            let user = format!("{}.{}", rng.pick(FIRST), rng.pick(LAST));
            out.push(line(4, "*", &format!("EXAMPLE\\{user}"), "authenticated"));
            out.push(line(5, ">", "235 2.7.0 Authentication successful", ""));
            out.push(line(
                6,
                "<",
                &format!("MAIL FROM:<{user}@example.org> SIZE=2048"),
                "",
            ));
            out.push(line(7, ">", "250 2.1.0 Sender OK", ""));
        }
        out.push(line(9, "-", "", "Local"));
    }
    out.truncate(n);
    out
}

/// Exchange's IMAP4 protocol log: sessions that log in (a third of them failing) and
/// then select, fetch and log out.
fn popimap_lines(n: usize) -> Vec<String> {
    let mut rng = Rng(17);
    let mut out = vec![
        "#Software: Microsoft Exchange Server".to_owned(),
        "#Log-type: IMAP4 Protocol Log".to_owned(),
        "#Fields: dateTime,sessionId,seqNumber,sIp,cIp,user,duration,rqsize,rpsize,command,parameters,context".to_owned(),
    ];
    let mut session = 0u64;
    while out.len() < n {
        session += 1;
        let ip = format!("198.51.{}.{}", rng.below(256), rng.below(256));
        let port = 1024 + rng.below(60_000);
        let user = format!("{}.{}@example.org", rng.pick(FIRST), rng.pick(LAST));
        let (h, m, sec) = ((session / 3600) % 24, (session / 60) % 60, session % 60);
        let line = |seq: u32, who: &str, command: &str, parameters: &str, context: &str| {
            format!(
                "2024-06-23T{h:02}:{m:02}:{sec:02}.{seq:03}Z,{session:016X},{seq},10.1.0.10:993,{ip}:{port},{who},3,20,120,{command},{parameters},{context}"
            )
        };
        out.push(line(0, "", "OpenSession", "", ""));
        out.push(line(1, "", "capability", "", "R=OK"));
        if rng.below(3) == 0 {
            out.push(line(
                2,
                "",
                "login",
                &format!("{user} *****"),
                "\"R=\"\"a2 NO LOGIN failed.\"\"\"",
            ));
        } else {
            out.push(line(
                2,
                &user,
                "login",
                &format!("{user} *****"),
                "\"R=OK;Msg=\"\"Proxy:MBX01.example.org:1993:SSL;ProxySuccess\"\"\"",
            ));
            out.push(line(3, &user, "select", "INBOX", "R=OK;Rows=0"));
            out.push(line(
                4,
                &user,
                "fetch",
                "1:10 (FLAGS ENVELOPE)",
                "R=OK;Rows=10",
            ));
        }
        out.push(line(5, "", "logout", "", "R=OK"));
        out.push(line(6, "", "CloseSession", "", ""));
    }
    out.truncate(n);
    out
}

/// An application's own JSON log of logins (~400 B a record), read by the mapping of
/// [`custom_formats`]; its own generator, so the other inputs stay as they were.
fn custom_records(n: usize) -> Vec<String> {
    let mut rng = Rng(11);
    (0..n)
        .map(|i| {
            let user = format!("{}.{}", rng.pick(FIRST), rng.pick(LAST));
            let ip = format!("198.51.{}.{}", rng.below(256), rng.below(256));
            let (h, m, sec) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
            let (action, outcome) =
                *rng.pick(&[("auth", "fail"), ("auth", "fail"), ("auth", "ok"), ("view", "ok")]);
            format!(
                r#"{{"ts":"2024-06-23T{h:02}:{m:02}:{sec:02}.250Z","level":"info","logger":"app.security","msg":"request done","event":{{"action":"{action}","outcome":"{outcome}","duration_ms":{}}},"client":{{"ip":"{ip}","port":{},"agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}},"user":{{"name":"{user}@example.org","roles":["staff"]}},"request_id":"9f1c2e7a-{i:012}","node":"app-2"}}"#,
                rng.below(900),
                1024 + rng.below(60_000)
            )
        })
        .collect()
}

/// The `[[parse.json_formats]]` mapping that reads the `custom` input.
pub fn custom_formats() -> Arc<[CustomJson]> {
    let spec = CustomJsonSpec {
        name: "app".into(),
        when: [("event.action".to_owned(), "auth".to_owned())].into(),
        time: Some("ts".into()),
        time_format: None,
        source: Some("client.ip".into()),
        port: Some("client.port".into()),
        user: Some("user.name".into()),
        session: Some("request_id".into()),
        host: Some("node".into()),
        outcome: "event.outcome".into(),
        outcomes: [
            ("ok".to_owned(), "success".to_owned()),
            ("fail".to_owned(), "bad_password".to_owned()),
        ]
        .into(),
        protocol: Some("http".into()),
    };
    Arc::from(compile(&[spec]).expect("a valid mapping"))
}

/// The configuration a document input is read with (besides its format).
pub fn document_config(name: &str, format: InputFormat) -> ParseConfig {
    ParseConfig {
        format,
        json_formats: if name == "custom" {
            custom_formats()
        } else {
            Arc::from(Vec::new())
        },
        ..ParseConfig::default()
    }
}

/// The two custom rules of `push/rules`, both for the program `myvpn`.
pub fn rules() -> Arc<Rules> {
    let rule = |name: &str, regex: &str, outcome: &str| RuleConfig {
        name: name.into(),
        regex: regex.into(),
        outcome: outcome.into(),
        reason: None,
        program: Some("myvpn".into()),
        service: None,
    };
    Arc::new(
        Rules::new(&[
            rule("denied", r"^DENIED user=<USER> src=<ADDR> ", "failure"),
            rule("accepted", r"^ACCEPTED user=<USER> src=<ADDR>$", "success"),
        ])
        .expect("valid rules"),
    )
}

/// Syslog lines of the shape `push/rules` reads (its own generator, for the
/// `rules_pass` example): 70 % `DENIED` from a few hundred bot addresses (one in 30
/// IPv6), 30 % `ACCEPTED` for user names with a domain (one address in 25 IPv6).
/// `push/rules` keeps its own lines, so that its figures compare with earlier ones.
#[allow(dead_code)]
pub fn rule_lines(n: usize) -> Vec<String> {
    let mut rng = Rng(16);
    let addr = |rng: &mut Rng, v6_every: u64| {
        if rng.below(v6_every) == 0 {
            format!(
                "2001:db8:{:x}:{:x}::{:x}",
                rng.below(1 << 16),
                rng.below(1 << 16),
                1 + rng.below(0xfffe)
            )
        } else {
            format!(
                "{}.{}.{}.{}",
                11 + rng.below(212),
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            )
        }
    };
    (0..n)
        .map(|i| {
            let s = i as u64 / 5;
            let (day, h, m, sec) = (1 + s / 86_400 % 31, s / 3600 % 24, s / 60 % 60, s % 60);
            let pid = 1000 + rng.below(60_000);
            let st = format!("Mar {day:2} {h:02}:{m:02}:{sec:02} mail01 myvpn[{pid}]: ");
            if rng.chance(70) {
                let user = *rng.pick(&["admin", "info", "test", "sales", "root", "guest"]);
                let ip = addr(&mut rng, 30);
                format!("{st}DENIED user={user} src={ip} reason=password")
            } else {
                let user = format!("{}.{}@example.org", rng.pick(FIRST), rng.pick(LAST));
                let ip = addr(&mut rng, 25);
                format!("{st}ACCEPTED user={user} src={ip}")
            }
        })
        .collect()
}

/// One pass over `lines`, as `portcullis events` does it; returns the events seen.
pub fn run(parser: &mut LogParser, lines: &[String]) -> u64 {
    let mut origin = Origin::default();
    let mut out = Vec::with_capacity(64);
    let mut events = 0;
    for (i, line) in lines.iter().enumerate() {
        origin.line = i as u64 + 1;
        parser.push(black_box(line.as_bytes()), &origin, &mut out);
        if !out.is_empty() {
            events += out.len() as u64;
            black_box(&out);
            out.clear();
        }
    }
    parser.finish(&mut out);
    events + out.len() as u64
}

/// How many bytes of records the CLI's reader thread gathers before it hands them to
/// the parser (`BATCH_BYTES` in the CLI's pipeline).
pub const BATCH_BYTES: usize = 256 * 1024;

/// `lines` as `portcullis events` hands them to its parser: the document read in
/// chunks of 256 KiB and cut into records ([`RecordSplitter`], for JSON) or lines
/// ([`LineReader`] and [`Prefilter::take_all`], for W3C), in batches of about
/// [`BATCH_BYTES`], each batch's records one after another in one buffer.
pub fn batches(format: InputFormat, lines: &[String]) -> Vec<Candidates> {
    let mut doc = Vec::new();
    for line in lines {
        doc.extend_from_slice(line.as_bytes());
        doc.push(b'\n');
    }
    let mut out = Vec::new();
    let mut batch = Candidates::default();
    if format.is_json() {
        let mut splitter = RecordSplitter::default();
        for chunk in doc.chunks(256 * 1024) {
            splitter.push(chunk, &mut batch);
            if batch.bytes_held() >= BATCH_BYTES {
                out.push(std::mem::take(&mut batch));
            }
        }
        splitter.finish(&mut batch);
    } else {
        let mut reader = LineReader::new(&doc[..]);
        let mut prefilter = Prefilter::new();
        while let Ok(Some(block)) = reader.next_block() {
            prefilter.take_all(&block, DEFAULT_MAX_LINE, &mut batch);
            if batch.bytes_held() >= BATCH_BYTES {
                out.push(std::mem::take(&mut batch));
            }
        }
    }
    out.push(batch);
    out
}

/// One pass over `batches`, as the CLI's parser thread reads them; returns the events
/// seen.
pub fn run_batches(parser: &mut LogParser, batches: &[Candidates]) -> u64 {
    let mut out = Vec::with_capacity(64);
    let mut events = 0;
    for batch in batches {
        parser.push_candidates(black_box(batch), None, &mut out);
        events += out.len() as u64;
        black_box(&out);
        out.clear();
    }
    parser.finish(&mut out);
    events + out.len() as u64
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), if known.
pub fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split(' ').next()?.parse().ok()
}
