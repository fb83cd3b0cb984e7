//! Deterministic random streams.
//!
//! Every random choice draws from a stream named by the seed and a path (what it is
//! for, which slot, which index), so that a choice never depends on the order in which
//! other choices were made: slots can be generated on any thread in any order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a good 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of the seed and a path.
pub fn hash(seed: u64, path: &[u64]) -> u64 {
    path.iter().fold(mix(seed ^ 0x9e37_79b9_7f4a_7c15), |h, p| {
        mix(h ^ mix(p.wrapping_add(0x632b_e59b_d9b4_e019)))
    })
}

/// A uniform number in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A random stream for the seed and a path.
pub fn stream(seed: u64, path: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash(seed, path))
}

/// Stream names, so that two purposes never share a stream.
pub mod purpose {
    /// Drawing the population.
    pub const POPULATION: u64 = 1;
    /// Benign traffic of a slot.
    pub const BENIGN: u64 = 2;
    /// A campaign's set-up.
    pub const CAMPAIGN: u64 = 3;
    /// A campaign's per-attempt choices.
    pub const ATTEMPT: u64 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_differ_by_path_and_are_stable() {
        assert_ne!(hash(1, &[1, 2]), hash(1, &[2, 1]));
        assert_ne!(hash(1, &[1]), hash(2, &[1]));
        assert_eq!(hash(7, &[3, 4]), hash(7, &[3, 4]));
        let u = unit(u64::MAX);
        assert!((0.0..1.0).contains(&u));
    }
}
