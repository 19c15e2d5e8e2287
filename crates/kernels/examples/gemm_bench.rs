//! Quick GEMM throughput check: `cargo run -p bertkit-kernels --example gemm_bench [m k n]`.
use std::time::Instant;

use bertkit_kernels::{Epilogue, PackedB, Precision, gemm};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (m, k, n) = match args.as_slice() {
        [m, k, n] => (*m, *k, *n),
        _ => (4096, 384, 1536),
    };
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
    let mut c = vec![0.0; m * n];
    for precision in [Precision::F32, Precision::Bf16] {
        let packed = PackedB::new(&b, k, n, precision);
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let t0 = Instant::now();
            gemm(&a, m, &packed, None, Epilogue::None, &mut c);
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!("{m}x{k}x{n} {:?}: {:.1} GFLOP/s ({} threads)", packed.precision(), 2.0 * (m * k * n) as f64 / best / 1e9, rayon::current_num_threads());
    }
}
