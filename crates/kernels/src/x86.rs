//! AVX-512 micro-kernels: an `MR`×`NR` tile of C accumulated in 24 zmm registers over packed
//! slivers of A and panels of B (fp32 `vfmadd231ps`, or bf16 pairs with `vdpbf16ps`), then the
//! fused epilogue (bias, GELU) on the way out. Callers check the CPU first (see `level::isa`).

#![allow(clippy::missing_safety_doc)]

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::avx512_ops::{gelu_poly512, gelu512};
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

    /// Adds a finished tile product (`acc`: `t.rows` rows `ld` floats apart, row-major) into C:
    /// `+=` C unless this is the first k-block; bias and epilogue on the last.
    ///
    /// # Safety
    /// AVX-512F is available; `t` addresses `t.rows` × `t.cols` writable floats of C with
    /// stride `t.ldc`, and `t.bias` (when not null) `t.cols` readable floats.
    #[inline(always)]
    pub unsafe fn finish(acc: &[f32], ld: usize, t: &Tile) {
        assert!(t.rows > 0 && acc.len() >= (t.rows - 1) * ld + t.cols && t.cols <= ld.min(NR), "epilogue tile larger than its product");
        unsafe {
            let m = masks(t.cols);
            for r in 0..t.rows {
                for (v, &mv) in m.iter().enumerate() {
                    if mv == 0 {
                        continue;
                    }
                    let dst = t.c.add(r * t.ldc + v * 16);
                    let mut x = _mm512_maskz_loadu_ps(mv, acc.as_ptr().add(r * ld + v * 16));
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
    pub unsafe fn finish_avx512(acc: &[f32], ld: usize, t: &Tile) {
        unsafe { finish(acc, ld, t) }
    }

    /// Like [`finish`] on the first and last k-block (no accumulation), writing bf16 bits
    /// (round to nearest even) into `out` (`t_rows` rows of stride `ldo`) instead of fp32 C:
    /// the output of a GEMM that only feeds the next GEMM.
    ///
    /// # Safety
    /// AVX-512F/DQ/BW/VL and AVX512-BF16 are available; `out` addresses `rows` × `cols` writable
    /// values with stride `ldo`; `bias` (when not null) has `cols` readable floats.
    #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")]
    pub unsafe fn finish_bf16(acc: &[f32], ld: usize, (rows, cols): (usize, usize), bias: *const f32, gelu: bool, out: *mut u16, ldo: usize) {
        assert!(rows > 0 && acc.len() >= (rows - 1) * ld + cols && cols <= ld.min(NR), "epilogue tile larger than its product");
        if cols == 32 {
            // A whole AMX tile's width: both halves converted by one instruction and stored as
            // one unmasked 64-byte line per row (half the stores, no masks).
            // SAFETY: per the contract, with 32 columns: each row reads acc[r·ld .. r·ld + 32]
            // (asserted) and writes out[r·ldo .. r·ldo + 32]; `bias` has 32 floats.
            unsafe {
                // Without a bias nothing is added (adding zero would turn −0 into +0).
                let biased = !bias.is_null();
                let (b0, b1) = if biased { (_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16))) } else { (_mm512_setzero_ps(), _mm512_setzero_ps()) };
                for r in 0..rows {
                    let (mut x0, mut x1) = (_mm512_loadu_ps(acc.as_ptr().add(r * ld)), _mm512_loadu_ps(acc.as_ptr().add(r * ld + 16)));
                    if biased {
                        (x0, x1) = (_mm512_add_ps(x0, b0), _mm512_add_ps(x1, b1));
                    }
                    if gelu {
                        (x0, x1) = (gelu_poly512(x0), gelu_poly512(x1));
                    }
                    let both = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(x1, x0));
                    _mm512_storeu_si512(out.add(r * ldo) as *mut __m512i, both);
                }
            }
            return;
        }
        // SAFETY: per the contract; masks cover only columns below `cols`, fully masked-off
        // vectors are skipped before any pointer to them is formed.
        unsafe {
            let m = masks(cols);
            for r in 0..rows {
                for (v, &mv) in m.iter().enumerate() {
                    if mv == 0 {
                        continue;
                    }
                    let mut x = _mm512_maskz_loadu_ps(mv, acc.as_ptr().add(r * ld + v * 16));
                    if !bias.is_null() {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mv, bias.add(v * 16)));
                    }
                    if gelu {
                        x = gelu_poly512(x);
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
            finish(&spill(&acc), NR, t);
        }
    }

    /// [`kernel_f32`] with A read in place: row `r` of the tile at `a + r·lda`, its `kc` steps
    /// contiguous (a row-major A needs no packing: each row is one stream the prefetchers
    /// follow). Rows past `t.rows` read row `t.rows − 1` again (never stored), so only the
    /// tile's own rows are touched.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn kernel_f32_rows(kc: usize, a: *const f32, lda: usize, b: *const f32, t: &Tile) {
        unsafe {
            let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r.min(t.rows.max(1) - 1) * lda));
            let mut acc = [[_mm512_setzero_ps(); V]; MR];
            for kk in 0..kc {
                let bp = b.add(kk * NR);
                let bv = [_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)), _mm512_loadu_ps(bp.add(32))];
                #[allow(clippy::needless_range_loop)]
                for r in 0..MR {
                    let av = _mm512_set1_ps(*rows[r].add(kk));
                    for v in 0..V {
                        acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
                    }
                }
            }
            finish(&spill(&acc), NR, t);
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
            finish(&spill(&acc), NR, t);
        }
    }
}
