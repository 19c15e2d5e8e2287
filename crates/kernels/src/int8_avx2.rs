//! int8 kernels for the AVX2 levels: `quant`'s quad products dequantized into C as each block
//! finishes, with AVX-VNNI (`vpdpbusd` on ymm, the `avx2-vnni` level) or, on AVX2 without VNNI,
//! exactly with `vpmaddwd` on the 16-bit halves the panels store for it (`quad_path::halves`); and
//! the row quantization (min/max, uint8 rounding) 8 lanes at a time. Every function computes the
//! same integers and bytes as the AVX-512 and plain paths. Callers check the level.

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::pack::NR;
    use crate::quant_gemm::Dequant;

    const _: () = assert!(NR.is_multiple_of(16) && NR.is_multiple_of(24), "a panel splits into groups of 2 or 3 ymm");

    /// Row r's products with the panel, `Σ_q Σ_i a[r·lda + 4q + i] · (panel[q·NR + j] byte i as
    /// i8)` for column j, dequantized as [`Dequant`] says (without the GELU, which `quant` runs over
    /// whole rows below AVX-512) into C, on AVX-VNNI: the uint8 × int8 quad products of
    /// `quad_path::products_into`.
    ///
    /// # Safety
    /// AVX2, FMA and AVX-VNNI are available.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub unsafe fn dot_dequant_avx_vnni(depth: usize, a: (&[u8], usize), panel: &[u32], out: Dequant<'_>) {
        // SAFETY: `rows_of` checks its bounds; AVX-VNNI is enabled here for the inlined `Vnni`.
        unsafe { rows_of::<Vnni, 6, 2>(depth, a, panel, out) }
    }

    /// The same as [`dot_dequant_avx_vnni`] on AVX2 alone, from a panel of halves
    /// (`[depth][2][NR]`: each quad as `quad_path::halves` splits it). Exact: `vpmaddwd`'s pair
    /// sums of uint8 × int8 cannot overflow, unlike `vpmaddubsw`'s saturating 16-bit ones.
    ///
    /// # Safety
    /// AVX2 and FMA are available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_dequant_avx2(depth: usize, a: (&[u8], usize), panel: &[u32], out: Dequant<'_>) {
        // SAFETY: `rows_of` checks its bounds.
        unsafe { rows_of::<Madd, 2, 3>(depth, a, panel, out) }
    }

    /// One quad step: `sum += Σ_i a_i · w_i` per int32 lane (A's four bytes broadcast, B's four
    /// int8 per lane).
    trait QuadDot {
        /// u32s per quad-row of the panel.
        const ROW: usize;
        /// A's broadcast quad in the form the step reads.
        type A: Copy;
        /// B's vector in the form the step reads.
        type B: Copy;
        unsafe fn a(quad: i32) -> Self::A;
        /// B's 8 columns from `p` (a quad-row of the panel, offset to the columns).
        unsafe fn b(p: *const u32) -> Self::B;
        unsafe fn step(sum: __m256i, a: Self::A, b: Self::B) -> __m256i;
    }

    struct Vnni;
    impl QuadDot for Vnni {
        const ROW: usize = NR;
        type A = __m256i;
        type B = __m256i;
        #[inline(always)]
        unsafe fn a(quad: i32) -> __m256i {
            // SAFETY: AVX (callers run with AVX2 enabled).
            unsafe { _mm256_set1_epi32(quad) }
        }
        #[inline(always)]
        unsafe fn b(p: *const u32) -> __m256i {
            // SAFETY: the caller's bounds cover 8 u32s at `p`.
            unsafe { _mm256_loadu_si256(p as *const __m256i) }
        }
        #[inline(always)]
        unsafe fn step(sum: __m256i, a: __m256i, b: __m256i) -> __m256i {
            // SAFETY: callers run inside `dot_quads_avx_vnni`, which enables AVX-VNNI.
            unsafe { _mm256_dpbusd_avx_epi32(sum, a, b) }
        }
    }

    struct Madd;
    impl QuadDot for Madd {
        const ROW: usize = 2 * NR;
        /// (a0, a2) and (a1, a3) as zero-extended 16-bit halves.
        type A = (__m256i, __m256i);
        /// (w0, w2) and (w1, w3) as sign-extended 16-bit halves.
        type B = (__m256i, __m256i);
        #[inline(always)]
        unsafe fn a(quad: i32) -> Self::A {
            // SAFETY: AVX2 (callers run inside `dot_quads_avx2`).
            unsafe {
                let q = _mm256_set1_epi32(quad);
                (_mm256_and_si256(q, _mm256_set1_epi16(0xff)), _mm256_srli_epi16::<8>(q))
            }
        }
        #[inline(always)]
        unsafe fn b(p: *const u32) -> Self::B {
            // SAFETY: AVX; the caller's bounds cover 8 u32s at `p` and at `p + NR` (the quad-row's
            // second half).
            unsafe { (_mm256_loadu_si256(p as *const __m256i), _mm256_loadu_si256(p.add(NR) as *const __m256i)) }
        }
        #[inline(always)]
        unsafe fn step(sum: __m256i, (a02, a13): Self::A, (w02, w13): Self::B) -> __m256i {
            // |a0·w0 + a2·w2| ≤ 2 · 255 · 128: each `vpmaddwd` lane is exact in int32.
            // SAFETY: as above.
            unsafe { _mm256_add_epi32(sum, _mm256_add_epi32(_mm256_madd_epi16(a02, w02), _mm256_madd_epi16(a13, w13))) }
        }
    }

    /// A [`Dequant`]'s operands as the blocks read them: the rows' scales and zero points, the
    /// panel's column operands from its first column, and C.
    struct Out {
        scale: *const f32,
        zp: *const i32,
        sw: *const f32,
        sum_w: *const i32,
        /// Null without a bias.
        bias: *const f32,
        cols: usize,
        c: *mut f32,
        ldc: usize,
    }

    impl Out {
        /// Row r's 8 columns from `col`: s_row · s_col · (sum − zp_row · Σ_k w) + bias, in the order
        /// of `quant_gemm::dequant_rows_plain`, ((x · s_row) · s_col) + bias, with row r's scale and zero
        /// point broadcast once per row by the caller (per vector, batch-1 was 3 % slower); columns
        /// past the panel's are neither read nor stored.
        ///
        /// # Safety
        /// AVX2 is enabled by the caller; r is below the rows `Dequant::check` accepted.
        #[inline(always)]
        unsafe fn store(&self, r: usize, col: usize, sum: __m256i, (vsa, vza): (__m256, __m256i)) {
            if col >= self.cols {
                return;
            }
            // SAFETY: lanes col.. below `cols` of the column slices and of C's row r (checked by
            // `Dequant::check`): whole vectors where 8 fit, masked loads and stores otherwise.
            unsafe {
                let c = self.c.add(r * self.ldc + col);
                let x = |sw: __m256, sum_w: __m256i| {
                    let x = _mm256_cvtepi32_ps(_mm256_sub_epi32(sum, _mm256_mullo_epi32(vza, sum_w)));
                    _mm256_mul_ps(_mm256_mul_ps(x, vsa), sw)
                };
                if col + 8 <= self.cols {
                    let mut y = x(_mm256_loadu_ps(self.sw.add(col)), _mm256_loadu_si256(self.sum_w.add(col) as *const __m256i));
                    if !self.bias.is_null() {
                        y = _mm256_add_ps(y, _mm256_loadu_ps(self.bias.add(col)));
                    }
                    _mm256_storeu_ps(c, y);
                } else {
                    // Lane i is live when i < cols − col (the sign bit of each lane's mask).
                    let live = _mm256_cmpgt_epi32(_mm256_set1_epi32((self.cols - col) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                    let sum_w = _mm256_maskload_epi32(self.sum_w.add(col), live);
                    let mut y = x(_mm256_maskload_ps(self.sw.add(col), live), sum_w);
                    if !self.bias.is_null() {
                        y = _mm256_add_ps(y, _mm256_maskload_ps(self.bias.add(col), live));
                    }
                    _mm256_maskstore_ps(c, live, y);
                }
            }
        }
    }

    /// The panel in column groups of `V` ymm (8·V columns), `R` rows at a time, then 3, then
    /// single rows, each block dequantized into C as it finishes.
    ///
    /// # Safety
    /// The target features `D::step` needs are enabled by the caller; 8·V divides NR.
    #[inline(always)]
    unsafe fn rows_of<D: QuadDot, const R: usize, const V: usize>(depth: usize, (a, lda): (&[u8], usize), panel: &[u32], out: Dequant<'_>) {
        let rows = out.rows.0.len();
        out.check(rows);
        assert!(!out.gelu, "the AVX2 levels run GELU over whole rows (quant_gemm::dequant_applies_gelu)");
        assert!(lda >= 4 * depth && a.len() >= rows * lda && panel.len() >= depth * D::ROW, "int8 product shapes");
        let sink = Out {
            scale: out.rows.0.as_ptr(),
            zp: out.rows.1.as_ptr(),
            sw: out.cols.0.as_ptr(),
            sum_w: out.cols.1.as_ptr(),
            bias: out.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
            cols: out.cols.0.len(),
            c: out.c.as_mut_ptr(),
            ldc: out.ldc,
        };
        let (a, panel) = (a.as_ptr(), panel.as_ptr());
        // SAFETY (all blocks): rows r < `rows` read `a[r·lda + 4·q .. +4]` for q < depth (inside
        // r·lda + lda), `panel[q·D::ROW + 8·V·g + 8·v .. +8]` for 8·V·g < NR, v < V (and, for
        // Madd, the same + NR: inside depth·D::ROW), all asserted above; `Out::store` writes
        // rows below `rows` (checked by `Dequant::check`).
        for g in 0..NR / (8 * V) {
            let (p, col) = (unsafe { panel.add(8 * V * g) }, 8 * V * g);
            if col >= sink.cols {
                break;
            }
            let mut r = 0;
            while r + R <= rows {
                unsafe { block::<D, R, V>(depth, (a, lda), p, (r, col), &sink) };
                r += R;
            }
            // Blocks of 3 before single rows: a block of one row reuses each B vector once.
            while R > 3 && r + 3 <= rows {
                unsafe { block::<D, 3, V>(depth, (a, lda), p, (r, col), &sink) };
                r += 3;
            }
            while r < rows {
                unsafe { block::<D, 1, V>(depth, (a, lda), p, (r, col), &sink) };
                r += 1;
            }
        }
    }

    /// Rows r0.. (`R` of them) × 8·V columns from `col`: R·V ymm accumulators, B's V vectors per
    /// quad-row, one A quad at a time, then each accumulator dequantized into C. The
    /// accumulators, B and A must fit the 16 ymm registers: a spilled accumulator costs a store
    /// and a reload per step (4 rows × 3 vectors of AVX-VNNI did, −20 %).
    #[inline(always)]
    unsafe fn block<D: QuadDot, const R: usize, const V: usize>(
        depth: usize,
        (a, lda): (*const u8, usize),
        panel: *const u32,
        (r0, col): (usize, usize),
        out: &Out,
    ) {
        // SAFETY: the caller's bounds (`rows_of`) cover every access; the target features are
        // the caller's.
        unsafe {
            let a = a.add(r0 * lda);
            let mut sum = [[_mm256_setzero_si256(); V]; R];
            for q in 0..depth {
                let bp = panel.add(q * D::ROW);
                let b: [D::B; V] = std::array::from_fn(|v| D::b(bp.add(8 * v)));
                for (r, row) in sum.iter_mut().enumerate() {
                    let quad = D::a((a.add(r * lda + 4 * q) as *const i32).read_unaligned());
                    for (s, bv) in row.iter_mut().zip(&b) {
                        *s = D::step(*s, quad, *bv);
                    }
                }
            }
            for (r, row) in sum.iter().enumerate() {
                let scale = (_mm256_set1_ps(*out.scale.add(r0 + r)), _mm256_set1_epi32(*out.zp.add(r0 + r)));
                for (v, s) in row.iter().enumerate() {
                    out.store(r0 + r, col + 8 * v, *s, scale);
                }
            }
        }
    }

    /// The lowest and highest value of `row` (0 included), 8 lanes at a time.
    ///
    /// # Safety
    /// AVX2 is available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn min_max(row: &[f32]) -> (f32, f32) {
        let mut chunks = row.chunks_exact(8);
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for c in &mut chunks {
            // SAFETY: 8 floats read from an 8-element chunk.
            let x = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            (lo, hi) = (_mm256_min_ps(lo, x), _mm256_max_ps(hi, x));
        }
        let (mut l, mut h) = ([0.0f32; 8], [0.0f32; 8]);
        // SAFETY: 8 floats written to 8-element arrays.
        unsafe { (_mm256_storeu_ps(l.as_mut_ptr(), lo), _mm256_storeu_ps(h.as_mut_ptr(), hi)) };
        let tail = chunks.remainder();
        (l.iter().chain(tail).fold(0.0f32, |m, &x| m.min(x)), h.iter().chain(tail).fold(0.0f32, |m, &x| m.max(x)))
    }

    /// `out[j] = clamp(round_ties_even(row[j]·inv + zp), 0, 255)`, exactly as
    /// `quant::quantize_row` computes it (multiply, then add: no fused rounding).
    ///
    /// # Safety
    /// AVX2 is available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn quantize_u8(row: &[f32], inv: f32, zp: f32, out: &mut [u8]) {
        assert!(out.len() >= row.len(), "quantized row shorter than its input");
        let (vinv, vzp) = (_mm256_set1_ps(inv), _mm256_set1_ps(zp));
        let (zero, top) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
        let mut chunks = row.chunks_exact(8);
        for (c, o) in (&mut chunks).zip(out.chunks_exact_mut(8)) {
            // SAFETY: 8 floats read from an 8-element chunk, 8 bytes stored to an 8-byte chunk.
            unsafe {
                let x = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), vinv), vzp);
                // The default rounding mode (MXCSR) is to nearest even.
                let q = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(x), zero), top);
                let words = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
                _mm_storel_epi64(o.as_mut_ptr() as *mut __m128i, _mm_packus_epi16(words, words));
            }
        }
        let done = row.len() - chunks.remainder().len();
        for (o, &x) in out[done..].iter_mut().zip(chunks.remainder()) {
            *o = (x * inv + zp).round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::pack::NR;
    use crate::quant_gemm::Dequant;

    /// A one-pass int8 kernel of this file.
    type Kernel = unsafe fn(usize, (&[u8], usize), &[u32], Dequant<'_>);

    /// The quad products in plain integer arithmetic.
    fn plain(depth: usize, a: &[u8], lda: usize, rows: usize, panel: &[u32]) -> Vec<i32> {
        let mut out = vec![0i32; rows * NR];
        for r in 0..rows {
            for j in 0..NR {
                out[r * NR + j] = (0..depth)
                    .map(|q| {
                        (0..4)
                            .map(|i| i32::from(a[r * lda + 4 * q + i]) * i32::from((panel[q * NR + j] >> (8 * i)) as u8 as i8))
                            .sum::<i32>()
                    })
                    .sum();
            }
        }
        out
    }

    #[test]
    fn both_quad_kernels_equal_the_plain_sums_at_the_extremes() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: {}: the CPU has no AVX2", crate::level::test_name());
            return;
        }
        // 11 rows (AVX-VNNI: a block of 6, one of 3, two single rows; vpmaddwd: blocks of 2 and
        // a single row), 37 quad-rows, bytes 0 and 255 against −127 and 127 (the largest
        // products, which `vpmaddubsw` would saturate), a lda wider than the depth, and 45 of
        // the panel's 48 columns (a masked last vector; C's rows are 50 apart).
        let (depth, rows, lda, cols, ldc) = (37, 11, 4 * 37 + 12, 45, 50);
        let a: Vec<u8> = (0..rows * lda).map(|i| if i % 5 == 0 { 255 } else { (i * 97 % 256) as u8 }).collect();
        let panel: Vec<u32> = (0..depth * NR)
            .map(|i| {
                let byte = |s: usize| {
                    (match (i + s) % 4 {
                        0 => 127i8,
                        1 => -127,
                        2 => ((i * 31 + s) % 255) as i8,
                        _ => -(((i + 7 * s) % 128) as i8),
                    }) as u8 as u32
                };
                byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24
            })
            .collect();
        let sums = plain(depth, &a, lda, rows, &panel);
        // The same quads as 16-bit halves, `[depth][2][NR]`.
        let mut split = vec![0u32; depth * 2 * NR];
        for q in 0..depth {
            for j in 0..NR {
                (split[q * 2 * NR + j], split[q * 2 * NR + NR + j]) = crate::quad_path::halves(panel[q * NR + j]);
            }
        }
        // Unit scales, zero points 0, no bias: C holds the sums (below 2^24, so exact in f32).
        // Then scales, zero points and a bias: the dequantization formula, in its order.
        let ones = (vec![1.0f32; rows], vec![0i32; rows], vec![1.0f32; cols], vec![0i32; cols]);
        let (sa, za): (Vec<f32>, Vec<i32>) = (0..rows).map(|r| (0.5 + r as f32 / 8.0, (r * 23 % 256) as i32)).unzip();
        let (sw, sum_w): (Vec<f32>, Vec<i32>) = (0..cols).map(|j| (0.01 * (j + 1) as f32, j as i32 * 37 - 700)).unzip();
        let bias: Vec<f32> = (0..cols).map(|j| j as f32 - 20.5).collect();
        let want = |scaled: bool| {
            let mut c = vec![f32::NAN; rows * ldc];
            for r in 0..rows {
                for j in 0..cols {
                    let x = sums[r * NR + j];
                    c[r * ldc + j] = if scaled { ((x - za[r] * sum_w[j]) as f32 * sa[r]) * sw[j] + bias[j] } else { x as f32 };
                }
            }
            c
        };
        let run = |kernel: Kernel, panel: &[u32], scaled: bool| {
            let mut c = vec![f32::NAN; rows * ldc];
            let out = if scaled {
                Dequant { rows: (&sa, &za), cols: (&sw, &sum_w), bias: Some(&bias), gelu: false, c: &mut c, ldc }
            } else {
                Dequant { rows: (&ones.0, &ones.1), cols: (&ones.2, &ones.3), bias: None, gelu: false, c: &mut c, ldc }
            };
            // SAFETY: AVX2/FMA (and AVX-VNNI for that kernel) checked by the callers below.
            unsafe { kernel(depth, (&a, lda), panel, out) };
            c
        };
        let same = |got: Vec<f32>, want: Vec<f32>, what: &str| {
            // Bit for bit, and the columns past `cols` (NaN) untouched.
            assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "{what}");
        };
        for scaled in [false, true] {
            same(run(dot_dequant_avx2, &split, scaled), want(scaled), "vpmaddwd path");
        }
        if is_x86_feature_detected!("avxvnni") {
            for scaled in [false, true] {
                same(run(dot_dequant_avx_vnni, &panel, scaled), want(scaled), "AVX-VNNI path");
            }
            eprintln!("ran: {}: vpmaddwd and AVX-VNNI", crate::level::test_name());
        } else {
            eprintln!("ran: {}: vpmaddwd; skipped AVX-VNNI: the CPU has none", crate::level::test_name());
        }
    }

    #[test]
    fn row_quantization_equals_the_scalar_formula() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: {}: the CPU has no AVX2", crate::level::test_name());
            return;
        }
        // Every length up to 19 (whole vectors and tails), halves that round to even, and values
        // past both clamps.
        for len in 0..20 {
            let row: Vec<f32> = (0..len).map(|i| [0.5, 1.5, 2.5, -3.0, 300.0, -300.0, 7.25][i % 7] + i as f32).collect();
            let (inv, zp) = (1.0, 3.0);
            let mut got = vec![9u8; len + 3];
            // SAFETY: AVX2 checked above.
            unsafe { quantize_u8(&row, inv, zp, &mut got) };
            let want: Vec<u8> = row.iter().map(|&x| (x * inv + zp).round_ties_even().clamp(0.0, 255.0) as u8).collect();
            assert_eq!(&got[..len], &want[..], "length {len}");
            assert_eq!(&got[len..], &[9, 9, 9], "bytes past the row stay");
            // SAFETY: as above.
            let (lo, hi) = unsafe { min_max(&row) };
            assert_eq!((lo, hi), row.iter().fold((0.0f32, 0.0f32), |(l, h), &x| (l.min(x), h.max(x))), "length {len}");
        }
        // Literal: 0.5 + 3 = 3.5 → 4, 1.5 + 3 = 4.5 → 4 (ties to even).
        let mut q = [0u8; 2];
        // SAFETY: as above.
        unsafe { quantize_u8(&[0.5, 1.5], 1.0, 3.0, &mut q) };
        assert_eq!(q, [4, 4]);
    }
}
