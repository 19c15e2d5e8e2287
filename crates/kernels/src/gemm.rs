//! C[m, n] = A[m, k] · B[k, n] (+ bias) (→ GELU) with B packed once (weights: `packed_b.rs`)
//! and A packed per block, blocked for the caches (row blocks, k-blocks, B panels, A slivers)
//! and split over rayon's threads by rows (all, or a [`RowSet`]'s: `rows.rs`). The products
//! into and from bf16 bits (for the AMX attention and feed-forward) are `gemm_bits.rs`.

use crate::bf16_bits::to_bf16_bits;
use crate::level::{Isa, isa};
use crate::ops::gelu_scalar;
use crate::pack::{MR, Mat, NR, pack_a_bf16, pack_a_f32};
use crate::packed_b::{Packed, PackedB};
use crate::rows::{RowSet, par_row_blocks};

/// k values per block: a B panel block (`KC`×`NR`) stays in L1 while A slivers stream.
const KC: usize = 192;
/// Rows per packed A block (`MC`×`KC` stays in L2).
const MC: usize = 128;

/// Applied to each output after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    None,
    /// Exact (erf) GELU.
    Gelu,
}

/// `c` (`[m, n]`) = `a` (`[m, k]`) · `b` + `bias`, then `epilogue`. Overwrites `c`.
pub fn gemm(a: &[f32], m: usize, b: &PackedB, bias: Option<&[f32]>, epilogue: Epilogue, c: &mut [f32]) {
    assert_eq!(a.len(), m * b.k, "A must be m × k");
    gemm_ex(Mat::rows(a, m, b.k), None, b, bias, epilogue, c, false);
}

/// `c` (`[m, n]`) = `a` (any `[m, k]` view) · `b` + `bias`, then `epilogue`; with `accumulate`
/// the product is added to `c` instead of overwriting it (gradient sums). `a_bits`, when given,
/// is `a.data` already converted to bf16 (used when `b` is bf16; the training path converts each
/// activation once and reads it in several GEMMs).
pub fn gemm_ex(
    a: Mat<'_>,
    a_bits: Option<&[u16]>,
    b: &PackedB,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    accumulate: bool,
) {
    gemm_ex_rows(a, a_bits, b, bias, epilogue, c, accumulate, RowSet::All);
}

/// [`gemm_ex`] for the rows in `rows` alone: the others are zeroed (left as they are when
/// `accumulate`). The encoder passes each text's real tokens, so no padding row is multiplied.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ex_rows(
    a: Mat<'_>,
    a_bits: Option<&[u16]>,
    b: &PackedB,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    c: &mut [f32],
    accumulate: bool,
    rows: RowSet<'_>,
) {
    let (m, k, n) = (a.rows, b.k, b.n);
    assert_eq!(a.cols, k, "A's columns must match B's rows");
    assert_eq!(c.len(), m * n, "C must be m × n");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "bias must have n values");
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: C is still overwritten (or kept, when accumulating), plus the bias, in
        // the rows of the set.
        rows.check(m);
        for (i, row) in c.chunks_exact_mut(n).enumerate() {
            if !rows.contains(i) {
                continue;
            }
            for (j, v) in row.iter_mut().enumerate() {
                let x = if accumulate { *v } else { 0.0 } + bias.map_or(0.0, |bb| bb[j]);
                *v = if epilogue == Epilogue::Gelu { gelu_scalar(x) } else { x };
            }
        }
        if !accumulate {
            rows.zero_the_rest(c, n);
        }
        return;
    }
    // A transposed A in bf16 is converted once here rather than 8 values at a time per block.
    if let Some(bits) = a_bits {
        assert_eq!(bits.len(), a.data.len(), "a_bits must mirror a.data");
    }
    let converted = match (&b.data, a.cs != 1, a_bits) {
        (Packed::Bf16(_) | Packed::Tiles(_), true, None) => {
            let mut bits = Vec::new();
            to_bf16_bits(a.data, &mut bits);
            Some(bits)
        }
        _ => None,
    };
    let a_bits = a_bits.or(converted.as_deref());
    if let Packed::Int8(q) = &b.data {
        assert!(!accumulate, "int8 GEMMs are for inference: they do not accumulate");
        par_row_blocks(c, n, 32, rows, false, |r0, c_rows| {
            crate::quant_gemm::gemm_rows(a, q, n, bias, epilogue, (r0, c_rows.len() / n), c_rows)
        });
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Packed::Tiles(bp) = &b.data {
        let panels = crate::gemm_amx::Panels { data: bp, depth: b.depth, n };
        par_row_blocks(c, n, crate::amx::TILE_ROWS, rows, accumulate, |r0, c_rows| {
            let count = c_rows.len() / n;
            let out = crate::gemm_amx::Out::F32 { c: c_rows, accumulate };
            crate::gemm_amx::gemm_rows((a, a_bits), &panels, bias, epilogue, (r0, count), out);
        });
        return;
    }
    if let Packed::Rows(b_rows) = &b.data {
        crate::gemm_crate::gemm(a, b_rows, (k, n), (bias, epilogue), accumulate, c, rows);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Packed::Slivers(slivers) = &b.data {
        crate::gemm_crate::gemm_slivers(a, slivers, (k, n), (bias, epilogue), accumulate, c, rows);
        return;
    }
    par_row_blocks(c, n, MR, rows, accumulate, |r0, c_rows| {
        gemm_rows((a, a_bits), b, bias, epilogue, (r0, c_rows.len() / n), accumulate, c_rows)
    });
}

/// Rows `r0..r0+rows` of the product into `c_rows`.
#[allow(clippy::too_many_arguments)]
fn gemm_rows(
    (a, a_bits): (Mat<'_>, Option<&[u16]>),
    b: &PackedB,
    bias: Option<&[f32]>,
    epi: Epilogue,
    (r0, rows): (usize, usize),
    accumulate: bool,
    c_rows: &mut [f32],
) {
    let (k, n) = (b.k, b.n);
    let panels = n.div_ceil(NR);
    let mut a_f32 = Vec::new();
    let mut a_bf16 = Vec::new();
    let kp_total = b.depth;
    // Packing a row-major A block cost 6 % of an fp32 inference batch at AVX-512 (`perf`:
    // `pack_a_f32`) for no gain: the kernel reads its rows in place as fast.
    let in_place = a.cs == 1;
    // Row blocks outside k-blocks: a block's C (MC × n) stays in L2 while all of k is summed
    // into it, instead of streaming the whole C from memory once per k-block.
    for m0 in (0..rows).step_by(MC) {
        let mc = MC.min(rows - m0);
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let (first, last) = (k0 == 0 && !accumulate, k0 + kc == k);
            match &b.data {
                // A row-major A is read in place by `kernel_f32_rows`.
                Packed::F32(_) if in_place => {}
                Packed::F32(_) => pack_a_f32(a, (r0 + m0, mc), (k0, kc), &mut a_f32),
                Packed::Bf16(_) => pack_a_bf16(a, a_bits, (r0 + m0, mc), (k0, kc), &mut a_bf16),
                Packed::Int8(_) | Packed::Slivers(_) | Packed::Rows(_) | Packed::Tiles(_) => {
                    unreachable!("int8, sliver, row-major and tile GEMMs are dispatched in gemm_ex")
                }
            }
            for p in 0..panels {
                let cols = NR.min(n - p * NR);
                for s in 0..mc.div_ceil(MR) {
                    let tile_rows = MR.min(mc - s * MR);
                    let c_off = (m0 + s * MR) * n + p * NR;
                    let tile_bias = bias.map(|bb| &bb[p * NR..p * NR + cols]);
                    let tile = TileArgs { c: &mut c_rows[c_off..], ldc: n, rows: tile_rows, cols, first, last, bias: tile_bias, epi };
                    match &b.data {
                        Packed::F32(bp) => {
                            let b_blk = &bp[(p * k + k0) * NR..(p * k + k0 + kc) * NR];
                            if in_place {
                                let first = (r0 + m0 + s * MR) * a.rs + k0;
                                kernel_f32_rows(kc, &a.data[first..], a.rs, b_blk, tile);
                            } else {
                                let a_blk = &a_f32[s * kc * MR..(s + 1) * kc * MR];
                                kernel_f32(kc, a_blk, b_blk, tile);
                            }
                        }
                        Packed::Bf16(bp) => {
                            let kcp = kc.div_ceil(2);
                            let q0 = k0 / 2;
                            let b_blk = &bp[(p * kp_total + q0) * NR..(p * kp_total + q0 + kcp) * NR];
                            let a_blk = &a_bf16[s * kcp * MR..(s + 1) * kcp * MR];
                            kernel_bf16(kcp, a_blk, b_blk, tile);
                        }
                        Packed::Int8(_) | Packed::Slivers(_) | Packed::Rows(_) | Packed::Tiles(_) => {
                            unreachable!("int8, sliver, row-major and tile GEMMs are dispatched in gemm_ex")
                        }
                    }
                }
            }
        }
    }
}

/// One tile's destination (`c` starts at the tile's top-left element).
struct TileArgs<'a> {
    c: &'a mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    first: bool,
    last: bool,
    bias: Option<&'a [f32]>,
    epi: Epilogue,
}

impl TileArgs<'_> {
    /// The last element the tile touches must be inside `c`.
    fn check(&self) {
        assert!(self.rows <= MR && self.cols <= NR);
        assert!((self.rows - 1) * self.ldc + self.cols <= self.c.len(), "tile out of bounds");
    }
}

fn kernel_f32(kc: usize, a: &[f32], b: &[f32], t: TileArgs<'_>) {
    t.check();
    assert!(a.len() >= kc * MR && b.len() >= kc * NR);
    #[cfg(target_arch = "x86_64")]
    if isa() >= Isa::Avx512 {
        let tile = x86_tile(t);
        // SAFETY: AVX-512F/DQ were detected; the asserts above bound every access the kernel
        // makes (kc·MR of A, kc·NR of B, rows × cols of C with stride ldc, cols of bias).
        unsafe { crate::x86::kernel_f32(kc, a.as_ptr(), b.as_ptr(), &tile) };
        return;
    }
    // Packed into panels only on AVX-512 levels (PackedB::repack); the others use the gemm crate.
    unreachable!("fp32 panels on a CPU without AVX-512");
}

/// [`kernel_f32`] on a row-major A read in place: the tile's row `r` at `a[r·lda..]`.
fn kernel_f32_rows(kc: usize, a: &[f32], lda: usize, b: &[f32], t: TileArgs<'_>) {
    t.check();
    assert!(t.rows >= 1 && (t.rows - 1) * lda + kc <= a.len() && b.len() >= kc * NR, "A rows or B panel out of bounds");
    #[cfg(target_arch = "x86_64")]
    if isa() >= Isa::Avx512 {
        let tile = x86_tile(t);
        // SAFETY: AVX-512F/DQ were detected. The kernel reads kc values from each of the tile's
        // rows (row r < t.rows at r·lda; rows past t.rows read row t.rows − 1): the last value
        // read is (t.rows − 1)·lda + kc − 1 < a.len() (asserted); kc·NR of B (asserted); and C,
        // bias as in kernel_f32 (t.check()).
        unsafe { crate::x86::kernel_f32_rows(kc, a.as_ptr(), lda, b.as_ptr(), &tile) };
        return;
    }
    unreachable!("fp32 panels on a CPU without AVX-512");
}

fn kernel_bf16(kcp: usize, a: &[u32], b: &[u32], t: TileArgs<'_>) {
    t.check();
    assert!(a.len() >= kcp * MR && b.len() >= kcp * NR);
    #[cfg(target_arch = "x86_64")]
    if isa().bf16() {
        let tile = x86_tile(t);
        // SAFETY: AVX-512F and AVX512-BF16 were detected; accesses are bounded as in kernel_f32.
        unsafe { crate::x86::kernel_bf16(kcp, a.as_ptr(), b.as_ptr(), &tile) };
        return;
    }
    // Packed as bf16 only when the CPU has AVX512-BF16 (PackedB::new).
    unreachable!("bf16 panels on a CPU without AVX512-BF16");
}

#[cfg(target_arch = "x86_64")]
fn x86_tile(t: TileArgs<'_>) -> crate::x86::Tile {
    crate::x86::Tile {
        c: t.c.as_mut_ptr(),
        ldc: t.ldc,
        rows: t.rows,
        cols: t.cols,
        first: t.first,
        last: t.last,
        bias: t.bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
        epilogue: t.epi,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packed_b::Precision;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for kk in 0..k {
                for j in 0..n {
                    c[i * n + j] += f64::from(a[i * k + kk]) * f64::from(b[kk * n + j]);
                }
            }
        }
        c.into_iter().map(|v| v as f32).collect()
    }

    /// `v` as the kernels see it at `precision`: rounded to bf16 for bf16 GEMMs, as is otherwise.
    fn operands(v: &[f32], precision: Precision) -> Vec<f32> {
        v.iter().map(|&x| if precision == Precision::Bf16 { half::bf16::from_f32(x).to_f32() } else { x }).collect()
    }

    pub(crate) fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn f32_matches_a_naive_product_on_ragged_shapes() {
        for &(m, k, n) in &[(1, 1, 1), (7, 5, 3), (9, 300, 50), (130, 513, 97), (64, 384, 1536)] {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let bias = data(n, 3);
            let packed = PackedB::new(&b, k, n, Precision::F32);
            let mut c = vec![f32::NAN; m * n];
            gemm(&a, m, &packed, Some(&bias), Epilogue::None, &mut c);
            let want = naive(&a, &b, m, k, n);
            for (i, (x, w)) in c.iter().zip(&want).enumerate() {
                let w = w + bias[i % n];
                assert!((x - w).abs() <= 1e-4 * (1.0 + w.abs()) * (k as f32).sqrt(), "{m}x{k}x{n} [{i}]: {x} vs {w}");
            }
        }
    }

    #[test]
    fn transposed_views_and_accumulation_match_a_naive_product() {
        let precisions: &[Precision] = if bf16_runs_here() { &[Precision::F32, Precision::Bf16] } else { &[Precision::F32] };
        for &precision in precisions {
            // bf16 is compared with the product of the operands rounded to bf16: both sum exact
            // products in fp32, so only the order of the sums differs.
            let tol = 1e-4;
            // The last shape's B (2048 × 400 bf16, 1.6 MiB) is too large for the AMX driver's
            // slabs-outside order: it walks panels outside, as for the weight gradients.
            for &(m, k, n) in &[(5, 3, 7), (37, 130, 61), (200, 67, 100), (70, 2048, 400)] {
                // Stored transposed: at is [k, m], bt is [n, k].
                let (at, bt) = (data(k * m, 6), data(n * k, 7));
                let a: Vec<f32> = (0..m * k).map(|i| at[(i % k) * m + i / k]).collect();
                let b: Vec<f32> = (0..k * n).map(|i| bt[(i % n) * k + i / n]).collect();
                let want = naive(&operands(&a, precision), &operands(&b, precision), m, k, n);
                let packed = PackedB::from_mat(Mat::transposed(&bt, k, n), precision);
                let mut c = vec![1.0f32; m * n];
                gemm_ex(Mat::transposed(&at, m, k), None, &packed, None, Epilogue::None, &mut c, true);
                // The same from pre-converted bits (both operands).
                let mut c2 = vec![1.0f32; m * n];
                let (mut abits, mut bbits) = (Vec::new(), Vec::new());
                crate::bf16_bits::to_bf16_bits(&at, &mut abits);
                crate::bf16_bits::to_bf16_bits(&bt, &mut bbits);
                let mut packed2 = PackedB::empty();
                if precision == Precision::Bf16 {
                    packed2.repack_bits(Mat::transposed(&bt, k, n), &bbits);
                    gemm_ex(Mat::transposed(&at, m, k), Some(&abits), &packed2, None, Epilogue::None, &mut c2, true);
                    assert_eq!(c, c2, "bits path differs");
                }
                for (i, (x, w)) in c.iter().zip(&want).enumerate() {
                    let w = w + 1.0;
                    assert!((x - w).abs() <= tol * (1.0 + w.abs()) * (k as f32).sqrt(), "{precision:?} {m}x{k}x{n} [{i}]: {x} vs {w}");
                }
            }
        }
    }

    #[test]
    fn bias_with_and_without_accumulation_matches_a_naive_product() {
        // The epilogue's bias and accumulation, with and without each other, at every level
        // (70 × 80: whole 32 × 32 tiles and partial ones).
        let precisions: &[Precision] = if bf16_runs_here() { &[Precision::F32, Precision::Bf16] } else { &[Precision::F32] };
        for &precision in precisions {
            let (m, k, n) = (70, 96, 80);
            let (a, b, bias) = (data(m * k, 31), data(k * n, 32), data(n, 33));
            let product = naive(&operands(&a, precision), &operands(&b, precision), m, k, n);
            let packed = PackedB::new(&b, k, n, precision);
            for (accumulate, with_bias) in [(false, true), (false, false), (true, true), (true, false)] {
                let mut c = vec![0.5f32; m * n];
                gemm_ex(Mat::rows(&a, m, k), None, &packed, with_bias.then_some(&bias[..]), Epilogue::None, &mut c, accumulate);
                for (i, (x, p)) in c.iter().zip(&product).enumerate() {
                    let want = p + if with_bias { bias[i % n] } else { 0.0 } + if accumulate { 0.5 } else { 0.0 };
                    assert!((x - want).abs() <= 1e-4 * (1.0 + want.abs()), "{precision:?} acc={accumulate} bias={with_bias} [{i}]: {x} vs {want}");
                }
            }
        }
    }

    /// Whether this level runs bf16 at all; prints why a bf16 test is skipped otherwise (a bf16
    /// request then runs in fp32, and comparing that with fp32 would test nothing).
    pub(crate) fn bf16_runs_here() -> bool {
        if !isa().bf16() {
            eprintln!("skipped: {}: level {} has no bf16 GEMM (bf16 requests run in fp32)", crate::level::test_name(), isa().name());
        }
        isa().bf16()
    }

    /// Every level's fp32 path (AVX-512 panels with the fused epilogue; the gemm crate plus our
    /// row epilogue on AVX2 and portable) against a naive product with bias and exact GELU.
    #[test]
    fn fp32_bias_and_gelu_epilogue_match_a_naive_product() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 49), (37, 130, 61), (129, 384, 100)] {
            let (a, b, bias) = (data(m * k, 3), data(k * n, 4), data(n, 5));
            let packed = PackedB::new(&b, k, n, Precision::F32);
            for epi in [Epilogue::None, Epilogue::Gelu] {
                let mut c = vec![f32::NAN; m * n];
                gemm(&a, m, &packed, Some(&bias), epi, &mut c);
                let want = naive(&a, &b, m, k, n);
                for (i, (x, w)) in c.iter().zip(&want).enumerate() {
                    let w = w + bias[i % n];
                    let w = if epi == Epilogue::Gelu { 0.5 * w * (1.0 + erf64(f64::from(w) / std::f64::consts::SQRT_2) as f32) } else { w };
                    assert!((x - w).abs() <= 1e-4 * (1.0 + w.abs()) * (k as f32).sqrt(), "{epi:?} {m}x{k}x{n} [{i}]: {x} vs {w}");
                }
            }
        }
        eprintln!("ran: {}: fp32 GEMM with bias and GELU at level {}", crate::level::test_name(), isa().name());
    }

    /// erf by its Maclaurin series (|x| < 3) or the asymptotic tail: an independent reference
    /// for the GELU epilogue, not the approximation the kernels use.
    fn erf64(x: f64) -> f64 {
        if x.abs() >= 3.0 {
            return x.signum() * (1.0 - (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt()));
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn empty_k_overwrites_c_with_the_bias() {
        // Regression: with k = 0 and m, n > 0 the GEMM left C stale instead of overwriting it.
        for precision in [Precision::F32, Precision::Bf16] {
            let packed = PackedB::new(&[], 0, 3, precision);
            let mut c = vec![f32::NAN; 2 * 3];
            gemm(&[], 2, &packed, Some(&[1.0, 2.0, 3.0]), Epilogue::None, &mut c);
            assert_eq!(c, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
            let mut c = vec![5.0; 2 * 3];
            gemm_ex(Mat::rows(&[], 2, 0), None, &packed, None, Epilogue::None, &mut c, true);
            assert_eq!(c, [5.0; 6], "accumulating an empty sum keeps C");
        }
        // m = 0 or n = 0: nothing to write, and no panic.
        let packed = PackedB::new(&[1.0; 6], 2, 3, Precision::F32);
        gemm(&[], 0, &packed, None, Epilogue::None, &mut []);
        let packed = PackedB::new(&[], 2, 0, Precision::F32);
        gemm(&[1.0, 2.0], 1, &packed, None, Epilogue::None, &mut []);
    }

    #[test]
    fn bf16_ragged_shapes_match_rounded_operands() {
        if !bf16_runs_here() {
            return;
        }
        // k = 1, odd k past one k-block (193, 385: the row-major bf16 path), k not a multiple of
        // the AMX tile depth (33, 67), m not a multiple of 16 or 8, n not of 48, bias + GELU.
        for &(m, k, n) in &[(1, 1, 1), (3, 1, 50), (17, 33, 49), (31, 67, 97), (9, 193, 20), (40, 385, 130)] {
            let (a, b) = (data(m * k, 8), data(k * n, 9));
            let bias = data(n, 10);
            let packed = PackedB::new(&b, k, n, Precision::Bf16);
            assert_eq!(packed.precision(), Precision::Bf16);
            let mut c = vec![f32::NAN; m * n];
            gemm(&a, m, &packed, Some(&bias), Epilogue::Gelu, &mut c);
            // The exact product of the bf16-rounded operands: only fp32 summation error remains.
            let want = naive(&operands(&a, Precision::Bf16), &operands(&b, Precision::Bf16), m, k, n);
            for (i, (x, w)) in c.iter().zip(&want).enumerate() {
                let w = gelu_scalar(w + bias[i % n]);
                assert!((x - w).abs() <= 1e-5 * (1.0 + w.abs()) * (k as f32).sqrt(), "{:?} {m}x{k}x{n} [{i}]: {x} vs {w}", isa());
            }
        }
    }

    #[test]
    fn pre_converted_row_major_a_gives_the_same_bf16_product() {
        // On AMX, bits whose k fills whole tiles are read in place (only a partial last 32-row
        // slab is copied): the product must equal the one from fp32 A converted inside.
        if !bf16_runs_here() {
            return;
        }
        for &(m, k, n) in &[(70, 64, 50), (33, 32, 17), (168, 96, 100), (31, 64, 48), (64, 40, 20)] {
            let (a, b) = (data(m * k, 11), data(k * n, 12));
            let packed = PackedB::new(&b, k, n, Precision::Bf16);
            let mut bits = Vec::new();
            crate::bf16_bits::to_bf16_bits(&a, &mut bits);
            let (mut want, mut got) = (vec![0.0; m * n], vec![f32::NAN; m * n]);
            gemm_ex(Mat::rows(&a, m, k), None, &packed, None, Epilogue::None, &mut want, false);
            gemm_ex(Mat::rows(&a, m, k), Some(&bits), &packed, None, Epilogue::None, &mut got, false);
            assert_eq!(want, got, "{m}x{k}x{n}");
        }
    }

    #[test]
    fn bf16_is_close_and_gelu_epilogue_matches_scalar() {
        if !bf16_runs_here() {
            return;
        }
        let (m, k, n) = (33, 384, 100);
        let (a, b) = (data(m * k, 4), data(k * n, 5));
        let packed = PackedB::new(&b, k, n, Precision::Bf16);
        let mut c = vec![0.0; m * n];
        gemm(&a, m, &packed, None, Epilogue::Gelu, &mut c);
        let want = naive(&a, &b, m, k, n);
        for (x, w) in c.iter().zip(&want) {
            // bf16 operands: ~3 significant digits per product, errors average out over k.
            assert!((x - gelu_scalar(*w)).abs() < 0.05 * (1.0 + w.abs()), "{x} vs gelu({w})");
        }
    }
}
