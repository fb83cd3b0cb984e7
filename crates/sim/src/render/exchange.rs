//! Exchange Server's client access in the IIS W3C log (Exchange's default field set).
//!
//! - **OWA forms logon**: the browser posts the form to `/owa/auth.owa`, which answers
//!   `302` whether the password was right or not. A wrong password is redirected to
//!   the logon page with `reason=2`, which the browser fetches at once; a right one to
//!   `/owa/`, fetched as the signed-in user. Portcullis' reader pairs the two by
//!   client address, as an operator reading the log would.
//! - **ActiveSync**: HTTP Basic on every request; `401 1 1326` (`ERROR_LOGON_FAILURE`)
//!   for a wrong password or a name that does not exist (Windows does not say which),
//!   `200` with the user once in.
//!
//! Fields: <https://learn.microsoft.com/windows/win32/http/w3c-logging>; the `reason=`
//! values of OWA's logon page and the status codes as Exchange 2013–2019 log them.

use std::io::Write;
use std::net::IpAddr;

use portcullis_core::Outcome;

use super::{guid, utc};
use crate::Attempt;
use crate::scenario::Service;

/// The header IIS writes at the top of a log file (and again when logging restarts).
pub(super) fn header(buf: &mut Vec<u8>, start_ms: i64) -> u64 {
    buf.extend_from_slice(
        b"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: ",
    );
    utc(buf, start_ms, ' ', false);
    buf.extend_from_slice(b"\n#Fields: ");
    buf.extend_from_slice(FIELDS.as_bytes());
    buf.push(b'\n');
    4
}

/// IIS's (and Exchange's) default W3C fields, which the lines below follow.
const FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

const BROWSERS: [&str; 4] = [
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/58.0.3029.110+Safari/537.36",
    "Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+10_12_5)+AppleWebKit/603.2.4+(KHTML,+like+Gecko)+Version/10.1.1+Safari/603.2.4",
    "Mozilla/5.0+(Windows+NT+10.0;+WOW64;+Trident/7.0;+rv:11.0)+like+Gecko",
    "Mozilla/5.0+(Windows+NT+6.1;+Win64;+x64;+rv:54.0)+Gecko/20100101+Firefox/54.0",
];

const PHONES: [&str; 3] = [
    "Apple-iPhone9C1/1402.100",
    "Android-Mail/7.5.21.156208651.release",
    "Outlook-iOS-Android/1.0",
];

/// One request line.
#[allow(clippy::too_many_arguments)]
fn request(
    buf: &mut Vec<u8>,
    a: &Attempt,
    server: IpAddr,
    method: &str,
    stem: &str,
    query: &str,
    user: &str,
    agent: &str,
    referer: &str,
    status: (u16, u8, u32),
) {
    utc(buf, a.at_ms, ' ', false);
    let taken = 15 + crate::rng::mix(a.tag ^ status.0 as u64) % 200;
    let _ = writeln!(
        buf,
        " {server} {method} {stem} {query} 443 {user} {} {agent} {referer} {} {} {} {taken}",
        a.source, status.0, status.1, status.2
    );
}

/// Writes an OWA or ActiveSync attempt; returns the lines written.
pub(super) fn attempt(
    buf: &mut Vec<u8>,
    a: &Attempt,
    name: &str,
    server: IpAddr,
    domain: &str,
) -> u64 {
    // IIS writes a space inside a field as `+`.
    let user = name.replace(' ', "+");
    let host = format!("mail.{domain}");
    if a.service == Service::Activesync {
        let device = format!("{:016X}", crate::rng::mix(a.tag ^ 0xde));
        let query = format!(
            "Cmd=Sync&User={}&DeviceId={device}&DeviceType=Phone",
            user.replace('\\', "%5C").replace('@', "%40")
        );
        let agent = PHONES[(a.tag % 3) as usize];
        let status = match a.outcome {
            Outcome::Success => (200, 0, 0),
            Outcome::Failure(_) => (401, 1, 1326),
        };
        request(
            buf,
            a,
            server,
            "POST",
            "/Microsoft-Server-ActiveSync/default.eas",
            &query,
            &user,
            agent,
            "-",
            status,
        );
        return 1;
    }
    let agent = BROWSERS[(a.tag % 4) as usize];
    let correlation = format!("&CorrelationID=<empty>;&cafeReqId={};", guid(a.tag));
    let logon_page =
        format!("https://{host}/owa/auth/logon.aspx?url=https%3a%2f%2f{host}%2fowa%2f&reason=0");
    request(
        buf,
        a,
        server,
        "POST",
        "/owa/auth.owa",
        &correlation,
        &user,
        agent,
        &logon_page,
        (302, 0, 0),
    );
    match a.outcome {
        Outcome::Failure(_) => request(
            buf,
            a,
            server,
            "GET",
            "/owa/auth/logon.aspx",
            &format!("url=https%3a%2f%2f{host}%2fowa%2f&reason=2"),
            "-",
            agent,
            "-",
            (200, 0, 0),
        ),
        Outcome::Success => request(
            buf,
            a,
            server,
            "GET",
            "/owa/",
            &correlation,
            &user,
            agent,
            &logon_page,
            (200, 0, 0),
        ),
    }
    2
}
