//! End-to-end tests of the `portcullis` binary: each test gets a fresh temp dir, runs
//! the real binary and reads what it prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    // Stamps without an offset are read in this zone, so results do not depend on the
    // machine's.
    c.env("TZ", "UTC");
    c
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mail.log")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run portcullis")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (line, outcome, reason, source, account, attempts) of each event.
fn summary(events: &[Value]) -> Vec<(u64, String, String, String, String, u64)> {
    events
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (
                e["line"].as_u64().unwrap(),
                s("outcome"),
                s("reason"),
                s("source"),
                s("account"),
                e["attempts"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn expected_example() -> Vec<(u64, String, String, String, String, u64)> {
    let row = |line, outcome: &str, reason: &str, source: &str, account: &str, attempts| {
        (
            line,
            outcome.to_owned(),
            reason.to_owned(),
            source.to_owned(),
            account.to_owned(),
            attempts,
        )
    };
    vec![
        row(
            2,
            "success",
            "",
            "198.51.100.20",
            "j.smith@parliament.example",
            1,
        ),
        row(
            3,
            "failure",
            "bad_password",
            "203.0.113.7",
            "a.jones@parliament.example",
            1,
        ),
        row(
            5,
            "failure",
            "unknown_account",
            "203.0.113.7",
            "no.such.user@parliament.example",
            1,
        ),
        row(7, "failure", "bad_password", "2001:db8:4:7::9", "", 1),
        row(
            8,
            "success",
            "",
            "198.51.100.20",
            "j.smith@parliament.example",
            1,
        ),
        row(11, "failure", "unknown_account", "203.0.113.9", "admin", 1),
        row(12, "success", "", "192.0.2.50", "deploy", 1),
        row(13, "failure", "bad_password", "203.0.113.9", "root", 3),
    ]
}

#[test]
fn events_on_the_example_log() {
    let ex = example();
    let out = run(&["events", "--year", "2017", ex.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&out);
    assert_eq!(summary(&events), expected_example());
    // The contract's fields, with the time in the input's offset.
    let first = &events[0];
    assert_eq!(first["time"], "2017-06-23T09:14:02+00:00");
    assert_eq!(first["service"], "dovecot");
    assert_eq!(first["protocol"], "imap");
    assert_eq!(first["session"], "k3Ab9QxRZtDGM2UU");
    assert_eq!(first["host"], "mail01");
    assert_eq!(first["user"], "j.smith@parliament.example");
    assert!(first["file"].as_str().unwrap().ends_with("mail.log"));
    // Postfix does not log the user of a failed SASL login: no user, no account.
    assert!(events[3].get("user").is_none() && events[3].get("account").is_none());
    let err = stderr(&out);
    assert!(
        err.contains("13 lines: 8 events (10 attempts); 0 auth-looking lines not understood"),
        "{err}"
    );
}

#[test]
fn time_zone_applies_to_stamps_without_offset() {
    let ex = example();
    let out = run(&[
        "events",
        "--year",
        "2017",
        "--timezone",
        "Europe/London",
        ex.to_str().unwrap(),
    ]);
    assert_eq!(json_lines(&out)[0]["time"], "2017-06-23T09:14:02+01:00");
    let out = run(&[
        "events",
        "--year",
        "2017",
        "--timezone",
        "-05:00",
        ex.to_str().unwrap(),
    ]);
    assert_eq!(json_lines(&out)[0]["time"], "2017-06-23T09:14:02-05:00");
}

#[test]
fn gzip_and_stdin_read_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(example()).unwrap();
    let gz = dir.path().join("mail.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();
    let out = run(&["events", "--year", "2017", gz.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&json_lines(&out)), expected_example());

    let mut child = bin()
        .args(["events", "--year", "2017", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&plain).unwrap();
    let out = child.wait_with_output().unwrap();
    let events = json_lines(&out);
    assert_eq!(summary(&events), expected_example());
    assert_eq!(events[0]["file"], "-");
}

#[test]
fn csv_has_a_header_and_one_row_per_event() {
    let ex = example();
    let out = run(&[
        "events",
        "--format",
        "csv",
        "--year",
        "2017",
        ex.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..4], ["time", "service", "protocol", "source"]);
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 8);
    assert_eq!(
        &records[7][header.iter().position(|h| h == "attempts").unwrap()],
        "3"
    );
}

#[test]
fn missing_file_is_one_clear_line_and_exit_2() {
    let out = run(&["events", "/nonexistent/mail.log"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("portcullis: error: cannot open /nonexistent/mail.log"),
        "{err}"
    );
}

#[test]
fn bad_options_are_refused() {
    let ex = example();
    let out = run(&["events", "--timezone", "Mars/Olympus", ex.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown time zone"),
        "{}",
        stderr(&out)
    );
    let out = run(&["events", "--domain", "sometimes", ex.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--domain must be"));
    let out = run(&["events"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn garbage_is_counted_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.log");
    let mut data: Vec<u8> = Vec::new();
    data.extend(b"Jun 23 09:14:11 mail01 sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2\r\n");
    data.extend(b"\x00\x01\x02 sshd auth \xff\xfe\n");
    data.extend(b"Jun 23 09:14:12 mail01 sshd[2]: Failed password for r\xffot from 203.0.113.10 port 1 ssh2\n");
    data.extend(std::iter::repeat_n(b'A', 200_000));
    data.extend(
        b"\nJun 23 09:14:13 mail01 sshd[3]: Failed password for root from 203.0.113.11 port 1 ssh2",
    );
    std::fs::write(&path, &data).unwrap();
    let out = run(&["events", "--year", "2017", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&out);
    let sources: Vec<&str> = events
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["203.0.113.9", "203.0.113.10", "203.0.113.11"]);
    assert_eq!(events[1]["user"], "r\u{fffd}ot");
    assert_eq!(events[2]["line"], 5);
    let err = stderr(&out);
    assert!(err.contains("2 lines not valid UTF-8"), "{err}");
    assert!(err.contains("1 lines with NUL bytes"), "{err}");
    assert!(err.contains("1 lines over 65536 bytes skipped"), "{err}");
}

#[test]
fn crafted_usernames_do_not_move_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inject.log");
    let lines = [
        "Jun 23 09:14:11 m sshd[10]: Invalid user x from 9.9.9.9 port 1 from 203.0.113.20 port 50000",
        "Jun 23 09:14:11 m sshd[10]: Failed password for invalid user x from 9.9.9.9 port 1 from 203.0.113.20 port 50000 ssh2",
        "Jun 23 09:14:12 m dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<a>, rip=9.9.9.9, lip=1.1.1.1>, method=PLAIN, rip=203.0.113.21, lip=192.0.2.1, session=<AbCdEf>",
        "Jun 23 09:14:13 m dovecot: auth: passwd-file(b,9.9.9.9,203.0.113.22): unknown user",
        "Jun 23 09:14:14 m postfix/smtpd[5]: warning: evil[9.9.9.9].example[203.0.113.23]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        "Jun 23 09:14:15 m sshd[11]: Failed password for \u{1b}[31mroot from 203.0.113.24 port 2 ssh2",
        // Newlines in a name reach the log escaped (rsyslog #012, OpenSSH \\012): the
        // "line" inside stays part of the name.
        "Jun 23 09:14:16 m sshd[12]: Failed password for invalid user x#012Jun 23 09:14:16 m sshd[13]: Failed password for root from 9.9.9.9 port 1 ssh2 from 203.0.113.25 port 3 ssh2",
        "Jun 23 09:14:17 m sshd[14]: Failed password for invalid user y\\012Jun 23 09:14:17 m sshd[15]: Accepted password for root from 9.9.9.9 port 1 ssh2 from 203.0.113.26 port 4 ssh2",
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = run(&["events", "--year", "2017", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&out);
    let sources: Vec<&str> = events.iter().filter_map(|e| e["source"].as_str()).collect();
    assert!(!sources.contains(&"9.9.9.9"), "{sources:?}");
    // One event per attempt, none forged by the text inside a name.
    assert_eq!(events.len(), 7, "{events:?}");
    assert!(
        events.iter().all(|e| e["outcome"] == "failure"),
        "no forged success"
    );
    for want in [
        "203.0.113.20",
        "203.0.113.21",
        "203.0.113.22",
        "203.0.113.23",
        "203.0.113.24",
        "203.0.113.25",
        "203.0.113.26",
    ] {
        assert_eq!(
            sources.iter().filter(|s| **s == want).count(),
            1,
            "{want} in {sources:?}"
        );
    }
    // The escape sequence is data, printed escaped, never raw to a terminal.
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}

#[test]
fn help_has_examples() {
    let out = run(&["events", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("portcullis events /var/log/mail.log"),
        "{text}"
    );
}
