//! int8 kernels for the AVX2 levels: `quant`'s quad dot products with AVX-VNNI (`vpdpbusd` on
//! ymm, the `avx2-vnni` level) or, on AVX2 without VNNI, exactly with `vpmaddwd` on the 16-bit
//! halves the panels store for it (`quant::halves`); and the row quantization (min/max, uint8
//! rounding) 8 lanes at a time. Every function computes the same integers and bytes as the
//! AVX-512 and plain paths. Callers check the level.

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::pack::NR;

    const _: () = assert!(NR.is_multiple_of(16) && NR.is_multiple_of(24), "a panel splits into groups of 2 or 3 ymm");

    /// `acc[r·acc_ld + j] = Σ_q Σ_i a[r·lda + 4q + i] · (panel[q·NR + j] byte i as i8)` for
    /// r < rows, j < NR: the uint8 × int8 quad products of `quant::products`, on AVX-VNNI.
    ///
    /// # Safety
    /// AVX2, FMA and AVX-VNNI are available; `a` has `rows·lda` readable bytes with
    /// `lda ≥ 4·depth`; `panel` has `depth·NR` readable u32s; `acc` has `rows·acc_ld` writable
    /// i32s with `acc_ld ≥ NR`.
    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub unsafe fn dot_quads_avx_vnni(depth: usize, a: (*const u8, usize), rows: usize, panel: *const u32, acc: (*mut i32, usize)) {
        // SAFETY: the contract is `rows_of`'s; AVX-VNNI is enabled here for the inlined `Vnni`.
        unsafe { rows_of::<Vnni, 6, 2>(depth, a, rows, panel, acc) }
    }

    /// The same products as [`dot_quads_avx_vnni`] on AVX2 alone, from a panel of halves
    /// (`[depth][2][NR]`: each quad as `quant::halves` splits it). Exact: `vpmaddwd`'s pair sums
    /// of uint8 × int8 cannot overflow, unlike `vpmaddubsw`'s saturating 16-bit ones.
    ///
    /// # Safety
    /// AVX2 and FMA are available; the bounds of [`dot_quads_avx_vnni`], but `panel` has
    /// `depth·2·NR` readable u32s.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_quads_avx2(depth: usize, a: (*const u8, usize), rows: usize, panel: *const u32, acc: (*mut i32, usize)) {
        // SAFETY: the contract is `rows_of`'s.
        unsafe { rows_of::<Madd, 2, 3>(depth, a, rows, panel, acc) }
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

    /// The panel in column groups of `V` ymm (8·V columns), `R` rows at a time, then 3, then
    /// single rows.
    ///
    /// # Safety
    /// The target features `D::step` needs are enabled by the caller; the bounds of
    /// [`dot_quads_avx_vnni`]; 8·V divides NR.
    #[inline(always)]
    unsafe fn rows_of<D: QuadDot, const R: usize, const V: usize>(
        depth: usize,
        (a, lda): (*const u8, usize),
        rows: usize,
        panel: *const u32,
        (acc, acc_ld): (*mut i32, usize),
    ) {
        // SAFETY (all blocks): rows r < `rows` read `a[r·lda + 4·q .. +4]` for q < depth (inside
        // r·lda + lda), `panel[q·D::ROW + 8·V·g + 8·v .. +8]` for 8·V·g < NR, v < V (and, for
        // Madd, the same + NR: inside depth·D::ROW), and store `acc[r·acc_ld + 8·V·g + 8·v .. +8]`
        // (inside rows·acc_ld, acc_ld ≥ NR).
        for g in 0..NR / (8 * V) {
            let (p, c) = unsafe { (panel.add(8 * V * g), acc.add(8 * V * g)) };
            let mut r = 0;
            while r + R <= rows {
                unsafe { block::<D, R, V>(depth, a.add(r * lda), lda, p, c.add(r * acc_ld), acc_ld) };
                r += R;
            }
            // Blocks of 3 before single rows: a block of one row reuses each B vector once.
            while R > 3 && r + 3 <= rows {
                unsafe { block::<D, 3, V>(depth, a.add(r * lda), lda, p, c.add(r * acc_ld), acc_ld) };
                r += 3;
            }
            while r < rows {
                unsafe { block::<D, 1, V>(depth, a.add(r * lda), lda, p, c.add(r * acc_ld), acc_ld) };
                r += 1;
            }
        }
    }

    /// `R` rows × 8·V columns: R·V ymm accumulators, B's V vectors per quad-row, one A quad at a
    /// time. The accumulators, B and A must fit the 16 ymm registers: a spilled accumulator
    /// costs a store and a reload per step (4 rows × 3 vectors of AVX-VNNI did, −20 %).
    #[inline(always)]
    unsafe fn block<D: QuadDot, const R: usize, const V: usize>(depth: usize, a: *const u8, lda: usize, panel: *const u32, acc: *mut i32, acc_ld: usize) {
        // SAFETY: the caller's bounds (`rows_of`) cover every access; the target features are
        // the caller's.
        unsafe {
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
                for (v, s) in row.iter().enumerate() {
                    _mm256_storeu_si256(acc.add(r * acc_ld + 8 * v) as *mut __m256i, *s);
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
        // a single row), 37 quad-rows, bytes 0 and 255 against
        // −127 and 127 (the largest products, which `vpmaddubsw` would saturate), and a lda
        // wider than the depth.
        let (depth, rows, lda) = (37, 11, 4 * 37 + 12);
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
        let want = plain(depth, &a, lda, rows, &panel);
        // The same quads as 16-bit halves, `[depth][2][NR]`.
        let mut split = vec![0u32; depth * 2 * NR];
        for q in 0..depth {
            for j in 0..NR {
                (split[q * 2 * NR + j], split[q * 2 * NR + NR + j]) = crate::quad_path::halves(panel[q * NR + j]);
            }
        }
        let mut got = vec![i32::MIN; rows * NR];
        // SAFETY: AVX2/FMA checked above; a has rows·lda bytes with lda ≥ 4·depth, the split
        // panel depth·2·NR u32s, `got` rows·NR i32s with acc_ld = NR.
        unsafe { dot_quads_avx2(depth, (a.as_ptr(), lda), rows, split.as_ptr(), (got.as_mut_ptr(), NR)) };
        assert_eq!(got, want, "vpmaddwd path");
        if is_x86_feature_detected!("avxvnni") {
            got.fill(i32::MIN);
            // SAFETY: as above (the quad panel has depth·NR u32s), and the CPU has AVX-VNNI.
            unsafe { dot_quads_avx_vnni(depth, (a.as_ptr(), lda), rows, panel.as_ptr(), (got.as_mut_ptr(), NR)) };
            assert_eq!(got, want, "AVX-VNNI path");
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
