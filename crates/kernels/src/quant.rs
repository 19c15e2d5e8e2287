//! int8 quantization for inference: weights quantized once per output column (symmetric int8,
//! like ONNX Runtime's `quantize_dynamic` with per-channel weights) and packed as quad panels,
//! activations quantized per row at run time (asymmetric uint8: a scale and a zero point per row,
//! from the row's min and max); the GEMM driver that multiplies and dequantizes them is
//! `quant_gemm.rs`. The products run on AMX-INT8 tiles (`tdpbusd`) where the CPU has them, else
//! with AVX512-VNNI (`vpdpbusd`, int8_avx512.rs), else with AVX-VNNI or, exactly, `vpmaddwd` at
//! the AVX2 levels (int8_avx2.rs), else in plain loops the compiler vectorises (`dot_rows_serial`).
//! Every path gives the same sums.

use crate::aligned::AlignedVec;
use crate::pack::{Mat, NR};
use crate::quad_path::{QuadPath, halves};
use crate::quant_gemm::ACC_LD;

/// k values per int8 quad (one `u32` of a B panel: four consecutive k of one column).
pub(crate) const QUAD: usize = 4;

/// A `[k, n]` weight quantized per column and packed as quad panels `[n/NR][depth][NR]`
/// (`depth` quad-rows, zero-padded to whole AMX tiles: 16 quad-rows = 64 k), or for the
/// `vpmaddwd` path as `[n/NR][depth][2][NR]` 16-bit halves (see [`halves`]).
pub(crate) struct QuantB {
    pub data: AlignedVec<u32>,
    pub depth: usize,
    /// The kernel the panels were packed for (the level is fixed per process).
    pub path: QuadPath,
    /// Per column: the dequantization scale and the sum of its int8 values.
    pub scale: Vec<f32>,
    pub sums: Vec<i32>,
}

/// Quad-rows of an int8 panel for `k`: whole 16-row tiles, so every level reads one layout.
pub(crate) fn depth(k: usize) -> usize {
    k.div_ceil(64) * 16
}

/// A `[k, n]` weight quantized per output column: what an export stores (`model.int8.safetensors`)
/// and what [`PackedB::from_int8`](crate::PackedB::from_int8) packs. Quantizing at load and
/// loading a stored one give the same bytes: both come from [`Int8Weight::quantize`].
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Weight {
    pub k: usize,
    pub n: usize,
    /// `[k, n]` row-major, each in −127..=127.
    pub values: Vec<i8>,
    /// Per column: x ≈ scale · value (positive and finite).
    pub scale: Vec<f32>,
}

/// Why stored int8 values cannot be packed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Int8Error {
    #[error("{values} int8 values and {scales} scales do not make a {k} × {n} weight")]
    Shape { k: usize, n: usize, values: usize, scales: usize },
    #[error("column {column}'s scale {scale} is not a positive finite number")]
    Scale { column: usize, scale: f32 },
    #[error("value −128 at index {index}: symmetric int8 weights stay within −127..=127")]
    Range { index: usize },
}

impl Int8Weight {
    /// Quantizes `b` (`[k, n]`): scale = max |column| / 127, values rounded to nearest (ONNX
    /// Runtime's `quantize_dynamic` per-channel symmetric weights).
    pub fn quantize(b: Mat<'_>) -> Self {
        let (k, n) = (b.rows, b.cols);
        let mut scale = vec![1.0f32; n];
        let mut values = vec![0i8; k * n];
        for j in 0..n {
            let amax = (0..k).map(|kk| b.data[kk * b.rs + j * b.cs].abs()).fold(0.0f32, f32::max);
            // An all-zero column keeps scale 1: its values quantize to 0 either way.
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scale[j] = s;
            for kk in 0..k {
                values[kk * n + j] = (b.data[kk * b.rs + j * b.cs] / s).round().clamp(-127.0, 127.0) as i8;
            }
        }
        Self { k, n, values, scale }
    }

    /// Checks stored values before they are packed: the shape, the scales, and the range that
    /// the zero-point correction assumes.
    pub fn validate(&self) -> Result<(), Int8Error> {
        let (k, n) = (self.k, self.n);
        if self.values.len() != k * n || self.scale.len() != n {
            return Err(Int8Error::Shape { k, n, values: self.values.len(), scales: self.scale.len() });
        }
        if let Some((column, &scale)) = self.scale.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(Int8Error::Scale { column, scale });
        }
        if let Some(index) = self.values.iter().position(|&v| v == i8::MIN) {
            return Err(Int8Error::Range { index });
        }
        Ok(())
    }
}

impl QuantB {
    /// Quantizes `b` (`[k, n]`) and packs it.
    pub fn new(b: Mat<'_>) -> Self {
        Self::pack(&Int8Weight::quantize(b))
    }

    /// Packs quantized values as quad panels (the caller has validated `w`).
    pub fn pack(w: &Int8Weight) -> Self {
        let (k, n) = (w.k, w.n);
        let depth = depth(k);
        let mut sums = vec![0i32; n];
        for row in w.values.chunks_exact(n.max(1)).take(k) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += i32::from(v);
            }
        }
        let panels = n.div_ceil(NR);
        let path = QuadPath::current();
        let row_len = path.row_len();
        let mut data = AlignedVec::new();
        data.resize(panels * depth * row_len, 0u32);
        for j in 0..n {
            let (p, jj) = (j / NR, j % NR);
            for qd in 0..k.div_ceil(QUAD) {
                let byte = |i: usize| {
                    let kk = qd * QUAD + i;
                    if kk < k { u32::from(w.values[kk * n + j] as u8) << (8 * i) } else { 0 }
                };
                let quad = byte(0) | byte(1) | byte(2) | byte(3);
                let at = (p * depth + qd) * row_len + jj;
                if path == QuadPath::Madd {
                    (data[at], data[at + NR]) = halves(quad);
                } else {
                    data[at] = quad;
                }
            }
        }
        Self { data, depth, path, scale: w.scale.clone(), sums }
    }
}

/// Row `row` quantized to uint8 into `out[..k]` (the rest of `out` is left as it is): returns
/// (scale, zero point) with x ≈ scale · (q − zp).
pub(crate) fn quantize_row(row: &[f32], out: &mut [u8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    let level = crate::level::isa();
    #[cfg(target_arch = "x86_64")]
    let (vector, avx2) = (level >= crate::level::Isa::Avx512, level.avx2_kernels());
    #[cfg(target_arch = "x86_64")]
    let (lo, hi) = if vector {
        // SAFETY: the AVX-512 levels have F/BW/VL (`level::detect`).
        unsafe { crate::int8_avx512::min_max(row) }
    } else if avx2 {
        // SAFETY: the AVX2 levels have AVX2 and FMA.
        unsafe { crate::int8_avx2::min_max(row) }
    } else {
        scalar_min_max(row)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (lo, hi) = scalar_min_max(row);
    // The range always includes 0 so that 0 (padding, ReLU zeros) is exact.
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
    let inv = 1.0 / scale;
    #[cfg(target_arch = "x86_64")]
    if vector {
        // SAFETY: as above; `out` is at least as long as `row` (the caller's slices).
        unsafe { crate::int8_avx512::quantize_u8(row, inv, zp, out) };
        return (scale, zp as i32);
    }
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: as above; `quantize_u8` checks `out` against `row`.
        unsafe { crate::int8_avx2::quantize_u8(row, inv, zp, out) };
        return (scale, zp as i32);
    }
    for (o, &x) in out.iter_mut().zip(row) {
        *o = (x * inv + zp).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    (scale, zp as i32)
}

fn scalar_min_max(row: &[f32]) -> (f32, f32) {
    row.iter().fold((0.0f32, 0.0f32), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Rows of A quantized for one block: `rows` rows of `lda` bytes (k padded with zeros) and the
/// per-row scale and zero point.
#[derive(Default)]
pub(crate) struct QuantA {
    pub bytes: AlignedVec<u8>,
    pub scale: Vec<f32>,
    pub zp: Vec<i32>,
}

impl QuantA {
    /// Quantizes rows `row0..row0+mc` of `a` (padded with zero rows to `rows`).
    pub fn fill(&mut self, a: Mat<'_>, row0: usize, mc: usize, rows: usize, lda: usize) {
        let k = a.cols;
        // Every byte is written below (the rows' values, their k padding, the padding rows), so
        // the reused buffer is not zeroed first: `clear` then `resize` was a memset of each whole
        // block of every int8 GEMM.
        self.bytes.resize(rows * lda, 0);
        self.scale.clear();
        self.zp.clear();
        let mut tmp = Vec::new();
        for r in 0..mc {
            let row: &[f32] = if a.cs == 1 {
                &a.data[(row0 + r) * a.rs..(row0 + r) * a.rs + k]
            } else {
                tmp.clear();
                tmp.extend((0..k).map(|kk| a.data[(row0 + r) * a.rs + kk * a.cs]));
                &tmp
            };
            let (s, z) = quantize_row(row, &mut self.bytes[r * lda..r * lda + k]);
            // The k padding is byte 0: it meets zero weights, and the zero-point correction sums
            // real k only.
            self.bytes[r * lda + k..(r + 1) * lda].fill(0);
            self.scale.push(s);
            self.zp.push(z);
        }
        // Padding rows (up to whole AMX slabs) are zeros; their products are never stored.
        self.bytes[mc * lda..rows * lda].fill(0);
    }
}

crate::dispatch!(pub dot_rows_serial(a: &QuantA, b: &QuantB, lda: usize, panel_cols: (usize, usize), out: &mut [i32]) {
    let (p, cols) = panel_cols;
    // out[r * ACC_LD + jj] = Σ_k a[r][k] · w[k][p·NR + jj] for every quantized row r, in plain loops
    // over the quad panel (the NR columns innermost, so the compiler vectorises them).
    let rows = a.scale.len();
    let depth = b.depth;
    let panel = &b.data[p * depth * NR..(p + 1) * depth * NR];
    for r in 0..rows {
        let mut acc = [0i32; NR];
        let arow = &a.bytes[r * lda..(r + 1) * lda];
        for qd in 0..depth.min(lda / QUAD) {
            let quad = &panel[qd * NR..(qd + 1) * NR];
            for i in 0..QUAD {
                let av = i32::from(arow[qd * QUAD + i]);
                for jj in 0..NR {
                    acc[jj] += av * i32::from((quad[jj] >> (8 * i)) as u8 as i8);
                }
            }
        }
        out[r * ACC_LD..r * ACC_LD + cols].copy_from_slice(&acc[..cols]);
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::Epilogue;

    #[test]
    fn stored_int8_weights_pack_to_the_same_product_as_quantizing_at_load() {
        use crate::gemm::gemm;
        use crate::packed_b::{PackedB, Precision};
        let (m, k, n) = (9, 130, 40);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0).collect();
        let w = Int8Weight::quantize(Mat::rows(&b, k, n));
        let (mut at_load, mut stored) = (vec![0.0; m * n], vec![1.0; m * n]);
        gemm(&a, m, &PackedB::new(&b, k, n, Precision::Int8), None, Epilogue::None, &mut at_load);
        let packed = PackedB::from_int8(&w).expect("quantize() makes valid weights");
        assert_eq!((packed.k(), packed.n(), packed.precision()), (k, n, Precision::Int8));
        gemm(&a, m, &packed, None, Epilogue::None, &mut stored);
        assert_eq!(at_load, stored, "one quantization function, so the same bits");
    }

    #[test]
    fn quantize_maps_each_column_max_to_127_and_keeps_zero_columns_at_scale_one() {
        // [k = 2, n = 3]: columns (1, −0.25), (0, 0), (−4, 1): −0.25 → −31.75 → −32.
        let w = Int8Weight::quantize(Mat::rows(&[1.0, 0.0, -4.0, -0.25, 0.0, 1.0], 2, 3));
        assert_eq!(w.scale, vec![1.0 / 127.0, 1.0, 4.0 / 127.0]);
        assert_eq!(w.values, vec![127, 0, -127, -32, 0, 32]);
        assert_eq!(w.validate(), Ok(()));
    }

    #[test]
    fn stored_int8_weights_with_a_bad_shape_scale_or_value_are_refused() {
        let good = Int8Weight { k: 2, n: 2, values: vec![1, 2, 3, 4], scale: vec![0.5, 0.25] };
        assert_eq!(good.validate(), Ok(()));
        let short = Int8Weight { values: vec![1, 2, 3], ..good.clone() };
        assert_eq!(short.validate(), Err(Int8Error::Shape { k: 2, n: 2, values: 3, scales: 2 }));
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let w = Int8Weight { scale: vec![0.5, bad], ..good.clone() };
            assert!(matches!(w.validate(), Err(Int8Error::Scale { column: 1, .. })), "scale {bad}");
            assert!(crate::packed_b::PackedB::from_int8(&w).is_err());
        }
        let low = Int8Weight { values: vec![1, 2, i8::MIN, 4], ..good };
        assert_eq!(low.validate(), Err(Int8Error::Range { index: 2 }));
    }

    #[test]
    fn row_quantization_round_trips_within_half_a_step() {
        let row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0 + 0.5).collect();
        let mut q = vec![0u8; 37];
        let (s, z) = quantize_row(&row, &mut q);
        for (x, &b) in row.iter().zip(&q) {
            let back = s * (i32::from(b) - z) as f32;
            assert!((back - x).abs() <= 0.5 * s + 1e-6, "{x} → {b} → {back}");
        }
        // Zero is exact (padding and ReLU outputs).
        let mut q0 = [0u8; 3];
        let (s0, z0) = quantize_row(&[-1.0, 0.0, 2.0], &mut q0);
        assert_eq!(s0 * (i32::from(q0[1]) - z0) as f32, 0.0);
    }

    #[test]
    fn a_reused_block_is_overwritten_with_zero_padding() {
        // `fill` no longer zeroes its buffer first: junk from a larger earlier block must not
        // survive in the k padding (columns 37..64) or the padding rows (5..32).
        let (k, lda, mc, rows) = (37, 64, 5, 32);
        let a: Vec<f32> = (0..mc * k).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let mut fresh = QuantA::default();
        fresh.fill(Mat::rows(&a, mc, k), 0, mc, rows, lda);
        let mut reused = QuantA::default();
        reused.bytes.resize(3 * rows * lda, 0xAB);
        reused.scale.push(9.0);
        reused.fill(Mat::rows(&a, mc, k), 0, mc, rows, lda);
        assert_eq!((&reused.bytes[..], &reused.scale, &reused.zp), (&fresh.bytes[..], &fresh.scale, &fresh.zp));
        assert_eq!(reused.bytes.len(), rows * lda);
        for (r, row) in reused.bytes.chunks_exact(lda).enumerate() {
            let live = if r < mc { k } else { 0 };
            assert!(row[live..].iter().all(|&b| b == 0), "row {r}: padding {:?}", &row[live..]);
        }
        assert!(reused.bytes[..k].iter().any(|&b| b != 0));
    }

    #[test]
    fn weight_columns_use_their_own_scale() {
        // Column 1 is 100x column 0: per-column scales keep column 0's precision.
        let b: Vec<f32> = (0..10).flat_map(|i| [i as f32 * 0.01, i as f32]).collect();
        let q = QuantB::new(Mat::rows(&b, 10, 2));
        assert!((q.scale[0] - 0.09 / 127.0).abs() < 1e-9 && (q.scale[1] - 9.0 / 127.0).abs() < 1e-7);
        assert_eq!(q.sums[1], (0..10).map(|i| (i as f32 * 127.0 / 9.0).round() as i32).sum::<i32>());
        // Quad 0, column 0 packs k = 0..4 as bytes, low byte first (0, 14, 28, 42); the vpmaddwd
        // path stores it as its halves, (k0, k2) then, NR u32s on, (k1, k3).
        let quad = 42 << 24 | 28 << 16 | 14 << 8;
        if q.path == QuadPath::Madd {
            assert_eq!((q.data[0], q.data[NR]), ((28 << 16) as u32, (42 << 16 | 14) as u32));
        } else {
            assert_eq!(q.data[0], quad);
        }
    }
}
