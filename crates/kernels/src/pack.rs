//! Packing into the layouts the micro-kernels stream: B (weights) once, in panels of `NR`
//! columns; A (activations) per block, in slivers of `MR` rows. bf16 packs pairs of
//! consecutive `k` into one `u32` (low half = even `k`), the operand layout of `vdpbf16ps`.

use half::bf16;

/// Rows of A per micro-kernel call.
pub const MR: usize = 8;
/// Columns of B per micro-kernel call (three 16-lane vectors).
pub const NR: usize = 48;

/// Two floats as one bf16 pair (round to nearest even, like `vcvtne2ps2bf16`).
#[inline]
pub fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16::from_f32(lo).to_bits()) | (u32::from(bf16::from_f32(hi).to_bits()) << 16)
}

/// `b` `[k, n]` row-major → panels `[n/NR][k][NR]` (zero-padded columns).
pub fn pack_b_f32(b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let panels = n.div_ceil(NR);
    let mut out = vec![0.0; panels * k * NR];
    for p in 0..panels {
        let cols = NR.min(n - p * NR);
        for kk in 0..k {
            let src = &b[kk * n + p * NR..kk * n + p * NR + cols];
            out[(p * k + kk) * NR..(p * k + kk) * NR + cols].copy_from_slice(src);
        }
    }
    out
}

/// `b` `[k, n]` row-major → bf16 pair panels `[n/NR][k/2][NR]` (zero-padded).
pub fn pack_b_bf16(b: &[f32], k: usize, n: usize) -> Vec<u32> {
    let panels = n.div_ceil(NR);
    let kp = k.div_ceil(2);
    let mut out = vec![0u32; panels * kp * NR];
    for p in 0..panels {
        let cols = NR.min(n - p * NR);
        for q in 0..kp {
            for j in 0..cols {
                let col = p * NR + j;
                let lo = b[2 * q * n + col];
                let hi = if 2 * q + 1 < k { b[(2 * q + 1) * n + col] } else { 0.0 };
                out[(p * kp + q) * NR + j] = pair(lo, hi);
            }
        }
    }
    out
}

/// Rows `r0..r0+mc` and columns `k0..k0+kc` of `a` (`[m, k]` row-major) → slivers
/// `[mc/MR][kc][MR]` in `out` (rows past `m` are zero).
pub fn pack_a_f32(a: &[f32], m: usize, k: usize, (r0, mc): (usize, usize), (k0, kc): (usize, usize), out: &mut Vec<f32>) {
    let slivers = mc.div_ceil(MR);
    out.clear();
    out.resize(slivers * kc * MR, 0.0);
    for s in 0..slivers {
        for r in 0..MR {
            let row = r0 + s * MR + r;
            if row >= m || row >= r0 + mc {
                continue;
            }
            let src = &a[row * k + k0..row * k + k0 + kc];
            for (kk, &v) in src.iter().enumerate() {
                out[(s * kc + kk) * MR + r] = v;
            }
        }
    }
}

/// Like [`pack_a_f32`] but as bf16 pairs `[mc/MR][kc/2][MR]`; `k0` must be even.
pub fn pack_a_bf16(a: &[f32], m: usize, k: usize, (r0, mc): (usize, usize), (k0, kc): (usize, usize), out: &mut Vec<u32>) {
    let slivers = mc.div_ceil(MR);
    let kcp = kc.div_ceil(2);
    out.clear();
    out.resize(slivers * kcp * MR, 0);
    // A row's consecutive floats as bf16 are already its little-endian pairs; convert the row
    // segment in one vector pass, then scatter the pairs into the sliver layout.
    let mut bits = vec![0u16; 2 * kcp];
    for s in 0..slivers {
        for r in 0..MR {
            let row = r0 + s * MR + r;
            if row >= m || row >= r0 + mc {
                continue;
            }
            convert_bf16(&a[row * k + k0..row * k + k0 + kc], &mut bits[..kc]);
            if kc % 2 == 1 {
                bits[kc] = 0;
            }
            for q in 0..kcp {
                out[(s * kcp + q) * MR + r] = u32::from(bits[2 * q]) | (u32::from(bits[2 * q + 1]) << 16);
            }
        }
    }
}

fn convert_bf16(src: &[f32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() == crate::gemm::Isa::Avx512Bf16 {
        // SAFETY: AVX-512F, -BF16 and -VL were detected (`Isa::Avx512Bf16` requires all three);
        // the function stays within both slices.
        unsafe { crate::x86::to_bf16(src, dst) };
        return;
    }
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = bf16::from_f32(x).to_bits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_put_the_even_k_in_the_low_half() {
        let p = pair(1.0, 2.0);
        assert_eq!(p & 0xffff, u32::from(bf16::from_f32(1.0).to_bits()));
        assert_eq!(p >> 16, u32::from(bf16::from_f32(2.0).to_bits()));
    }

    #[test]
    fn vector_bf16_conversion_rounds_like_half() {
        let src: Vec<f32> = (0..53).map(|i| ((i as f32) * 1.618_034).sin() * 10f32.powi(i % 7 - 3)).collect();
        let mut dst = vec![0u16; 53];
        convert_bf16(&src, &mut dst);
        for (x, b) in src.iter().zip(&dst) {
            assert_eq!(*b, bf16::from_f32(*x).to_bits(), "{x}");
        }
    }

    #[test]
    fn b_panels_are_zero_padded() {
        let b: Vec<f32> = (0..3 * 50).map(|i| i as f32).collect();
        let p = pack_b_f32(&b, 3, 50);
        assert_eq!(p.len(), 2 * 3 * NR);
        assert_eq!(p[NR + 1], b[50 + 1]); // k = 1, col 1
        assert_eq!(p[(3 + 2) * NR + 1], b[2 * 50 + 49]); // panel 1, k = 2, col 49
        assert_eq!(p[(3 + 2) * NR + 2], 0.0);
    }
}
