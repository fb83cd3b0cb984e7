use serde_json::{Value, json};

use super::super::{JsonNode, Keys, Malformed};
use super::*;

fn keys(names: &'static [&'static str]) -> Keys {
    Keys::new(&[], names.iter().map(|k| Box::from(*k)))
}

/// A record parsed onto `tape`, as a `Value`.
fn value(tape: &mut Tape, record: &[u8], keys: &Keys) -> Result<Value, Malformed> {
    tape.parse(record, keys).map(|d| Value::from(d.root()))
}

#[test]
fn the_last_of_a_repeated_key_is_read() {
    let k = keys(&["a", "b", "o"]);
    let mut tape = Tape::new();
    let d = tape
        .parse(
            br#"{"a":1,"o":{"b":"x","b":"y"},"b":2,"\u0061":3,"o":{"b":"z"},"a":4,"b":5}"#,
            &k,
        )
        .unwrap();
    let root = d.root();
    assert_eq!(root.get("a").and_then(JsonNode::as_number), Some(&4.into()));
    assert_eq!(root.get("b").and_then(JsonNode::as_number), Some(&5.into()));
    // The last `o`, and within it its only `b`.
    let o = root.get("o").unwrap();
    assert_eq!(o.get("b").and_then(JsonNode::as_str), Some("z"));
    assert_eq!(root.object_keys_up_to(10), Some(3));
    // Every member stays listed, in the record's order.
    let keys: Vec<&str> = root.members().unwrap().map(|(k, _)| k).collect();
    assert_eq!(keys, ["a", "o", "b", "a", "o", "a", "b"]);
    // The first `o` still holds both of its `b`s, the last one read.
    let (_, first_o) = root.members().unwrap().nth(1).unwrap();
    assert_eq!(first_o.get("b").and_then(JsonNode::as_str), Some("y"));
}

#[test]
fn every_lookup_steps_over_kept_siblings() {
    let k = keys(&["a", "b", "c", "d", "e", "x"]);
    let rec = br#"{"a":{"x":[1,{"x":2},[3,[4]]],"b":{"c":{"d":5}}},"b":[[1,2],{"a":[]},{"c":"s"}],"skip":[1,{"a":2}],"c":{"x":{}},"d":"last","e":[]}"#;
    let mut tape = Tape::new();
    let d = tape.parse(rec, &k).unwrap();
    let root = d.root();
    let v: Value = serde_json::from_slice(rec).unwrap();
    assert_eq!(root.get("d").and_then(JsonNode::as_str), Some("last"));
    assert_eq!(
        root.get("e").and_then(JsonNode::items).map(Iterator::count),
        Some(0)
    );
    assert_eq!(
        root.get("a")
            .and_then(|a| a.get("b"))
            .and_then(|b| b.get("c"))
            .and_then(|c| c.get("d"))
            .and_then(JsonNode::as_number),
        Some(&5.into())
    );
    // Items after nested arrays and objects are found where they are.
    let items: Vec<Node<'_>> = root.get("b").and_then(JsonNode::items).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(Value::from(items[0]), json!([1, 2]));
    assert_eq!(Value::from(items[1]), json!({"a": []}));
    assert_eq!(items[2].get("c").and_then(JsonNode::as_str), Some("s"));
    let x: Vec<Value> = root
        .get("a")
        .and_then(|a| a.get("x"))
        .and_then(JsonNode::items)
        .unwrap()
        .map(Value::from)
        .collect();
    assert_eq!(x, [json!(1), json!({"x": 2}), json!([3, [4]])]);
    assert!(root.get("c").is_some_and(JsonNode::is_object));
    assert!(root.get("skip").is_none());
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(root.get(key).map(Value::from).as_ref(), v.get(key), "{key}");
    }
}

#[test]
fn escaped_strings_are_unescaped_onto_the_tape_and_the_buffer_is_reused() {
    let k = keys(&["a", "b", "c", "é"]);
    let mut tape = Tape::new();
    let first =
        br#"{"a":"one\ttwo","b":"plain","c":"\u00e9t\u00e9 \"x\"","\u00e9":"\ud83d\ude00"}"#;
    let d = tape.parse(first, &k).unwrap();
    let root = d.root();
    assert_eq!(root.get("a").and_then(JsonNode::as_str), Some("one\ttwo"));
    assert_eq!(root.get("b").and_then(JsonNode::as_str), Some("plain"));
    assert_eq!(root.get("c").and_then(JsonNode::as_str), Some("été \"x\""));
    assert_eq!(root.get("é").and_then(JsonNode::as_str), Some("😀"));
    assert_eq!(
        d.text, "one\ttwoété \"x\"é😀",
        "escaped keys and values only"
    );
    // The next record's escapes overwrite the buffer; its text is its own.
    let second = br#"{"c":"\/other\/","a":"\u0041"}"#;
    let d = tape.parse(second, &k).unwrap();
    let root = d.root();
    assert_eq!(root.get("c").and_then(JsonNode::as_str), Some("/other/"));
    assert_eq!(root.get("a").and_then(JsonNode::as_str), Some("A"));
    assert!(root.get("b").is_none());
    assert_eq!(d.text, "/other/A");
}

#[test]
fn a_skipped_escaped_key_leaves_nothing_on_the_tape() {
    let k = keys(&["a"]);
    let mut tape = Tape::new();
    let d = tape
        .parse(br#"{"\u0062":"x","a":"\u0079","\u0063":{"a":1}}"#, &k)
        .unwrap();
    assert_eq!(d.text, "y");
    assert_eq!(Value::from(d.root()), json!({"a": "y"}));
}

#[test]
fn strings_of_a_record_not_all_utf8_are_copied() {
    let k = keys(&["a", "k"]);
    let mut tape = Tape::new();
    let d = tape
        .parse(
            b"{\"skip\":\"\xff\",\"a\":\"caf\xc3\xa9\",\"k\":{\"a\":\"x\"}}",
            &k,
        )
        .unwrap();
    let root = d.root();
    assert_eq!(root.get("a").and_then(JsonNode::as_str), Some("café"));
    assert_eq!(
        root.get("k")
            .and_then(|k| k.get("a"))
            .and_then(JsonNode::as_str),
        Some("x")
    );
    assert!(
        d.record.is_empty(),
        "nothing is read from the record in place"
    );
}

#[test]
fn numbers_are_kept_beside_the_entries() {
    let k = keys(&["n"]);
    let mut tape = Tape::new();
    let d = tape
        .parse(
            br#"{"n":[0,-7,1.5,18446744073709551615,-9223372036854775808,1e3]}"#,
            &k,
        )
        .unwrap();
    let got: Vec<Number> = d
        .root()
        .get("n")
        .and_then(JsonNode::items)
        .unwrap()
        .map(|n| n.as_number().unwrap().clone())
        .collect();
    let want: Vec<Number> =
        serde_json::from_str("[0,-7,1.5,18446744073709551615,-9223372036854775808,1e3]").unwrap();
    assert_eq!(got, want);
    assert_eq!(d.numbers.len(), 6);
    let d = tape.parse(br#"{"n":42}"#, &k).unwrap();
    assert_eq!(
        d.root().get("n").and_then(JsonNode::as_number),
        Some(&42.into())
    );
    assert_eq!(d.numbers.len(), 1, "the last record's numbers are gone");
}

#[test]
fn a_reused_tape_reads_as_a_fresh_one() {
    let k = keys(&["a", "b", "value", "c"]);
    let records: &[&[u8]] = &[
        br#"{"value":[{"a":1,"b":"x"},{"a":2,"b":"y\n"},{"c":[1,[2],{"a":3}]}]}"#,
        br#"{"a":"\u00e9","b":{"c":{"a":[]}}}"#,
        br#"[1,"two",{"a":null,"b":true},[false]]"#,
        br#"{"a":1,"b":"#,
        br#""just a string""#,
        b"{\"a\":\"\xff\"}",
        b"{\"z\":\"\xff\",\"a\":\"ok\",\"b\":[1,2]}",
        br#"{}"#,
        br#"{"b":{"b":{"b":{"b":{"b":"deep"}}}},"a":-0.5}"#,
        br#"{"a":[1,2,3],"a":{"c":"again"}}"#,
    ];
    let mut reused = Tape::new();
    for _ in 0..3 {
        for record in records {
            let fresh = value(&mut Tape::new(), record, &k);
            assert_eq!(
                value(&mut reused, record, &k),
                fresh,
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }
}

#[test]
fn a_huge_record_does_not_keep_its_room() {
    let k = keys(&["a", "b"]);
    let mut tape = Tape::new();
    let small = br#"{"a":[1,"x\ty"],"b":{"a":2}}"#;
    let want = value(&mut tape, small, &k).unwrap();
    tape.clear();
    let usual = tape.capacity_bytes();
    // Some hundred thousand kept values, escaped strings and numbers.
    let mut huge = String::from(r#"{"a":["#);
    for i in 0..50_000 {
        huge.push_str(&format!(r#"{{"a":{i},"b":"v\t{i}"}},"#));
    }
    huge.push_str(r#"0]}"#);
    let d = tape.parse(huge.as_bytes(), &k).unwrap();
    assert_eq!(
        d.root()
            .get("a")
            .and_then(JsonNode::items)
            .map(Iterator::count),
        Some(50_001)
    );
    assert!(
        tape.capacity_bytes() > 4 * 1024 * 1024,
        "{}",
        tape.capacity_bytes()
    );
    tape.clear();
    let kept = tape.capacity_bytes();
    assert!(
        kept <= 16 * 1024 * 16 + 2 * 16 * 1024 * 12 + 64 * 1024 + 1024 * 32,
        "{kept} bytes kept (before the huge record: {usual})"
    );
    assert_eq!(value(&mut tape, small, &k).unwrap(), want);
}
