//! Small text helpers shared by the service parsers.
//!
//! Substring searches with a literal needle build their searcher once, on first use:
//! `memchr::memmem::find` builds one per call, which on short log lines costs more than
//! the search itself.

/// `memmem::find(haystack, needle)` with the searcher for the literal `needle` built
/// once.
macro_rules! find {
    ($hay:expr, $needle:expr) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find($hay)
    }};
}

/// `memmem::rfind(haystack, needle)`, searcher built once. Reverse search has no SIMD
/// prefilter in `memchr`; on a log line, walking forward over the (rare) matches with
/// the SIMD searcher and keeping the last is several times faster.
macro_rules! rfind {
    ($hay:expr, $needle:expr) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        let hay: &[u8] = $hay;
        let mut last = None;
        let mut from = 0;
        while let Some(i) = FINDER.find(&hay[from..]) {
            last = Some(from + i);
            from += i + 1;
        }
        last
    }};
}

/// `memmem::find_iter(haystack, needle)`, searcher built once.
macro_rules! find_iter {
    ($hay:expr, $needle:expr) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find_iter($hay)
    }};
}

/// `memmem::rfind_iter(haystack, needle)`, searcher built once.
macro_rules! rfind_iter {
    ($hay:expr, $needle:expr) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new($needle));
        FINDER.rfind_iter($hay)
    }};
}

pub(crate) use {find, find_iter, rfind, rfind_iter};

use std::net::IpAddr;

use portcullis_core::address;

/// `ADDR`, `ADDR:PORT`, `[ADDR]:PORT`, or any of these after OpenVPN's `[AF_INET]` /
/// `[AF_INET6]`. Text that is a whole address is read as one, so an IPv6 address is
/// never split at a colon unless it is in brackets (OpenVPN prints IPv6 peers without a
/// port because `v6addr:port` would be ambiguous: `mroute.c`, `mroute_addr_print_ex`).
pub(crate) fn addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let s = s
        .strip_prefix("[AF_INET]")
        .or_else(|| s.strip_prefix("[AF_INET6]"))
        .unwrap_or(s);
    if let Some(a) = address::parse(s) {
        return Some((a, None));
    }
    let (a, p) = s.rsplit_once(':')?;
    let port = p.parse().ok()?;
    Some((address::parse(a)?, Some(port)))
}

/// A logged user name, `None` when empty.
pub(crate) fn user(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Whether `needle` stands in `hay`, ASCII letters matched in either case.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfind_is_the_last_occurrence() {
        assert_eq!(rfind!(b"a, rip=1, rip=2", b", rip="), Some(8));
        assert_eq!(rfind!(b"aaaa", b"aa"), Some(2));
        assert_eq!(rfind!(b"", b"x"), None);
        assert_eq!(rfind!(b"xyz", b"q"), None);
        assert_eq!(find!(b"xyz", b"yz"), Some(1));
    }

    #[test]
    fn addresses_with_ports() {
        use super::addr_port;
        let a = |s: &str| addr_port(s).map(|(a, p)| (a.to_string(), p));
        assert_eq!(a("192.0.2.1:1194"), Some(("192.0.2.1".into(), Some(1194))));
        assert_eq!(
            a("[AF_INET]192.0.2.1:5"),
            Some(("192.0.2.1".into(), Some(5)))
        );
        assert_eq!(
            a("[2001:db8::1]:443"),
            Some(("2001:db8::1".into(), Some(443)))
        );
        assert_eq!(a("2001:db8::1"), Some(("2001:db8::1".into(), None)));
        assert_eq!(a("::ffff:1.2.3.4"), Some(("1.2.3.4".into(), None)));
        assert_eq!(a("host:22"), None);
        assert_eq!(a("1.2.3.4:99999"), None);
    }
}
