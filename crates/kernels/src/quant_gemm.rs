//! The int8 GEMM driver: per block of rows, A quantized (`quant::QuantA`), then each quad panel
//! of B multiplied (the kernel `quad_path` picks for the level) and dequantized into fp32 C, or
//! into bf16 bits for the AMX attention: C = s_row · s_col · (Σ a_u8·w_s8 − zp_row · Σ_k w_s8)
//! + bias (→ GELU).

use crate::aligned::AlignedVec;
use crate::gemm::Epilogue;
use crate::pack::{Mat, NR};
use crate::quad_path::{QuadPath, products, products_into};
use crate::quant::{QuantA, QuantB};

/// Rows per quantized A block (`MC` × k bytes stays in L2).
const MC: usize = 128;
/// Rows per AMX tile-kernel call.
pub(crate) const SLAB: usize = 32;
/// Row stride of the int32 products: a panel's NR columns rounded up to whole 32-column tile
/// pairs, so that the last pair's store (32 columns from column 32) stays inside its row.
pub(crate) const ACC_LD: usize = 64;

thread_local! {
    /// Per-thread quantized A block and int32 tile products (reused: no allocation per call).
    static WORK: std::cell::RefCell<(QuantA, AlignedVec<i32>)> = std::cell::RefCell::new((QuantA::default(), AlignedVec::new()));
}

/// Where [`gemm_rows_to`] writes its rows: fp32 C, or bf16 bits (on the AMX-INT8 tiles only) for a
/// product that only feeds the AMX attention, which reads bf16.
pub(crate) enum RowsOut<'a> {
    F32(&'a mut [f32]),
    Bf16(&'a mut [u16]),
}

/// Rows `r0..r0+rows` of `a · b` (+ bias, → epilogue) into `c_rows` (`[rows, n]`, overwritten).
pub(crate) fn gemm_rows(a: Mat<'_>, b: &QuantB, n: usize, bias: Option<&[f32]>, epi: Epilogue, rows: (usize, usize), c_rows: &mut [f32]) {
    gemm_rows_to(a, b, n, (bias, epi), rows, RowsOut::F32(c_rows));
}

/// [`gemm_rows`] into `out` (`[rows, n]`, overwritten). Bits are the fp32 results rounded to
/// nearest even, the same bits as converting C afterwards (`to_bf16_bits`), without writing C.
pub(crate) fn gemm_rows_to(
    a: Mat<'_>,
    b: &QuantB,
    n: usize,
    (bias, epi): (Option<&[f32]>, Epilogue),
    (r0, rows): (usize, usize),
    mut out: RowsOut<'_>,
) {
    let k = a.cols;
    let out_len = match &out {
        RowsOut::F32(c) => c.len(),
        RowsOut::Bf16(c) => c.len(),
    };
    assert!(4 * b.depth >= k && b.depth.is_multiple_of(16), "int8 panels of depth {} cannot hold k = {k}", b.depth);
    assert!(b.data.len() >= n.div_ceil(NR) * b.depth * b.path.row_len() && b.scale.len() == n && out_len >= rows * n, "int8 GEMM shapes");
    assert_eq!(b.path, QuadPath::current(), "int8 panels packed for another level");
    let tiles = b.path == QuadPath::Tiles;
    assert!(tiles || matches!(out, RowsOut::F32(_)), "int8 products into bf16 bits run on the AMX tiles only");
    let lda = 4 * b.depth;
    let fused = dequant_applies_gelu();
    WORK.with_borrow_mut(|(qa, acc)| {
        for m0 in (0..rows).step_by(MC) {
            let mc = MC.min(rows - m0);
            let padded = if tiles { mc.next_multiple_of(SLAB) } else { mc };
            qa.fill(a, r0 + m0, mc, padded, lda);
            acc.resize(padded * ACC_LD, 0);
            for p in 0..n.div_ceil(NR) {
                let cols = NR.min(n - p * NR);
                let rows = (&qa.scale[..], &qa.zp[..]);
                let cols_of = (&b.scale[p * NR..p * NR + cols], &b.sums[p * NR..p * NR + cols]);
                let (bias, gelu) = (bias.map(|bb| &bb[p * NR..p * NR + cols]), epi == Epilogue::Gelu && fused);
                match &mut out {
                    RowsOut::F32(c) => {
                        let out = Dequant { rows, cols: cols_of, bias, gelu, c: &mut c[m0 * n + p * NR..], ldc: n };
                        products_into(qa, b, lda, (p, cols), acc, out);
                    }
                    RowsOut::Bf16(c) => {
                        products(qa, b, lda, (p, cols), acc);
                        let out = Dequant { rows, cols: cols_of, bias, gelu, c: &mut c[m0 * n + p * NR..], ldc: n };
                        dequant_rows_bits(acc, out);
                    }
                }
            }
            if let (true, false, RowsOut::F32(c)) = (epi == Epilogue::Gelu, fused, &mut out) {
                crate::ops::gelu(&mut c[m0 * n..(m0 + mc) * n]);
            }
        }
    });
}

/// Whether the dequantization applies the GELU itself: the AVX-512 kernels do, in registers (the
/// polynomial `avx512_ops::gelu_poly512`, since the result is quantized again next).
/// Below AVX-512 `gemm_rows` runs it once over the block's finished rows, a loop long enough to
/// vectorise well: per 48-column piece inside the dequantization loop it kept that loop scalar (a
/// third of AVX2 int8 inference under `perf`).
fn dequant_applies_gelu() -> bool {
    cfg!(target_arch = "x86_64") && crate::level::isa() >= crate::level::Isa::Avx512
}

/// Where one panel's int32 products go and how they become fp32: C = s_row · s_col · (Σ − zp_row
/// · Σ_k w) + bias (→ GELU when `gelu`), for each quantized row of A and each of the panel's columns;
/// C is fp32, or bf16 bits (`T = u16`, [`dequant_rows_bits`]).
pub(crate) struct Dequant<'a, T = f32> {
    /// Per row of A: its scale and zero point.
    pub rows: (&'a [f32], &'a [i32]),
    /// Per column of the panel: its weight scale and the sum of its int8 values.
    pub cols: (&'a [f32], &'a [i32]),
    pub bias: Option<&'a [f32]>,
    /// Set only where [`dequant_applies_gelu`].
    pub gelu: bool,
    /// C from the panel's first column of the first row, rows `ldc` values apart.
    pub c: &'a mut [T],
    pub ldc: usize,
}

impl<T> Dequant<'_, T> {
    /// Checks the shapes for `rows` rows of A and up to NR columns: the kernels' accesses stay
    /// inside what this accepts (their safety arguments rely on it).
    pub(crate) fn check(&self, rows: usize) {
        let (sw, sum_w) = self.cols;
        let cols = sw.len();
        assert!(cols <= NR && sum_w.len() >= cols && self.bias.is_none_or(|b| b.len() >= cols), "dequant column shapes");
        assert!(self.rows.0.len() >= rows && self.rows.1.len() >= rows, "dequant row scales");
        assert!(rows == 0 || self.c.len() >= (rows - 1) * self.ldc + cols, "dequant output shape");
    }
}

/// Dequantizes every row's products (`acc`, rows [`ACC_LD`] apart) into `out`.
pub(crate) fn dequant_rows(acc: &[i32], out: Dequant<'_>) {
    assert!(!out.gelu || dequant_applies_gelu(), "GELU in the dequantization below AVX-512");
    #[cfg(target_arch = "x86_64")]
    if dequant_applies_gelu() {
        // SAFETY: the AVX-512 levels have F/DQ; the function checks every slice's extent.
        unsafe { crate::int8_avx512::dequant_rows((acc, ACC_LD), out) };
        return;
    }
    dequant_rows_plain(acc, out);
}

/// [`dequant_rows`] into bf16 bits, on the AMX-INT8 tiles' level (which has AVX512-BF16).
fn dequant_rows_bits(acc: &[i32], out: Dequant<'_, u16>) {
    assert_eq!(QuadPath::current(), QuadPath::Tiles, "int8 products into bf16 bits run on the AMX tiles only");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the AMX-INT8 level has AVX-512F/DQ/BW/VL and AVX512-BF16 (`level::detect`); the
    // function checks every slice's extent.
    unsafe {
        crate::int8_avx512::dequant_rows_bits((acc, ACC_LD), out)
    };
}

crate::dispatch!(dequant_rows_plain(acc: &[i32], out: Dequant<'_>) {
    let ((scale, zp), (sw, sum_w)) = (out.rows, out.cols);
    let cols = sw.len();
    // Two plain passes per row, each a loop the compiler vectorises. The products' order is
    // the AVX-512 kernels': (x · s_row) · s_col.
    for (r, (&sa, &za)) in scale.iter().zip(zp).enumerate() {
        let c = &mut out.c[r * out.ldc..r * out.ldc + cols];
        let row = &acc[r * ACC_LD..r * ACC_LD + cols];
        for (((o, &x), &s), &sum) in c.iter_mut().zip(row).zip(sw).zip(sum_w) {
            *o = (x - za * sum) as f32 * sa * s;
        }
        if let Some(bb) = out.bias {
            c.iter_mut().zip(bb).for_each(|(o, b)| *o += b);
        }
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{Int8Weight, quantize_row};

    #[test]
    fn int8_gemm_equals_the_product_of_the_quantized_operands() {
        use crate::gemm::gemm;
        use crate::ops::gelu_scalar;
        use crate::packed_b::{PackedB, Precision};
        // On AMX-INT8 CPUs the tiles, with AVX512-VNNI or AVX-VNNI `vpdpbusd`, at the AVX2 levels
        // `vpmaddwd`, elsewhere the plain loops (the test script runs every level); ragged m, k
        // and n, a bias and the GELU epilogue.
        let data = |len: usize, seed: usize| (0..len).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % 3) as f32)).collect::<Vec<f32>>();
        // Regression: 5×65×50 (three column tiles in a panel) made the last tile pair's store run
        // past the products buffer.
        // Every other shape without the bias and the GELU: the kernels' other instantiations.
        let shapes = [(1, 1, 1), (5, 63, 17), (5, 65, 50), (33, 65, 50), (70, 384, 97), (40, 1536, 48), (9, 130, 40), (17, 64, 96)];
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let (bias, epi) = if i % 2 == 0 { (Some(data(n, 3)), Epilogue::Gelu) } else { (None, Epilogue::None) };
            let packed = PackedB::new(&b, k, n, Precision::Int8);
            assert_eq!(packed.precision(), Precision::Int8);
            let mut c = vec![f32::NAN; m * n];
            gemm(&a, m, &packed, bias.as_deref(), epi, &mut c);
            let qw = Int8Weight::quantize(Mat::rows(&b, k, n));
            let wq = |kk: usize, j: usize| f64::from(qw.values[kk * n + j]);
            for r in 0..m {
                let mut qa = vec![0u8; k];
                let (sa, za) = quantize_row(&a[r * k..(r + 1) * k], &mut qa);
                for j in 0..n {
                    let dot: f64 = (0..k).map(|kk| (f64::from(qa[kk]) - f64::from(za)) * wq(kk, j)).sum();
                    let y = (f64::from(sa) * f64::from(qw.scale[j]) * dot) as f32 + bias.as_ref().map_or(0.0, |bb| bb[j]);
                    let want = if epi == Epilogue::Gelu { gelu_scalar(y) } else { y };
                    let got = c[r * n + j];
                    assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{:?} {m}x{k}x{n} [{r}, {j}]: {got} vs {want}", crate::level::isa());
                }
            }
            // And the quantized product stays near the fp32 one (relative to the row's scale).
            let mut exact = vec![0.0; m * n];
            gemm(&a, m, &PackedB::new(&b, k, n, Precision::F32), bias.as_deref(), epi, &mut exact);
            let worst = c.iter().zip(&exact).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            // Operands up to ±3: rounding steps of ~0.024 in A and W, so ~0.015 of error per
            // term and a std of ~0.12 at k = 65; this bound catches a wrong scale, not noise.
            assert!(worst < 0.1 * (k as f32).sqrt(), "{m}x{k}x{n}: int8 differs from fp32 by {worst}");
        }
        let path = QuadPath::current().name();
        eprintln!("ran: {}: int8 GEMM on {path} at level {}", crate::level::test_name(), crate::level::isa().name());
    }
}
