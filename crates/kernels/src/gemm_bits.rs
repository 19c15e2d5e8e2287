//! GEMMs with one end in bf16 bits: C written as bits for a product that only feeds the next
//! bf16 GEMM or the AMX attention ([`gemm_to_bits`]), or A read from bits ([`gemm_from_bits`]).
//! On AMX tiles the bits are written by the epilogue and read in place; elsewhere they go
//! through fp32 (the same values).

use crate::bf16_bits::to_bf16_bits;
use crate::gemm::{Epilogue, gemm_ex_rows};
use crate::pack::Mat;
use crate::packed_b::{Packed, PackedB};
use crate::rows::{RowSet, par_row_blocks};

/// `out` (`[m, n]` bf16 bits) = `a` (`[m, k]`) · `b` + `bias`, then `epilogue`, rounded to
/// bf16: for a product that only feeds the next GEMM (the feed-forward's inner activation, the
/// attention's projection). On AMX tiles (bf16 weights, or int8 weights on the AMX-INT8 tiles)
/// the epilogue writes the bits directly (no fp32 copy of the activation is written and read
/// back); elsewhere the fp32 product is converted. Same values either way, except that the bf16
/// tiles' GELU is a polynomial good to 1e-4 (`avx512_ops::gelu_poly512`, below the bf16 rounding
/// that follows). `a_bits`, when given, is `a` already in bf16 (the bf16 tiles then read it in
/// place). Only the rows in `rows` are computed, the others set to zero.
#[allow(clippy::too_many_arguments)]
pub fn gemm_to_bits(a: &[f32], a_bits: Option<&[u16]>, m: usize, b: &PackedB, bias: Option<&[f32]>, epilogue: Epilogue, out: &mut Vec<u16>, rows: RowSet<'_>) {
    let (k, n) = (b.k, b.n);
    assert_eq!(a.len(), m * k, "A must be m × k");
    if let Some(bits) = a_bits {
        assert_eq!(bits.len(), a.len(), "a_bits must mirror a");
    }
    out.resize(m * n, 0);
    #[cfg(target_arch = "x86_64")]
    if let (Packed::Tiles(bp), true) = (&b.data, m > 0 && n > 0 && k > 0) {
        if let Some(bias) = bias {
            assert_eq!(bias.len(), n, "bias must have n values");
        }
        let panels = crate::gemm_amx::Panels { data: bp, depth: b.depth, n };
        par_row_blocks(out, n, crate::amx::TILE_ROWS, rows, false, |r0, rows_out| {
            let count = rows_out.len() / n;
            let out = crate::gemm_amx::Out::Bf16(rows_out);
            crate::gemm_amx::gemm_rows((Mat::rows(a, m, k), a_bits), &panels, bias, epilogue, (r0, count), out);
        });
        return;
    }
    // int8 weights on the AMX-INT8 tiles: the dequantization writes the bits (the same bits as
    // converting its fp32 output, without writing and reading back that output).
    if let (Packed::Int8(q), true) = (&b.data, m > 0 && n > 0 && k > 0)
        && q.path == crate::quad_path::QuadPath::Tiles
    {
        if let Some(bias) = bias {
            assert_eq!(bias.len(), n, "bias must have n values");
        }
        par_row_blocks(out, n, 32, rows, false, |r0, rows_out| {
            let count = rows_out.len() / n;
            crate::quant_gemm::gemm_rows_to(Mat::rows(a, m, k), q, n, (bias, epilogue), (r0, count), crate::quant_gemm::RowsOut::Bf16(rows_out));
        });
        return;
    }
    let mut c = vec![0.0f32; m * n];
    gemm_ex_rows(Mat::rows(a, m, k), None, b, bias, epilogue, &mut c, false, rows);
    to_bf16_bits(&c, out);
}

/// `c` (`[m, n]`) = A · `b` + `bias`, then `epilogue`, with A given only as bf16 bits (`[m, k]`
/// row-major, as [`gemm_to_bits`] writes them). On AMX tiles they are read in place (when k fills
/// whole tiles); elsewhere they are widened to fp32 first. Only the rows in `rows` are computed,
/// the others set to zero.
pub fn gemm_from_bits(bits: &[u16], m: usize, b: &PackedB, bias: Option<&[f32]>, epilogue: Epilogue, c: &mut [f32], rows: RowSet<'_>) {
    let (k, n) = (b.k, b.n);
    assert_eq!(bits.len(), m * k, "A bits must be m × k");
    assert_eq!(c.len(), m * n, "C must be m × n");
    #[cfg(target_arch = "x86_64")]
    if let (Packed::Tiles(bp), true) = (&b.data, m > 0 && n > 0 && k > 0) {
        if let Some(bias) = bias {
            assert_eq!(bias.len(), n, "bias must have n values");
        }
        // The driver takes A's shape from a view and its values from `bits` alone (row-major bits
        // are only ever copied or read in place there), so the view carries no fp32 data.
        let shape = Mat { data: &[], rows: m, cols: k, rs: k, cs: 1 };
        let panels = crate::gemm_amx::Panels { data: bp, depth: b.depth, n };
        par_row_blocks(c, n, crate::amx::TILE_ROWS, rows, false, |r0, c_rows| {
            let count = c_rows.len() / n;
            let out = crate::gemm_amx::Out::F32 { c: c_rows, accumulate: false };
            crate::gemm_amx::gemm_rows((shape, Some(bits)), &panels, bias, epilogue, (r0, count), out);
        });
        return;
    }
    let a: Vec<f32> = bits.iter().map(|&x| half::bf16::from_bits(x).to_f32()).collect();
    gemm_ex_rows(Mat::rows(&a, m, k), None, b, bias, epilogue, c, false, rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::gemm;
    use crate::gemm::tests::{bf16_runs_here, data};
    use crate::packed_b::Precision;

    #[test]
    fn bf16_output_and_bits_input_equal_converting_in_between() {
        // The fused path (epilogue writes bf16; the next GEMM reads the bits) must give what the
        // fp32 product, converted, gives: exactly without an activation (the attention's
        // projection); with GELU (the feed-forward pair) the AMX epilogue's GELU is a polynomial
        // good to 1e-4 (`avx512_ops::gelu_poly512`), so within that plus one bf16 rounding.
        if !bf16_runs_here() {
            return;
        }
        for &(m, k, n, n2) in &[(70, 64, 96, 50), (5, 384, 1536, 384), (33, 40, 20, 17)] {
            let (a, b, b2, bias) = (data(m * k, 13), data(k * n, 14), data(n * n2, 15), data(n, 16));
            let (p1, p2) = (PackedB::new(&b, k, n, Precision::Bf16), PackedB::new(&b2, n, n2, Precision::Bf16));
            let mut a_bits = Vec::new();
            crate::bf16_bits::to_bf16_bits(&a, &mut a_bits);
            for epilogue in [Epilogue::None, Epilogue::Gelu] {
                let mut inter = vec![0.0; m * n];
                gemm(&a, m, &p1, Some(&bias), epilogue, &mut inter);
                let mut want_bits = Vec::new();
                crate::bf16_bits::to_bf16_bits(&inter, &mut want_bits);
                let (mut bits, mut bits_from_bits) = (Vec::new(), Vec::new());
                gemm_to_bits(&a, None, m, &p1, Some(&bias), epilogue, &mut bits, RowSet::All);
                // A given in bits too (the encoder's LayerNorm writes them): read in place on a
                // 64-byte line, copied off one.
                for (placed, skew) in crate::aligned::on_and_off_a_line(&a_bits) {
                    gemm_to_bits(&a, Some(&placed[skew..skew + m * k]), m, &p1, Some(&bias), epilogue, &mut bits_from_bits, RowSet::All);
                    assert_eq!(bits_from_bits, bits, "{m}x{k}x{n} {epilogue:?}: bf16 output from bits {skew} elements off a line");
                }
                if epilogue == Epilogue::None {
                    assert_eq!(bits, want_bits, "{m}x{k}x{n}: bf16 output");
                } else {
                    for (i, (&got, &want)) in bits.iter().zip(&inter).enumerate() {
                        let got = half::bf16::from_bits(got).to_f32();
                        assert!((got - want).abs() <= 1e-4 + want.abs() / 256.0, "{m}x{k}x{n} [{i}]: {got} vs {want}");
                    }
                }
                // The next GEMM reads the bits: the same as widening them first.
                let widened: Vec<f32> = bits.iter().map(|&x| half::bf16::from_bits(x).to_f32()).collect();
                let (mut want, mut got) = (vec![0.0; m * n2], vec![f32::NAN; m * n2]);
                gemm(&widened, m, &p2, None, Epilogue::None, &mut want);
                for (placed, skew) in crate::aligned::on_and_off_a_line(&bits) {
                    gemm_from_bits(&placed[skew..skew + m * n], m, &p2, None, Epilogue::None, &mut got, RowSet::All);
                    assert_eq!(got, want, "{m}x{n}x{n2}: bits input {skew} elements off a line");
                }
            }
        }
    }

    #[test]
    fn int8_bits_output_equals_converting_the_fp32_product() {
        // On the AMX-INT8 tiles the dequantization writes bf16 bits (the AMX attention's input);
        // elsewhere the fp32 product is converted. Either way: the bits of the fp32 product,
        // exactly, on all rows and on live ranges (the others zero), with and without GELU.
        for &(m, k, n) in &[(70, 64, 96), (6, 384, 1152), (33, 40, 20), (130, 33, 50)] {
            let (a, b, bias) = (data(m * k, 17), data(k * n, 18), data(n, 19));
            let packed = PackedB::new(&b, k, n, Precision::Int8);
            let ranges = [1..m / 3, m / 2..m];
            for rows in [RowSet::All, RowSet::Ranges(&ranges)] {
                for epilogue in [Epilogue::None, Epilogue::Gelu] {
                    let mut c = vec![0.0; m * n];
                    gemm_ex_rows(Mat::rows(&a, m, k), None, &packed, Some(&bias), epilogue, &mut c, false, rows);
                    let mut want = Vec::new();
                    to_bf16_bits(&c, &mut want);
                    let mut got = vec![0x7777; 3];
                    gemm_to_bits(&a, None, m, &packed, Some(&bias), epilogue, &mut got, rows);
                    assert_eq!(got, want, "{m}x{k}x{n} {epilogue:?} {rows:?} at {}", crate::int8_kernel());
                    assert!(want.iter().any(|&x| x != 0), "a product that is all zeros checks nothing");
                }
            }
        }
    }
}
