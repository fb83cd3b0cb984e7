//! One line of a hash export → an account, a skip (with its reason) or a rejection
//! (with its reason). The format is decided per line, so mixed files work:
//!
//! - pwdump / secretsdump: `user:rid:lmhash:nthash:::` (also `DOMAIN\user`);
//! - Dovecot passwd-file and shadow-like files: `user:hash:uid:gid:…` with any number
//!   of further fields;
//! - htpasswd: `user:hash`.

use std::fmt;

use crate::lookup::decode_hex;
use crate::scheme::{EMPTY_LM, EMPTY_NT, HashError, StoredHash};

/// The layout a line was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `user:rid:lm:nt:::`.
    Pwdump,
    /// `user:hash:more:fields` (Dovecot passwd-file, shadow).
    PasswdFile,
    /// `user:hash`.
    Htpasswd,
}

/// An account read from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user name as written.
    pub user: String,
    /// The password hash.
    pub hash: StoredHash,
    /// The password field as written (printed only with `--reveal`).
    pub hash_text: String,
    /// pwdump only: an LM hash that is present (not the empty-LM constant).
    pub lm: Option<[u8; 16]>,
    /// How the line was laid out.
    pub layout: Layout,
}

/// Why a line holds no account, though it is a legitimate part of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// Empty or only whitespace.
    Blank,
    /// Starts with `#`.
    Comment,
    /// secretsdump's status lines (`[*] Dumping …`).
    ToolMessage,
    /// secretsdump's Kerberos keys (`user:aes256-cts-hmac-sha1-96:…`).
    KerberosKey,
    /// A locked or disabled account (`!` or `*` password field, as in shadow).
    Locked,
}

impl Skip {
    /// A stable key for counting.
    pub fn key(self) -> &'static str {
        match self {
            Skip::Blank => "blank",
            Skip::Comment => "comment",
            Skip::ToolMessage => "tool_message",
            Skip::KerberosKey => "kerberos_key",
            Skip::Locked => "locked_account",
        }
    }
}

/// Why a line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `:` separating user and password.
    NoSeparator,
    /// The user field is empty.
    EmptyUser,
    /// A pwdump line whose LM or NT field is not 32 hex digits.
    BadPwdumpHash,
    /// The password field.
    Hash(HashError),
    /// Not valid UTF-8 (reported by the reader).
    NotUtf8,
    /// Longer than the reader accepts (reported by the reader).
    TooLong,
}

impl Rejection {
    /// A stable key for counting, e.g. `no_separator`, `unsupported_scheme:SSHA512`.
    pub fn key(&self) -> String {
        match self {
            Rejection::NoSeparator => "no_separator".to_owned(),
            Rejection::EmptyUser => "empty_user".to_owned(),
            Rejection::BadPwdumpHash => "malformed_pwdump_hash".to_owned(),
            Rejection::Hash(e) => e.key(),
            Rejection::NotUtf8 => "not_utf8".to_owned(),
            Rejection::TooLong => "line_too_long".to_owned(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoSeparator => f.write_str("no ':' between user and password"),
            Rejection::EmptyUser => f.write_str("empty user name"),
            Rejection::BadPwdumpHash => f.write_str("pwdump LM/NT field is not 32 hex digits"),
            Rejection::Hash(e) => e.fmt(f),
            Rejection::NotUtf8 => f.write_str("not UTF-8"),
            Rejection::TooLong => f.write_str("line too long"),
        }
    }
}

/// What one line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An account.
    Entry(Entry),
    /// Nothing to check, for a known reason.
    Skip(Skip),
    /// Not understood.
    Rejected(Rejection),
}

/// pwdump tools write this in place of a hash when there is none.
const NO_PASSWORD: &str = "NO PASSWORD*********************";

/// Reads one line (without its newline; a trailing `\r` is ignored).
pub fn parse_line(line: &str) -> Line {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Skip(Skip::Blank);
    }
    if trimmed.starts_with('#') {
        return Line::Skip(Skip::Comment);
    }
    if ["[*]", "[-]", "[+]", "[!]"]
        .iter()
        .any(|p| trimmed.starts_with(p))
    {
        return Line::Skip(Skip::ToolMessage);
    }
    let Some((user, rest)) = line.split_once(':') else {
        return Line::Rejected(Rejection::NoSeparator);
    };
    if user.is_empty() {
        return Line::Rejected(Rejection::EmptyUser);
    }
    let fields: Vec<&str> = rest.split(':').collect();
    if let Some(line) = pwdump(user, &fields) {
        return line;
    }
    let hash_text = fields[0];
    if [
        "aes256-cts-hmac-sha1-96",
        "aes128-cts-hmac-sha1-96",
        "des-cbc-md5",
        "rc4_hmac",
    ]
    .contains(&hash_text)
    {
        return Line::Skip(Skip::KerberosKey);
    }
    if hash_text.starts_with('!') || hash_text.starts_with('*') {
        return Line::Skip(Skip::Locked);
    }
    // The password field ends at the next ':' (Dovecot's passwd-file rule), so a
    // {PLAIN} password cannot contain one.
    let layout = if fields.len() == 1 {
        Layout::Htpasswd
    } else {
        Layout::PasswdFile
    };
    match StoredHash::parse(hash_text) {
        Ok(hash) => Line::Entry(Entry {
            user: user.to_owned(),
            hash,
            hash_text: hash_text.to_owned(),
            lm: None,
            layout,
        }),
        Err(e) => Line::Rejected(Rejection::Hash(e)),
    }
}

/// `rid:lm:nt:…` after the user: the rid is decimal, LM and NT are 32 hex digits (or
/// the "NO PASSWORD" filler). `None` when the fields do not have that shape at all.
fn pwdump(user: &str, fields: &[&str]) -> Option<Line> {
    if fields.len() < 3 {
        return None;
    }
    let rid = fields[0];
    if rid.is_empty() || !rid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (lm, nt) = (fields[1], fields[2]);
    let lm = if lm == NO_PASSWORD {
        None
    } else {
        match decode_hex::<16>(lm) {
            Some(h) if h == EMPTY_LM => None,
            Some(h) => Some(h),
            None => return Some(Line::Rejected(Rejection::BadPwdumpHash)),
        }
    };
    let nt_hash = if nt == NO_PASSWORD {
        EMPTY_NT
    } else {
        match decode_hex::<16>(nt) {
            Some(h) => h,
            None => return Some(Line::Rejected(Rejection::BadPwdumpHash)),
        }
    };
    Some(Line::Entry(Entry {
        user: user.to_owned(),
        hash: StoredHash::Ntlm(nt_hash),
        hash_text: nt.to_owned(),
        lm,
        layout: Layout::Pwdump,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Scheme;

    fn entry(line: &str) -> Entry {
        match parse_line(line) {
            Line::Entry(e) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn pwdump_and_secretsdump_lines() {
        let e = entry(
            "Administrator:500:aad3b435b51404eeaad3b435b51404ee:8846f7eaee8fb117ad06bdd830b7586c:::",
        );
        assert_eq!(e.layout, Layout::Pwdump);
        assert_eq!(e.user, "Administrator");
        assert_eq!(e.lm, None);
        assert!(e.hash.verify("password"));

        let e = entry(
            "CORP\\j.smith:1104:e52cac67419a9a224a3b108f3fa6cb6d:8846F7EAEE8FB117AD06BDD830B7586C::: (status=Enabled)",
        );
        assert_eq!(e.user, "CORP\\j.smith");
        assert!(e.lm.is_some());
        assert!(e.hash.verify("password"));

        let e =
            entry("Guest:501:NO PASSWORD*********************:NO PASSWORD*********************:::");
        assert_eq!(e.hash, StoredHash::Ntlm(EMPTY_NT));
        assert_eq!(e.lm, None);

        assert_eq!(
            parse_line("bob:1001:aad3b435b51404eeaad3b435b51404ee:nothex:::"),
            Line::Rejected(Rejection::BadPwdumpHash)
        );
    }

    #[test]
    fn dovecot_passwd_file_lines() {
        let e = entry(
            "j.smith@example.org:{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5:1000:1000::/home/j:/bin/false:userdb_quota_rule=*:storage=1G",
        );
        assert_eq!(e.layout, Layout::PasswdFile);
        assert_eq!(e.user, "j.smith@example.org");
        assert_eq!(e.hash.scheme(), Scheme::Sha256Crypt);
        let e = entry("a@example.org:{PLAIN}Summer2024:::");
        assert_eq!(e.hash, StoredHash::Plain("Summer2024".into()));
        // shadow: the same layout.
        let e = entry("root:$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0:19000:0:99999:7:::");
        assert_eq!(e.hash.scheme(), Scheme::Md5Crypt);
    }

    #[test]
    fn htpasswd_lines() {
        let e = entry("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=");
        assert_eq!(e.layout, Layout::Htpasswd);
        assert_eq!(e.hash.scheme(), Scheme::Sha1);
        let e = entry("bob:$2y$04$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96\r");
        assert_eq!(e.hash.scheme(), Scheme::Bcrypt);
        assert_eq!(entry("carol:aZGJuE6EXrjEE").hash.scheme(), Scheme::DesCrypt);
    }

    #[test]
    fn skips_and_rejections_have_reasons() {
        assert_eq!(parse_line(""), Line::Skip(Skip::Blank));
        assert_eq!(parse_line("  \t"), Line::Skip(Skip::Blank));
        assert_eq!(parse_line("# comment"), Line::Skip(Skip::Comment));
        assert_eq!(
            parse_line("[*] Dumping local SAM hashes (uid:rid:lmhash:nthash)"),
            Line::Skip(Skip::ToolMessage)
        );
        assert_eq!(
            parse_line("CORP\\bob:aes256-cts-hmac-sha1-96:0011"),
            Line::Skip(Skip::KerberosKey)
        );
        assert_eq!(
            parse_line("daemon:*:19000:0:99999:7:::"),
            Line::Skip(Skip::Locked)
        );
        assert_eq!(
            parse_line("just text"),
            Line::Rejected(Rejection::NoSeparator)
        );
        assert_eq!(
            parse_line(":{PLAIN}x"),
            Line::Rejected(Rejection::EmptyUser)
        );
        assert_eq!(
            parse_line("u:{SSHA512}abc").clone(),
            Line::Rejected(Rejection::Hash(HashError::Unsupported("SSHA512".into())))
        );
        match parse_line("u:") {
            Line::Rejected(r) => assert_eq!(r.key(), "empty_hash"),
            other => panic!("{other:?}"),
        }
    }
}
