//! The fp32 GEMM of the portable level (every CPU without AVX2+FMA: ARM, older x86): the `gemm`
//! crate's kernels (runtime-dispatched SSE/AVX/NEON, the ones burn's CPU backend and candle use),
//! called once per packed B panel, then the bias and GELU epilogue. It replaces a scalar loop that
//! ran 20–40x slower than the vector levels. Written by hand are only the panel walk and the
//! epilogue: the crate has no fused epilogue and does not read our packed panels as such.

use crate::gemm::{Epilogue, gelu_scalar};
use crate::pack::{Mat, NR};

/// Rows `r0..r0 + rows` of `a · b + bias` (then the epilogue) into `c_rows` (`[rows, n]`),
/// added to what `c_rows` holds when `accumulate`. `panels` is `b` packed by `pack_b_f32`:
/// panel `p` is a row-major `[k, NR]` block of B's columns `p·NR..`, zero-padded on the right.
pub(crate) fn gemm_rows(
    a: Mat<'_>,
    panels: &[f32],
    (k, n): (usize, usize),
    (bias, epilogue): (Option<&[f32]>, Epilogue),
    (r0, rows): (usize, usize),
    accumulate: bool,
    c_rows: &mut [f32],
) {
    assert!(r0 + rows <= a.rows && a.cols == k, "A rows {r0}..{} of {} × {}", r0 + rows, a.rows, a.cols);
    assert_eq!(c_rows.len(), rows * n, "C rows must be rows × n");
    assert!(panels.len() >= n.div_ceil(NR) * k * NR, "B panels shorter than k × n");
    if rows == 0 || n == 0 {
        return;
    }
    let a_last = (r0 + rows - 1) * a.rs + (k.max(1) - 1) * a.cs;
    assert!(k == 0 || a_last < a.data.len(), "A view out of bounds");
    for p in 0..n.div_ceil(NR) {
        let cols = NR.min(n - p * NR);
        // SAFETY: every address the call forms is in bounds. dst: element (i, j) at
        // c_rows[i·n + p·NR + j] with i < rows, j < cols ≤ n − p·NR, below rows·n = c_rows.len().
        // lhs: (i, kk) at a.data[(r0 + i)·rs + kk·cs] with i < rows, kk < k, at most `a_last`,
        // checked above. rhs: (kk, j) at panels[p·k·NR + kk·NR + j] with kk < k, j < NR, inside the
        // length checked above. No two of them alias: C is a distinct `&mut`.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                c_rows.as_mut_ptr().add(p * NR),
                1,
                n as isize,
                accumulate,
                a.data.as_ptr().add(r0 * a.rs),
                a.cs as isize,
                a.rs as isize,
                panels.as_ptr().add(p * k * NR),
                1,
                NR as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                // The caller already splits the rows over the threads.
                gemm::Parallelism::None,
            );
        }
    }
    if bias.is_some() || epilogue == Epilogue::Gelu {
        for row in c_rows.chunks_exact_mut(n) {
            for (j, v) in row.iter_mut().enumerate() {
                let x = *v + bias.map_or(0.0, |b| b[j]);
                *v = if epilogue == Epilogue::Gelu { gelu_scalar(x) } else { x };
            }
        }
    }
}
