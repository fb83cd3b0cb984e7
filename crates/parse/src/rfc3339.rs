//! RFC 3339 times of JSON records (`2017-06-23T08:14:05Z`,
//! `...05.1234567+01:00`), keeping their offset.
//!
//! Almost every stamp a JSON log holds has one shape: `YYYY-MM-DDThh:mm:ss`, up to nine
//! digits of fraction, then `Z` or `±hh:mm` (RFC 3339 section 5.6). That shape is read
//! here by position; anything else (other separators, leap seconds, `-00:00`, years
//! near the ends of what `jiff` represents, bad dates) goes to `jiff`'s parser, whose
//! result is the reference: a property test holds the two to the same answers.

use jiff::Timestamp;
use jiff::tz::Offset;
use portcullis_core::EventTime;

/// An RFC 3339 time, keeping its offset; surrounding whitespace is ignored.
pub fn parse(s: &str) -> Option<EventTime> {
    // The common shape starts with a digit and ends with a letter or digit: no
    // whitespace to trim.
    if let Some(t) = common(s.as_bytes()) {
        return Some(t);
    }
    general(s.trim())
}

/// `jiff`'s reading, and the offset as written.
fn general(s: &str) -> Option<EventTime> {
    let instant: Timestamp = s.parse().ok()?;
    let b = s.as_bytes();
    let offset = if b.last().is_some_and(|c| c.eq_ignore_ascii_case(&b'z')) {
        Offset::UTC
    } else if b.len() >= 6 && b[b.len() - 3] == b':' && matches!(b[b.len() - 6], b'+' | b'-') {
        let sign = if b[b.len() - 6] == b'-' { -1 } else { 1 };
        let hh: i32 = s[b.len() - 5..b.len() - 3].parse().ok()?;
        let mm: i32 = s[b.len() - 2..].parse().ok()?;
        Offset::from_seconds(sign * (hh * 3600 + mm * 60)).ok()?
    } else {
        Offset::UTC
    };
    Some(EventTime { instant, offset })
}

/// Two ASCII digits as a number.
fn two(b: &[u8], at: usize) -> Option<i64> {
    let (hi, lo) = (
        b.get(at)?.wrapping_sub(b'0'),
        b.get(at + 1)?.wrapping_sub(b'0'),
    );
    (hi < 10 && lo < 10).then(|| i64::from(hi * 10 + lo))
}

/// The common shape, or `None` to leave the stamp to [`general`].
fn common(b: &[u8]) -> Option<EventTime> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two(b, 0)? * 100 + two(b, 2)?;
    let (month, day) = (two(b, 5)?, two(b, 8)?);
    let (hour, minute, second) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    // Far from the ends of `jiff`'s range whatever the offset; no leap second.
    if !(1..=9998).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i32 = 0;
    if b[i] == b'.' {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        for &d in &b[i..i + digits] {
            nanos = nanos * 10 + i32::from(d - b'0');
        }
        nanos *= 10i32.pow(9 - digits as u32);
        i += digits;
    }
    let offset = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (two(b, i + 1)?, two(b, i + 4)?);
            if oh > 23 || om > 59 || (*sign == b'-' && oh == 0 && om == 0) {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let instant = Timestamp::new(seconds, nanos).ok()?;
    let offset = Offset::from_seconds(i32::try_from(offset).ok()?).ok()?;
    Some(EventTime { instant, offset })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, <https://howardhinnant.github.io/date_algorithms.html>).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_shapes_are_read_by_position() {
        for s in [
            "2017-06-23T08:14:05Z",
            "2024-06-23T00:00:00.123Z",
            "2017-06-23T09:14:05.1234567+01:00",
            "2000-02-29T23:59:59.999999999-05:30",
            "1970-01-01T00:00:00z",
        ] {
            assert!(common(s.as_bytes()).is_some(), "{s}");
            assert_eq!(parse(s), general(s), "{s}");
        }
        let t = parse("2017-06-23T09:14:05.1234567+01:00").unwrap();
        assert_eq!(t.offset.seconds(), 3600);
        assert_eq!(t.to_string(), "2017-06-23T09:14:05.1234567+01:00");
        assert_eq!(
            parse("2017-06-23T08:14:05Z").unwrap().instant,
            "2017-06-23T08:14:05Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn other_shapes_go_to_jiff() {
        for s in [
            "2017-06-23 08:14:05Z",
            "2017-06-23T08:14:60Z",
            "2017-02-29T08:14:05Z",
            "2017-06-23T08:14:05-00:00",
            "2017-06-23T08:14:05,5Z",
            "9999-12-30T08:14:05Z",
            "2017-06-23T08:14:05",
            "2017-06-23T08:14:05.Z",
            "2017-06-23T08:14:05.1234567890Z",
            "2017-06-23T08:14:05+0100",
        ] {
            assert_eq!(common(s.as_bytes()), None, "{s}");
            assert_eq!(parse(s), general(s), "{s}");
        }
    }

    /// Stamps near the common shape: every field in and just out of its range, every
    /// separator and offset form, and random bytes changed.
    fn stamp() -> impl Strategy<Value = String> {
        let offset = prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            Just(String::new()),
            Just("-00:00".to_owned()),
            (prop::bool::ANY, 0..27u32, 0..62u32)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
            (prop::bool::ANY, 0..25u32, 0..60u32)
                .prop_map(|(neg, h, m)| format!("{}{h:02}{m:02}", if neg { '-' } else { '+' })),
        ];
        (
            prop_oneof![0..10000u32, 1..3000u32, 9990..10000u32],
            0..14u32,
            0..33u32,
            prop::sample::select(vec!['T', 't', ' ', 'x']),
            0..26u32,
            0..62u32,
            0..62u32,
            prop_oneof![Just(String::new()), "[.,][0-9]{0,11}"],
            offset,
        )
            .prop_map(|(y, mo, d, sep, h, mi, s, frac, off)| {
                format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn agrees_with_jiff(
            text in stamp(),
            edit in prop::option::of((any::<prop::sample::Index>(), 32u8..127)),
        ) {
            let mut bytes = text.into_bytes();
            if let Some((at, byte)) = edit {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let s = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(parse(&s), general(s.trim()), "{}", s);
        }
    }
}
