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
}
