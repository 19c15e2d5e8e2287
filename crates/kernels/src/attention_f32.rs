//! One (text, head) of the fp32 inference attention as register-blocked loops: scores, softmax
//! and context for a few query rows at a time, every operand in L1. It replaces two small GEMM
//! calls per head, whose packing of Kᵀ, V, the queries and the scores cost more than their
//! arithmetic (`perf`: `pack_a_f32`, `memmove` and the GEMM kernel together over a quarter of an
//! int8 inference batch on AVX512-VNNI, for 5 % of its flops). Plain loops over fixed-size blocks,
//! compiled per level like `dispatch!`, with fused multiply-adds where the level has FMA.

use crate::ops::{Fused, MulAdd, Split, exp_sum_row, row_max};

/// Query rows per block, per level (same-sitting A/Bs in docs/benchmarks.md): `RB × CB`
/// accumulators in 8 AVX-512 registers (4 rows; 8 rows measured 6 % slower), or in 8 of AVX2's 16
/// (2 rows: with 4, all 16 held accumulators and AVX2 inference ran 4 % below the GEMM calls this
/// replaced, with 2 it runs 6 % above).
const RB_AVX512: usize = 4;
const RB_AVX2: usize = 2;
/// Key columns per block of scores, and value columns per block of the context.
const CB: usize = 32;

/// Where one head's rows lie in the fused projection: query, key and value row 0 of the head,
/// the stride between token rows, the real tokens, the head size, and how many query rows
/// (from row 0) get a context: `len`, or 1 when only the first token's is read.
#[derive(Clone, Copy)]
pub(crate) struct HeadRows {
    pub q: usize,
    pub k: usize,
    pub v: usize,
    pub stride: usize,
    pub len: usize,
    pub hd: usize,
    pub queries: usize,
}

/// Per-thread buffers: Kᵀ `[hd, lp]`, V `[len, hdp]` (both zero-padded to whole blocks) and a
/// block of scores `[RB, lp]`.
#[derive(Default)]
pub(crate) struct Scratch {
    kt: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
}

/// The head's context rows `[queries, hd]` into `dst` at `dst_stride` floats per row: for each
/// query, softmax(q·Kᵀ / √hd) over the real keys, times V (transformers' `BertSelfAttention`
/// with the padding mask, for the real tokens).
pub(crate) fn head_context(qkv: &[f32], rows: HeadRows, sc: &mut Scratch, dst: &mut [f32], dst_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let level = crate::level::isa();
        if level >= crate::level::Isa::Avx512 {
            // SAFETY: the CPU has AVX-512F/VL/BW/DQ and FMA (checked by `level`); the body is safe code.
            return unsafe { fast(qkv, rows, sc, dst, dst_stride) };
        }
        if level.avx2_kernels() {
            // SAFETY: the CPU has AVX2 and FMA (checked by `level`); the body is safe code.
            return unsafe { avx2(qkv, rows, sc, dst, dst_stride) };
        }
    }
    body::<Split, RB_AVX2>(qkv, rows, sc, dst, dst_stride);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,fma")]
unsafe fn fast(qkv: &[f32], rows: HeadRows, sc: &mut Scratch, dst: &mut [f32], dst_stride: usize) {
    body::<Fused, RB_AVX512>(qkv, rows, sc, dst, dst_stride);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(qkv: &[f32], rows: HeadRows, sc: &mut Scratch, dst: &mut [f32], dst_stride: usize) {
    body::<Fused, RB_AVX2>(qkv, rows, sc, dst, dst_stride);
}

#[inline(always)]
fn body<M: MulAdd, const RB: usize>(qkv: &[f32], r: HeadRows, sc: &mut Scratch, dst: &mut [f32], dst_stride: usize) {
    let HeadRows { len, hd, stride, .. } = r;
    let queries = r.queries.min(len);
    if queries == 0 || hd == 0 {
        return;
    }
    let (lp, hdp) = (len.next_multiple_of(CB), hd.next_multiple_of(CB));
    let (kblocks, vblocks) = (lp / CB, hdp / CB);
    let Scratch { kt, v, s } = sc;
    // Kᵀ and V gathered once per head (the projection's rows are 3H apart); the padding of both
    // stays zero, so padded keys score 0 (left out of the softmax) and padded value columns sum
    // to 0.
    kt.clear();
    kt.resize(hd * lp, 0.0);
    keys_transposed(qkv, r, kt, lp);
    v.clear();
    v.resize(len * hdp, 0.0);
    for j in 0..len {
        v[j * hdp..j * hdp + hd].copy_from_slice(&qkv[r.v + j * stride..r.v + j * stride + hd]);
    }
    // Whole blocks as arrays, so the inner loops have no bounds checks and vectorise.
    let (kt, v) = (kt.as_chunks::<CB>().0, v.as_chunks::<CB>().0);
    s.clear();
    s.resize(RB * lp, 0.0);
    let scale = 1.0 / (hd as f32).sqrt();
    for i0 in (0..queries).step_by(RB) {
        let real = RB.min(queries - i0);
        // The block's query rows, read in place (each value broadcast); a short last block
        // repeats its last query in the spare rows (finite values, never stored). Gathering them
        // as [hd][RB] first compiled to scatter stores, 16 % of this function.
        let qs: [&[f32]; RB] = std::array::from_fn(|row| {
            let i = (i0 + row).min(queries - 1);
            &qkv[r.q + i * stride..r.q + i * stride + hd]
        });
        // Scores [RB, lp]: Σ_d q[i][d] · Kᵀ[d][j].
        for jb in 0..kblocks {
            let mut acc = [[0.0f32; CB]; RB];
            for d in 0..hd {
                let krow = &kt[d * kblocks + jb];
                for (a, q) in acc.iter_mut().zip(&qs) {
                    fma_row::<M>(a, q[d], krow);
                }
            }
            for (row, a) in acc.iter().enumerate() {
                s[row * lp + jb * CB..row * lp + (jb + 1) * CB].copy_from_slice(a);
            }
        }
        // The softmax's exponentials over the real keys (padded columns stay out: the context
        // reads j < len only); its 1/sum scales the context rows as they are stored, not the
        // probabilities (a pass over the rows fewer).
        let mut inv = [0.0f32; RB];
        for (row, z) in s.chunks_exact_mut(lp).zip(&mut inv) {
            let row = &mut row[..len];
            *z = 1.0 / exp_sum_row::<M>(row, row_max(row), scale);
        }
        let p: [&[f32]; RB] = std::array::from_fn(|row| &s[row * lp..row * lp + len]);
        // Context [RB, hd]: (Σ_j e[i][j] · V[j]) / Σ_j e[i][j].
        for cb in 0..vblocks {
            let mut acc = [[0.0f32; CB]; RB];
            for (j, vr) in v.chunks_exact(vblocks).take(len).enumerate() {
                let vrow = &vr[cb];
                for (a, pr) in acc.iter_mut().zip(&p) {
                    fma_row::<M>(a, pr[j], vrow);
                }
            }
            let (c0, width) = (cb * CB, CB.min(hd - cb * CB));
            for (row, (a, z)) in acc.iter().zip(&inv).enumerate().take(real) {
                let at = (i0 + row) * dst_stride + c0;
                for (o, x) in dst[at..at + width].iter_mut().zip(&a[..width]) {
                    *o = x * z;
                }
            }
        }
    }
}

/// Kᵀ `[hd, lp]` from the head's key rows (`kt` zeroed, `lp` a multiple of 16): on AVX-512 in
/// 16 × 16 register transposes, whole blocks of 16 head columns, the rest value by value (the
/// scalar gather was a tenth of this function under `perf`).
fn keys_transposed(qkv: &[f32], r: HeadRows, kt: &mut [f32], lp: usize) {
    let HeadRows { len, hd, stride, .. } = r;
    let key = |j: usize| &qkv[r.k + j * stride..r.k + j * stride + hd];
    let mut d0 = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::level::isa() >= crate::level::Isa::Avx512 {
        while d0 + 16 <= hd {
            for j0 in (0..len).step_by(16) {
                let rows: [Option<&[f32]>; 16] = std::array::from_fn(|i| (j0 + i < len).then(|| &key(j0 + i)[d0..d0 + 16]));
                // SAFETY: the AVX-512 levels have AVX-512F; the output holds rows d0..d0+16 of
                // Kᵀ from column j0 (d0 + 16 ≤ hd, and j0 + 16 ≤ lp as both are multiples of 16).
                unsafe { crate::avx512_ops::transpose_f32_16(&rows, &mut kt[d0 * lp + j0..], lp) };
            }
            d0 += 16;
        }
    }
    for j in 0..len {
        for (d, &x) in key(j).iter().enumerate().skip(d0) {
            kt[d * lp + j] = x;
        }
    }
}

/// `a += x · k` over one block. A function of its own: written inline in the block loops, the
/// compiler kept the accumulators on the stack and ran the block as scalar FMAs.
#[inline(always)]
fn fma_row<M: MulAdd>(a: &mut [f32; CB], x: f32, k: &[f32; CB]) {
    for l in 0..CB {
        a[l] = M::mul_add(x, k[l], a[l]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive attention of one head in f64: softmax(q·kᵀ/√hd)·v over the real keys.
    fn naive(qkv: &[f32], r: HeadRows) -> Vec<f64> {
        let at = |base: usize, j: usize, d: usize| f64::from(qkv[base + j * r.stride + d]);
        let mut out = vec![0.0; r.len * r.hd];
        for i in 0..r.len {
            let scores: Vec<f64> =
                (0..r.len).map(|j| (0..r.hd).map(|d| at(r.q, i, d) * at(r.k, j, d)).sum::<f64>() / (r.hd as f64).sqrt()).collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..r.hd {
                out[i * r.hd + d] = (0..r.len).map(|j| e[j] / z * at(r.v, j, d)).sum();
            }
        }
        out
    }

    #[test]
    fn blocked_head_equals_naive_attention_at_ragged_sizes() {
        // Lengths and head sizes off the 4-row and 32-column blocks, and on them; every query
        // row, and the first only (the [CLS]-only last layer).
        for (len, hd) in [(1, 1), (3, 5), (4, 32), (5, 33), (37, 48), (64, 64), (129, 32)] {
            let stride = 3 * hd + 7;
            let qkv: Vec<f32> = (0..len * stride).map(|i| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) * 1.5).collect();
            for queries in [len, 1] {
                let rows = HeadRows { q: 0, k: hd, v: 2 * hd, stride, len, hd, queries };
                let want = naive(&qkv, rows);
                let dst_stride = hd + 3;
                let mut got = vec![f32::NAN; len * dst_stride];
                head_context(&qkv, rows, &mut Scratch::default(), &mut got, dst_stride);
                for i in 0..queries {
                    for d in 0..hd {
                        let (g, w) = (got[i * dst_stride + d], want[i * hd + d]);
                        assert!((f64::from(g) - w).abs() < 2e-6, "len {len} hd {hd} queries {queries}: row {i} col {d}: {g} against {w}");
                    }
                    assert!(
                        got[i * dst_stride + hd..(i + 1) * dst_stride].iter().all(|x| x.is_nan()),
                        "len {len} hd {hd}: wrote past the head's columns"
                    );
                }
                assert!(got[queries * dst_stride..].iter().all(|x| x.is_nan()), "len {len} hd {hd} queries {queries}: wrote past its query rows");
            }
        }
    }
}
