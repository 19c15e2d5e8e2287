//! AVX2+FMA micro-kernel: the same `MR`×`NR` tile as the AVX-512 kernel over the same packed
//! slivers and panels, computed as four 4 × 24 blocks (12 ymm accumulators each, so that they,
//! three B vectors and one broadcast A value fit the 16 ymm registers), spilled to a row-major
//! tile for the epilogue. Callers check the CPU first (see `level::isa`).

#![allow(clippy::missing_safety_doc)]

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use crate::pack::{MR, NR};

    /// Rows and columns of one register block, and its 8-lane vectors per row.
    const R: usize = 4;
    const C: usize = 24;
    const V: usize = C / 8;

    /// `kc` steps of `acc`[MR, NR] = A[MR, kc] · B[kc, NR] from packed fp32 slivers and panels.
    ///
    /// # Safety
    /// AVX2 and FMA are available; `a` has `kc·MR` and `b` `kc·NR` readable floats.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel_f32(kc: usize, a: *const f32, b: *const f32, acc_out: &mut [f32; MR * NR]) {
        // SAFETY: per the contract, every load is at `kk·NR + j` (j < NR) of B and `kk·MR + r`
        // (r < MR) of A for kk < kc; the stores stay in `acc_out`'s MR × NR floats.
        unsafe {
            for rg in 0..MR / R {
                for ch in 0..NR / C {
                    let mut acc = [[_mm256_setzero_ps(); V]; R];
                    for kk in 0..kc {
                        let bp = b.add(kk * NR + ch * C);
                        let bv = [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)), _mm256_loadu_ps(bp.add(16))];
                        let ap = a.add(kk * MR + rg * R);
                        #[allow(clippy::needless_range_loop)]
                        for r in 0..R {
                            let av = _mm256_broadcast_ss(&*ap.add(r));
                            for v in 0..V {
                                acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
                            }
                        }
                    }
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..R {
                        for v in 0..V {
                            _mm256_storeu_ps(acc_out.as_mut_ptr().add((rg * R + r) * NR + ch * C + v * 8), acc[r][v]);
                        }
                    }
                }
            }
        }
    }
}
