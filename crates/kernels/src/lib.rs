//! CPU kernels for bertkit's fast inference path. A separate crate so that it is always compiled
//! with optimisations (the workspace's dev profile keeps the main crate at opt-level 1), and so
//! that its `unsafe` SIMD code sits behind a small safe API.
//!
//! Dispatch is at run time: AVX-512 (+ AVX512-BF16 for bf16) when the CPU has it, a portable
//! loop otherwise, so one binary runs on any x86-64.

pub mod gemm;
pub mod ops;
mod pack;
mod x86;

pub use gemm::{Epilogue, Isa, PackedB, Precision, gemm, isa};
