//! Canonical source addresses.
//!
//! Logs spell one address many ways: `::ffff:192.0.2.1`, `[2001:db8::1]`,
//! `2001:0db8:0:0::1`. The engine keys its state on the address, so every spelling must
//! become one value. Anything that is not an address (a host name logged because the
//! server resolved the client, an octal-looking `192.030.0.6`) is rejected here and kept
//! by the caller as a name, never guessed into an address.

use std::net::IpAddr;

/// Folds an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to the IPv4 address it carries.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses one address as logs write it: plain, in square brackets, IPv4-mapped.
///
/// Returns `None` for anything that is not exactly one address: a trailing `:port`, a
/// zone index (`fe80::1%eth0`), a host name, or an IPv4 address with leading zeros
/// (`192.030.0.6` means 192.24.0.6 to `inet_aton` and 192.30.0.6 to a person; we
/// refuse to pick).
pub fn parse(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    // The standard parser already refuses leading zeros in IPv4 octets.
    text.parse::<IpAddr>().ok().map(canonical)
}

/// True if `text` looks like a DNS host name a server might log in place of an address.
///
/// Used to keep a name (`example.com`, `192.030.0.6`) as the source's name rather than
/// dropping the attempt; it never becomes an address.
pub fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && text.bytes().any(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_mapped_ipv4() {
        assert_eq!(parse("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse("[::ffff:1.2.3.4]"), Some("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn compresses_ipv6() {
        let a = parse("2001:0db8:0000:0000:0000:0000:0000:0001").unwrap();
        assert_eq!(a.to_string(), "2001:db8::1");
    }

    #[test]
    fn refuses_non_addresses() {
        for bad in [
            "",
            "example.com",
            "192.030.0.6",
            "1.2.3.4:22",
            "1.2.3.4.5",
            "fe80::1%eth0",
            "[1.2.3.4",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("example.com"));
        assert!(is_host_name("192.030.0.6"));
        assert!(!is_host_name("a b"));
        assert!(!is_host_name("x\u{1b}[31m"));
        assert!(!is_host_name("..."));
    }
}
