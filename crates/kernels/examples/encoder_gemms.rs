//! The encoder's four bf16 GEMMs for one MiniLM layer at batch 32 × 128 (4096 rows), as the
//! inference path calls them (A as bf16 bits, outputs as bits or fp32): best of 20, after one
//! untimed pass over all four (the first GEMM of a process runs slower for a while).
//! `cargo run --release -p bertkit-kernels --example encoder_gemms`
use std::time::Instant;

use bertkit_kernels::{Epilogue, PackedB, Precision, RowSet, gemm_from_bits, gemm_to_bits, to_bf16_bits};

fn main() {
    let m = 4096;
    // (name, k, n, GELU, output as bits)
    let shapes = [("QKV", 384, 1152, false, true), ("attention output", 384, 384, false, false), ("FFN in + GELU", 384, 1536, true, true), ("FFN out", 1536, 384, false, false)];
    for (pass, (name, k, n, gelu, to_bits)) in shapes.iter().chain(shapes.iter()).copied().enumerate() {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 10_000.0 - 0.05).collect();
        let bias = vec![0.01f32; n];
        let mut bits = Vec::new();
        to_bf16_bits(&a, &mut bits);
        let packed = PackedB::new(&b, k, n, Precision::Bf16);
        let (mut out_bits, mut c) = (Vec::new(), vec![0f32; m * n]);
        let epilogue = if gelu { Epilogue::Gelu } else { Epilogue::None };
        let best = (0..20)
            .map(|_| {
                let t0 = Instant::now();
                if to_bits {
                    gemm_to_bits(&a, Some(&bits), m, &packed, Some(&bias), epilogue, &mut out_bits, RowSet::All);
                } else {
                    gemm_from_bits(&bits, m, &packed, Some(&bias), epilogue, &mut c, RowSet::All);
                }
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        if pass < shapes.len() {
            continue;
        }
        let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
        println!("{name:17} {m}×{k}×{n}: {:.3} ms, {gflops:.0} GFLOP/s ({:?}, {} threads)", best * 1e3, packed.precision(), rayon::current_num_threads());
    }
}
