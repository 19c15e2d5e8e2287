//! AVX-512 micro-kernels: an `MR`×`NR` tile of C accumulated in 24 zmm registers over packed
//! slivers of A and panels of B (fp32 `vfmadd231ps`, or bf16 pairs with `vdpbf16ps`), then the
//! fused epilogue (bias, GELU) on the way out. Callers check the CPU first (see `level::isa`).

#![allow(clippy::missing_safety_doc)]

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::gemm::Epilogue;
    use crate::pack::{MR, NR};

    const V: usize = NR / 16;

    /// Where one tile of C lives and what to do when it is stored.
    pub struct Tile {
        pub c: *mut f32,
        pub ldc: usize,
        /// Valid rows (≤ MR) and columns (≤ NR) of this tile.
        pub rows: usize,
        pub cols: usize,
        /// First k-block: start from zero instead of C.
        pub first: bool,
        /// Last k-block: add bias and apply the epilogue.
        pub last: bool,
        /// Bias of this tile's first column, or null.
        pub bias: *const f32,
        pub epilogue: Epilogue,
    }

    #[inline(always)]
    fn masks(cols: usize) -> [__mmask16; V] {
        let mut m = [0u16; V];
        for (v, mv) in m.iter_mut().enumerate() {
            let n = cols.saturating_sub(v * 16).min(16);
            *mv = if n == 16 { 0xffff } else { ((1u32 << n) - 1) as u16 };
        }
        m
    }

    /// Adds a finished tile product (`acc`: `t.rows` rows of `NR` floats, row-major) into C:
    /// `+=` C unless this is the first k-block; bias and epilogue on the last.
    ///
    /// # Safety
    /// AVX-512F is available; `t` addresses `t.rows` × `t.cols` writable floats of C with
    /// stride `t.ldc`, and `t.bias` (when not null) `t.cols` readable floats.
    #[inline(always)]
    pub unsafe fn finish(acc: &[f32], t: &Tile) {
        assert!(acc.len() >= t.rows * NR && t.cols <= NR, "epilogue tile larger than its product");
        unsafe {
            let m = masks(t.cols);
            for r in 0..t.rows {
                for (v, &mv) in m.iter().enumerate() {
                    if mv == 0 {
                        continue;
                    }
                    let dst = t.c.add(r * t.ldc + v * 16);
                    let mut x = _mm512_loadu_ps(acc.as_ptr().add(r * NR + v * 16));
                    if !t.first {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mv, dst));
                    }
                    if t.last {
                        if !t.bias.is_null() {
                            x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mv, t.bias.add(v * 16)));
                        }
                        if t.epilogue == Epilogue::Gelu {
                            x = gelu512(x);
                        }
                    }
                    _mm512_mask_storeu_ps(dst, mv, x);
                }
            }
        }
    }

    /// [`finish`] compiled for AVX-512 as a function of its own, for callers that are not (the
    /// AMX driver): inlined into them, its intrinsics would become calls.
    ///
    /// # Safety
    /// As for [`finish`].
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn finish_avx512(acc: &[f32], t: &Tile) {
        unsafe { finish(acc, t) }
    }

    /// Like [`finish`] on the first and last k-block (no accumulation), writing bf16 bits
    /// (round to nearest even) into `out` (`t_rows` rows of stride `ldo`) instead of fp32 C:
    /// the output of a GEMM that only feeds the next GEMM.
    ///
    /// # Safety
    /// AVX-512F/DQ/BW/VL and AVX512-BF16 are available; `out` addresses `rows` × `cols` writable
    /// values with stride `ldo`; `bias` (when not null) has `cols` readable floats.
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")]
    pub unsafe fn finish_bf16(acc: &[f32], (rows, cols): (usize, usize), bias: *const f32, gelu: bool, out: *mut u16, ldo: usize) {
        assert!(acc.len() >= rows * NR && cols <= NR, "epilogue tile larger than its product");
        // SAFETY: per the contract; masks cover only columns below `cols`, fully masked-off
        // vectors are skipped before any pointer to them is formed.
        unsafe {
            let m = masks(cols);
            for r in 0..rows {
                for (v, &mv) in m.iter().enumerate() {
                    if mv == 0 {
                        continue;
                    }
                    let mut x = _mm512_loadu_ps(acc.as_ptr().add(r * NR + v * 16));
                    if !bias.is_null() {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mv, bias.add(v * 16)));
                    }
                    if gelu {
                        x = gelu512(x);
                    }
                    let b = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(x));
                    _mm256_mask_storeu_epi16(out.add(r * ldo + v * 16) as *mut i16, mv, b);
                }
            }
        }
    }

    /// The accumulator registers as a row-major `MR`×`NR` tile (constant indices only, so the
    /// callers' accumulators stay in registers until here).
    #[inline(always)]
    unsafe fn spill(acc: &[[__m512; V]; MR]) -> [f32; MR * NR] {
        unsafe {
            let mut out = [0.0f32; MR * NR];
            #[allow(clippy::needless_range_loop)]
            for r in 0..MR {
                for v in 0..V {
                    _mm512_storeu_ps(out.as_mut_ptr().add(r * NR + v * 16), acc[r][v]);
                }
            }
            out
        }
    }

    /// `kc` steps of C[MR, NR] += A[MR, kc] · B[kc, NR] from packed fp32 operands.
    ///
    /// The accumulators start at zero and are only indexed by constants (all loops but `kk`
    /// unroll), so they live in 24 zmm registers; C is touched once, in [`finish`].
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn kernel_f32(kc: usize, a: *const f32, b: *const f32, t: &Tile) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); V]; MR];
            for kk in 0..kc {
                let bp = b.add(kk * NR);
                let bv = [_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)), _mm512_loadu_ps(bp.add(32))];
                let ap = a.add(kk * MR);
                #[allow(clippy::needless_range_loop)]
                for r in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(r));
                    for v in 0..V {
                        acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
                    }
                }
            }
            finish(&spill(&acc), t);
        }
    }

    /// `kcp` pair-steps of C[MR, NR] += A · B from packed bf16 pairs, fp32 accumulation.
    #[target_feature(enable = "avx512f,avx512dq,avx512bf16")]
    pub unsafe fn kernel_bf16(kcp: usize, a: *const u32, b: *const u32, t: &Tile) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); V]; MR];
            for q in 0..kcp {
                let bp = b.add(q * NR) as *const __m512i;
                let bv: [__m512bh; V] = [
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp)),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(1))),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(2))),
                ];
                let ap = a.add(q * MR);
                #[allow(clippy::needless_range_loop)]
                for r in 0..MR {
                    let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*ap.add(r) as i32));
                    for v in 0..V {
                        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
                    }
                }
            }
            finish(&spill(&acc), t);
        }
    }

    /// e^x for x ≤ 0 (inputs below −87 give 0): 2^n · p(r), r = x − n·ln2, degree-6 Taylor
    /// polynomial (relative error < 2e-7 on |r| ≤ ln2/2).
    #[inline(always)]
    pub unsafe fn exp_neg512(x: __m512) -> __m512 {
        unsafe {
            let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
            );
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

    /// Softmax of `scale · row` (`scale > 0`; exponentials left in `row`), written as bf16 bits into `out[..row.len()]`
    /// and zeros into the rest of `out` (the padding keys of the AMX attention): one pass for the
    /// maximum, one for the exponentials and their sum, one to scale and convert.
    ///
    /// # Safety
    /// AVX-512F/DQ/BW/VL and AVX512-BF16 are available; `out.len() ≥ row.len() ≥ 1`.
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")]
    pub unsafe fn softmax_to_bf16(row: &mut [f32], scale: f32, out: &mut [u16]) {
        let n = row.len();
        assert!(n >= 1 && out.len() >= n, "softmax row of {n} into {} values", out.len());
        let mask = |i: usize| -> __mmask16 { if i + 16 <= n { 0xffff } else { ((1u32 << (n - i)) - 1) as u16 } };
        // SAFETY: every access is at `i < n` with a mask covering only lanes below `n` (and
        // `out.len() ≥ n`).
        unsafe {
            let p = row.as_mut_ptr();
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in (0..n).step_by(16) {
                mx = _mm512_mask_max_ps(mx, mask(i), mx, _mm512_maskz_loadu_ps(mask(i), p.add(i)));
            }
            // max(scale·x) = scale·max(x) for scale > 0.
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
            let vscale = _mm512_set1_ps(scale);
            let mut sum = _mm512_setzero_ps();
            for i in (0..n).step_by(16) {
                let e = exp_neg512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask(i), p.add(i)), max), vscale));
                sum = _mm512_mask_add_ps(sum, mask(i), sum, e);
                _mm512_mask_storeu_ps(p.add(i), mask(i), e);
            }
            let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
            let o = out.as_mut_ptr();
            for i in (0..n).step_by(16) {
                let b = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask(i), p.add(i)), inv));
                _mm256_mask_storeu_epi16(o.add(i) as *mut i16, mask(i), std::mem::transmute::<__m256bh, __m256i>(b));
            }
        }
        out[n..].fill(0);
    }

    /// The int8 epilogue for a block of rows (`quant`): for row r (scale, zero point in `rows`)
    /// and column j < `cols`, c[r·ldc + j] = sa·sw[j]·(acc[r·acc_ld + j] − za·sum_w[j]) + bias[j],
    /// then GELU when `gelu`. One call per block, not per row: the row loop runs here.
    ///
    /// # Safety
    /// AVX-512F/DQ are available.
    #[target_feature(enable = "avx512f,avx512dq")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn dequant_rows(
        (acc, acc_ld): (&[i32], usize),
        (scale, zp): (&[f32], &[i32]),
        (sw, sum_w): (&[f32], &[i32]),
        bias: Option<&[f32]>,
        gelu: bool,
        (c, ldc): (&mut [f32], usize),
    ) {
        let (rows, n) = (scale.len().min(zp.len()), sw.len());
        assert!(sum_w.len() >= n && bias.is_none_or(|b| b.len() >= n), "dequant column shapes");
        assert!(rows == 0 || (acc.len() >= (rows - 1) * acc_ld + n && c.len() >= (rows - 1) * ldc + n), "dequant row shapes");
        // SAFETY: every access is at row r < rows, column j < n, under a mask of the lanes below
        // `n`; the asserts bound the last row of `acc` and `c` and every column slice.
        unsafe {
            for r in 0..rows {
                let (vsa, vza) = (_mm512_set1_ps(scale[r]), _mm512_set1_epi32(zp[r]));
                let (a_row, c_row) = (acc.as_ptr().add(r * acc_ld), c.as_mut_ptr().add(r * ldc));
                for j in (0..n).step_by(16) {
                    let m: __mmask16 = if j + 16 <= n { 0xffff } else { ((1u32 << (n - j)) - 1) as u16 };
                    let a = _mm512_maskz_loadu_epi32(m, a_row.add(j));
                    let corr = _mm512_mullo_epi32(vza, _mm512_maskz_loadu_epi32(m, sum_w.as_ptr().add(j)));
                    let x = _mm512_cvtepi32_ps(_mm512_sub_epi32(a, corr));
                    let mut y = _mm512_mul_ps(_mm512_mul_ps(x, vsa), _mm512_maskz_loadu_ps(m, sw.as_ptr().add(j)));
                    if let Some(b) = bias {
                        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, b.as_ptr().add(j)));
                    }
                    if gelu {
                        y = gelu512(y);
                    }
                    _mm512_mask_storeu_ps(c_row.add(j), m, y);
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

    /// The int32 products of `rows` quantized rows of A (uint8, `lda` bytes each) with one int8
    /// quad panel (`depth` quad-rows of NR = 48 columns) into `acc` (`rows` rows of `acc_ld`):
    /// `vpdpbusd` (AVX512-VNNI) multiplies four uint8 of A by four int8 of B and adds them to an
    /// int32 lane, which is the quad layout `QuantB` packs. Exact (no saturation), like the plain
    /// loops of `quant::dot_rows_serial` it replaces on CPUs with VNNI and no AMX.
    ///
    /// # Safety
    /// AVX-512F and AVX512-VNNI are available; `a` has `rows·lda` readable bytes with
    /// `lda ≥ 4·depth`; `panel` has `depth·NR` readable u32s; `acc` has `rows·acc_ld` writable
    /// i32s with `acc_ld ≥ NR`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dot_quads_vnni(depth: usize, (a, lda): (*const u8, usize), rows: usize, panel: *const u32, (acc, acc_ld): (*mut i32, usize)) {
        // SAFETY (all blocks): per the contract, rows r < `rows` read `a[r·lda + 4·q .. +4]`
        // for q < depth (inside r·lda + lda), `panel[q·NR + 16·v .. +16]` for v < 3 (inside
        // depth·NR), and store `acc[r·acc_ld + 16·v .. +16]` (inside rows·acc_ld, acc_ld ≥ 48).
        let mut r = 0;
        while r + 8 <= rows {
            unsafe { block::<8>(depth, a.add(r * lda), lda, panel, acc.add(r * acc_ld), acc_ld) };
            r += 8;
        }
        while r < rows {
            unsafe { block::<1>(depth, a.add(r * lda), lda, panel, acc.add(r * acc_ld), acc_ld) };
            r += 1;
        }
    }

    /// `R` rows × 48 columns: 3·R zmm accumulators (24 for R = 8), three B vectors, one
    /// broadcast quad of A.
    #[inline(always)]
    unsafe fn block<const R: usize>(depth: usize, a: *const u8, lda: usize, panel: *const u32, acc: *mut i32, acc_ld: usize) {
        const V: usize = NR / 16;
        // SAFETY: the caller's bounds (dot_quads_vnni) cover every access; AVX-512F/VNNI are
        // enabled by the caller's target features.
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
            for (r, row) in sum.iter().enumerate() {
                for (v, s) in row.iter().enumerate() {
                    _mm512_storeu_si512(acc.add(r * acc_ld + 16 * v) as *mut __m512i, *s);
                }
            }
        }
    }
}
