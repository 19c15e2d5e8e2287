//! The int8 feed-forward in one sweep over the rows: for each block of rows, GELU(a·W_in + b_in)
//! into a per-thread buffer, then that buffer quantized and multiplied by W_out into the output.
//! Two whole-batch GEMMs write the intermediate activations (4 × the hidden width per row, 25 MB
//! for MiniLM at 32 × 128) to memory and read them back twice, for the second GEMM's row minimum
//! and maximum and for its quantization: the row min/max was 6 % of int8 inference without AMX
//! (`perf`), most of it on those rows. A block's intermediate rows stay in L2 instead.

use crate::gemm::Epilogue;
use crate::pack::Mat;
#[cfg(doc)]
use crate::packed_b::Precision;
use crate::packed_b::{Packed, PackedB};
use crate::quant::QuantB;
use crate::quant_gemm::gemm_rows;
use crate::rows::{RowSet, par_row_blocks};

/// Rows per block: 128 rows of a 1536-wide intermediate are 768 KB of fp32, within L2.
const BLOCK: usize = 128;

thread_local! {
    /// Per-thread intermediate rows `[BLOCK, n_in]` (reused: no allocation per call).
    static INTER: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out = GELU(a · w_in + b_in) · w_out + b_out` (the erf GELU, transformers' `gelu`) for the rows
/// of `rows`, the other rows of `out` zeroed, for weights packed as [`Precision::Int8`]: the same
/// values, bit for bit, as the two [`crate::gemm_ex_rows`] calls with the GELU epilogue in the
/// first.
pub fn feed_forward_int8(
    a: Mat<'_>,
    (w_in, b_in): (&PackedB, &[f32]),
    (w_out, b_out): (&PackedB, &[f32]),
    out: &mut [f32],
    rows: RowSet<'_>,
) {
    let (Packed::Int8(q_in), Packed::Int8(q_out)) = (&w_in.data, &w_out.data) else {
        panic!("feed_forward_int8 needs both weights packed as Precision::Int8");
    };
    let (m, inner, n) = (a.rows, w_in.n, w_out.n);
    assert_eq!(a.cols, w_in.k, "A's columns must match W_in's rows");
    assert_eq!(w_out.k, inner, "W_out's rows must match W_in's columns");
    assert!(b_in.len() == inner && b_out.len() == n, "a bias per output column");
    assert_eq!(out.len(), m * n, "out must be m × n");
    if m == 0 || n == 0 {
        return;
    }
    par_row_blocks(out, n, 32, rows, false, |r0, c_rows| {
        INTER.with_borrow_mut(|inter| {
            for (i, c_block) in c_rows.chunks_mut(BLOCK * n).enumerate() {
                let count = c_block.len() / n;
                block(a, (q_in, b_in, inner), (q_out, b_out, n), (r0 + i * BLOCK, count), inter, c_block);
            }
        })
    });
}

/// Rows `r0..r0+count` of the feed-forward into `c` (`[count, n]`).
fn block(
    a: Mat<'_>,
    (q_in, b_in, inner): (&QuantB, &[f32], usize),
    (q_out, b_out, n): (&QuantB, &[f32], usize),
    (r0, count): (usize, usize),
    inter: &mut Vec<f32>,
    c: &mut [f32],
) {
    inter.resize(count * inner, 0.0);
    gemm_rows(a, q_in, inner, Some(b_in), Epilogue::Gelu, (r0, count), inter);
    gemm_rows(Mat::rows(inter, count, inner), q_out, n, Some(b_out), Epilogue::None, (0, count), c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm_ex_rows;
    use crate::packed_b::Precision;

    /// Deterministic values in [−scale, scale).
    fn values(len: usize, seed: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * scale).collect()
    }

    #[test]
    fn fused_feed_forward_equals_the_two_gemms_bit_for_bit() {
        // Row counts across the 128-row blocks and the threads' shares, widths off the 48-column
        // panels and 64-deep quads; all rows, and live ranges with padding rows between them.
        for (m, k, inner, n) in [(1, 8, 16, 8), (37, 40, 100, 30), (300, 64, 200, 48), (261, 33, 130, 50)] {
            let a = values(m * k, 1, 2.0);
            let (w_in, w_out) = (values(k * inner, 2, 0.3), values(inner * n, 3, 0.2));
            let (b_in, b_out) = (values(inner, 4, 0.5), values(n, 5, 0.5));
            let (p_in, p_out) = (PackedB::new(&w_in, k, inner, Precision::Int8), PackedB::new(&w_out, inner, n, Precision::Int8));
            let ranges = [0..m / 3, m / 2..m - m / 5];
            for rows in [RowSet::All, RowSet::Ranges(&ranges)].into_iter().take(if m > 10 { 2 } else { 1 }) {
                let mut inter = vec![0.0; m * inner];
                gemm_ex_rows(Mat::rows(&a, m, k), None, &p_in, Some(&b_in), Epilogue::Gelu, &mut inter, false, rows);
                let mut want = vec![0.0; m * n];
                gemm_ex_rows(Mat::rows(&inter, m, inner), None, &p_out, Some(&b_out), Epilogue::None, &mut want, false, rows);
                let mut got = vec![f32::NAN; m * n];
                feed_forward_int8(Mat::rows(&a, m, k), (&p_in, &b_in), (&p_out, &b_out), &mut got, rows);
                for (i, (g, w)) in got.chunks_exact(n).zip(want.chunks_exact(n)).enumerate() {
                    assert!(
                        g.iter().zip(w).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{m} × {k} → {inner} → {n}, row {i}: {g:?} against {w:?}"
                    );
                }
                assert!(want.iter().any(|&x| x != 0.0), "a product that is all zeros checks nothing");
            }
        }
    }

    #[test]
    #[should_panic(expected = "needs both weights packed as Precision::Int8")]
    fn fused_feed_forward_refuses_weights_not_in_int8() {
        let (w, b) = (PackedB::new(&[0.5; 4], 2, 2, Precision::F32), [0.0; 2]);
        feed_forward_int8(Mat::rows(&[1.0; 2], 1, 2), (&w, &b), (&w, &b), &mut [0.0; 2], RowSet::All);
    }
}
