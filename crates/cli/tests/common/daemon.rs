//! A running `portcullis run` for end-to-end tests: a configuration in a temporary
//! directory, the daemon started on a free loopback port (read from its stderr), an
//! authenticated client for its admin API, and bounded waits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The admin token every test daemon uses.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A daemon's directory: configuration, token, state, logs.
pub struct DaemonDir {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl DaemonDir {
    /// A fresh directory with the token file and a `logs/` folder.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), TOKEN).expect("token");
        std::fs::create_dir(dir.path().join("logs")).expect("logs");
        Self { dir }
    }

    /// A path inside the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `portcullis.toml`: the state directory, token, a free loopback port, UTC
    /// stamps, a 1 s snapshot interval and watermark lag, and `extra` (more TOML
    /// tables; not `[daemon]`, `[parse]` or `[http]`) filled in.
    pub fn config(&self, extra: &str) -> PathBuf {
        self.config_with_http("", extra)
    }

    /// [`DaemonDir::config`] with `http` (more `key = value` lines) in `[http]`.
    pub fn config_with_http(&self, http: &str, extra: &str) -> PathBuf {
        let d = self.dir.path().display();
        let text = format!(
            "[daemon]\nstate_dir = \"{d}/state\"\nsnapshot_interval = \"1s\"\nwatermark_lag = \"1s\"\n\n\
             [parse]\ntimezone = \"UTC\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{d}/token\"\n{http}\n\n{extra}\n"
        );
        let path = self.path("portcullis.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    /// Starts `portcullis run -c portcullis.toml` and waits until its admin API answers.
    pub fn start(&self) -> Daemon {
        Daemon::start(&self.path("portcullis.toml"))
    }
}

/// A running daemon, killed on drop.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Everything it wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon with this configuration; fails the test if it does not
    /// announce its admin API within 30 s.
    pub fn start(config: &Path) -> Daemon {
        let mut child = super::bin()
            .args(["run", "-c"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portcullis run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = BufReader::new(child.stderr.take().expect("stderr"));
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if let Some(rest) = line.split("admin API on ").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the daemon did not start; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Daemon { child, url, stderr }
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `GET path` with the admin token: (status, JSON or text as a JSON string).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, Some(TOKEN))
    }

    /// Any request; `token` None sends no Authorization header.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, b) => {
                let mut r = agent.post(&url).content_type("application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(b.unwrap_or("").as_bytes())
            }
        }
        .expect("request to the daemon");
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        let (code, v) = self.get("/v1/status");
        assert_eq!(code, 200, "{v}");
        v
    }

    /// The networks banned now.
    pub fn bans(&self) -> Vec<String> {
        let (code, v) = self.get("/v1/bans");
        assert_eq!(code, 200, "{v}");
        v["bans"]
            .as_array()
            .expect("bans")
            .iter()
            .map(|b| b["net"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// `POST /v1/events` with `body` and the admin token.
    pub fn report(&self, body: &str) -> (u16, Value) {
        self.call("POST", "/v1/events", Some(body), Some(TOKEN))
    }

    /// The text of `GET /metrics` (no token).
    pub fn metrics(&self) -> String {
        let (code, v) = self.call("GET", "/metrics", None, None);
        assert_eq!(code, 200, "{v}");
        v.as_str().expect("metrics are text").to_string()
    }

    /// Runs the admin client `portcullis ARGS -c CONFIG --url URL` against this daemon
    /// (the token comes from the configuration's `http.token_file`).
    pub fn client(&self, config: &Path, args: &[&str]) -> std::process::Output {
        super::bin()
            .args(args)
            .arg("-c")
            .arg(config)
            .args(["--url", &self.url])
            .output()
            .expect("run the portcullis client")
    }

    /// Waits (at most `limit`) until `needle` appears in its stderr.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        wait_for(&format!("{needle:?} on stderr"), limit, || {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
    }

    /// The policy listener's base URL (`[policy] listen`), from its stderr.
    pub fn policy_url(&self) -> String {
        let log = self.wait_for_log("policy server on ", Duration::from_secs(30));
        log.split("policy server on ")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .expect("policy URL")
            .trim()
            .to_string()
    }

    /// Sends SIGTERM and waits (at most 30 s) for a clean exit; returns its status code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id() as i32;
        // SAFETY-free: kill(1) is the portable way without a libc dependency.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL (a crash) and reaps it.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`HUP`, ...).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or fails the test after
/// `limit` with `what` and the last value seen.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Appends `lines` to the log at `path` (created if missing); returns how many.
pub fn append(path: &Path, lines: &[String]) -> usize {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for l in lines {
        writeln!(f, "{l}").expect("write log");
    }
    lines.len()
}

/// A Dovecot IMAP login failure line with the current time (syslog stamp, UTC).
pub fn dovecot_failure(source: &str, user: &str, session: u64) -> String {
    let now = jiff::Timestamp::now().strftime("%b %e %H:%M:%S");
    format!(
        "{now} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, method=PLAIN, rip={source}, lip=10.0.0.1, session=<s{session}>"
    )
}

/// A Dovecot IMAP login success line with the current time.
pub fn dovecot_success(source: &str, user: &str, session: u64) -> String {
    let now = jiff::Timestamp::now().strftime("%b %e %H:%M:%S");
    format!(
        "{now} mail dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={source}, lip=10.0.0.1, mpid=1234, TLS, session=<s{session}>"
    )
}

/// Reported events (`POST /v1/events` body): `source` failing once on each of `accounts`
/// distinct accounts, stamped now.
pub fn spray_events(source: &str, accounts: usize) -> String {
    let events: Vec<Value> = (0..accounts)
        .map(|i| {
            serde_json::json!({
                "source": source,
                "user": format!("user{i}@example.org"),
                "outcome": "failure",
                "reason": "bad_password",
            })
        })
        .collect();
    Value::Array(events).to_string()
}

/// The policy secret every test daemon with a policy listener uses.
pub const POLICY_SECRET: &str = "policy-secret-for-tests-0123456789";

/// `POST {url}{path}` with `body` and the policy secret as `X-API-Key`: (status, JSON).
pub fn policy_post(url: &str, path: &str, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&format!("{url}{path}"))
        .header("X-API-Key", POLICY_SECRET)
        .content_type("application/json")
        .send(body.as_bytes())
        .expect("request to the policy server");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
