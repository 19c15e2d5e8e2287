//! int8 kernels for the AVX-512 levels: `quant`'s quad products with AVX512-VNNI (`vpdpbusd`
//! on zmm) dequantized in registers straight into C, the dequantization of products the AMX
//! tiles left in memory, and the row quantization (min/max, uint8 rounding) 16 lanes at a time.
//! Every function computes the same integers and bytes as the AVX2 and plain paths. Callers
//! check the level.

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::avx512_ops::gelu_poly512;
    use crate::pack::NR;
    use crate::quant_gemm::Dequant;

    /// zmm vectors per panel row (48 columns).
    const V: usize = NR / 16;

    /// A [`Dequant`]'s column operands as the kernels read them: pointers to the panel's first
    /// column and one lane mask per zmm of the panel (zero past the panel's columns).
    struct Cols {
        sw: *const f32,
        sum_w: *const i32,
        /// Null without a bias.
        bias: *const f32,
        masks: [__mmask16; V],
    }

    impl Cols {
        /// Checks `out`'s shapes for `rows` rows (every access below stays inside them).
        fn of<T>(out: &Dequant<'_, T>, rows: usize) -> Self {
            out.check(rows);
            let (sw, sum_w) = out.cols;
            let cols = sw.len();
            let masks = std::array::from_fn(|v| {
                let live = cols.saturating_sub(16 * v).min(16);
                ((1u32 << live) - 1) as __mmask16
            });
            Cols { sw: sw.as_ptr(), sum_w: sum_w.as_ptr(), bias: out.bias.map_or(std::ptr::null(), |b| b.as_ptr()), masks }
        }

        /// Lanes 16·v.. of one row: sa·sw·(sum − za·sum_w) + bias (→ GELU), in the order of
        /// `quant_gemm::dequant_rows_plain`: (x · s_row) · s_col. The GELU is the polynomial
        /// [`gelu_poly512`] (|error| < 1e-4): its output is only ever quantized again, for the
        /// feed-forward's second GEMM, in steps of a row's range over 255. Against the erf form
        /// (`gelu512`, twice the instructions) int8 inference gained 2–3 % on AMX and 1–2 % with
        /// AMX refused (medians of alternated runs, docs/benchmarks.md, session 19).
        ///
        /// # Safety
        /// AVX-512F/DQ are enabled by the caller; v < V.
        #[inline(always)]
        unsafe fn apply(&self, v: usize, sum: __m512i, (vsa, vza): (__m512, __m512i), gelu: bool) -> __m512 {
            let (m, col) = (self.masks[v], 16 * v);
            // SAFETY: masked loads of the lanes below the panel's columns, which `of` checked
            // against every column slice.
            unsafe {
                let corr = _mm512_mullo_epi32(vza, _mm512_maskz_loadu_epi32(m, self.sum_w.add(col)));
                let x = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, corr));
                let mut y = _mm512_mul_ps(_mm512_mul_ps(x, vsa), _mm512_maskz_loadu_ps(m, self.sw.add(col)));
                if !self.bias.is_null() {
                    y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, self.bias.add(col)));
                }
                if gelu { gelu_poly512(y) } else { y }
            }
        }
    }

    /// The uint8 × int8 quad products of `out.rows` rows of A (`lda` bytes each) with one quad
    /// panel (`depth` quad-rows of NR = 48 columns), dequantized as [`Dequant`] says into C with
    /// no int32 buffer in between: `vpdpbusd` multiplies four uint8 of A by four int8 of B and
    /// adds them to an int32 lane, which is the quad layout `QuantB` packs. The sums are exact,
    /// those of `quant::dot_rows_serial`'s plain loops.
    ///
    /// # Safety
    /// AVX-512F/DQ and AVX512-VNNI are available.
    #[target_feature(enable = "avx512f,avx512dq,avx512vnni")]
    pub unsafe fn dot_dequant_vnni(depth: usize, (a, lda): (&[u8], usize), panel: &[u32], out: Dequant<'_>) {
        let rows = out.rows.0.len();
        let cols = Cols::of(&out, rows);
        assert!(lda >= 4 * depth && a.len() >= rows * lda && panel.len() >= depth * NR, "int8 product shapes");
        let (a, panel, c) = (a.as_ptr(), panel.as_ptr(), out.c.as_mut_ptr());
        let rows_of = |r: usize| ((a.wrapping_add(r * lda), lda), (c.wrapping_add(r * out.ldc), out.ldc));
        // SAFETY (every call): rows r..r+R < rows read `a[r·lda + 4·q .. +4]` for q < depth
        // (inside their row, lda ≥ 4·depth), `panel[q·NR .. +NR]` (inside depth·NR), and store
        // the panel's columns of C's rows r..r+R (checked by `Cols::of`); the asserts bound each.
        let mut r = 0;
        while r + 8 <= rows {
            let (a_r, c_r) = rows_of(r);
            unsafe { block::<8>(depth, a_r, panel, (&cols, out.gelu), (&out.rows.0[r..], &out.rows.1[r..]), c_r) };
            r += 8;
        }
        while r < rows {
            let (a_r, c_r) = rows_of(r);
            unsafe { block::<1>(depth, a_r, panel, (&cols, out.gelu), (&out.rows.0[r..], &out.rows.1[r..]), c_r) };
            r += 1;
        }
    }

    /// `R` rows × 48 columns: 3·R zmm accumulators (24 for R = 8), three B vectors and one
    /// broadcast quad of A over the depth, then each accumulator dequantized and stored.
    #[inline(always)]
    unsafe fn block<const R: usize>(
        depth: usize,
        (a, lda): (*const u8, usize),
        panel: *const u32,
        (cols, gelu): (&Cols, bool),
        (scale, zp): (&[f32], &[i32]),
        (c, ldc): (*mut f32, usize),
    ) {
        // SAFETY: the caller's bounds (dot_dequant_vnni) cover every access; AVX-512F/DQ/VNNI are
        // enabled by the caller's target features.
        unsafe {
            let sum = sums::<R>(depth, (a, lda), panel);
            for (r, row) in sum.iter().enumerate() {
                let row_scale = (_mm512_set1_ps(scale[r]), _mm512_set1_epi32(zp[r]));
                for (v, s) in row.iter().enumerate() {
                    let y = cols.apply(v, *s, row_scale, gelu);
                    _mm512_mask_storeu_ps(c.add(r * ldc + 16 * v), cols.masks[v], y);
                }
            }
        }
    }

    /// The quad products of `R` rows × 48 columns in 3·R zmm accumulators (24 for R = 8).
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline(never)]
    unsafe fn sums<const R: usize>(depth: usize, (a, lda): (*const u8, usize), panel: *const u32) -> [[__m512i; V]; R] {
        // SAFETY: the caller's bounds (dot_dequant_vnni) cover every access.
        unsafe {
            let mut sum = [[_mm512_setzero_si512(); V]; R];
            for q in 0..depth {
                let bp = panel.add(q * NR) as *const __m512i;
                let b = [_mm512_loadu_si512(bp), _mm512_loadu_si512(bp.add(1)), _mm512_loadu_si512(bp.add(2))];
                for (r, row) in sum.iter_mut().enumerate() {
                    let quad = _mm512_set1_epi32((a.add(r * lda + 4 * q) as *const i32).read_unaligned());
                    for (s, bv) in row.iter_mut().zip(&b) {
                        *s = _mm512_dpbusd_epi32(*s, quad, *bv);
                    }
                }
            }
            sum
        }
    }

    /// The dequantization of products the AMX tiles stored: row r's columns of `acc` (rows
    /// `acc_ld` apart) into C as [`Dequant`] says.
    ///
    /// # Safety
    /// AVX-512F/DQ are available.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn dequant_rows((acc, acc_ld): (&[i32], usize), out: Dequant<'_>) {
        let cols = Cols::of(&out, out.rows.0.len());
        let c = out.c.as_mut_ptr();
        // SAFETY: `each_dequantized` hands out offsets of the panel's columns in C's rows and
        // their lane masks, which `Cols::of` checked against `out.c`.
        unsafe { each_dequantized((acc, acc_ld), &cols, (out.rows, out.ldc, out.gelu), |at, m, y| _mm512_mask_storeu_ps(c.add(at), m, y)) };
    }

    /// [`dequant_rows`] into bf16 bits, each value rounded to nearest even (`vcvtneps2bf16`, as
    /// `avx512_ops::to_bf16` converts the fp32 result).
    ///
    /// # Safety
    /// AVX-512F/DQ/BW/VL and AVX512-BF16 are available.
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")]
    pub unsafe fn dequant_rows_bits((acc, acc_ld): (&[i32], usize), out: Dequant<'_, u16>) {
        let cols = Cols::of(&out, out.rows.0.len());
        let c = out.c.as_mut_ptr();
        // SAFETY: as in `dequant_rows`, 16-bit lanes under the same masks.
        unsafe {
            each_dequantized((acc, acc_ld), &cols, (out.rows, out.ldc, out.gelu), |at, m, y| {
                let y = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(y));
                _mm256_mask_storeu_epi16(c.add(at) as *mut i16, m, y)
            })
        };
    }

    /// The walk both dequantizations share: for each row r of `acc` (rows `acc_ld` apart) and
    /// each vector v of the panel, the 16 values dequantized, handed to `store` with their offset
    /// in C (`r·ldc + 16·v`) and lane mask.
    ///
    /// # Safety
    /// AVX-512F/DQ are enabled by the caller; `store` may write at every offset and mask it gets
    /// (`cols` was checked against C for these rows).
    #[inline(always)]
    unsafe fn each_dequantized(
        (acc, acc_ld): (&[i32], usize),
        cols: &Cols,
        ((scale, zp), ldc, gelu): ((&[f32], &[i32]), usize, bool),
        mut store: impl FnMut(usize, __mmask16, __m512),
    ) {
        let rows = scale.len();
        assert!(acc_ld >= NR && (rows == 0 || acc.len() >= (rows - 1) * acc_ld + NR), "dequant products shape");
        // SAFETY: row r < rows reads `acc[r·acc_ld .. +NR]` (asserted).
        unsafe {
            for r in 0..rows {
                let row_scale = (_mm512_set1_ps(scale[r]), _mm512_set1_epi32(zp[r]));
                for v in 0..V {
                    let sum = _mm512_loadu_si512(acc.as_ptr().add(r * acc_ld + 16 * v) as *const __m512i);
                    store(r * ldc + 16 * v, cols.masks[v], cols.apply(v, sum, row_scale, gelu));
                }
            }
        }
    }

    /// The lowest and highest value of `row` (0 included), 16 lanes at a time.
    ///
    /// # Safety
    /// AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn min_max(row: &[f32]) -> (f32, f32) {
        let n = row.len();
        // SAFETY: masked loads of lanes below `n` only.
        unsafe {
            let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for j in (0..n).step_by(16) {
                let m: __mmask16 = if j + 16 <= n { 0xffff } else { ((1u32 << (n - j)) - 1) as u16 };
                let x = _mm512_maskz_loadu_ps(m, row.as_ptr().add(j));
                lo = _mm512_min_ps(lo, x);
                hi = _mm512_max_ps(hi, x);
            }
            (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
        }
    }

    /// `out[j] = clamp(round_ties_even(row[j]·inv + zp), 0, 255)`, the uint8 quantization of a
    /// row exactly as `quant::quantize_row` computes it (multiply, then add: no fused rounding).
    ///
    /// # Safety
    /// AVX-512F/BW/VL are available; `out.len() ≥ row.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn quantize_u8(row: &[f32], inv: f32, zp: f32, out: &mut [u8]) {
        let n = row.len();
        assert!(out.len() >= n, "quantized row shorter than its input");
        // SAFETY: masked loads and stores of lanes below `n` only (`out.len() ≥ n`).
        unsafe {
            let (vinv, vzp) = (_mm512_set1_ps(inv), _mm512_set1_ps(zp));
            let (zero, top) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
            for j in (0..n).step_by(16) {
                let m: __mmask16 = if j + 16 <= n { 0xffff } else { ((1u32 << (n - j)) - 1) as u16 };
                let x = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row.as_ptr().add(j)), vinv), vzp);
                // The default rounding mode (MXCSR) is to nearest even.
                let q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(x), zero), top);
                _mm_mask_storeu_epi8(out.as_mut_ptr().add(j) as *mut i8, m, _mm512_cvtepi32_epi8(q));
            }
        }
    }
}
