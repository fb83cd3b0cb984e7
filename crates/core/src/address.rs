//! Canonical source addresses.
//!
//! Logs spell one address many ways: `::ffff:192.0.2.1`, `[2001:db8::1]`,
//! `2001:0db8:0:0::1`. The engine keys its state on the address, so every spelling must
//! become one value. Anything that is not an address (a host name logged because the
//! server resolved the client, an octal-looking `192.030.0.6`) is rejected here and kept
//! by the caller as a name, never guessed into an address.

use std::net::{IpAddr, Ipv4Addr};

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
    // Most addresses in logs are dotted quads, read here in one pass; anything else
    // goes to the standard parser, which already refuses leading zeros in IPv4 octets.
    if let Some(v4) = dotted_quad(text.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    text.parse::<IpAddr>().ok().map(canonical)
}

/// `text` as an IPv4 address if it is exactly four decimal octets (0 to 255, no
/// leading zeros) joined by dots, which is what the standard parser accepts as IPv4
/// (a property test holds the two together); `None` for anything else.
fn dotted_quad(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(d) = text.get(i).filter(|b| b.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            value = value * 10 + u32::from(d - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || (digits > 1 && text[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == text.len()).then(|| Ipv4Addr::from(octets))
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

    use proptest::prelude::*;

    proptest! {
        /// The one-pass IPv4 reading agrees with the standard parser on text made of
        /// digits and dots (and a stray byte), the shapes near a dotted quad.
        #[test]
        fn dotted_quads_as_the_standard_parser(s in "[0-9.]{0,18}[0-9.a:x ]?") {
            prop_assert_eq!(dotted_quad(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn every_ipv4_address_reads_back(a: u32) {
            let addr = Ipv4Addr::from(a);
            prop_assert_eq!(dotted_quad(addr.to_string().as_bytes()), Some(addr));
        }
    }

    #[test]
    fn dotted_quad_edges() {
        for good in ["0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.100.9"] {
            assert_eq!(dotted_quad(good.as_bytes()), good.parse().ok(), "{good}");
            assert!(dotted_quad(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1.2.3.256",
            "1.2.3.04",
            "1..2.3",
            "1.2.3.4 ",
            "1.2.3.1000",
            "01.2.3.4",
            "1.2.3.4:80",
            "a.b.c.d",
            "999.1.1.1",
        ] {
            assert_eq!(dotted_quad(bad.as_bytes()), None, "{bad}");
            assert_eq!(bad.parse::<Ipv4Addr>().ok(), None, "{bad}");
        }
    }

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
