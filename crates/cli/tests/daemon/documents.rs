//! Followed files that are documents: an Exchange IIS log and Entra ID sign-ins as JSON
//! lines, each recognised from its first line, next to a syslog mail log.

use std::time::Duration;

use super::common::daemon::{DaemonDir, append, dovecot_failure, wait_for};

#[test]
fn exchange_and_entra_files_are_followed_by_their_first_line() {
    let dir = DaemonDir::new();
    let iis = dir.path("logs/u_ex.log");
    let entra = dir.path("logs/signins.log");
    let mail = dir.path("logs/mail.log");
    append(
        &iis,
        &[
            "#Software: Microsoft Internet Information Services 10.0".to_owned(),
            "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken".to_owned(),
        ],
    );
    append(
        &mail,
        &[dovecot_failure("198.51.100.10", "alice@example.org", 1)],
    );
    dir.config(&format!(
        "[sources.files]\ninclude = [\"{}\"]\nstart_at = \"beginning\"\n\n[engine]\ntypo_window_secs = 2\n",
        dir.path("logs/*.log").display()
    ));
    let d = dir.start();
    let now = jiff::Timestamp::now();
    let w3c_time = now.strftime("%Y-%m-%d %H:%M:%S");
    let iso = now.strftime("%Y-%m-%dT%H:%M:%SZ");
    // One address guesses through ActiveSync, another through Entra ID.
    let eas: Vec<String> = (0..12)
        .map(|i| format!("{w3c_time} 10.1.0.10 POST /Microsoft-Server-ActiveSync/default.eas Cmd=Sync 443 EXAMPLE\\user{i} 203.0.113.7 Apple-iPhone9C1/1402.100 - 401 1 1326 15"))
        .collect();
    let signins: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"createdDateTime":"{iso}","userPrincipalName":"user{i}@example.org","ipAddress":"203.0.113.8","clientAppUsed":"Browser","status":{{"errorCode":50126}}}}"#))
        .collect();
    append(&iis, &eas);
    append(&entra, &signins);
    let bans = wait_for("both guessers' bans", Duration::from_secs(60), || {
        let b = d.bans();
        (b.iter().any(|n| n == "203.0.113.7/32") && b.iter().any(|n| n == "203.0.113.8/32"))
            .then_some(b)
    });
    assert_eq!(bans.len(), 2, "{bans:?}");
    let metrics = d.metrics();
    for (service, failures) in [("exchange", 12), ("entra", 12), ("dovecot", 1)] {
        let line = format!(
            "portcullis_events_total{{service=\"{service}\",outcome=\"failure\"}} {failures}"
        );
        assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    }
    assert_eq!(d.stop(), Some(0));
}
