//! AMX-BF16 level: detection (CPUID, XCR0, the Linux tile-state permission), the per-thread tile
//! configuration and the tile micro-kernel, C[32, 32] = A[32, k] · B[k, 32] with `tdpbf16ps`,
//! written with `asm!` because stable Rust has no AMX intrinsics. The GEMM driver that feeds it
//! lives in `gemm.rs`; the epilogue (bias, GELU, accumulate) is the AVX-512 one in `x86.rs`.
//!
//! Layouts: A is row-major bf16 (`lda` elements per row, k padded to a multiple of 32 with zeros);
//! B is the same pair-interleaved panel the AVX512-BF16 kernel reads (`[k/2][48]` `u32` pairs,
//! the even k in the low half), with its depth padded to a multiple of 16 pairs. One B tile is 16
//! pair-rows of 16 columns, read with a row stride of 48 pairs (192 bytes), so no other packing
//! is needed for the tiles.

#![allow(clippy::missing_safety_doc)]

/// Rows of C per tile kernel call (one tile's rows).
pub const TILE_ROWS: usize = 16;
/// k values per tile step (one A tile row: 64 bytes of bf16).
pub const TILE_K: usize = 32;

#[cfg(target_arch = "x86_64")]
pub use imp::*;

#[cfg(not(target_arch = "x86_64"))]
pub fn usable() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
pub fn int8_usable() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::asm;
    use std::cell::Cell;

    use super::TILE_ROWS;

    /// Linux's `arch_prctl` request for permission to use an extended state component, and the
    /// component number of AMX's tile data (arch/x86/include/uapi/asm/prctl.h, asm/fpu/types.h).
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;

    /// Whether this process may run AMX-BF16: the CPU reports AMX-TILE and AMX-BF16, and the OS
    /// granted the tile data state. Called once (from `level::detected_isa`); on any "no" the kernels fall
    /// back to the next level instead of faulting on the first tile instruction.
    pub fn usable() -> bool {
        // CPUID leaf 7 exists on every x86-64 CPU that has AVX-512 (the caller checks first).
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        let (amx_bf16, amx_tile) = (leaf7.edx >> 22 & 1 == 1, leaf7.edx >> 24 & 1 == 1);
        if !(amx_bf16 && amx_tile) {
            return false;
        }
        // SAFETY: a raw syscall with integer arguments; on kernels before 5.16 it fails with
        // EINVAL, which is a plain "no".
        let granted = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } == 0;
        // The OS must also have enabled the tile state in XCR0 (bits 17 and 18).
        // SAFETY: XGETBV with ECX = 0 is valid whenever OSXSAVE is set, which AVX-512 requires.
        let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
        granted && xcr0 & (0b11 << 17) == 0b11 << 17
    }

    /// Whether AMX-INT8 (`tdpbusd`) is usable too: [`usable`] and the CPU reports AMX-INT8.
    pub fn int8_usable() -> bool {
        std::arch::x86_64::__cpuid_count(7, 0).edx >> 25 & 1 == 1 && usable()
    }

    /// The 64-byte tile configuration (palette 1): all eight tiles 16 rows × 64 bytes: C
    /// (16 × 16 fp32: tmm0–3), A (16 × 32 bf16: tmm4–5) and B (16 pair-rows × 16 columns: tmm6–7).
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    const CONFIG: Config = {
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = 64; // bytes per row (little-endian u16)
            c[48 + t] = TILE_ROWS as u8;
            t += 1;
        }
        Config(c)
    };

    thread_local! {
        /// The tile configuration is per-thread state: each rayon worker loads it once.
        static CONFIGURED: Cell<bool> = const { Cell::new(false) };
    }

    /// Loads the tile configuration on this thread unless it already has it.
    ///
    /// # Safety
    /// [`usable`] must have returned true in this process.
    #[inline]
    pub unsafe fn configure() {
        CONFIGURED.with(|done| {
            if !done.get() {
                // SAFETY: AMX is usable (caller's contract); CONFIG is 64 aligned, valid bytes.
                unsafe { asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly)) };
                done.set(true);
            }
        });
    }

    /// One 32 × 32 tile-kernel instantiation: `$op` is the tile dot product, `$a` the A element
    /// (64 bytes of k per tile row either way) and `$c` the accumulator element.
    ///
    /// The loop is software-pipelined: each operand tile of the next step is loaded as soon as
    /// the last product reading its register has been issued, so the loads overlap the current
    /// step's products, and the last step runs after the loop.
    macro_rules! tile_kernel {
        ($(#[$doc:meta])* $name:ident, $op:literal, $a:ty, $c:ty) => {
            $(#[$doc])*
            #[inline]
            pub unsafe fn $name(steps: usize, (a, lda): (*const $a, usize), (b, ldb, b_step): ([*const u32; 2], usize, usize), (c, ldc): (*mut $c, usize)) {
                assert!(steps >= 1, "a tile product needs at least one step of k");
                let lda_bytes = lda * std::mem::size_of::<$a>();
                // SAFETY: per the contract, each step reads the next 64 bytes of k of A's two
                // 16-row halves and 16 rows of both B column tiles (the loads after the loop's
                // last pass are not issued: the last step is peeled); the stores cover C's 32
                // rows × 32 elements.
                unsafe {
                    let a_low = a.add(TILE_ROWS * lda);
                    let c_low = c.add(TILE_ROWS * ldc);
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        "tileloadd tmm4, [{a} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tileloadd tmm5, [{a2} + {lda}*1]",
                        "dec {n}",
                        "jz 3f",
                        "2:",
                        "add {a}, {a_step}",
                        "add {a2}, {a_step}",
                        "add {b0}, {b_step}",
                        "add {b1}, {b_step}",
                        concat!($op, " tmm0, tmm4, tmm6"),
                        concat!($op, " tmm1, tmm4, tmm7"),
                        "tileloadd tmm4, [{a} + {lda}*1]",
                        concat!($op, " tmm2, tmm5, tmm6"),
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        concat!($op, " tmm3, tmm5, tmm7"),
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tileloadd tmm5, [{a2} + {lda}*1]",
                        "dec {n}",
                        "jnz 2b",
                        "3:",
                        concat!($op, " tmm0, tmm4, tmm6"),
                        concat!($op, " tmm1, tmm4, tmm7"),
                        concat!($op, " tmm2, tmm5, tmm6"),
                        concat!($op, " tmm3, tmm5, tmm7"),
                        "tilestored [{c} + {ldc}*1], tmm0",
                        "tilestored [{c} + {ldc}*1 + 64], tmm1",
                        "tilestored [{c2} + {ldc}*1], tmm2",
                        "tilestored [{c2} + {ldc}*1 + 64], tmm3",
                        a = inout(reg) a => _,
                        a2 = inout(reg) a_low => _,
                        b0 = inout(reg) b[0] => _,
                        b1 = inout(reg) b[1] => _,
                        n = inout(reg) steps => _,
                        lda = in(reg) lda_bytes,
                        ldb = in(reg) ldb * 4,
                        ldc = in(reg) ldc * 4,
                        b_step = in(reg) b_step * 4,
                        c = in(reg) c,
                        c2 = in(reg) c_low,
                        a_step = const 64,
                        options(nostack),
                    );
                }
            }
        };
    }

    tile_kernel!(
        /// C[32, 32] = A[32, 32·steps] · B[32·steps, 32] into `c` (row-major, `ldc` floats per
        /// row), the two 16-column halves of B read through `b[0]` and `b[1]`: each step's tile is
        /// 16 pair-rows of 16 pairs, `ldb` pairs apart, and the next step's tile starts `b_step`
        /// pairs further on (a contiguous tile of the packed weights: `ldb = 16`, `b_step = 512`;
        /// a column tile of any pair-interleaved matrix: `b_step = 16·ldb`). A 2 × 2 block of
        /// accumulator tiles: every loaded tile feeds two `tdpbf16ps`, and four independent
        /// accumulators cover the instruction's latency.
        ///
        /// # Safety
        /// [`configure`] ran on this thread; `steps ≥ 1`; `a` has 32 rows of `lda` bf16 (`lda ≥
        /// 32·steps`) readable; `b[0]` and `b[1]` each have `steps` tiles of 16 pair-rows (stride
        /// `ldb`) of 16 pairs readable, `b_step` pairs apart; `c` has 32 rows (stride `ldc ≥ 32`)
        /// of 32 writable floats.
        tile_32x32, "tdpbf16ps", u16, f32
    );

    tile_kernel!(
        /// Like [`tile_32x32`] for int8: C (int32) = A (uint8, 64 k per tile row) · B (int8
        /// quads: four consecutive k of one column per `u32`) with `tdpbusd`; `steps` counts 64 k.
        ///
        /// # Safety
        /// As for [`tile_32x32`], with [`int8_usable`] true, `lda ≥ 64·steps` bytes and `steps`
        /// 16-row quad tiles of B.
        tile_32x32_i8, "tdpbusd", u8, i32
    );
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::pack::{NR, pair};

    #[test]
    fn one_block_product_matches_scalar_sums() {
        if !usable() {
            eprintln!("skipped: {}: this CPU/OS (or BERTKIT_CPU) gives no usable AMX-BF16", crate::level::test_name());
            return;
        }
        let (steps, rows) = (2, 2 * TILE_ROWS);
        let k = steps * TILE_K;
        // Small integers are exact in bf16, so the product must match exactly.
        let av = |r: usize, kk: usize| ((r * 7 + kk * 3) % 11) as f32 - 5.0;
        let bv = |kk: usize, j: usize| ((kk * 5 + j * 2) % 9) as f32 - 4.0;
        let a: Vec<u16> = (0..rows * k).map(|i| half::bf16::from_f32(av(i / k, i % k)).to_bits()).collect();
        let b: Vec<u32> = (0..k / 2 * NR).map(|i| pair(bv(2 * (i / NR), i % NR), bv(2 * (i / NR) + 1, i % NR))).collect();
        // Column tiles 2 and 0 of the panel, in that order: the halves may come from anywhere.
        let mut c = vec![f32::NAN; rows * NR];
        // SAFETY: usable() is true; the buffers have the sizes the contract names.
        unsafe {
            configure();
            tile_32x32(steps, (a.as_ptr(), k), ([b.as_ptr().add(32), b.as_ptr()], NR, TILE_ROWS * NR), (c.as_mut_ptr(), NR));
        }
        for r in 0..rows {
            for j in 0..32 {
                let col = if j < 16 { 32 + j } else { j - 16 };
                let want: f32 = (0..k).map(|kk| av(r, kk) * bv(kk, col)).sum();
                assert_eq!(c[r * NR + j], want, "[{r}, {j}]");
            }
        }
    }
}
