use super::*;

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

fn reader(year: YearRule) -> EnvelopeReader {
    EnvelopeReader::new(EnvelopeConfig {
        time_zone: paris(),
        year,
    })
}

fn fail2ban_now() -> YearRule {
    YearRule::Reference("2005-08-14T10:00:00Z".parse().unwrap())
}

fn instant(e: &Enveloped<'_>) -> String {
    e.line.time.unwrap().instant.to_string()
}

#[test]
fn bsd_syslog_with_host_and_pid() {
    let mut r = reader(fail2ban_now());
    let e = r.read("Feb 25 14:34:10 belka sshd[31602]: Failed password for ROOT");
    assert_eq!(e.stamp, Stamp::Rfc3164);
    assert_eq!(instant(&e), "2005-02-25T13:34:10Z");
    assert_eq!(e.line.time.unwrap().offset.seconds(), 3600);
    assert_eq!(e.line.host.as_deref(), Some("belka"));
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    assert_eq!(e.line.pid, Some(31602));
    assert_eq!(e.line.message, "Failed password for ROOT");
}

#[test]
fn bsd_syslog_day_forms_and_precision() {
    let mut r = reader(fail2ban_now());
    for (line, want) in [
        ("Mar  7 18:53:20 bar sshd[1556]: x", "2005-03-07T17:53:20Z"),
        (
            "Mar 7 02:09:33 server postfix/smtpd[2]: x",
            "2005-03-07T01:09:33Z",
        ),
        (
            "Jul 02 13:49:31 hostname dovecot[442]: x",
            "2005-07-02T11:49:31Z",
        ),
        (
            "Nov 28 09:16:03.250 srv sshd[1]: x",
            "2004-11-28T08:16:03.25Z",
        ),
    ] {
        let e = r.read(line);
        assert_eq!(instant(&e), want, "{line}");
        assert_eq!(e.line.message, "x");
    }
}

#[test]
fn reference_year_never_lands_in_the_future() {
    let mut r = reader(fail2ban_now());
    assert_eq!(
        instant(&r.read("Dec 12 11:19:11 h dovecot: x")),
        "2004-12-12T10:19:11Z"
    );
    assert_eq!(
        instant(&r.read("Aug 14 10:00:01 h sshd[1]: x")),
        "2005-08-14T08:00:01Z"
    );
    // Feb 29 goes back to the last leap year before the reference.
    assert_eq!(
        instant(&r.read("Feb 29 10:00:00 h sshd[1]: x")),
        "2004-02-29T09:00:00Z"
    );
}

#[test]
fn fixed_year_rolls_over_at_new_year() {
    let mut r = reader(YearRule::Fixed(2016));
    let years: Vec<i16> = [
        "Dec 30 23:59:59 h a: x",
        "Dec 31 23:59:59 h a: x",
        "Jan  1 00:00:01 h a: x",
        "Dec 31 23:59:58 h a: x",
        "Feb  3 00:00:00 h a: x",
    ]
    .iter()
    .map(|l| {
        r.read(l)
            .line
            .time
            .unwrap()
            .instant
            .to_zoned(paris())
            .year()
    })
    .collect();
    assert_eq!(years, [2016, 2016, 2017, 2016, 2017]);
}

#[test]
fn priority_prefix() {
    let mut r = reader(fail2ban_now());
    let e = r.read("<38>Feb 25 14:34:10 belka sshd[31602]: hello");
    assert_eq!(e.stamp, Stamp::Rfc3164);
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
}

#[test]
fn rfc5424() {
    let mut r = reader(fail2ban_now());
    let e = r.read("<38>1 2019-07-08T17:40:16.954167-04:00 hostname.example.com sshd 57915 - - Failed unknown for invalid user redmond from 192.0.2.1 port 59197 ssh2");
    assert_eq!(e.stamp, Stamp::Rfc5424);
    assert_eq!(instant(&e), "2019-07-08T21:40:16.954167Z");
    assert_eq!(e.line.time.unwrap().offset.seconds(), -4 * 3600);
    assert_eq!(e.line.host.as_deref(), Some("hostname.example.com"));
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    assert_eq!(e.line.pid, Some(57915));
    assert!(e.line.message.starts_with("Failed unknown"));

    let e = r.read(r#"<38>1 2019-07-08T17:40:17.954167-04:00 h sshd 55555 - [timeQuality tzKnown="1" isSynced="0"][xxx@123 test="[brackets\]"] Failed unknown for x"#);
    assert_eq!(e.line.message, "Failed unknown for x");
    let e = r.read("<13>1 - - - - - - \u{feff}bom message");
    assert_eq!(e.line.time, None);
    assert_eq!(e.line.message, "bom message");
}

#[test]
fn iso8601_and_year_first() {
    let mut r = reader(fail2ban_now());
    let e = r.read("2015-04-16T18:02:50.321974+00:00 host sshd[2716]: pam_unix(sshd:auth): x");
    assert_eq!(e.stamp, Stamp::Iso8601);
    assert_eq!(instant(&e), "2015-04-16T18:02:50.321974Z");
    assert_eq!(e.line.host.as_deref(), Some("host"));
    let e = r.read("2015-04-16T18:02:50+0200 host sshd[1]: x");
    assert_eq!(instant(&e), "2015-04-16T16:02:50Z");
    let e = r.read("2013-08-11 03:56:40 auth-worker(default): Info: pam(username,1.2.3.4): x");
    assert_eq!(e.stamp, Stamp::YearFirst);
    assert_eq!(instant(&e), "2013-08-11T01:56:40Z");
    assert_eq!(e.line.program.as_deref(), Some("auth-worker(default)"));
    assert_eq!(e.line.message, "Info: pam(username,1.2.3.4): x");
}

#[test]
fn tai64n() {
    let mut r = reader(fail2ban_now());
    let e = r.read("@400000004c91b044077a9e94 imap-login: Info: Aborted login");
    assert_eq!(e.stamp, Stamp::Tai64n);
    // 0x4c91b044 - 10 seconds of the TAI64 epoch offset.
    assert_eq!(e.line.time.unwrap().instant.as_second(), 0x4c91b044 - 10);
    assert_eq!(e.line.program.as_deref(), Some("imap-login"));
    assert_eq!(e.line.message, "Info: Aborted login");
}

#[test]
fn journald_json() {
    let mut r = reader(fail2ban_now());
    let e = r.read(r#"{"__REALTIME_TIMESTAMP":"1600000000123456","_HOSTNAME":"srv","SYSLOG_IDENTIFIER":"sshd","_PID":"42","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2"}"#);
    assert_eq!(e.stamp, Stamp::Journald);
    assert_eq!(instant(&e), "2020-09-13T12:26:40.123456Z");
    assert_eq!(e.line.host.as_deref(), Some("srv"));
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    assert_eq!(e.line.pid, Some(42));
    assert!(e.line.message.starts_with("Failed password"));
    // Binary MESSAGE fields are byte arrays.
    let e = r.read(r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":"x"}"#);
    assert_eq!(e.line.message, "hi\u{fffd}");
}

#[test]
fn no_stamp_and_bare_tags() {
    let mut r = reader(fail2ban_now());
    let e = r.read("srv sshd[13709]: error: PAM: Authentication failure");
    assert_eq!(e.stamp, Stamp::None);
    assert_eq!(e.line.time, None);
    assert_eq!(e.line.host.as_deref(), Some("srv"));
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    let e = r.read("Jun 25 23:53:34 [sshd] User root from 1.2.3.4 not allowed");
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    assert_eq!(e.line.message, "User root from 1.2.3.4 not allowed");
    let e = r.read("Mar  3 00:17:22 [sshd]: User root");
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    let e = r.read("Nov 23 21:50:19 sshd[8148]: Disconnecting");
    assert_eq!(e.line.host, None);
    assert_eq!(e.line.program.as_deref(), Some("sshd"));
    // A Dovecot 2.4 prefix is not a tag; the text stays whole for the parser.
    let e = r.read("Aug 30 00:10:57 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch");
    assert_eq!(e.line.program, None);
    assert!(e.line.message.starts_with("auth(info@example.com"));
}

#[test]
fn unwraps_repeats_and_solaris_ids() {
    let mut r = reader(fail2ban_now());
    let e = r.read("Feb 25 14:34:10 h sshd[1]: message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]");
    assert_eq!(e.repeat, 3);
    assert_eq!(
        e.line.message,
        "Failed password for root from 1.2.3.4 port 22 ssh2"
    );
    let e = r.read(
        "Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive",
    );
    assert_eq!(e.line.message, "Failed keyboard-interactive");
    let e = r.read("Feb 25 14:34:10 h sshd[1]: message repeated 4000000000 times: [ x]");
    assert_eq!(e.repeat, MAX_REPEAT);
}

#[test]
fn crlf_and_garbage_do_not_panic() {
    let mut r = reader(fail2ban_now());
    assert_eq!(r.read("Feb 25 14:34:10 h sshd[1]: x\r").line.message, "x");
    for junk in [
        "",
        "@",
        "@4000",
        "<",
        "<1>",
        "<999>1 ",
        "{",
        "{}",
        "[",
        "Feb",
        "Feb 30 10:00:00 h a: x",
        "2020-13-01T00:00:00Z x",
        "Jan 1 25:00:00 x",
        "1 2 3",
        "<1>1 2019-07-08T17:40:16Z h a 1 - [unterminated",
    ] {
        let _ = r.read(junk);
    }
}

#[test]
fn hour_cache_agrees_with_the_zone_around_dst_changes() {
    // Paris: 2005-03-27 02:00 -> 03:00 (gap), 2005-10-30 03:00 -> 02:00 (fold).
    let lines = [
        "Mar 27 01:59:58 h a: x",
        "Mar 27 01:59:59 h a: x",
        "Mar 27 02:30:00 h a: x",
        "Mar 27 03:00:00 h a: x",
        "Mar 27 03:00:01 h a: x",
        "Oct 30 01:59:59 h a: x",
        "Oct 30 02:00:00 h a: x",
        "Oct 30 02:30:00 h a: x",
        "Oct 30 02:59:59 h a: x",
        "Oct 30 03:00:00 h a: x",
        "Oct 30 03:30:00 h a: x",
    ];
    let mut cached = reader(fail2ban_now());
    for l in lines {
        // A fresh reader has no cache.
        let want = reader(fail2ban_now()).read(l).line.time;
        assert_eq!(cached.read(l).line.time, want, "{l}");
        assert_eq!(cached.read(l).line.time, want, "{l} (cached)");
    }
}
