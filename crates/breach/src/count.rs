//! The one-byte count code of compact indexes: a small float with a 5-bit exponent and
//! a 3-bit mantissa. Counts up to 16 are exact; larger ones are rounded to the nearest
//! representable value, which is within 1/16 (6.25 %) of the true count. Up to
//! 4,294,967,295 (`u32::MAX`) is representable; beyond the code's range values saturate.

/// Encodes a count (0 stays 0) into one byte.
pub fn encode(count: u32) -> u8 {
    if count < 8 {
        return count as u8;
    }
    let bits = 31 - count.leading_zeros(); // ≥ 3
    let mut shift = bits - 3;
    let mut mantissa = if shift == 0 {
        u64::from(count)
    } else {
        (u64::from(count) + (1u64 << (shift - 1))) >> shift
    };
    if mantissa == 16 {
        mantissa = 8;
        shift += 1;
    }
    // shift ≤ 29 for any u32, so the exponent (shift + 1) fits its five bits.
    (((shift + 1) as u8) << 3) | (mantissa as u8 - 8)
}

/// Decodes one byte of count code; values past `u32::MAX` saturate.
pub fn decode(code: u8) -> u32 {
    let exponent = u32::from(code >> 3);
    let mantissa = u64::from(code & 7);
    if exponent == 0 {
        return mantissa as u32;
    }
    let value = (8 + mantissa) << (exponent - 1);
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_exact() {
        for c in 0..=16 {
            assert_eq!(decode(encode(c)), c);
        }
    }

    #[test]
    fn large_counts_within_a_sixteenth() {
        let mut c: u64 = 17;
        while c <= u64::from(u32::MAX) {
            let v = c as u32;
            let back = f64::from(decode(encode(v)));
            let err = (back - f64::from(v)).abs() / f64::from(v);
            assert!(err <= 1.0 / 16.0 + 1e-9, "{v} -> {back}");
            c = c * 9 / 8 + 1;
        }
        let max = decode(encode(u32::MAX));
        assert!(max >= u32::MAX - u32::MAX / 16);
    }

    #[test]
    fn order_is_kept() {
        let mut last = 0;
        for code in 0..=255u8 {
            let v = decode(code);
            assert!(v >= last);
            last = v;
        }
    }
}
