//! The policy server with the real Dovecot, both versions of its auth policy protocol:
//! 2.3 (Debian 12's `dovecot-imapd`, installed by `scripts/test`) and 2.4 (Debian 13's,
//! in a minimal Debian tree that `scripts/test` makes once with debootstrap and names
//! in `PORTCULLIS_DOVECOT24_ROOT`; run with chroot). The test writes a Dovecot
//! configuration into a temporary directory (passwd-file users,
//! `auth_policy_server_url` pointing at the daemon's policy listener, IMAP on a free
//! loopback port), starts `dovecot -F`, and logs in over IMAP from several loopback
//! source addresses (bound before connecting) as the real user and as an attacker.
//!
//! Needs root (Dovecot's master switches its processes to the `dovecot` and
//! `dovenull` users, and chroot); fails with a clear message otherwise, never skips.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{DaemonDir, POLICY_SECRET, wait_for};

/// The real user's password, and where she works from.
const PASSWORD: &str = "correct-horse-battery";
const HOME: &str = "127.0.0.2";
/// The attacker, in another /24 of the loopback network.
const ATTACKER: &str = "127.1.0.5";

/// Where a Dovecot runs: this system (2.3) or a chroot holding Debian 13's (2.4).
#[derive(Clone, Copy)]
enum Install<'a> {
    System,
    Chroot(&'a Path),
}

impl Install<'_> {
    /// `program args…`, inside the chroot if there is one.
    fn command(self, program: &str) -> Command {
        match self {
            Install::System => Command::new(program),
            Install::Chroot(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(program);
                c
            }
        }
    }

    /// A path of the temporary directory as Dovecot sees it.
    fn inside(self, p: &Path) -> std::path::PathBuf {
        match self {
            Install::System => p.to_path_buf(),
            Install::Chroot(root) => {
                Path::new("/").join(p.strip_prefix(root).expect("in the chroot"))
            }
        }
    }
}

fn id(install: Install<'_>, flag: &str, user: &str) -> u32 {
    let out = install
        .command("id")
        .args([flag, user])
        .output()
        .expect("run id");
    assert!(
        out.status.success(),
        "user {user} is missing: install dovecot-imapd (scripts/test does)"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

fn dovecot_version(install: Install<'_>) -> String {
    let out = install.command("dovecot").arg("--version").output().unwrap_or_else(|e| {
        panic!("dovecot is not installed ({e}): run scripts/test as root, or apt-get install dovecot-imapd")
    });
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Dovecot, stopped (SIGTERM) on drop.
struct Dovecot {
    child: Child,
    log: std::path::PathBuf,
}

impl Dovecot {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a configuration for the installed Dovecot (2.3 or 2.4 syntax) for IMAP on
/// `port` asking `policy_url`, in `dir` (inside the chroot for 2.4).
fn start_dovecot(install: Install<'_>, dir: &Path, port: u16, policy_url: &str) -> Dovecot {
    let version = dovecot_version(install);
    let v24 = match install {
        Install::System => {
            assert!(
                version.starts_with("2.3."),
                "Debian 12's Dovecot 2.3 expected on this system; installed: {version}"
            );
            false
        }
        Install::Chroot(root) => {
            assert!(
                version.starts_with("2.4."),
                "Dovecot 2.4 expected in {}; found: {version}",
                root.display()
            );
            true
        }
    };
    let (uid, gid) = (id(install, "-u", "dovecot"), id(install, "-g", "dovecot"));
    id(install, "-u", "dovenull");
    let d = dir.join("dovecot");
    for sub in ["run", "state", "home/alice"] {
        std::fs::create_dir_all(d.join(sub)).expect("dovecot dirs");
    }
    // Dovecot's unprivileged processes read the users file and the mail home.
    use std::os::unix::fs::PermissionsExt;
    for p in [dir, d.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::os::unix::fs::chown(d.join("home/alice"), Some(uid), Some(gid)).expect("chown home");
    let users = d.join("users");
    let home = install.inside(&d.join("home/alice"));
    std::fs::write(
        &users,
        format!(
            "alice:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}\n",
            home.display()
        ),
    )
    .expect("users");
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("dovecot:{POLICY_SECRET}"));
    let d_ = install.inside(&d).display().to_string();
    let users_ = install.inside(&users).display().to_string();
    // The settings 2.4 renamed (doc.dovecot.org, "Upgrading Dovecot CE from 2.3 to 2.4").
    let version_specific = if v24 {
        format!(
            r#"dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
auth_allow_cleartext = yes
mail_driver = maildir
mail_path = ~/Maildir
passdb passwd-file {{
  passwd_file_path = {users_}
}}
userdb passwd-file {{
  passwd_file_path = {users_}
}}
"#
        )
    } else {
        format!(
            r#"disable_plaintext_auth = no
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {users_}
}}
userdb {{
  driver = passwd-file
  args = {users_}
}}
"#
        )
    };
    let listen = if v24 { "listen" } else { "address" };
    let conf = format!(
        r#"{version_specific}
base_dir = {d_}/run
state_dir = {d_}/state
log_path = {d_}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
auth_verbose = yes
# No delay of Dovecot's own after a failure: the delays measured are Portcullis' tarpit.
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
service imap-login {{
  inet_listener imap {{
    {listen} = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# Dovecot's own per-address penalty (anvil) off, for the same reason: the auth
# process cannot reach the socket, which disables it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
auth_policy_server_url = {policy_url}/
auth_policy_server_api_header = Authorization: Basic {basic}
auth_policy_hash_nonce = a-random-nonce-for-this-test
"#
    );
    let path = d.join("dovecot.conf");
    std::fs::write(&path, conf).expect("dovecot.conf");
    let child = install
        .command("dovecot")
        .arg("-F")
        .arg("-c")
        .arg(install.inside(&path))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dovecot");
    let dv = Dovecot {
        child,
        log: d.join("dovecot.log"),
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut dv = dv;
    wait_for("Dovecot's IMAP listener", Duration::from_secs(30), || {
        if let Ok(Some(status)) = dv.child.try_wait() {
            panic!("dovecot exited ({status}):\n{}", dv.log());
        }
        TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    });
    dv
}

/// Logs in over IMAP from `source`: (the tagged answer, how long it took).
fn imap_login(port: u16, source: &str, user: &str, password: &str) -> (String, Duration) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&from.into()).expect("bind the source address");
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    socket.connect(&to.into()).expect("connect to Dovecot");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("* OK"), "greeting: {line}");
    let started = Instant::now();
    (&stream)
        .write_all(format!("a LOGIN {user} {password}\r\n").as_bytes())
        .expect("send LOGIN");
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("answer");
        assert!(n > 0, "Dovecot closed the connection without answering");
        if line.starts_with("a ") {
            return (line.trim().to_string(), started.elapsed());
        }
    }
}

#[test]
fn dovecot_2_3_rejects_a_sprayer_tarpits_it_and_keeps_the_real_user_in() {
    rejects_a_sprayer_tarpits_it_and_keeps_the_real_user_in(Install::System, None);
}

#[test]
fn dovecot_2_4_rejects_a_sprayer_tarpits_it_and_keeps_the_real_user_in() {
    let root = std::env::var_os("PORTCULLIS_DOVECOT24_ROOT").unwrap_or_else(|| {
        panic!(
            "PORTCULLIS_DOVECOT24_ROOT is not set: run scripts/test as root, which makes a \
             Debian 13 tree holding Dovecot 2.4 with debootstrap and sets it"
        )
    });
    let root = std::path::PathBuf::from(root);
    assert!(
        root.join("usr/sbin/dovecot").exists(),
        "no Dovecot in {}: run scripts/test as root",
        root.display()
    );
    // Dovecot's files go inside the tree, where the chrooted Dovecot can read them.
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp in the chroot");
    let inside = tempfile::Builder::new()
        .prefix("portcullis-dovecot-")
        .tempdir_in(&tmp)
        .expect("a directory in the chroot");
    rejects_a_sprayer_tarpits_it_and_keeps_the_real_user_in(
        Install::Chroot(&root),
        Some(inside.path()),
    );
}

/// The scenario, against the Dovecot of `install`; its files in `dovecot_dir` (default:
/// the daemon's temporary directory).
fn rejects_a_sprayer_tarpits_it_and_keeps_the_real_user_in(
    install: Install<'_>,
    dovecot_dir: Option<&Path>,
) {
    let dir = DaemonDir::new();
    std::fs::write(dir.path("policy-secret"), POLICY_SECRET).expect("secret");
    let cfg = dir.config(&format!(
        "[policy]\nlisten = \"127.0.0.1:0\"\nsecret_file = \"{}\"\n\
         tarpit_after = 2\ntarpit = \"1s\"\ntarpit_max = \"2s\"\nsource_accounts = 4\n",
        dir.path("policy-secret").display()
    ));
    let daemon = dir.start();
    let port = free_port();
    let dovecot = start_dovecot(
        install,
        dovecot_dir.unwrap_or(dir.dir.path()),
        port,
        &daemon.policy_url(),
    );
    let ok = |answer: &str| answer.starts_with("a OK");
    let context = || {
        format!(
            "dovecot log:\n{}\nportcullis:\n{}",
            dovecot.log(),
            daemon.log()
        )
    };

    // The real user logs in from home: that place becomes familiar.
    let (a, _) = imap_login(port, HOME, "alice", PASSWORD);
    assert!(ok(&a), "{a}\n{}", context());

    // The attacker sprays four accounts; from the third attempt on Dovecot holds each
    // answer for the tarpit Portcullis asks for (1 s, then 2 s).
    let mut took = Vec::new();
    for i in 0..4 {
        let (a, t) = imap_login(port, ATTACKER, &format!("user{i}"), "Summer2026!");
        assert!(a.starts_with("a NO"), "{a}");
        took.push(t);
    }
    assert!(took[2] >= Duration::from_secs(1), "{took:?}\n{}", context());
    assert!(took[3] >= Duration::from_secs(2), "{took:?}\n{}", context());
    assert!(took[0] < Duration::from_secs(2), "no tarpit yet: {took:?}");

    // Four accounts: the sprayer is refused even with alice's right password...
    let (a, _) = imap_login(port, ATTACKER, "alice", PASSWORD);
    assert!(a.starts_with("a NO"), "{a}\n{}", context());
    // Dovecot's log process writes the line after the client has its answer.
    wait_for(
        "Dovecot's log of the policy refusal",
        Duration::from_secs(10),
        || {
            dovecot
                .log()
                .contains("Policy check action is drop connection")
                .then_some(())
        },
    );
    // ...while alice, at home, logs in during the attack.
    let (a, t) = imap_login(port, HOME, "alice", PASSWORD);
    assert!(ok(&a), "{a}\n{}", context());
    assert!(t < Duration::from_secs(1), "alice was slowed down: {t:?}");

    // Lockdown: alice from home still logs in; from a new place, with the right
    // password, she is refused with Portcullis' message.
    let out = daemon.client(&cfg, &["lockdown", "on"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, _) = imap_login(port, HOME, "alice", PASSWORD);
    assert!(ok(&a), "{a}\n{}", context());
    let (a, _) = imap_login(port, "127.2.0.9", "alice", PASSWORD);
    assert!(a.starts_with("a NO"), "{a}");
    assert!(a.contains("Remote access is restricted"), "{a}");

    let metrics = daemon.metrics();
    for needle in [
        "portcullis_policy_decisions_total{decision=\"tarpit\",reason=\"\"} 2",
        "portcullis_policy_decisions_total{decision=\"reject\",reason=\"spraying\"} 1",
        "portcullis_policy_decisions_total{decision=\"reject\",reason=\"lockdown\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle}\n{metrics}");
    }
}
