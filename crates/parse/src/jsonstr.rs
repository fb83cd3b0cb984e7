//! Finding where the plain content of a JSON string ends.
//!
//! Most of the bytes of a JSON record are string content, keys and values alike, and
//! the scanner ([`crate::jsondoc`]) only needs to know where each run of plain content
//! stops: at a quote (the end), a backslash (an escape) or a control character (which
//! RFC 8259 section 7 forbids unescaped in a string). [`next_special`] answers that
//! sixteen bytes a step with SSE2 on x86_64, where SSE2 is part of the baseline and
//! needs no run-time detection (through `safe_arch`, which exposes the intrinsics as
//! safe functions), and eight bytes a step in a 64-bit word elsewhere ([`swar`]).
//! Both give the same answer; the tests hold each to a byte-by-byte reference.

/// A byte that ends a run of plain string content: a quote, a backslash or a
/// control character (which JSON strings may not hold).
#[inline(always)]
pub(crate) fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The position of the first special byte of `b[i..]`, or `b.len()` if there is
/// none (or `i` is past the end).
#[inline(always)]
pub(crate) fn next_special(b: &[u8], i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2(b, i)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        swar(b, i)
    }
}

/// [`next_special`] sixteen bytes a step: three byte-wise comparisons, one mask, and
/// the lowest set bit. The last few bytes of the record are copied into a block padded
/// with quotes, so that every step reads a whole block and the padding stops the
/// search.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn sse2(b: &[u8], mut i: usize) -> usize {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let control = set_splat_i8_m128i(0x1f);
    let flags = |block: &[u8; 16]| -> u32 {
        let v = load_unaligned_m128i(block);
        // A byte is a control character when the unsigned minimum of it and 0x1f is
        // itself (SSE2 compares bytes only as signed, which would flag 0x80..=0xff).
        let special = bitor_m128i(
            bitor_m128i(
                cmp_eq_mask_i8_m128i(v, quote),
                cmp_eq_mask_i8_m128i(v, backslash),
            ),
            cmp_eq_mask_i8_m128i(min_u8_m128i(v, control), v),
        );
        move_mask_i8_m128i(special) as u32
    };
    loop {
        match b.get(i..i + 16) {
            Some(chunk) => {
                let mut block = [0u8; 16];
                block.copy_from_slice(chunk);
                let found = flags(&block);
                if found != 0 {
                    return i + found.trailing_zeros() as usize;
                }
                i += 16;
            }
            None => {
                let rest = b.get(i..).unwrap_or_default();
                let mut block = [b'"'; 16];
                block[..rest.len()].copy_from_slice(rest);
                // Never zero: the padding is quotes, and `rest` is shorter than 16.
                let found = flags(&block);
                return (i + found.trailing_zeros() as usize).min(b.len());
            }
        }
    }
}

/// [`next_special`] eight bytes a step in a 64-bit word, for targets without SSE2.
/// The lowest flagged byte of each test is exact (borrows only run upwards).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(dead_code, reason = "tested on every target, used where SSE2 is not")
)]
#[inline(always)]
pub(crate) fn swar(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let quote = w ^ (LO * u64::from(b'"'));
        let slash = w ^ (LO * u64::from(b'\\'));
        let found = (quote.wrapping_sub(LO) & !quote)
            | (slash.wrapping_sub(LO) & !slash)
            | (w.wrapping_sub(LO * 0x20) & !w);
        let found = found & HI;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !is_special(b[i]) {
        i += 1;
    }
    i.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: one byte at a time.
    fn reference(b: &[u8], i: usize) -> usize {
        (i..b.len()).find(|&j| is_special(b[j])).unwrap_or(b.len())
    }

    fn every_way(b: &[u8], i: usize) -> [usize; 3] {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        let simd = sse2(b, i);
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        let simd = swar(b, i);
        [next_special(b, i), simd, swar(b, i)]
    }

    #[test]
    fn each_special_byte_at_every_place_of_two_blocks_and_a_tail() {
        let specials = [b'"', b'\\', 0x00, 0x01, b'\n', 0x1f];
        // Bytes next to the special ones, and every byte with the high bit set.
        let plain: Vec<u8> = [b' ', b'!', b'#', b'[', b']', 0x7f]
            .into_iter()
            .chain(0x80..=0xff)
            .collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40] {
            for &fill in &plain {
                let mut b = vec![fill; len];
                for start in 0..=len + 1 {
                    assert_eq!(
                        every_way(&b, start),
                        [len; 3],
                        "none: {fill:#x} {len} {start}"
                    );
                }
                for at in 0..len {
                    for &s in &specials {
                        b[at] = s;
                        for start in [0, at.saturating_sub(9), at, at + 1] {
                            let want = reference(&b, start);
                            assert_eq!(
                                every_way(&b, start),
                                [want; 3],
                                "{s:#x} at {at} of {len} from {start}, filled with {fill:#x}"
                            );
                        }
                        b[at] = fill;
                    }
                }
            }
        }
    }

    #[test]
    fn the_first_of_several_is_found() {
        let b = b"0123456789abcde\\\"\x00 tail\"";
        assert_eq!(every_way(b, 0), [15; 3]);
        assert_eq!(every_way(b, 16), [16; 3]);
        assert_eq!(every_way(b, 17), [17; 3]);
        assert_eq!(every_way(b, 18), [23; 3]);
        // Non-ASCII text (UTF-8 bytes are all 0x80 and above) is plain content.
        let s = "ünïcödé 文字列 ✓ \"".as_bytes();
        assert_eq!(every_way(s, 0), [s.len() - 1; 3]);
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(
            b in prop::collection::vec(
                prop_oneof![8 => 0x20u8..=0xff, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20],
                0..80,
            ),
            start in 0usize..90,
        ) {
            let want = reference(&b, start);
            prop_assert_eq!(every_way(&b, start), [want; 3]);
        }
    }
}
