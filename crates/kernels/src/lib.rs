//! CPU kernels for bertkit's fast inference path. A separate crate so that it is always compiled
//! with optimisations (the workspace's dev profile keeps the main crate at opt-level 1), and so
//! that its `unsafe` SIMD code sits behind a small safe API.
//!
//! Dispatch is at run time (`level`): AMX tiles for bf16 and int8 GEMMs where the CPU and OS
//! allow them, AVX-512 (+ AVX512-BF16 for bf16) when the CPU has it, AVX2+FMA, and portable loops
//! otherwise, so one binary runs on any x86-64.

/// `dispatch!(pub name(args) { body })` instantiates `$body` for AVX-512, for AVX2+FMA and as
/// portable code, and calls the one the CPU level allows (`level::detect` checks every feature
/// an instantiation enables).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch {
    ($vis:vis $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,fma")]
            unsafe fn fast($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                let level = $crate::level::isa();
                if level >= $crate::level::Isa::Avx512 {
                    // SAFETY: the CPU has AVX-512F/VL/BW/DQ and FMA (checked by `level`); `imp` is safe code.
                    return unsafe { fast($($arg),*) };
                }
                if level.avx2_kernels() {
                    // SAFETY: the CPU has AVX2 and FMA (checked by `level`); `imp` is safe code.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

mod aligned;
pub mod amx;
#[cfg(target_arch = "x86_64")]
pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod attention_bits;
mod attention_amx;
#[cfg(target_arch = "x86_64")]
mod attention_f32;
pub mod attention_train;
mod avx512_ops;
mod bf16_bits;
pub mod dropout;
mod ffn_int8;
pub mod gemm;
mod gemm_bits;
#[cfg(target_arch = "x86_64")]
mod gemm_amx;
pub mod grad;
mod int8_avx2;
mod int8_avx512;
pub mod level;
pub mod lstm;
pub mod ops;
mod pack;
mod packed_b;
mod gemm_crate;
mod quad_path;
mod quant;
mod quant_gemm;
pub mod rows;
mod x86;

pub use ffn_int8::feed_forward_int8;
pub use gemm::{Epilogue, gemm, gemm_ex, gemm_ex_rows};
pub use gemm_bits::{gemm_from_bits, gemm_to_bits};
pub use level::{Isa, bf16_is_faster, check_cpu_env, detected_isa, isa, runs};
pub use bf16_bits::to_bf16_bits;
pub use pack::Mat;
pub use packed_b::{PackedB, Precision};
pub use quad_path::int8_kernel;
pub use quant::{Int8Error, Int8Weight};
pub use rows::RowSet;
