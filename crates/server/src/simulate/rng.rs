//! The simulation's only source of randomness: SplitMix64 (Steele, Lea and Flood 2014), seeded
//! from `--seed`. Every decision draws from a generator derived from the seed and the decision's
//! subject ([`Rng::derive`]), so a decision does not depend on the order in which concurrent
//! replies came back.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// An independent generator for one subject (`what`, `index`) under `seed`.
    pub fn derive(seed: u64, what: u64, index: u64) -> Self {
        Rng(mix(mix(seed ^ mix(what.wrapping_mul(GOLDEN))) ^ index))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// A uniform integer in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index drawn with the given weights (the last index if they are all zero).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// A UUID string derived from the seed, a kind tag and an index: the same run gets the same
/// ids, so command ids make retries idempotent and runs repeatable.
pub fn uuid(seed: u64, kind: u64, index: u64) -> String {
    let hi = mix(seed ^ mix(kind.wrapping_add(GOLDEN)));
    let lo = mix(hi ^ index.wrapping_mul(GOLDEN)) ^ index;
    // Version 4 and RFC 4122 variant bits, so that any UUID parser accepts it.
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_draws_and_ids_are_distinct() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = Rng::derive(1, 2, 3);
        let mut s = Rng::derive(1, 2, 3);
        assert_eq!(r.next_u64(), s.next_u64());
        assert_ne!(uuid(1, 2, 3), uuid(1, 2, 4));
        assert_ne!(uuid(1, 2, 3), uuid(2, 2, 3));
        assert_eq!(uuid(1, 2, 3).len(), 36);
        for _ in 0..1000 {
            let x = r.range(3, 9);
            assert!((3..=9).contains(&x));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
