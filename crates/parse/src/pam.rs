//! `pam_unix` authentication failures from any program without a parser of its own
//! (FTP servers, `su`, web applications using PAM…).
//!
//! Linux-PAM's `pam_unix` writes `authentication failure; logname=L uid=N euid=N tty=T
//! ruser=R rhost=H ` and then, when the user is known, ` user=U` (two spaces before
//! `user=`; `modules/pam_unix/support.c`, `_unix_verify_password`). The tag is
//! `pam_unix(SERVICE:auth): `; very old releases wrote `(pam_unix) `.
//!
//! R (`PAM_RUSER`) and U are set by the application and may be the client's own text
//! (an FTP server passes the login name as R). Either can contain ` rhost=`. The line is
//! split at a ` rhost=H` that is followed by the end of the line or by ` user=`; when
//! two such splits name different hosts the line is not attributed (an empty R cannot
//! settle it: an R that begins with a space looks the same).

use portcullis_core::{Event, Outcome, Reason, Service, address};

use crate::text::{find, find_iter, user};
use crate::{Ctx, Line, Verdict};

/// Reads one message.
pub fn parse(line: &Line<'_>, ctx: &Ctx<'_>, out: &mut Vec<Event>) -> Verdict {
    let msg: &str = &line.message;
    let Some(i) = find!(msg.as_bytes(), b"authentication failure; logname=") else {
        return Verdict::Unrecognised;
    };
    if find!(&msg.as_bytes()[..i], b"pam_unix").is_none() {
        return Verdict::Unrecognised;
    }
    let fields = &msg[i..];
    let Some(r) = find!(fields.as_bytes(), b" ruser=") else {
        return Verdict::Unrecognised;
    };
    let Some(split) = split(&fields[r + 7..]) else {
        return Verdict::Unrecognised;
    };
    let mut e = ctx.event(Service::Pam, Outcome::Failure(Reason::BadPassword));
    if let Some(a) = address::parse(split.rhost) {
        e.source = Some(a);
    } else if address::is_host_name(split.rhost) {
        e.source_name = Some(split.rhost.to_owned());
    }
    e.user = split.user.and_then(user).or_else(|| user(split.ruser));
    out.push(e);
    Verdict::Recognised
}

#[derive(Debug, PartialEq, Eq)]
struct Split<'a> {
    ruser: &'a str,
    rhost: &'a str,
    user: Option<&'a str>,
}

/// Splits `R rhost=H[ [ ]user=U]` (the text after `ruser=`).
fn split(t: &str) -> Option<Split<'_>> {
    let mut found: Option<Split<'_>> = None;
    for at in find_iter!(t.as_bytes(), b" rhost=") {
        let after = &t[at + 7..];
        let end = after.find(' ').unwrap_or(after.len());
        let rhost = &after[..end];
        let rest = after[end..].trim_start_matches(' ');
        let user = if rest.is_empty() {
            None
        } else if let Some(u) = rest.strip_prefix("user=") {
            Some(u)
        } else {
            continue;
        };
        let s = Split {
            ruser: &t[..at],
            rhost,
            user,
        };
        if found.as_ref().is_some_and(|f| f.rhost != s.rhost) {
            return None;
        }
        found.get_or_insert(s);
    }
    found
}

#[cfg(test)]
mod tests {
    use portcullis_core::{Outcome, Reason};

    use super::parse;
    use crate::testutil::{ip, one, unrecognised};

    #[test]
    fn failures() {
        let e = one(
            parse,
            Some("vsftpd"),
            "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=192.0.2.80",
        );
        assert_eq!(e.outcome, Outcome::Failure(Reason::BadPassword));
        assert_eq!(e.source, ip("192.0.2.80"));
        assert_eq!(e.user.as_deref(), Some("an8767"));
        let e = one(
            parse,
            Some("proftpd"),
            "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=2001:db8::66  user=mark",
        );
        assert_eq!(e.source, ip("2001:db8::66"));
        assert_eq!(e.user.as_deref(), Some("mark"));
        let e = one(
            parse,
            Some("vsftpd"),
            "pam_unix: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=an8767 rhost=www.google.com",
        );
        assert_eq!(e.source, None);
        assert_eq!(e.source_name.as_deref(), Some("www.google.com"));
        let e = one(
            parse,
            Some("su"),
            "pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=  user=root",
        );
        assert_eq!(e.source, None);
        assert_eq!(e.source_name, None);
        assert_eq!(e.user.as_deref(), Some("root"));
    }

    #[test]
    fn injected_fields() {
        // In the remote user: the last split is the only one that parses.
        let e = one(
            parse,
            Some("daemon"),
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser=test rhost=192.0.2.151 rhost=192.0.2.1",
        );
        assert_eq!(e.source, ip("192.0.2.1"));
        assert_eq!(e.user.as_deref(), Some("test rhost=192.0.2.151"));
        // In the user: two readings (a remote user ` rhost=192.0.2.2 user=test` would
        // read the same), no attribution.
        unrecognised(
            parse,
            Some("daemon"),
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser= rhost=192.0.2.2 user=test rhost=192.0.2.152",
        );
        // The same host in both readings is unambiguous.
        let e = one(
            parse,
            Some("daemon"),
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser= rhost=192.0.2.2  user=test rhost=192.0.2.2",
        );
        assert_eq!(e.source, ip("192.0.2.2"));
        // In both: two readings, no attribution.
        unrecognised(
            parse,
            Some("daemon"),
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=x ruser=a rhost=6.6.6.6  user=b rhost=192.0.2.3  user=a rhost=6.6.6.6",
        );
        unrecognised(
            parse,
            Some("daemon"),
            "authentication failure; logname= no pam here",
        );
        unrecognised(
            parse,
            Some("daemon"),
            "pam_unix(x:auth): authentication failure; logname= uid=0",
        );
    }
}
