//! The fp32 GEMM of the AVX2 and portable levels, on the `gemm` crate (what burn's CPU backend
//! and candle use), with our bias and GELU epilogue.
//!
//! Measured on one CPU (Intel Xeon Sapphire Rapids, 2 threads, capped at AVX2): the crate's
//! AVX2+FMA micro-kernels reach 172–195 GFLOP/s on the encoder's shapes where our own 4 × 24 AVX2
//! kernel reached 102–120; on CPUs without AVX2 (ARM: NEON) the crate is the only vector code we
//! have. Two ways in:
//!
//! - **AVX2** ([`gemm_slivers`]): our driver around the crate's FMA micro-kernels
//!   (`gemm_f32::microkernel::fma`, called by name so that `BERTKIT_CPU=avx2` runs what an AVX2 CPU
//!   runs; the crate's own dispatch would take AVX-512 on a bigger CPU). The product is posed as
//!   Cᵀ = Wᵀ·Aᵀ, the crate's preferred orientation for a row-major C, and the weights are packed
//!   once, at load, into the 16-wide slivers the kernels read. The crate's full driver packs them
//!   again on every call: 20 % of a batch-1 forward went to that copy (batch-1 31 → 25 ms,
//!   batch-32 inference and fine-tuning within 3 %). Rows of C are split over the threads (only
//!   the rows a [`RowSet`] lists), a row-major A is read in place and a transposed one packed per
//!   block (`pack_rows`), and each block of rows gets its bias and GELU while still in cache.
//! - **portable** ([`gemm`]): `gemm::gemm` on a row-major B, then the epilogue.
//!
//! The AVX-512 levels keep our own kernel (`x86.rs`, bias and GELU fused into the tile store).
//! The crate's AVX-512 micro-kernels through this driver were measured against it on the same
//! CPU (`BERTKIT_CPU=avx512`, fp32): plain GEMMs 277–336 against 192–294 GFLOP/s, but in the
//! encoder inference +6 %, fine-tuning −5 % and batch-1 latency 4 % slower: not a clear win.

use rayon::prelude::*;

use crate::gemm::Epilogue;
use crate::ops::gelu_scalar;
use crate::pack::Mat;
use crate::rows::{RowSet, par_row_blocks};

/// Output features per packed sliver: the FMA micro-kernels' 16 rows (two 8-lane vectors).
pub(crate) const SLIVER: usize = 16;
/// Tokens (rows of A) per micro-kernel call: its 6 broadcast columns.
#[cfg(target_arch = "x86_64")]
const TOKENS: usize = 6;
/// Depth per micro-kernel call: a sliver block (512 × 16 floats, 32 KiB) is reused from L1 by
/// every group of rows. 512/48 against 256/96 and 384/96, on Sapphire Rapids: 172–182 GFLOP/s
/// against 143–174 on the encoder's GEMMs, fine-tuning 13.1 against 12.4–12.9 examples/s.
#[cfg(target_arch = "x86_64")]
const KC: usize = 512;
/// Rows of A per block: their `KC` slice (96 KiB) stays in L2 across all slivers.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 48;

/// `c` (`[m, n]`) = `a` · B + `bias`, then `epilogue` (added to `c` when `accumulate`), with B
/// packed by `pack_b_panels(_, SLIVER, _)`, for the rows in `rows` (see [`par_row_blocks`]).
/// AVX2 and FMA only (the caller checks the level).
#[cfg(target_arch = "x86_64")]
pub(crate) fn gemm_slivers(
    a: Mat<'_>,
    slivers: &[f32],
    (k, n): (usize, usize),
    (bias, epilogue): (Option<&[f32]>, Epilogue),
    accumulate: bool,
    c: &mut [f32],
    rows: RowSet<'_>,
) {
    let m = a.rows;
    assert!(a.cols == k && c.len() == m * n && slivers.len() >= n.div_ceil(SLIVER) * k * SLIVER, "shapes");
    assert!(k > 0 && m > 0 && n > 0, "empty products are handled by the caller");
    assert!(crate::level::isa().avx2_kernels(), "the FMA micro-kernels run on the AVX2 levels");
    assert!((m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "A view out of bounds");
    // A row-major A is read in place (its rows are the micro-kernel's contiguous streams); any
    // other (the weight gradients' Xᵀ) is packed per block first: see `pack_rows`.
    let pack = a.cs != 1;
    par_row_blocks(c, n, TOKENS, rows, accumulate, |r0, c_rows| {
        let rows = c_rows.len() / n;
        crate::ops::with_taken(&A_BLOCK, |block| {
            for t0 in (0..rows).step_by(ROWS) {
                let tb = ROWS.min(rows - t0);
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    if pack {
                        pack_rows(a, (r0 + t0, tb), (k0, kc), block);
                    }
                    // 0: overwrite C; 1: add to it.
                    let status = u8::from(k0 > 0 || accumulate);
                    for s in 0..n.div_ceil(SLIVER) {
                        let (f0, mf) = (s * SLIVER, SLIVER.min(n - s * SLIVER));
                        let lhs = &slivers[s * k * SLIVER + k0 * SLIVER..][..kc * SLIVER];
                        for g in (0..tb).step_by(TOKENS) {
                            let nt = TOKENS.min(tb - g);
                            let row = t0 + g;
                            let dst = &mut c_rows[row * n + f0..(row + nt - 1) * n + f0 + mf];
                            // Token j, step kk of this group at j·rs + kk·cs from `rhs`.
                            let (rhs, rs, cs) = if pack {
                                (&block[g * kc..][..kc * TOKENS], 1, TOKENS)
                            } else {
                                let first = (r0 + row) * a.rs + k0 * a.cs;
                                (&a.data[first..=(r0 + row + nt - 1) * a.rs + (k0 + kc - 1) * a.cs], a.rs, a.cs)
                            };
                            // SAFETY: the level is AVX2 (asserted), whose detection checked AVX2
                            // and FMA, all the kernel enables. It reads mf ≤ 16 features × kc of
                            // `lhs` (stride 16, inside the slice), kc × nt ≤ 6 elements of `rhs`
                            // (token j, step kk at j·rs + kk·cs: packed, inside the group's kc·6
                            // values; in place, at most the slice's last element), and writes
                            // mf × nt of `dst` (token j at j·n, inside the slice): the slices
                            // bound every access; `dst` is a `&mut` distinct from both reads.
                            unsafe {
                                gemm_f32::microkernel::fma::f32::UKR[mf.div_ceil(8) - 1][nt - 1](
                                    mf,
                                    nt,
                                    kc,
                                    dst.as_mut_ptr(),
                                    lhs.as_ptr(),
                                    rhs.as_ptr(),
                                    n as isize,
                                    1,
                                    SLIVER as isize,
                                    cs as isize,
                                    rs as isize,
                                    1.0,
                                    1.0,
                                    status,
                                    false,
                                    false,
                                    false,
                                    std::ptr::null(),
                                );
                            }
                        }
                    }
                }
                bias_gelu_rows(&mut c_rows[t0 * n..(t0 + tb) * n], n, bias, epilogue);
            }
        });
    });
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Each thread's packed block of A (`ROWS × KC` values), reused across calls.
    static A_BLOCK: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows `r0..r0+tb`, steps `k0..k0+kc` of `a` into `block` as groups of `TOKENS` rows, each group
/// `[kc, TOKENS]` (the layout the micro-kernel's broadcasts read: one contiguous stream per group,
/// as the crate's own driver packs it). Read in place, a transposed A (the weight gradients' Xᵀ)
/// put each step of a group on its own cache line, 1.5 KiB apart: its GEMMs ran at 135–141
/// GFLOP/s against 204–226 for the forward's on Sapphire Rapids at AVX2. Rows past `tb` in the
/// last group are left as they were; the kernel does not read them.
#[cfg(target_arch = "x86_64")]
fn pack_rows(a: Mat<'_>, (r0, tb): (usize, usize), (k0, kc): (usize, usize), block: &mut Vec<f32>) {
    let need = tb.div_ceil(TOKENS) * TOKENS * kc;
    if block.len() < need {
        block.resize(need, 0.0);
    }
    for g in (0..tb).step_by(TOKENS) {
        let nt = TOKENS.min(tb - g);
        let group = &mut block[g * kc..][..kc * TOKENS];
        for (kk, dst) in group.chunks_exact_mut(TOKENS).enumerate() {
            let first = (r0 + g) * a.rs + (k0 + kk) * a.cs;
            if a.rs == 1 {
                dst[..nt].copy_from_slice(&a.data[first..first + nt]);
            } else {
                dst[..nt].iter_mut().enumerate().for_each(|(j, d)| *d = a.data[first + j * a.rs]);
            }
        }
    }
}

/// `c` (`[m, n]`) = `a` · `b` (row-major `[k, n]`) + `bias`, then `epilogue`; added to `c`'s
/// values when `accumulate`. The portable level; with [`RowSet::Ranges`], one call per range
/// (the crate splits each over the threads) and the other rows zeroed unless `accumulate`.
pub(crate) fn gemm(
    a: Mat<'_>,
    b: &[f32],
    (k, n): (usize, usize),
    (bias, epilogue): (Option<&[f32]>, Epilogue),
    accumulate: bool,
    c: &mut [f32],
    rows: RowSet<'_>,
) {
    let RowSet::Ranges(ranges) = rows else {
        return gemm_all(a, b, (k, n), (bias, epilogue), accumulate, c);
    };
    rows.check(c.len() / n);
    if !accumulate {
        rows.zero_the_rest(c, n);
    }
    for r in ranges {
        let sub = Mat { data: &a.data[r.start * a.rs..], rows: r.len(), ..a };
        gemm_all(sub, b, (k, n), (bias, epilogue), accumulate, &mut c[r.start * n..r.end * n]);
    }
}

/// The crate's driver over every row of `a`, then the epilogue.
fn gemm_all(a: Mat<'_>, b: &[f32], (k, n): (usize, usize), (bias, epilogue): (Option<&[f32]>, Epilogue), accumulate: bool, c: &mut [f32]) {
    let m = a.rows;
    assert!(a.cols == k && b.len() >= k * n && c.len() == m * n, "shapes: A {m} × {}, B {k} × {n}, C {}", a.cols, c.len());
    assert!(k > 0 && m > 0 && n > 0, "empty products are handled by the caller");
    assert!((m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "A view out of bounds");
    // SAFETY: every address the call forms is in bounds and nothing aliases. C: (i, j) at
    // c[i·n + j], i < m, j < n, inside c (len m·n, asserted). A: (i, kk) at a.data[i·rs + kk·cs]
    // with i < m, kk < k, at most the last index asserted above. B: (kk, j) at b[kk·n + j]
    // < k·n ≤ b.len(). C is a distinct `&mut`; A and B are shared reads.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads().max(1)),
        );
    }
    if bias.is_some() || epilogue == Epilogue::Gelu {
        let block = (16384 / n).max(1) * n;
        c.par_chunks_mut(block).for_each(|rows| bias_gelu_rows(rows, n, bias, epilogue));
    }
}

crate::dispatch!(bias_gelu_rows(c: &mut [f32], n: usize, bias: Option<&[f32]>, epilogue: Epilogue) {
    for row in c.chunks_exact_mut(n) {
        if let Some(b) = bias {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        if epilogue == Epilogue::Gelu {
            row.iter_mut().for_each(|v| *v = gelu_scalar(*v));
        }
    }
});
