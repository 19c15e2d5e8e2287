//! Dropout from a counter-based hash: the backward pass regenerates the forward's mask instead
//! of storing it, and the mask does not depend on how the work is split over threads. Plain loops
//! that vectorise, compiled for AVX-512 and baseline x86-64 like `ops`.

use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// A seed derived from `seed` and a counter (SplitMix64's finaliser decorrelates consecutive
/// counters): per-step seeds, and per-site dropout seeds within a step.
pub fn mix64(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A dropout mask: element `i` of a site is kept when `hash(seed, offset + i) ≥ threshold`.
/// Counter-based (like Philox in PyTorch), so forward and backward agree without storing the
/// mask and the result does not depend on how the work is split over threads.
#[derive(Clone, Copy, Debug)]
pub struct DropoutMask {
    pub seed: u32,
    /// Drop probability in [0, 1).
    pub p: f32,
}

impl DropoutMask {
    pub fn new(seed: u64, p: f32) -> Self {
        Self { seed: (seed ^ (seed >> 32)) as u32, p }
    }

    /// The mask of site `site` (each place dropout is applied) in the step seeded `seed`; none
    /// (p = 0) in evaluation (`seed` = `None`).
    pub fn at(seed: Option<u64>, site: u64, p: f64) -> Self {
        match seed {
            Some(s) => Self::new(mix64(s, site), p as f32),
            None => Self::new(0, 0.0),
        }
    }

    fn threshold(&self) -> u32 {
        (f64::from(self.p) * 4_294_967_296.0).min(4_294_967_295.0) as u32
    }

    /// Whether element `i` survives (for tests and scalar callers).
    pub fn keeps(&self, i: u32) -> bool {
        hash(self.seed, i) >= self.threshold()
    }

    /// `x[i] ← x[i] · keep(offset + i) / (1 − p)`, in place; the same call on the gradient is
    /// the backward pass.
    pub fn apply(&self, x: &mut [f32], offset: u32) {
        if self.p <= 0.0 {
            return;
        }
        let (seed, threshold, scale) = (self.seed, self.threshold(), 1.0 / (1.0 - self.p));
        x.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, xs)| dropout_serial(xs, seed, threshold, scale, offset.wrapping_add((c * CHUNK) as u32)));
    }

    /// Like [`apply`](Self::apply) on one thread (inside already-parallel loops).
    pub fn apply_serial(&self, x: &mut [f32], offset: u32) {
        if self.p > 0.0 {
            dropout_serial(x, self.seed, self.threshold(), 1.0 / (1.0 - self.p), offset);
        }
    }
}

/// murmur3's 32-bit finaliser over a seeded counter: cheap, vectorises, and its output bits pass
/// avalanche tests, which is all a dropout mask needs.
#[inline(always)]
fn hash(seed: u32, i: u32) -> u32 {
    let mut h = i.wrapping_mul(0x9E37_79B1) ^ seed;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

dispatch!(pub dropout_serial(x: &mut [f32], seed: u32, threshold: u32, scale: f32, offset: u32) {
    for (i, v) in x.iter_mut().enumerate() {
        let keep = hash(seed, offset.wrapping_add(i as u32)) >= threshold;
        *v = if keep { *v * scale } else { 0.0 };
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_keeps_about_1_minus_p_scales_them_and_repeats() {
        let mask = DropoutMask::new(7, 0.1);
        let mut x = vec![1.0f32; 100_000];
        mask.apply(&mut x, 5);
        let kept = x.iter().filter(|&&v| v != 0.0).count();
        assert!((89_000..91_000).contains(&kept), "{kept}");
        assert!(x.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        // Same seed and offset: same mask, however the slice is split.
        let mut y = vec![1.0f32; 1000];
        mask.apply_serial(&mut y[..400], 5);
        mask.apply_serial(&mut y[400..], 405);
        assert_eq!(&x[..1000], &y[..]);
        let mut z = vec![1.0f32; 1000];
        DropoutMask::new(8, 0.1).apply(&mut z, 5);
        assert_ne!(&x[..1000], &z[..]);
    }
}
