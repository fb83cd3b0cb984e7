//! End-to-end tests of `portcullis audit` and `portcullis password check`: the real
//! binary on exports written into a fresh temp dir.

use std::io::Write;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;

use common::{bin, run};

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    common::with_stdin(cmd, input.as_bytes())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const EMPTY_NT: &str = "31d6cfe0d16ae931b73c59d7e0c089c0";
/// NT hash of "password".
const PASSWORD_NT: &str = "8846f7eaee8fb117ad06bdd830b7586c";
/// bcrypt of "password", cost 4 (the bcrypt crate's test vector).
const PASSWORD_BCRYPT: &str = "$2a$04$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96";

fn export(dir: &Path) -> String {
    let text = format!(
        "# secretsdump and Dovecot, mixed\n\
         [*] Dumping Domain Credentials (domain\\uid:rid:lmhash:nthash)\n\
         CORP\\Administrator:500:aad3b435b51404eeaad3b435b51404ee:{PASSWORD_NT}:::\n\
         CORP\\Guest:501:aad3b435b51404eeaad3b435b51404ee:{EMPTY_NT}:::\n\
         CORP\\old:1104:e52cac67419a9a224a3b108f3fa6cb6d:0123456789abcdef0123456789abcdef:::\n\
         mail@example.org:{{PLAIN}}Hunter2hunter2:1000:1000::/home/m::\n\
         web:{{BLF-CRYPT}}{PASSWORD_BCRYPT}\n\
         =cmd|' /C calc'!A0:{{PLAIN}}x\n\
         not a hash line\n\
         odd:{{SSHA512}}abcd\n"
    );
    let path = dir.join("export.txt");
    std::fs::write(&path, text).expect("write export");
    path.to_string_lossy().into_owned()
}

#[test]
fn text_report_lists_findings_worst_first_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let out = run(&["audit", "--quiet", &file]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let pos = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{text}"))
    };
    assert!(pos("stored as plaintext") < pos("Empty passwords"));
    assert!(pos("Empty passwords") < pos("Weak passwords"));
    assert!(pos("Weak passwords") < pos("shared between accounts"));
    assert!(pos("shared between accounts") < pos("LM hashes"));
    pos("CORP\\Guest");
    pos("no_separator ×1");
    pos("unsupported_scheme:SSHA512 ×1");
}

#[test]
fn json_report_is_versioned_and_counts_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let out = run(&["audit", "--quiet", "--format", "json", &file]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(r["version"], 1);
    assert_eq!(r["input"]["lines"], 10);
    assert_eq!(r["input"]["accounts"], 6);
    assert_eq!(r["input"]["skipped"]["comment"], 1);
    assert_eq!(r["input"]["skipped"]["tool_message"], 1);
    assert_eq!(r["input"]["rejected"]["no_separator"], 1);
    assert_eq!(r["summary"]["empty_password"], 1);
    assert_eq!(r["summary"]["lm_hash"], 1);
    assert_eq!(r["groups"][0]["size"], 2);
    let admin = r["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user"] == "CORP\\Administrator")
        .expect("Administrator reported");
    assert_eq!(admin["findings"][0]["kind"], "weak_password");
    assert_eq!(admin["findings"][0]["rule"], "common");
    assert!(admin.get("password").is_none());
}

#[test]
fn nothing_secret_is_printed_without_reveal() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let secrets = [
        "Hunter2hunter2",
        PASSWORD_NT,
        PASSWORD_BCRYPT,
        "0123456789abcdef",
    ];
    for format in ["text", "json", "csv"] {
        let out = run(&["audit", "--format", format, &file]);
        let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        for s in secrets {
            assert!(!all.contains(s), "{format}: {s} printed without --reveal");
        }
        assert!(!all.contains("password: "), "{format}");
        let out = run(&["audit", "--quiet", "--reveal", "--format", format, &file]);
        let all = stdout(&out);
        assert!(all.contains("Hunter2hunter2"), "{format} with --reveal");
        assert!(all.contains(PASSWORD_BCRYPT), "{format} with --reveal");
    }
}

#[test]
fn csv_has_one_row_per_finding_and_neutralises_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let report = dir.path().join("report.csv");
    let out = run(&[
        "audit",
        "--quiet",
        "--format",
        "csv",
        "-o",
        report.to_str().unwrap(),
        &file,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let csv = std::fs::read_to_string(&report).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("user,file,line,scheme,finding,count,rule,group,action,password,hash")
    );
    assert!(csv.contains("'=cmd|"), "{csv}");
    assert!(!csv.contains("\n=cmd"));
    let guest_rows = csv
        .lines()
        .filter(|l| l.starts_with("CORP\\Guest,"))
        .count();
    assert_eq!(guest_rows, 1);
}

#[test]
fn breached_list_gives_counts_and_a_clean_export_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clean.txt");
    // NT hash of a password no list knows: "quilt-harbour-lantern-77".
    std::fs::write(&file, "solo:{PLAIN}quilt-harbour-lantern-77-unusual\n").unwrap();
    let out = run(&[
        "audit",
        "--quiet",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    // Plaintext storage is itself a finding.
    assert_eq!(out.status.code(), Some(1));

    let file = dir.path().join("nt.txt");
    std::fs::write(
        &file,
        "a:1:aad3b435b51404eeaad3b435b51404ee:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:::\n",
    )
    .unwrap();
    let out = run(&["audit", "--quiet", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("No findings"));

    let list = dir.path().join("leaked.txt");
    std::fs::write(&list, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:1234\n").unwrap();
    let out = run(&[
        "audit",
        "--quiet",
        "--format",
        "json",
        "--breached-list",
        list.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["accounts"][0]["findings"][0]["kind"], "breached");
    assert_eq!(r["accounts"][0]["findings"][0]["count"], 1234);
    assert_eq!(r["checks"]["breach_lookup"], true);
}

#[test]
fn stdin_and_gzip_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let out = run_stdin(&["audit", "--quiet", "--format", "json", "-"], &text);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["input"]["accounts"], 6);

    let gz = dir.path().join("export.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let out = run(&["audit", "--quiet", "--format", "json", gz.to_str().unwrap()]);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["input"]["accounts"], 6);
}

#[test]
fn a_zero_time_budget_reports_unchecked_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let file = export(dir.path());
    let out = run(&["audit", "--time-budget", "0s", "--format", "json", &file]);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["checks"]["stopped_by_time_budget"], true);
    assert_eq!(r["checks"]["not_checked"], 1);
    assert_eq!(r["checks"]["fully_checked"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("time budget ran out: 1 of 1"), "{err}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let out = run(&["audit", "/nonexistent/export.txt"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = run(&["audit", "--time-budget", "soon", "x"]);
    assert_eq!(out.status.code(), Some(2));
    // Zero guesses would report every salted hash as fully checked.
    let out = run(&["audit", "--candidates", "0", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_utf8_and_overlong_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes.txt");
    let mut bytes = b"a:{PLAIN}\xff\xfe\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 100_000));
    bytes.extend_from_slice(b"\nb:{PLAIN}ok-but-plain\n");
    std::fs::write(&file, bytes).unwrap();
    let out = run(&[
        "audit",
        "--quiet",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["input"]["rejected"]["not_utf8"], 1);
    assert_eq!(r["input"]["rejected"]["line_too_long"], 1);
    assert_eq!(r["input"]["accounts"], 1);
    assert_eq!(r["accounts"][0]["line"], 3);
}

#[test]
fn password_check_reads_stdin_and_exits_by_verdict() {
    let out = run_stdin(
        &["password", "check", "--user", "j.smith"],
        "P@ssw0rd2024!\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("rejected"), "{text}");
    assert!(text.contains("too short"));
    assert!(!text.contains("P@ssw0rd2024!"));

    let out = run_stdin(
        &["password", "check", "--format", "json"],
        "quilt harbour lantern gravel\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["accepted"], true);
    assert!(v["score"].as_u64().unwrap() <= 4);

    let out = run_stdin(
        &[
            "password",
            "check",
            "--mfa",
            "--org",
            "Parliament",
            "--format",
            "json",
        ],
        "Parliament99\r\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["min_length"], 8);
    assert_eq!(v["reasons"][0]["code"], "context_word");
    assert_eq!(v["reasons"][0]["word"], "parliament");

    let out = run_stdin(
        &["password", "check", "--min-length", "30"],
        "quilt harbour lantern gravel\n",
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn password_is_never_an_argument() {
    let out = run(&["password", "check", "--password", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
