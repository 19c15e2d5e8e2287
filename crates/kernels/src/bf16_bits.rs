//! fp32 → bf16 bits (round to nearest even, like `vcvtneps2bf16`): vectorised where the CPU has
//! AVX512-BF16, in parallel chunks for whole projections (the AMX attention's input, the A of a
//! transposed bf16 view).

use half::bf16;
use rayon::prelude::*;

/// `src` as bf16 bits, converted in parallel chunks (for `pack::pack_a_bf16`'s transposed views).
pub fn to_bf16_bits(src: &[f32], out: &mut Vec<u16>) {
    // Every element is overwritten below: zeroing a reused buffer first (`clear` then `resize`)
    // was a serial memset of the whole projection per layer, 2 % of int8 inference on AMX (`perf`).
    out.resize(src.len(), 0);
    out.par_chunks_mut(1 << 14).zip(src.par_chunks(1 << 14)).for_each(|(d, s)| convert_bf16(s, d));
}

/// `src` → bf16 bits in `dst` (round to nearest even), vectorised where the CPU allows.
pub(crate) fn convert_bf16(src: &[f32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if crate::level::isa().bf16() {
        // SAFETY: AVX-512F, -BF16 and -VL were detected (the bf16 levels require all three);
        // the function stays within both slices.
        unsafe { crate::avx512_ops::to_bf16(src, dst) };
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
    fn to_bf16_bits_overwrites_a_reused_buffer_of_any_length() {
        // The buffer is no longer zeroed first: junk from a longer or shorter earlier call must
        // not survive. Literal bits: 1.0 is 0x3F80, −2.0 is 0xC000, 0.5 is 0x3F00.
        let src: Vec<f32> = [1.0, -2.0, 0.5].into_iter().cycle().take(40_000).collect();
        for before in [0, 3, 39_999, 40_000, 100_000] {
            let mut out = vec![0x7777u16; before];
            to_bf16_bits(&src, &mut out);
            assert_eq!(out.len(), src.len());
            assert!(out.chunks_exact(3).all(|c| c == [0x3F80, 0xC000, 0x3F00]), "from {before} junk values");
            assert_eq!(out[39_999], 0x3F80);
        }
    }

    #[test]
    fn vector_bf16_conversion_rounds_like_half() {
        // Round to nearest, ties to even, as literal bits: 1 + 2⁻⁸ is a tie that rounds down to
        // the even 1.0, 1 + 3·2⁻⁸ a tie that rounds up to 1 + 2⁻⁶, 1 + 2⁻⁸ + 2⁻²³ rounds up.
        let ties = [(0x3F80_8000u32, 0x3F80u16), (0x3F81_8000, 0x3F82), (0x3F80_8001, 0x3F81), (0xBF80_0000, 0xBF80)];
        let src: Vec<f32> = ties.iter().map(|&(x, _)| f32::from_bits(x)).collect();
        let mut dst = vec![0u16; ties.len()];
        convert_bf16(&src, &mut dst);
        assert_eq!(dst, ties.iter().map(|&(_, b)| b).collect::<Vec<_>>(), "level {}", crate::level::isa().name());
        // Many values, across the vector width and its tail: the same bits as `half`'s scalar
        // rounding (on levels without bf16 instructions this path *is* the scalar one; the
        // literal cases above still check it).
        let src: Vec<f32> = (0..53).map(|i| ((i as f32) * 1.618_034).sin() * 10f32.powi(i % 7 - 3)).collect();
        let mut dst = vec![0u16; 53];
        convert_bf16(&src, &mut dst);
        for (x, b) in src.iter().zip(&dst) {
            assert_eq!(*b, bf16::from_f32(*x).to_bits(), "{x}");
        }
    }
}
