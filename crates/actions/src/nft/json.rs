//! nftables' JSON (libnftables-json(5)): the commands we send and the listing we read.
//!
//! Everything is built as `serde_json` values from typed addresses and validated names,
//! so no text from outside is ever parsed as nft syntax.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::NftConfig;
use super::contents::{Element, Family};

/// A batch of commands, run by nft as one transaction.
pub(crate) fn batch(commands: Vec<Value>) -> Vec<u8> {
    // Serialising a `Value` cannot fail.
    serde_json::to_vec(&json!({ "nftables": commands })).unwrap_or_default()
}

/// Table, base chain, both sets and the two drop rules. `add` of an existing table,
/// chain or set changes nothing, and the chain is flushed before its rules are added, in
/// the same transaction, so running it again never duplicates a rule nor leaves a moment
/// without them.
pub(crate) fn setup(c: &NftConfig) -> Vec<Value> {
    let set = |name: &str, kind: &str| {
        json!({"add": {"set": {
            "family": c.family, "table": c.table, "name": name,
            "type": kind, "flags": ["interval", "timeout"],
        }}})
    };
    let rule = |protocol: &str, set: &str| {
        json!({"add": {"rule": {
            "family": c.family, "table": c.table, "chain": c.chain,
            "expr": [
                {"match": {
                    "op": "==",
                    "left": {"payload": {"protocol": protocol, "field": "saddr"}},
                    "right": format!("@{set}"),
                }},
                {"drop": null},
            ],
        }}})
    };
    vec![
        json!({"add": {"table": {"family": c.family, "name": c.table}}}),
        json!({"add": {"chain": {
            "family": c.family, "table": c.table, "name": c.chain,
            "type": "filter", "hook": "input", "prio": c.priority, "policy": "accept",
        }}}),
        set(&c.set_v4, "ipv4_addr"),
        set(&c.set_v6, "ipv6_addr"),
        json!({"flush": {"chain": {"family": c.family, "table": c.table, "name": c.chain}}}),
        rule("ip", &c.set_v4),
        rule("ip6", &c.set_v6),
    ]
}

/// Deleting the table takes its chain, rules and sets with it. Adding it first makes
/// the deletion succeed when it is already gone.
pub(crate) fn cleanup(c: &NftConfig) -> Vec<Value> {
    let table = json!({"family": c.family, "name": c.table});
    vec![
        json!({"add": {"table": table.clone()}}),
        json!({"delete": {"table": table}}),
    ]
}

/// The whole table, with both sets' elements: one invocation (nft 1.0.6 refuses two
/// `list set` commands in one JSON batch).
pub(crate) fn list(c: &NftConfig) -> Vec<Value> {
    vec![json!({"list": {"table": {"family": c.family, "name": c.table}}})]
}

/// What to do with a group of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Add,
    Delete,
}

/// One command per set for `elements` (none for a set without any).
pub(crate) fn elements(c: &NftConfig, verb: Verb, elements: &[Element]) -> Vec<Value> {
    [(Family::V4, &c.set_v4), (Family::V6, &c.set_v6)]
        .into_iter()
        .filter_map(|(family, set)| {
            let elem: Vec<Value> = elements
                .iter()
                .filter(|e| e.family == family)
                .map(|e| match verb {
                    Verb::Add => element(e),
                    Verb::Delete => value(e),
                })
                .collect();
            if elem.is_empty() {
                return None;
            }
            let target = json!({"family": c.family, "table": c.table, "name": set, "elem": elem});
            Some(match verb {
                Verb::Add => json!({"add": {"element": target}}),
                Verb::Delete => json!({"delete": {"element": target}}),
            })
        })
        .collect()
}

/// An element to add: its value and, unless it never expires, its timeout in seconds.
fn element(e: &Element) -> Value {
    match e.expires {
        // A timeout of 0 would mean "never": the least is one second.
        Some(secs) => json!({"elem": {"val": value(e), "timeout": secs.max(1)}}),
        None => value(e),
    }
}

/// An element's value: an address, a prefix, or a range.
fn value(e: &Element) -> Value {
    let addr = |n: u128| -> String {
        match e.family {
            Family::V4 => Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)).to_string(),
            Family::V6 => Ipv6Addr::from(n).to_string(),
        }
    };
    match e.as_net() {
        Some(net) if net.prefix_len() == net.max_prefix_len() => json!(net.addr().to_string()),
        Some(net) => json!({"prefix": {"addr": net.addr().to_string(), "len": net.prefix_len()}}),
        None => json!({"range": [addr(e.first), addr(e.last)]}),
    }
}

/// The elements of both sets in a `list table` answer. `Err` says what was not
/// understood.
pub(crate) fn parse_listing(c: &NftConfig, output: &[u8]) -> Result<Vec<Element>, String> {
    let root: Value = serde_json::from_slice(output).map_err(|e| format!("not JSON ({e})"))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no \"nftables\" array")?;
    let mut out = Vec::new();
    for (family, name) in [(Family::V4, &c.set_v4), (Family::V6, &c.set_v6)] {
        let set = items
            .iter()
            .filter_map(|item| item.get("set"))
            .find(|s| {
                s.get("name").and_then(Value::as_str) == Some(name.as_str())
                    && s.get("table").and_then(Value::as_str) == Some(c.table.as_str())
            })
            .ok_or_else(|| format!("set {name} is missing from table {}", c.table))?;
        match set.get("elem") {
            None => {}
            Some(Value::Array(elems)) => {
                for elem in elems {
                    out.push(parse_element(family, elem)?);
                }
            }
            Some(one) => out.push(parse_element(family, one)?),
        }
    }
    Ok(out)
}

fn parse_element(family: Family, elem: &Value) -> Result<Element, String> {
    let (val, expires) = match elem.get("elem") {
        Some(inner) => {
            let val = inner.get("val").ok_or("an elem without val")?;
            // The remaining time; the timeout itself if nft left the countdown out.
            let expires = inner
                .get("expires")
                .or_else(|| inner.get("timeout"))
                .and_then(Value::as_u64);
            (val, expires)
        }
        None => (elem, None),
    };
    let (first, last) = parse_value(family, val)?;
    if first > last {
        return Err(format!("an empty range: {val}"));
    }
    Ok(Element {
        family,
        first,
        last,
        expires,
    })
}

fn parse_value(family: Family, val: &Value) -> Result<(u128, u128), String> {
    if let Some(text) = val.as_str() {
        let a = parse_addr(family, text)?;
        return Ok((a, a));
    }
    if let Some(prefix) = val.get("prefix") {
        let addr = prefix
            .get("addr")
            .and_then(Value::as_str)
            .ok_or("a prefix without addr")?;
        let len = prefix
            .get("len")
            .and_then(Value::as_u64)
            .and_then(|l| u8::try_from(l).ok())
            .ok_or("a prefix without len")?;
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("not an address: {addr:?}"))?;
        let net = ipnet::IpNet::new(ip, len).map_err(|_| format!("bad prefix {addr}/{len}"))?;
        let e = Element::of_net(net.trunc(), None);
        if e.family != family {
            return Err(format!("{net} in the wrong set"));
        }
        return Ok((e.first, e.last));
    }
    if let Some([a, b]) = val
        .get("range")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        let bound = |v: &Value| {
            v.as_str()
                .ok_or_else(|| format!("a range bound that is not text: {v}"))
                .and_then(|t| parse_addr(family, t))
        };
        return Ok((bound(a)?, bound(b)?));
    }
    Err(format!("an element not understood: {val}"))
}

fn parse_addr(family: Family, text: &str) -> Result<u128, String> {
    match (family, text.parse::<IpAddr>()) {
        (Family::V4, Ok(IpAddr::V4(a))) => Ok(u32::from(a).into()),
        (Family::V6, Ok(IpAddr::V6(a))) => Ok(u128::from(a)),
        _ => Err(format!("not an address of the set's family: {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str, expires: Option<u64>) -> Element {
        Element::of_net(s.parse().unwrap(), expires)
    }

    #[test]
    fn elements_are_addresses_prefixes_or_ranges_with_a_timeout_of_at_least_one_second() {
        let c = NftConfig::default();
        let range = Element {
            family: Family::V4,
            first: u32::from(Ipv4Addr::new(10, 0, 0, 8)).into(),
            last: u32::from(Ipv4Addr::new(10, 0, 0, 10)).into(),
            expires: Some(0),
        };
        let cmds = elements(
            &c,
            Verb::Add,
            &[
                el("10.0.0.1/32", Some(60)),
                el("2001:db8::/64", None),
                range,
            ],
        );
        assert_eq!(
            cmds,
            [
                json!({"add": {"element": {"family": "inet", "table": "portcullis", "name": "banned4", "elem": [
                    {"elem": {"val": "10.0.0.1", "timeout": 60}},
                    {"elem": {"val": {"range": ["10.0.0.8", "10.0.0.10"]}, "timeout": 1}},
                ]}}}),
                json!({"add": {"element": {"family": "inet", "table": "portcullis", "name": "banned6", "elem": [
                    {"prefix": {"addr": "2001:db8::", "len": 64}},
                ]}}}),
            ]
        );
        let cmds = elements(&c, Verb::Delete, &[el("10.0.0.1/32", Some(60))]);
        assert_eq!(
            cmds,
            [
                json!({"delete": {"element": {"family": "inet", "table": "portcullis", "name": "banned4", "elem": ["10.0.0.1"]}}})
            ]
        );
    }

    #[test]
    fn a_listing_gives_both_sets_elements_with_their_remaining_time() {
        let c = NftConfig::default();
        let listing = br#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "portcullis", "handle": 3}},
            {"set": {"family": "inet", "name": "banned4", "table": "portcullis", "type": "ipv4_addr",
                     "flags": ["interval", "timeout"], "elem": [
                {"elem": {"val": "10.0.0.5", "timeout": 100, "expires": 99}},
                {"elem": {"val": {"prefix": {"addr": "10.1.0.0", "len": 24}}, "timeout": 200, "expires": 199}},
                {"elem": {"val": {"range": ["10.2.0.0", "10.2.0.6"]}, "timeout": 400}},
                "10.3.0.1"]}},
            {"set": {"family": "inet", "name": "banned6", "table": "portcullis", "type": "ipv6_addr",
                     "flags": ["interval", "timeout"]}}]}"#;
        let got = parse_listing(&c, listing).unwrap();
        assert_eq!(
            got,
            [
                el("10.0.0.5/32", Some(99)),
                el("10.1.0.0/24", Some(199)),
                Element {
                    family: Family::V4,
                    first: u32::from(Ipv4Addr::new(10, 2, 0, 0)).into(),
                    last: u32::from(Ipv4Addr::new(10, 2, 0, 6)).into(),
                    expires: Some(400),
                },
                el("10.3.0.1/32", None),
            ]
        );
    }

    #[test]
    fn a_listing_without_our_sets_or_with_strange_elements_is_refused() {
        let c = NftConfig::default();
        for bad in [
            &br#"not json"#[..],
            br#"{"nftables": []}"#,
            br#"{"nftables": [{"set": {"name": "banned4", "table": "portcullis", "elem": [{"elem": {}}]}}]}"#,
            br#"{"nftables": [{"set": {"name": "banned4", "table": "portcullis", "elem": ["2001:db8::1"]}}]}"#,
            br#"{"nftables": [{"set": {"name": "banned4", "table": "portcullis", "elem": [{"range": ["10.0.0.9", "10.0.0.1"]}]}}]}"#,
        ] {
            assert!(parse_listing(&c, bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
