//! `portcullis check-config` on the shipped sample and on broken files, and the daemon
//! commands' help.

use std::path::{Path, PathBuf};

use super::common::daemon::DaemonDir;
use super::common::run;

/// dist/portcullis.toml with its state directory and token file moved into `dir`,
/// each replaced by `edit`.
fn sample_config(dir: &DaemonDir, edit: impl Fn(String) -> String) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/portcullis.toml");
    let text = std::fs::read_to_string(&sample).expect("dist/portcullis.toml");
    assert!(text.contains("\"/var/lib/portcullis\"") && text.contains("\"/etc/portcullis/token\""));
    let text = text
        .replace(
            "\"/var/lib/portcullis\"",
            &format!("\"{}\"", dir.path("state").display()),
        )
        .replace(
            "\"/etc/portcullis/token\"",
            &format!("\"{}\"", dir.path("token").display()),
        );
    let path = dir.path("portcullis.toml");
    std::fs::write(&path, edit(text)).expect("write config");
    path
}

fn check(path: &Path) -> (bool, String, String) {
    let out = run(&["check-config", "-c", path.to_str().expect("utf-8 path")]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_sample_configuration_passes_check_config() {
    let dir = DaemonDir::new();
    let path = sample_config(&dir, |t| t);
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("valid. 2 file pattern(s)"), "{stdout}");
    assert!(stdout.contains("admin API 127.0.0.1:9470"), "{stdout}");
    assert!(stdout.contains("policy server off"), "{stdout}");
    // The sample's allowlist is empty, and the operator is told to fill it in.
    assert!(stderr.contains("bans.allowlist is empty"), "{stderr}");
}

#[test]
fn check_config_names_an_unknown_key() {
    let dir = DaemonDir::new();
    let path = sample_config(&dir, |t| {
        t.replace("prefix_members = 3", "prefix_memebrs = 3")
    });
    let (ok, stdout, stderr) = check(&path);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("prefix_memebrs"), "{stderr}");
}

#[test]
fn check_config_refuses_a_missing_token_file() {
    let dir = DaemonDir::new();
    let path = sample_config(&dir, |t| t);
    std::fs::remove_file(dir.path("token")).unwrap();
    let (ok, stdout, stderr) = check(&path);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("http.token_file"), "{stderr}");
    assert!(
        stderr.contains(&dir.path("token").display().to_string()),
        "{stderr}"
    );
}

#[test]
fn the_daemon_commands_are_listed_and_each_help_has_an_example() {
    let out = run(&["--help"]);
    let top = String::from_utf8_lossy(&out.stdout);
    for command in [
        "run",
        "check-config",
        "status",
        "ban",
        "unban",
        "unlock",
        "lockdown",
    ] {
        assert!(
            top.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} is not listed:\n{top}"
        );
        let out = run(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example"), "{command} --help:\n{help}");
        assert!(
            help.contains(&format!("portcullis {command} ")),
            "{command} --help shows no example of itself:\n{help}"
        );
    }
}
