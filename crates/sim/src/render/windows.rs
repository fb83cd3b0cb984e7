//! Windows Security events as winlogbeat ships them (Elastic Common Schema JSON, one
//! event a line): 4625 for a failed logon, with `Status` 0xC000006D and `SubStatus`
//! 0xC000006A (wrong password) or 0xC0000064 (no such user), logon type 3 (Remote
//! Desktop with Network Level Authentication checks the password before the session,
//! as a network logon); 4624 with logon type 10 for a Remote Desktop logon.
//! Fields: <https://www.elastic.co/guide/en/beats/winlogbeat/current/exported-fields-winlog.html>,
//! <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4625>,
//! <https://learn.microsoft.com/previous-versions/windows/it-pro/windows-10/security/threat-protection/auditing/event-4624>.

use std::io::Write;

use portcullis_core::{Outcome, Reason};

use super::utc;
use crate::{Actor, Attempt};

/// Writes one event; returns the lines written.
pub(super) fn attempt(buf: &mut Vec<u8>, a: &Attempt, name: &str, host: &str) -> u64 {
    let (domain, user) = name.split_once('\\').unwrap_or(("-", name));
    let workstation = match a.actor {
        Actor::Benign(_) => format!("PC-{:04}", crate::rng::mix(a.tag ^ 0x77) % 10_000),
        Actor::Attacker(_) => format!("WIN-{:08X}", crate::rng::mix(a.tag ^ 0x77) as u32),
    };
    let record = crate::rng::mix(a.tag ^ 0x4ec) % 100_000_000;
    let computer = host;
    buf.extend_from_slice(b"{\"@timestamp\":\"");
    utc(buf, a.at_ms, 'T', true);
    let (id, action, outcome) = match a.outcome {
        Outcome::Success => ("4624", "logged-in", "success"),
        Outcome::Failure(_) => ("4625", "logon-failed", "failure"),
    };
    let _ = write!(
        buf,
        "Z\",\"event\":{{\"code\":\"{id}\",\"kind\":\"event\",\"provider\":\"Microsoft-Windows-Security-Auditing\",\"action\":\"{action}\",\"outcome\":\"{outcome}\"}},\"host\":{{\"name\":\"{host}\"}},\"winlog\":{{\"channel\":\"Security\",\"computer_name\":\"{computer}\",\"event_id\":\"{id}\",\"provider_name\":\"Microsoft-Windows-Security-Auditing\",\"record_id\":{record},\"event_data\":{{"
    );
    let ip = a.source;
    let port = a.port;
    match a.outcome {
        Outcome::Success => {
            let _ = write!(
                buf,
                "\"SubjectUserSid\":\"S-1-5-18\",\"SubjectUserName\":\"{computer}$\",\"SubjectDomainName\":\"{domain}\",\"SubjectLogonId\":\"0x3e7\",\"TargetUserSid\":\"S-1-5-21-3623811015-3361044348-30300820-{}\",\"TargetUserName\":\"{user}\",\"TargetDomainName\":\"{domain}\",\"TargetLogonId\":\"0x{:x}\",\"LogonType\":\"10\",\"LogonProcessName\":\"User32 \",\"AuthenticationPackageName\":\"Negotiate\",\"WorkstationName\":\"{computer}\",\"LogonGuid\":\"{{00000000-0000-0000-0000-000000000000}}\",\"TransmittedServices\":\"-\",\"LmPackageName\":\"-\",\"KeyLength\":\"0\",\"ProcessId\":\"0x1d4\",\"ProcessName\":\"C:\\\\Windows\\\\System32\\\\svchost.exe\",\"IpAddress\":\"{ip}\",\"IpPort\":\"{port}\"",
                1000 + crate::rng::mix(a.tag) % 9000,
                crate::rng::mix(a.tag ^ 1) as u32
            );
        }
        Outcome::Failure(reason) => {
            let sub = if reason == Reason::UnknownAccount {
                "0xc0000064"
            } else {
                "0xc000006a"
            };
            let _ = write!(
                buf,
                "\"SubjectUserSid\":\"S-1-0-0\",\"SubjectUserName\":\"-\",\"SubjectDomainName\":\"-\",\"SubjectLogonId\":\"0x0\",\"TargetUserSid\":\"S-1-0-0\",\"TargetUserName\":\"{user}\",\"TargetDomainName\":\"{domain}\",\"Status\":\"0xc000006d\",\"FailureReason\":\"%%2313\",\"SubStatus\":\"{sub}\",\"LogonType\":\"3\",\"LogonProcessName\":\"NtLmSsp \",\"AuthenticationPackageName\":\"NTLM\",\"WorkstationName\":\"{workstation}\",\"TransmittedServices\":\"-\",\"LmPackageName\":\"-\",\"KeyLength\":\"0\",\"ProcessId\":\"0x0\",\"ProcessName\":\"-\",\"IpAddress\":\"{ip}\",\"IpPort\":\"{port}\""
            );
        }
    }
    buf.extend_from_slice(b"}}}\n");
    1
}
