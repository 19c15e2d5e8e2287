//! The fp32 GEMM of the AVX2 and portable levels, on the `gemm` crate (what burn's CPU backend
//! and candle use), then our bias and GELU epilogue.
//!
//! Measured on the same CPU (Intel Xeon Sapphire Rapids, 2 threads, capped at AVX2): the crate's
//! AVX2+FMA kernels reach 121–160 GFLOP/s on the encoder's shapes where our 4 × 24 AVX2
//! micro-kernel reached 102–115, and on CPUs without AVX2 (ARM: NEON) the crate is the only
//! vector code we have. So these levels keep B as a plain row-major `[k, n]` matrix (the crate
//! packs what it needs itself) and call the crate once per GEMM with its own threading. Hand
//! written here is what the crate lacks: the fused bias + GELU, applied row block by row block.
//!
//! The AVX2 level calls the crate's FMA kernels explicitly (`gemm_common::gemm_basic_generic`
//! with the `V3` instruction set and `gemm_f32`'s FMA micro-kernels) rather than `gemm::gemm`,
//! whose own dispatch would take AVX-512 on a bigger CPU and so make `BERTKIT_CPU=avx2` measure
//! and test something else than what an AVX2 CPU runs.

use rayon::prelude::*;

use crate::gemm::{Epilogue, gelu_scalar};
use crate::level::{Isa, isa};
use crate::pack::Mat;

/// `c` (`[m, n]`) = `a` · `b` (row-major `[k, n]`) + `bias`, then `epilogue`; added to `c`'s
/// values when `accumulate`.
pub(crate) fn gemm(
    a: Mat<'_>,
    b: &[f32],
    (k, n): (usize, usize),
    (bias, epilogue): (Option<&[f32]>, Epilogue),
    accumulate: bool,
    c: &mut [f32],
) {
    let m = a.rows;
    assert!(a.cols == k && b.len() >= k * n && c.len() == m * n, "shapes: A {m} × {}, B {k} × {n}, C {}", a.cols, c.len());
    assert!(k > 0 && m > 0 && n > 0, "empty products are handled by the caller");
    assert!((m - 1) * a.rs + (k - 1) * a.cs < a.data.len(), "A view out of bounds");
    let threads = gemm::Parallelism::Rayon(rayon::current_num_threads().max(1));
    // SAFETY: every address the calls form is in bounds and nothing aliases. C: (i, j) at
    // c[i·n + j], i < m, j < n, inside c (len m·n, asserted). A: (i, kk) at a.data[i·rs + kk·cs]
    // with i < m, kk < k, at most the last index asserted above. B: (kk, j) at b[kk·n + j]
    // < k·n ≤ b.len(). The transposed call reads the same elements through swapped strides.
    // C is a distinct `&mut`; A and B are shared reads.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        if isa() == Isa::Avx2 {
            use gemm_common::simd::V3;
            use gemm_f32::microkernel::fma::f32 as fma;
            // `level` detected AVX2 and FMA (and F16C, which V3 also names: checked by try_new).
            if let Some(simd) = V3::try_new() {
                // Posed as Cᵀ = Bᵀ·Aᵀ, as `gemm::gemm` itself does for a row-major C: its kernels
                // write column-major blocks, and this way they stream the weights in place
                // (183–196 GFLOP/s on the encoder's shapes against 141–173 posed directly; at
                // 124 rows, batch-1's size, 154–168 against 110–123).
                gemm_common::gemm::gemm_basic_generic::<V3, f32, 8, { fma::MR_DIV_N * 8 }, { fma::NR }, { fma::MR_DIV_N }, { fma::H_M }, { fma::H_N }>(
                    simd,
                    n,
                    m,
                    k,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                    accumulate,
                    b.as_ptr(),
                    n as isize,
                    1,
                    a.data.as_ptr(),
                    a.rs as isize,
                    a.cs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    |x, y, z| x * y + z,
                    &fma::UKR,
                    &fma::H_UKR,
                    false,
                    threads,
                );
                return epilogue_rows(c, n, bias, epilogue);
            }
        }
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
            threads,
        );
    }
    epilogue_rows(c, n, bias, epilogue);
}

/// Bias and GELU over `c`'s rows, a block of rows per task.
fn epilogue_rows(c: &mut [f32], n: usize, bias: Option<&[f32]>, epilogue: Epilogue) {
    if bias.is_none() && epilogue == Epilogue::None {
        return;
    }
    let block = (16384 / n.max(1)).max(1) * n;
    c.par_chunks_mut(block).for_each(|rows| bias_gelu_rows(rows, n, bias, epilogue));
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
