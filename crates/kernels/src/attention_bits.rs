//! Multi-head self-attention on a fused QKV projection given as bf16 bits (what
//! [`gemm_to_bits`](crate::gemm_to_bits) writes for the AMX attention): into the fp32 context, or
//! into bits for an output projection that reads them. On AMX tiles the bits are read as they
//! are; elsewhere they are widened to fp32 and run through [`attention`] (an error-free fallback).

use crate::attention::{attention, for_each_head};
use crate::packed_b::Precision;

/// [`attention`] in bf16 on a projection given as bf16 bits (`[B·T, 3H]`, as
/// [`gemm_to_bits`](crate::gemm_to_bits) writes it: the int8 engine's on AMX), into the fp32
/// context `[B·T, H]`: on AMX tiles the bits are read as they are; elsewhere they are widened to
/// fp32 first (an error-free fallback). The same values as [`attention`] in bf16 on the fp32
/// projection the bits came from.
pub fn attention_from_bits(qkv_bits: &[u16], lens: &[usize], (t, heads, hd): (usize, usize, usize), out: &mut [f32]) {
    let h = heads * hd;
    assert_eq!(qkv_bits.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * t * h, "out must be [B·T, H]");
    #[cfg(target_arch = "x86_64")]
    if attention_reads_bits(hd) {
        use crate::attention_amx::{Ctx, head_context};
        for_each_head(out, lens, (t, heads, hd), |b, head, len, dst, stride| {
            head_context(qkv_bits, b, head, len, (t, heads, hd), Ctx::F32(dst), stride);
        });
        return;
    }
    let qkv: Vec<f32> = qkv_bits.iter().map(|&x| half::bf16::from_bits(x).to_f32()).collect();
    attention(&qkv, lens, (t, heads, hd), Precision::Bf16, out);
}

/// Whether [`attention_bits`] runs here: AMX tiles, and heads of whole tiles.
pub fn attention_reads_bits(hd: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::level::isa() == crate::level::Isa::Amx && crate::attention_amx::supports(hd);
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// [`attention`] in bf16 on AMX tiles with both ends in bf16 bits: `qkv_bits` `[B·T, 3H]` as the
/// projection's GEMM wrote them ([`gemm_to_bits`](crate::gemm_to_bits)), the context `[B·T, H]`
/// written as bits for the output projection to read in place. The same values as [`attention`]
/// in bf16 on the fp32 projection, converted; without the fp32 round trips through memory. Only
/// where [`attention_reads_bits`] (elsewhere: an error-free fallback through fp32).
pub fn attention_bits(qkv_bits: &[u16], lens: &[usize], (t, heads, hd): (usize, usize, usize), out: &mut Vec<u16>) {
    let h = heads * hd;
    assert_eq!(qkv_bits.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    out.resize(lens.len() * t * h, 0);
    #[cfg(target_arch = "x86_64")]
    if attention_reads_bits(hd) {
        use crate::attention_amx::{Ctx, head_context};
        for_each_head(out, lens, (t, heads, hd), |b, head, len, dst, stride| {
            head_context(qkv_bits, b, head, len, (t, heads, hd), Ctx::Bits(dst), stride);
        });
        return;
    }
    let mut ctx = vec![0.0f32; lens.len() * t * h];
    attention_from_bits(qkv_bits, lens, (t, heads, hd), &mut ctx);
    crate::bf16_bits::to_bf16_bits(&ctx, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bits tests' shapes (lengths straddle the 32-row slabs: 4 texts run by text, 1 by
    /// head) and, per length set, a projection as bf16 bits and those bits widened to fp32.
    const BITS_SHAPE: (usize, usize, usize) = (70, 2, 32);
    fn bits_cases() -> Vec<(&'static [usize], Vec<u16>, Vec<f32>)> {
        let (t, heads, hd) = BITS_SHAPE;
        let lens_sets: [&'static [usize]; 2] = [&[1, 31, 33, 70], &[45]];
        lens_sets
            .into_iter()
            .map(|lens| {
                let qkv: Vec<f32> = (0..lens.len() * t * 3 * heads * hd).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.8).collect();
                let mut bits = Vec::new();
                crate::bf16_bits::to_bf16_bits(&qkv, &mut bits);
                let widened = bits.iter().map(|&v| half::bf16::from_bits(v).to_f32()).collect();
                (lens, bits, widened)
            })
            .collect()
    }

    #[test]
    fn bits_in_fp32_out_agrees_with_bits_out_and_with_fp32() {
        // The int8 engine's projection arrives as bits on AMX. The fp32 context read from them,
        // rounded, must be exactly the context `attention_bits` writes (the tiles' other
        // output, reached by its own loop), and near the fp32 attention on the same values (an
        // independent computation: bf16 operands cost ~1 %), by text and by head.
        let (t, heads, hd) = BITS_SHAPE;
        let h = heads * hd;
        for (lens, qkv_bits, widened) in bits_cases() {
            let mut got = vec![f32::NAN; lens.len() * t * h];
            attention_from_bits(&qkv_bits, lens, (t, heads, hd), &mut got);
            let (mut got_bits, mut want_bits) = (Vec::new(), Vec::new());
            crate::bf16_bits::to_bf16_bits(&got, &mut got_bits);
            attention_bits(&qkv_bits, lens, (t, heads, hd), &mut want_bits);
            assert_eq!(got_bits, want_bits, "lengths {lens:?}, tiles: {}", attention_reads_bits(hd));
            let mut exact = vec![0.0; lens.len() * t * h];
            attention(&widened, lens, (t, heads, hd), Precision::F32, &mut exact);
            let worst = got.iter().zip(&exact).map(|(g, e)| (g - e).abs() / (1.0 + e.abs())).fold(0.0f32, f32::max);
            assert!(worst < 0.02, "lengths {lens:?}: {worst} from the fp32 attention");
            assert!(exact.iter().any(|&x| x != 0.0));
        }
    }

    /// The encoder's bf16-bits evaluation path: the attention reads the projection's bits and
    /// writes the context's, exactly what converting the fp32 inputs and result gives.
    #[test]
    fn bits_in_and_out_equal_converting_the_fp32_attention() {
        // Against the bf16 attention on the same (converted) inputs, by text (4 texts) and by
        // head (1 text).
        let (t, heads, hd) = BITS_SHAPE;
        let h = heads * hd;
        for (lens, qkv_bits, rounded) in bits_cases() {
            let mut ctx = vec![0.0; lens.len() * t * h];
            attention(&rounded, lens, (t, heads, hd), Precision::Bf16, &mut ctx);
            let (mut want, mut got) = (Vec::new(), vec![7u16; 3]);
            crate::bf16_bits::to_bf16_bits(&ctx, &mut want);
            // The queries read in place on a 64-byte line, copied off one.
            for (placed, skew) in crate::aligned::on_and_off_a_line(&qkv_bits) {
                attention_bits(&placed[skew..skew + qkv_bits.len()], lens, (t, heads, hd), &mut got);
                assert_eq!(got, want, "lengths {lens:?}, qkv {skew} elements off a line");
            }
        }
    }
}
