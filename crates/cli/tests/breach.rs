//! End-to-end tests of `portcullis breach`: the real binary builds, checks, describes
//! and serves indexes in a fresh temp dir; the range API is queried by a real
//! third-party client (the `hibp` npm package) and compared byte for byte with the
//! API's format.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use portcullis_breach::{encode_hex_upper, ntlm, sha1};
use serde_json::Value;

mod common;

use common::{bin, run};

/// Runs `breach check` with `stdin` as standard input.
fn check_with_stdin(index: &Path, stdin: &[u8]) -> Output {
    let mut cmd = bin();
    cmd.args(["breach", "check", "--index"]).arg(index);
    common::with_stdin(cmd, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sha1_hex(password: &str) -> String {
    encode_hex_upper(&sha1(password.as_bytes()))
}

fn ntlm_hex(password: &str) -> String {
    encode_hex_upper(&ntlm(password))
}

/// Passwords in the test corpus and their counts.
const BREACHED: [(&str, u32); 4] = [
    ("password", 10_434_004),
    ("hunter2", 17_043),
    ("Summer2017!", 12),
    ("correct horse battery staple", 3),
];
const CLEAN: [&str; 2] = ["Xq7#not-in-any-breach-9zZ", "another clean one"];

fn corpus(dir: &Path, hex: fn(&str) -> String, name: &str) -> PathBuf {
    let mut body = String::new();
    for (p, c) in BREACHED {
        body.push_str(&format!("{}:{c}\r\n", hex(p)));
    }
    // Filler, so that prefixes hold more than one hash.
    for i in 0..2000u32 {
        body.push_str(&format!(
            "{}:{}\r\n",
            hex(&format!("filler-{i}")),
            i % 40 + 1
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write corpus");
    path
}

fn build(dir: &Path, input: &Path, out: &str, extra: &[&str]) -> PathBuf {
    let index = dir.join(out);
    let output = bin()
        .args(["breach", "build", "--quiet"])
        .arg(input)
        .arg("-o")
        .arg(&index)
        .args(extra)
        .output()
        .expect("run portcullis");
    assert!(output.status.success(), "build: {}", text(&output.stderr));
    index
}

#[test]
fn build_check_info() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = corpus(dir.path(), sha1_hex, "pwned.txt");
    let index = build(dir.path(), &input, "pwned.pcb", &[]);

    for (password, count) in BREACHED {
        let out = check_with_stdin(&index, format!("{password}\n").as_bytes());
        assert_eq!(out.status.code(), Some(1), "{password} is breached");
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(said.contains("breached"), "{said}");
        assert!(!said.contains(password), "the password is never printed");
        if count <= 16 {
            assert!(said.contains(&format!("seen {count} times")), "{said}");
        } else {
            assert!(said.contains("seen about"), "{said}");
        }
    }
    for password in CLEAN {
        let out = check_with_stdin(&index, format!("{password}\r\n").as_bytes());
        assert_eq!(out.status.code(), Some(0), "{password} is clean");
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(said.contains("not found"), "{said}");
        assert!(!said.contains(password));
    }
    // The line ending is dropped; nothing else is.
    let out = check_with_stdin(&index, b"password ");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a trailing space is part of the password"
    );
    let out = check_with_stdin(&index, b"password");
    assert_eq!(out.status.code(), Some(1), "no newline at all");

    let hex = sha1_hex("hunter2").to_lowercase();
    let out = run(&[
        "breach",
        "check",
        "--index",
        index.to_str().unwrap(),
        "--hash",
        &hex,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let wrong_kind = ntlm_hex("hunter2");
    let out = run(&[
        "breach",
        "check",
        "--index",
        index.to_str().unwrap(),
        "--hash",
        &wrong_kind,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an NTLM hash against a SHA-1 index"
    );
    assert!(text(&out.stderr).contains("ntlm"), "{}", text(&out.stderr));
    let out = run(&[
        "breach",
        "check",
        "--index",
        index.to_str().unwrap(),
        "--hash",
        "xyz",
    ]);
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["breach", "info", "--verify", index.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    for want in [
        "format version: 1",
        "kind:           sha1",
        "hashes:         2004",
        "bytes a hash",
        "mode:           compact",
        "counts:         on, one byte",
        "filter:         off",
        "verified:       yes",
    ] {
        assert!(info.contains(want), "{want:?} in\n{info}");
    }
}

#[test]
fn build_reports_what_it_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.txt");
    let good = sha1_hex("a");
    std::fs::write(&input, format!("{good}:1\n{good}:2\nZZZZ:1\n{good}:x\n\n")).unwrap();
    let out = bin()
        .args(["breach", "build"])
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("i.pcb"))
        .args(["--no-counts", "--filter=16"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("indexed 1 distinct sha1 hashes from 5 lines"),
        "{said}"
    );
    assert!(
        said.contains("skipped 2 malformed lines (first at "),
        "{said}"
    );
    assert!(said.contains("in.txt:3"), "{said}");
    assert!(said.contains("skipped 1 empty lines"), "{said}");
    let info = text(&run(&["breach", "info", dir.path().join("i.pcb").to_str().unwrap()]).stdout);
    assert!(info.contains("counts:         off"), "{info}");
    assert!(info.contains("filter:         binary-fuse-16"), "{info}");
}

/// `--filter` takes its width only with `=`, so it can stand before an input, as in
/// the help's example.
#[test]
fn filter_flag_before_an_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = corpus(dir.path(), sha1_hex, "pwned.txt");
    let out = dir.path().join("f.pcb");
    let status = bin()
        .args(["breach", "build", "--quiet", "--full", "--filter"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run");
    assert!(status.success());
    let info = text(&run(&["breach", "info", out.to_str().unwrap()]).stdout);
    assert!(info.contains("filter:         binary-fuse-8"), "{info}");
    assert!(info.contains("mode:           full"), "{info}");
    let check = check_with_stdin(&out, b"hunter2\n");
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stdout).contains("seen 17043 times"),
        "full counts are exact"
    );
}

#[test]
fn bad_inputs_are_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let junk = dir.path().join("junk.pcb");
    std::fs::write(&junk, b"PCBREACH but not really an index").unwrap();
    let out = run(&["breach", "info", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "breach",
        "check",
        "--index",
        "/nonexistent/x.pcb",
        "--hash",
        &sha1_hex("a"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let input = corpus(dir.path(), sha1_hex, "c.txt");
    let out = run(&[
        "breach",
        "build",
        input.to_str().unwrap(),
        "-o",
        dir.path().join("x").to_str().unwrap(),
        "--memory",
        "lots",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("512M"), "{}", text(&out.stderr));
}

#[test]
fn serve_refuses_a_compact_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = corpus(dir.path(), sha1_hex, "pwned.txt");
    let index = build(dir.path(), &input, "compact.pcb", &[]);
    let out = run(&[
        "breach",
        "serve",
        "--index",
        index.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(said.contains("--full"), "{said}");
}

/// The server, killed when the test ends.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&Path]) -> Server {
    let mut cmd = bin();
    cmd.args(["breach", "serve", "--listen", "127.0.0.1:0", "--index"])
        .arg(args[0]);
    if let Some(ntlm) = args.get(1) {
        cmd.arg("--ntlm-index").arg(ntlm);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the address line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, base }
}

/// One HTTP/1.1 request over a fresh connection: status line, headers, body.
fn get(base: &str, path: &str, headers: &[&str]) -> (String, String, Vec<u8>) {
    let addr = base.strip_prefix("http://").expect("http base");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("receive");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, head, response[split + 4..].to_vec())
}

/// The body the API gives for `prefix`, built by hand from the corpus.
fn expected_body(hex: fn(&str) -> String, prefix: &str) -> String {
    let mut lines: Vec<String> = BREACHED
        .iter()
        .map(|(p, c)| (hex(p), *c))
        .chain((0..2000u32).map(|i| (hex(&format!("filler-{i}")), i % 40 + 1)))
        .filter(|(h, _)| h.starts_with(prefix))
        .map(|(h, c)| format!("{}:{c}", &h[5..]))
        .collect();
    lines.sort();
    lines.join("\r\n")
}

#[test]
fn range_api_format_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = corpus(dir.path(), sha1_hex, "pwned.txt");
    let index = build(dir.path(), &input, "full.pcb", &["--full"]);
    let server = serve(&[&index]);

    // Prefixes of the breached passwords and of a few fillers (several hashes each).
    let mut prefixes: Vec<String> = BREACHED
        .iter()
        .map(|(p, _)| sha1_hex(p)[..5].to_owned())
        .collect();
    prefixes.extend((0..20).map(|i| sha1_hex(&format!("filler-{i}"))[..5].to_owned()));
    for prefix in &prefixes {
        let (status, head, body) = get(
            &server.base,
            &format!("/range/{}", prefix.to_lowercase()),
            &[],
        );
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            head.to_lowercase().contains("content-type: text/plain"),
            "{head}"
        );
        assert_eq!(
            text(&body),
            expected_body(sha1_hex, prefix),
            "prefix {prefix}"
        );
        assert!(
            !body.ends_with(b"\r\n"),
            "no line ending after the last line"
        );
    }
    // A prefix with no hash answers 200 with an empty body.
    let empty = (0..0x10_0000u32)
        .map(|p| format!("{p:05X}"))
        .find(|p| expected_body(sha1_hex, p).is_empty())
        .expect("an empty prefix");
    let (status, _, body) = get(&server.base, &format!("/range/{empty}"), &[]);
    assert_eq!((status.as_str(), body.len()), ("HTTP/1.1 200 OK", 0));
    for bad in [
        "/range/5BAA",
        "/range/5BAA61",
        "/range/XYZ12",
        "/range/5BAA6?mode=md5",
    ] {
        let (status, _, body) = get(&server.base, bad, &[]);
        assert!(status.starts_with("HTTP/1.1 400"), "{bad}: {status}");
        assert!(!body.is_empty(), "{bad}: a reason is given");
    }
    let (status, _, body) = get(&server.base, "/range/5BAA6?mode=ntlm", &[]);
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(text(&body).contains("--ntlm-index"));
    // Padding: 800 to 1,000 entries, the real ones among them unchanged.
    let prefix = &sha1_hex("password")[..5];
    let (_, _, body) = get(
        &server.base,
        &format!("/range/{prefix}"),
        &["Add-Padding: true"],
    );
    let body = text(&body);
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert!(
        (800..=1000).contains(&lines.len()),
        "{} entries",
        lines.len()
    );
    for real in expected_body(sha1_hex, prefix).split("\r\n") {
        assert!(lines.contains(&real), "{real} kept");
    }
    for line in &lines {
        let (suffix, count) = line.split_once(':').expect("SUFFIX:COUNT");
        assert_eq!(suffix.len(), 35, "{line}");
        assert!(
            suffix
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)),
            "{line}"
        );
        assert!(count.parse::<u32>().is_ok(), "{line}");
    }
}

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hibp-client")
}

/// Installs the client from the committed lock file unless it is there already.
fn hibp_client() -> PathBuf {
    let dir = client_dir();
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "node is missing: the range API is tested with the hibp npm package; install \
             Node.js 20.19 or later and npm (Debian: apt-get install nodejs npm)"
        ),
    }
    if !dir.join("node_modules/hibp/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("npm is missing ({e}): install npm to fetch the hibp client")
            });
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir
}

/// A real third-party client (the `hibp` npm package) pointed at our server: breached
/// passwords with their exact counts, clean ones 0, NTLM mode, padding.
#[test]
fn real_hibp_client_against_serve() {
    let client = hibp_client();
    let dir = tempfile::tempdir().expect("temp dir");
    let sha = build(
        dir.path(),
        &corpus(dir.path(), sha1_hex, "sha1.txt"),
        "sha1.pcb",
        &["--full"],
    );
    let nt = build(
        dir.path(),
        &corpus(dir.path(), ntlm_hex, "ntlm.txt"),
        "ntlm.pcb",
        &["--full"],
    );
    let server = serve(&[&sha, &nt]);

    let passwords: Vec<&str> = BREACHED.iter().map(|(p, _)| *p).chain(CLEAN).collect();
    let ntlm_parts: Vec<(String, String)> = passwords
        .iter()
        .map(|p| {
            let h = ntlm_hex(p);
            (h[..5].to_owned(), h[5..].to_owned())
        })
        .collect();
    let questions = serde_json::json!({
        "passwords": passwords,
        "ntlm": ntlm_parts,
        "paddingPrefix": &sha1_hex("password")[..5],
    });
    let mut node = Command::new("node")
        .arg(client.join("check.mjs"))
        .arg(&server.base)
        .current_dir(&client)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    node.stdin
        .take()
        .expect("stdin")
        .write_all(questions.to_string().as_bytes())
        .expect("write questions");
    let out = node.wait_with_output().expect("wait for node");
    assert!(
        out.status.success(),
        "the client failed: {}",
        text(&out.stderr)
    );
    let answers: Value = serde_json::from_slice(&out.stdout).expect("JSON from the client");

    for (password, count) in BREACHED {
        assert_eq!(answers["sha1"][password], count, "{password}");
        assert_eq!(answers["sha1Padded"][password], count, "{password} padded");
        let key = ntlm_hex(password);
        assert_eq!(answers["ntlm"][&key], count, "{password} ntlm");
        assert_eq!(answers["ntlmPadded"][&key], count, "{password} ntlm padded");
    }
    for password in CLEAN {
        assert_eq!(answers["sha1"][password], 0, "{password}");
        assert_eq!(answers["sha1Padded"][password], 0, "{password}");
        assert_eq!(answers["ntlm"][ntlm_hex(password)], 0, "{password} ntlm");
    }
    let entries = answers["padding"]["entries"].as_u64().expect("entries");
    let zeros = answers["padding"]["zeros"].as_u64().expect("zeros");
    let real = expected_body(sha1_hex, &sha1_hex("password")[..5])
        .split("\r\n")
        .count() as u64;
    assert!((800..=1000).contains(&entries), "{entries} entries");
    assert_eq!(zeros, entries - real, "padding entries have count 0");
    let bad = answers["badPrefix"].as_str().expect("an error message");
    assert!(bad.contains("not in a valid format"), "{bad}");
}

/// One HTTP/1.1 POST of a JSON body over a fresh connection: status line and body.
fn post_json(base: &str, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    let addr = base.strip_prefix("http://").expect("http base");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    // A server may answer (413) before reading all of an oversized body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let status = String::from_utf8_lossy(&response[..split])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    (status, response[split + 4..].to_vec())
}

/// The index is the breached list of `audit`, `password check` and the server's
/// `POST /v1/password/check`.
#[test]
fn audit_password_check_and_the_check_endpoint_use_the_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nt_input = corpus(dir.path(), ntlm_hex, "nt.txt");
    let nt_index = build(dir.path(), &nt_input, "nt.pcb", &["--full"]);
    let sha_input = corpus(dir.path(), sha1_hex, "sha.txt");
    let sha_index = build(dir.path(), &sha_input, "sha.pcb", &["--full"]);

    // A pwdump export: one account on a breached password, one on a clean one.
    let export = dir.path().join("export.txt");
    std::fs::write(
        &export,
        format!(
            "alice:1001:aad3b435b51404eeaad3b435b51404ee:{}:::\nbob:1002:aad3b435b51404eeaad3b435b51404ee:{}:::\n",
            ntlm_hex("hunter2").to_lowercase(),
            ntlm_hex(CLEAN[0]).to_lowercase()
        ),
    )
    .expect("write export");
    let out = bin()
        .args(["audit", "--quiet", "--format", "json", "--candidates", "1"])
        .arg("--index")
        .arg(&nt_index)
        .arg(&export)
        .output()
        .expect("run audit");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let accounts = report["accounts"].as_array().expect("accounts");
    let alice = accounts
        .iter()
        .find(|a| a["user"] == "alice")
        .expect("alice is reported");
    let breached = alice["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "breached")
        .expect("alice's password is breached");
    assert_eq!(breached["count"], 17_043);
    assert!(
        accounts.iter().all(|a| a["user"] != "bob"),
        "bob's password is in no breach: {accounts:?}"
    );

    // `password check`: the index's count is in the verdict.
    let mut cmd = bin();
    cmd.args(["password", "check", "--format", "json", "--index"])
        .arg(&sha_index);
    let out = common::with_stdin(cmd, b"correct horse battery staple\n");
    assert_eq!(out.status.code(), Some(1));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("JSON verdict");
    assert!(
        verdict["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["code"] == "breached" && r["count"] == 3),
        "{verdict}"
    );

    // The same check over HTTP, with both indexes loaded.
    let server = serve(&[&sha_index, &nt_index]);
    let (status, body) = post_json(
        &server.base,
        "/v1/password/check",
        br#"{"password": "correct horse battery staple", "username": "j.smith"}"#,
    );
    assert!(status.contains(" 200 "), "{status}");
    let verdict: Value = serde_json::from_slice(&body).expect("JSON verdict");
    assert_eq!(verdict["accepted"], false);
    assert!(
        verdict["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["code"] == "breached" && r["count"] == 3),
        "{verdict}"
    );
    let clean = format!(r#"{{"password": "{}", "mfa": true}}"#, CLEAN[0]);
    let (status, body) = post_json(&server.base, "/v1/password/check", clean.as_bytes());
    assert!(status.contains(" 200 "), "{status}");
    let verdict: Value = serde_json::from_slice(&body).expect("JSON verdict");
    assert_eq!(verdict["accepted"], true, "{verdict}");
    assert!(!String::from_utf8_lossy(&body).contains(CLEAN[0]));

    // Malformed and oversized bodies are refused with a 4xx, and the server goes on.
    let (status, _) = post_json(&server.base, "/v1/password/check", b"{\"pass");
    assert!(
        status.contains(" 400 ") || status.contains(" 422 "),
        "{status}"
    );
    let (status, _) = post_json(&server.base, "/v1/password/check", b"{\"username\": \"x\"}");
    assert!(status.contains(" 422 "), "{status}");
    let big = format!(r#"{{"password": "{}"}}"#, "x".repeat(64 * 1024));
    let (status, _) = post_json(&server.base, "/v1/password/check", big.as_bytes());
    assert!(status.contains(" 413 "), "{status}");
    let (status, _) = post_json(
        &server.base,
        "/v1/password/check",
        br#"{"password": "correct horse battery staple"}"#,
    );
    assert!(status.contains(" 200 "), "{status}");
}
