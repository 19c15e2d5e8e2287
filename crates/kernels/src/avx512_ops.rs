//! AVX-512 element-wise ops the kernels share: e^x and the erf GELU in fp32 (the GEMM epilogues,
//! `gelu_slice`), their bf16-grade polynomials for the AMX paths, bf16 conversions, softmax
//! numerators in bf16, and the 16 × 16 transposes that feed keys to the attention (bf16 pairs for
//! the tiles, fp32 for `attention_f32`). Callers
//! check the CPU first (see `level::isa`).

#![allow(clippy::missing_safety_doc)]

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    /// e^x for x ≤ 0 (inputs below −87 give 0): 2^n · p(r), r = x − n·ln2, degree-6 Taylor
    /// polynomial (relative error < 2e-7 on |r| ≤ ln2/2).
    #[inline(always)]
    pub unsafe fn exp_neg512(x: __m512) -> __m512 {
        unsafe {
            let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
                x,
                _mm512_set1_ps(std::f32::consts::LOG2_E),
            ));
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
            let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
            let mut p = _mm512_set1_ps(1.0 / 720.0);
            for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
            }
            _mm512_scalef_ps(p, n)
        }
    }

    /// Exact-erf GELU, x·Φ(x), with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7):
    /// what transformers' `GELUActivation` (`torch.nn.functional.gelu`) computes.
    #[inline(always)]
    pub unsafe fn gelu512(x: __m512) -> __m512 {
        unsafe {
            let z = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
            // 1/d from the 14-bit reciprocal estimate and one Newton step (~23 bits): a full
            // `vdivps` takes several times longer and GELU runs on every feed-forward value.
            let d = _mm512_fmadd_ps(z, _mm512_set1_ps(0.327_591_1), _mm512_set1_ps(1.0));
            let r = _mm512_rcp14_ps(d);
            let t = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0)));
            let mut poly = _mm512_set1_ps(1.061_405_4);
            for c in [-1.453_152_1, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
                poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
            }
            poly = _mm512_mul_ps(poly, t);
            let e = exp_neg512(_mm512_mul_ps(_mm512_mul_ps(z, z), _mm512_set1_ps(-1.0)));
            let erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0));
            // erf is odd: take the sign of x.
            let sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0));
            let erf = _mm512_or_ps(erf_abs, sign);
            _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5)), _mm512_add_ps(erf, _mm512_set1_ps(1.0)))
        }
    }

    /// A 16 × 16 transpose of bf16 pairs: input row `i` is the 16 (even, odd) pairs of the 32
    /// bf16 in `rows[i]` (zeros for `None`), and output row `e` (pair `e` of every input row) goes
    /// to `out[e·ld..e·ld + 16]`.
    ///
    /// # Safety
    /// AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose_pairs16(rows: &[Option<&[u16]>; 16], out: &mut [u32], ld: usize) {
        assert!(rows.iter().flatten().all(|r| r.len() >= 32), "a transposed row holds 32 bf16");
        assert!(ld >= 16 && out.len() >= 15 * ld + 16, "transpose output too short");
        // SAFETY: each row holds 64 bytes (asserted), as `rows16` requires; the stores stay
        // inside `out` (asserted above, as `transpose16` requires).
        unsafe { transpose16(rows16(rows), out.as_mut_ptr(), ld) }
    }

    /// A 16 × 16 transpose of fp32 values: row `i` is `rows[i][..16]` (zeros for `None`), and
    /// output row `e` (element `e` of every input row) goes to `out[e·ld..e·ld + 16]`. The fp32
    /// attention's Kᵀ.
    ///
    /// # Safety
    /// AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose_f32_16(rows: &[Option<&[f32]>; 16], out: &mut [f32], ld: usize) {
        assert!(rows.iter().flatten().all(|r| r.len() >= 16), "a transposed row holds 16 values");
        assert!(ld >= 16 && out.len() >= 15 * ld + 16, "transpose output too short");
        // SAFETY: each row holds 64 bytes (asserted), as `rows16` requires; the stores stay
        // inside `out` (asserted above, as `transpose16` requires).
        unsafe { transpose16(rows16(rows), out.as_mut_ptr() as *mut u32, ld) }
    }

    /// The first 64 bytes of each row (zeros for `None`), the input of [`transpose16`].
    ///
    /// # Safety
    /// AVX-512F is available; every given row holds at least 64 bytes.
    #[inline(always)]
    unsafe fn rows16<T>(rows: &[Option<&[T]>; 16]) -> [__m512i; 16] {
        // Plain loops, not `std::array::from_fn`: a closure here does not take the caller's
        // target features, so its intrinsics stay out-of-line calls (see `transpose16`).
        // SAFETY: unaligned 64-byte loads from rows of at least 64 bytes (the caller's bound).
        unsafe {
            let mut r = [_mm512_setzero_si512(); 16];
            for (v, row) in r.iter_mut().zip(rows) {
                if let Some(row) = row {
                    *v = _mm512_loadu_si512(row.as_ptr() as *const __m512i);
                }
            }
            r
        }
    }

    /// The 16 × 16 transpose of 32-bit words behind both: word `e` of `r[i]` goes to
    /// `out[e·ld + i]`. Four stages of in-register shuffles: 32-bit and 64-bit interleaves within
    /// 128-bit lanes (4 × 4 transposes), then two rounds of lane shuffles.
    ///
    /// # Safety
    /// AVX-512F is available; `out` is valid for writes of `15·ld + 16` words.
    #[inline(always)]
    unsafe fn transpose16(r: [__m512i; 16], out: *mut u32, ld: usize) {
        // Plain loops, not `std::array::from_fn`: its closures do not take the target features of
        // the function they are written in, so the unpacks in them were out-of-line calls (32 per
        // transpose, ~3 % of int8 inference under `perf`, session 20).
        // SAFETY: shuffles in registers; each store writes 16 words at e·ld ≤ 15·ld (the caller's
        // bound).
        unsafe {
            // Per 128-bit lane L of rows a, b: [a0 b0 a1 b1] and [a2 b2 a3 b3] (element 4L + c).
            let mut t = [_mm512_setzero_si512(); 16];
            for i in (0..16).step_by(2) {
                t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
            }
            // u[4k + c], lane L: element 4L + c of rows 4k..4k+4.
            let mut u = [_mm512_setzero_si512(); 16];
            for k in 0..4 {
                for h in 0..2 {
                    let (x, y) = (t[4 * k + h], t[4 * k + 2 + h]);
                    u[4 * k + 2 * h] = _mm512_unpacklo_epi64(x, y);
                    u[4 * k + 2 * h + 1] = _mm512_unpackhi_epi64(x, y);
                }
            }
            // Gather lane L of u[c], u[4 + c], u[8 + c], u[12 + c] into output row 4L + c.
            for c in 0..4 {
                let x0 = _mm512_shuffle_i32x4::<0x88>(u[c], u[4 + c]);
                let x1 = _mm512_shuffle_i32x4::<0xdd>(u[c], u[4 + c]);
                let y0 = _mm512_shuffle_i32x4::<0x88>(u[8 + c], u[12 + c]);
                let y1 = _mm512_shuffle_i32x4::<0xdd>(u[8 + c], u[12 + c]);
                _mm512_storeu_si512(out.add(c * ld) as *mut __m512i, _mm512_shuffle_i32x4::<0x88>(x0, y0));
                _mm512_storeu_si512(out.add((4 + c) * ld) as *mut __m512i, _mm512_shuffle_i32x4::<0x88>(x1, y1));
                _mm512_storeu_si512(out.add((8 + c) * ld) as *mut __m512i, _mm512_shuffle_i32x4::<0xdd>(x0, y0));
                _mm512_storeu_si512(out.add((12 + c) * ld) as *mut __m512i, _mm512_shuffle_i32x4::<0xdd>(x1, y1));
            }
        }
    }

    /// GELU for results that are rounded to bf16 or quantized to int8 next (the AMX path's bits
    /// epilogue, the int8 dequantization): x·Φ(x) with Φ(x) = 1/2 + x·Q((x/4.5)²) on x clamped to
    /// ±4.5, Q a degree-8 polynomial fitted by `scripts/fit_bf16_polys.py`, and 0 below −4.5 (where
    /// GELU is within 1.5e-5 of 0, and x·Φ(−4.5) would grow with |x|: 1e-4 at x = −30). |error|
    /// < 1e-4 everywhere against the erf definition, far below bf16's rounding (4e-3 near 1) and
    /// int8's (a row's range over 255), in 16 instructions where [`gelu512`] takes ~30. AVX-512F only.
    #[inline(always)]
    pub unsafe fn gelu_poly512(x: __m512) -> __m512 {
        const C: f32 = 4.5;
        const Q: [f32; 9] =
            [0.398_712_58, -1.336_188_3, 3.930_522, -8.615_859, 13.691_578, -15.158_131, 10.970_036, -4.628_065, 0.858_507_16];
        unsafe {
            let xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-C)), _mm512_set1_ps(C));
            let y = _mm512_mul_ps(xc, _mm512_set1_ps(1.0 / C));
            let u = _mm512_mul_ps(y, y);
            let mut q = _mm512_set1_ps(Q[8]);
            for &c in Q[..8].iter().rev() {
                q = _mm512_fmadd_ps(q, u, _mm512_set1_ps(c));
            }
            // "Not less than" keeps NaN lanes (unordered), so a NaN input still shows.
            let live = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, _mm512_set1_ps(-C));
            _mm512_maskz_mul_ps(live, x, _mm512_fmadd_ps(xc, q, _mm512_set1_ps(0.5)))
        }
    }

    /// 2^t for results that are rounded to bf16 next (the AMX attention's probabilities):
    /// 2^n · P(t − n), n = round(t), P of degree 4 fitted by `scripts/fit_bf16_polys.py`
    /// (relative error < 3e-6, against bf16's 2e-3). Inputs below −150 give 0.
    #[inline(always)]
    pub unsafe fn exp2_bf16_512(t: __m512) -> __m512 {
        const P: [f32; 5] = [0.999_999_3, 0.693_121_8, 0.240_247_44, 0.055_917_86, 0.009_570_095];
        unsafe {
            let t = _mm512_max_ps(t, _mm512_set1_ps(-150.0));
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
            let f = _mm512_sub_ps(t, n);
            let mut p = _mm512_set1_ps(P[4]);
            for &c in P[..4].iter().rev() {
                p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
            }
            _mm512_scalef_ps(p, n)
        }
    }

    /// `src` → bf16 bits in `dst` (round to nearest even, as `vcvtneps2bf16` does), 16 at a time.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    pub unsafe fn to_bf16(src: &[f32], dst: &mut [u16]) {
        unsafe {
            let n = src.len().min(dst.len());
            let mut i = 0;
            while i + 16 <= n {
                let b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr().add(i)));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, std::mem::transmute::<__m256bh, __m256i>(b));
                i += 16;
            }
            for j in i..n {
                dst[j] = half::bf16::from_f32(src[j]).to_bits();
            }
        }
    }

    /// The numerators of the softmax of `scale · row` (`scale > 0`), e^(scale·(x − max)), written
    /// as bf16 bits into `out[..row.len()]` and zeros into the rest of `out` (the padding keys of
    /// the AMX attention); returns 1 / their sum, which the caller applies to the product P·V
    /// instead of to every probability (bf16's rounding is relative, so rounding the numerators
    /// loses nothing against rounding the quotients). Two passes: the maximum, then the
    /// exponentials, their sum and the conversion.
    ///
    /// # Safety
    /// AVX-512F/DQ/BW/VL and AVX512-BF16 are available; `out.len() ≥ row.len() ≥ 1`.
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")]
    pub unsafe fn softmax_numerators_bf16(row: &[f32], scale: f32, out: &mut [u16]) -> f32 {
        let n = row.len();
        assert!(n >= 1 && out.len() >= n, "softmax row of {n} into {} values", out.len());
        let mask = |i: usize| -> __mmask16 { if i + 16 <= n { 0xffff } else { ((1u32 << (n - i)) - 1) as u16 } };
        // SAFETY: every access is at `i < n` with a mask covering only lanes below `n` (and
        // `out.len() ≥ n`).
        let sum = unsafe {
            let p = row.as_ptr();
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in (0..n).step_by(16) {
                mx = _mm512_mask_max_ps(mx, mask(i), mx, _mm512_maskz_loadu_ps(mask(i), p.add(i)));
            }
            // max(scale·x) = scale·max(x) for scale > 0; e^(scale·(x − max)) = 2^(x·c − max·c)
            // with c = scale·log2(e), one fused multiply-subtract per vector.
            let c = scale * std::f32::consts::LOG2_E;
            let vc = _mm512_set1_ps(c);
            let shift = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * c);
            let mut sum = _mm512_setzero_ps();
            let o = out.as_mut_ptr();
            for i in (0..n).step_by(16) {
                let e = exp2_bf16_512(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask(i), p.add(i)), vc, shift));
                sum = _mm512_mask_add_ps(sum, mask(i), sum, e);
                let b = _mm512_cvtneps_pbh(e);
                _mm256_mask_storeu_epi16(o.add(i) as *mut i16, mask(i), std::mem::transmute::<__m256bh, __m256i>(b));
            }
            _mm512_reduce_add_ps(sum)
        };
        out[n..].fill(0);
        1.0 / sum
    }

    /// `scale · src` → bf16 bits in `dst` (round to nearest even), 16 at a time.
    ///
    /// # Safety
    /// AVX-512F/BW/VL and AVX512-BF16 are available.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vl")]
    pub unsafe fn scale_to_bf16(src: &[f32], scale: f32, dst: &mut [u16]) {
        let n = src.len().min(dst.len());
        let mask = |i: usize| -> __mmask16 { if i + 16 <= n { 0xffff } else { ((1u32 << (n - i)) - 1) as u16 } };
        // SAFETY: every access is at `i < n` with a mask covering only lanes below `n`.
        unsafe {
            let s = _mm512_set1_ps(scale);
            for i in (0..n).step_by(16) {
                let b = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask(i), src.as_ptr().add(i)), s));
                _mm256_mask_storeu_epi16(dst.as_mut_ptr().add(i) as *mut i16, mask(i), std::mem::transmute::<__m256bh, __m256i>(b));
            }
        }
    }

    /// GELU over a slice, 16 lanes at a time.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn gelu_slice(x: &mut [f32]) {
        unsafe {
            let mut chunks = x.chunks_exact_mut(16);
            for c in &mut chunks {
                _mm512_storeu_ps(c.as_mut_ptr(), gelu512(_mm512_loadu_ps(c.as_ptr())));
            }
            let rest = chunks.into_remainder();
            if !rest.is_empty() {
                let m = ((1u32 << rest.len()) - 1) as u16;
                let v = gelu512(_mm512_maskz_loadu_ps(m, rest.as_ptr()));
                _mm512_mask_storeu_ps(rest.as_mut_ptr(), m, v);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::arch::x86_64::*;

    use super::*;

    /// `f` applied 16 lanes at a time to the whole 16-multiple prefix of `xs`.
    #[target_feature(enable = "avx512f,avx512dq")]
    unsafe fn map16(xs: &[f32], f: unsafe fn(__m512) -> __m512) -> Vec<f32> {
        let mut out = vec![0.0f32; xs.len() / 16 * 16];
        for (src, dst) in xs.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
            // SAFETY: 16 lanes read from and written to 16-element chunks; AVX-512F per the contract.
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), f(_mm512_loadu_ps(src.as_ptr()))) };
        }
        out
    }

    #[test]
    fn gelu_and_exp2_polynomials_stay_within_their_stated_errors() {
        if crate::level::isa() < crate::level::Isa::Avx512 {
            eprintln!("skipped: {}: the polynomials run on the AVX-512 levels", crate::level::test_name());
            return;
        }
        // GELU against the erf definition (|error| < 1e-4) on [−20, 20] and far out on both
        // sides, 0 below −4.5 (regression: x·Φ(−4.5) gave 1.04e-4 for gelu(−30) in the int8
        // dequantization).
        let far = [-1e6f32, -1e3, -100.0, -30.0, 30.0, 100.0, 1e3, 1e4];
        let xs: Vec<f32> = (0..=4000).map(|i| -20.0 + i as f32 * 0.01).collect();
        // SAFETY: AVX-512F/DQ are present (checked above).
        let out = unsafe { map16(&xs, |x| gelu_poly512(x)) };
        assert_eq!(out.len(), 4000, "whole vectors: up to 19.99");
        // SAFETY: as above.
        let far_out = unsafe { map16(&[far.as_slice(), &[0.0; 8]].concat(), |x| gelu_poly512(x)) };
        for (x, g) in xs[..out.len()].iter().chain(&far).zip(out.iter().chain(&far_out)) {
            // Above 20, x·Φ(4.5)'s error grows with x: 5e-6 of it (GELU is x there).
            assert!((g - crate::ops::gelu_scalar(*x)).abs() < 1e-4 * (x / 20.0).max(1.0), "gelu({x}) = {g}");
        }
        assert!(far_out[..4].iter().all(|&g| g == 0.0), "gelu below −4.5 is 0: {far_out:?}");
        // SAFETY: as above.
        let nan = unsafe { map16(&[f32::NAN; 16], |x| gelu_poly512(x)) };
        assert!(nan.iter().all(|g| g.is_nan()), "a NaN input stays NaN");
        // 2^t against powf: relative error < 3e-6 (literal: 2^-1.5 = 0.35355339, 2^3 = 8).
        let ts: Vec<f32> = [-1.5, 3.0, -200.0, 0.0].into_iter().chain((0..3200).map(|i| -30.0 + i as f32 * 0.01)).collect();
        // SAFETY: as above.
        let e = unsafe { map16(&ts, |t| exp2_bf16_512(t)) };
        assert!(e.len() >= 3200);
        for (t, v) in ts.iter().zip(&e) {
            if *t < -150.0 {
                assert_eq!(*v, 0.0, "2^{t}");
            } else {
                assert!((v / t.exp2() - 1.0).abs() < 3e-6, "2^{t} = {v}");
            }
        }
        assert!((e[0] - 0.353_553_4).abs() < 1e-6 && (e[1] - 8.0).abs() < 3e-5 && e[3] == e[3].clamp(0.999_99, 1.000_01));
    }

    #[test]
    fn pair_transpose_moves_pair_e_of_row_i_to_row_e_column_i() {
        if !crate::level::isa().bf16() {
            eprintln!("skipped: {}: the transpose runs on the AMX level only (needs AVX-512)", crate::level::test_name());
            return;
        }
        // Row i holds bf16 bits 100·i + m at position m; row 5 is missing (zeros).
        let rows: Vec<Vec<u16>> = (0..16).map(|i| (0..32).map(|m| (100 * i + m) as u16).collect()).collect();
        let refs: [Option<&[u16]>; 16] = std::array::from_fn(|i| (i != 5).then(|| rows[i].as_slice()));
        let ld = 20;
        let mut out = vec![u32::MAX; 15 * ld + 16];
        // SAFETY: AVX-512F is present (the bf16 levels need it).
        unsafe { transpose_pairs16(&refs, &mut out, ld) };
        for e in 0..16 {
            for i in 0..16 {
                let want = if i == 5 { 0 } else { (100 * i + 2 * e) as u32 | ((100 * i + 2 * e + 1) as u32) << 16 };
                assert_eq!(out[e * ld + i], want, "pair {e} of row {i}");
            }
            // The gap between output rows is untouched.
            assert!(out[e * ld + 16..(e * ld + ld).min(out.len())].iter().all(|&x| x == u32::MAX));
        }
    }

    #[test]
    fn f32_transpose_moves_element_e_of_row_i_to_row_e_column_i() {
        if crate::level::isa() < crate::level::Isa::Avx512 {
            eprintln!("skipped: {}: the fp32 transpose runs on the AVX-512 levels only", crate::level::test_name());
            return;
        }
        // Row i holds 100·i + m at position m (17 values: the 17th is never read); row 11 is
        // missing (zeros).
        let rows: Vec<Vec<f32>> = (0..16).map(|i| (0..17).map(|m| (100 * i + m) as f32).collect()).collect();
        let refs: [Option<&[f32]>; 16] = std::array::from_fn(|i| (i != 11).then(|| rows[i].as_slice()));
        let ld = 19;
        let mut out = vec![f32::NAN; 15 * ld + 16];
        // SAFETY: AVX-512F is present (the AVX-512 levels need it).
        unsafe { transpose_f32_16(&refs, &mut out, ld) };
        for e in 0..16 {
            for i in 0..16 {
                let want = if i == 11 { 0.0 } else { (100 * i + e) as f32 };
                assert_eq!(out[e * ld + i], want, "element {e} of row {i}");
            }
            assert!(out[e * ld + 16..(e * ld + ld).min(out.len())].iter().all(|x| x.is_nan()), "wrote between output rows");
        }
    }
}
