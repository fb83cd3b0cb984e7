use super::*;

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn fields_header_names_the_columns() {
    let c = Columns::from_fields("date time c-ip cs-username cs(X-Forwarded-For) sc-status");
    assert_eq!(c.count, 6);
    assert_eq!(c.client_ip, Some(2));
    assert_eq!(c.username, Some(3));
    assert_eq!(c.forwarded_for, Some(4));
    assert_eq!(c.status, Some(5));
    assert_eq!(c.stem, None);
    let d = Columns::iis_default();
    assert_eq!(
        (d.count, d.username, d.client_ip, d.status),
        (15, Some(7), Some(8), Some(11))
    );
}

#[test]
fn lines_must_match_the_header() {
    let mut f = Fields::default();
    assert!(f.split("a - c", 3));
    assert_eq!(f.get(Some(0)), Some("a"));
    assert_eq!(f.get(Some(1)), None, "IIS writes - for empty");
    assert_eq!(f.get(Some(7)), None);
    assert!(!f.split("a b", 3));
    assert!(!f.split("a b c d", 3));
}

#[test]
fn times_are_utc() {
    assert_eq!(
        timestamp("2017-06-23", "08:14:05").unwrap().to_string(),
        "2017-06-23T08:14:05Z"
    );
    assert_eq!(
        timestamp("2017-06-23", "08:14:05.250").unwrap().to_string(),
        "2017-06-23T08:14:05.25Z"
    );
    for (d, t) in [
        ("2017-13-23", "08:14:05"),
        ("2017-06-23", "25:14:05"),
        ("17-06-23", "08:14:05"),
        ("2017-06-23", "08:14:05x"),
        ("2017-06-23", "08:14:05."),
        ("2017-06-2x", "08:14:05"),
    ] {
        assert_eq!(timestamp(d, t), None, "{d} {t}");
    }
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let lb = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
    // Not a proxy: the header is the client's own text.
    assert_eq!(
        client_address(Some(ip("198.51.100.9")), Some("203.0.113.7"), &lb),
        Some(ip("198.51.100.9"))
    );
    // No proxies configured: never believed.
    assert_eq!(
        client_address(Some(ip("10.0.0.5")), Some("203.0.113.7"), &[]),
        Some(ip("10.0.0.5"))
    );
    // Rightmost untrusted hop, past trusted ones; a forged leftmost entry is ignored.
    assert_eq!(
        client_address(
            Some(ip("10.0.0.5")),
            Some("1.1.1.1,+203.0.113.7,+10.0.0.9"),
            &lb
        ),
        Some(ip("203.0.113.7"))
    );
    assert_eq!(
        client_address(Some(ip("10.0.0.5")), Some("[2001:db8::7]:443"), &lb),
        Some(ip("2001:db8::7"))
    );
    assert_eq!(
        client_address(Some(ip("10.0.0.5")), Some("203.0.113.7:51234"), &lb),
        Some(ip("203.0.113.7"))
    );
    // Unreadable hop: the last address known.
    assert_eq!(
        client_address(Some(ip("10.0.0.5")), Some("bob,10.0.0.6"), &lb),
        Some(ip("10.0.0.6"))
    );
    assert_eq!(
        client_address(Some(ip("10.0.0.5")), None, &lb),
        Some(ip("10.0.0.5"))
    );
}
