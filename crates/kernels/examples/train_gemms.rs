//! The fine-tuning GEMMs of one MiniLM layer at batch 32 × 128 (4096 rows), at fp32 on the
//! current level: forward `X·W`, input gradient `dY·Wᵀ` (W repacked) and weight gradient
//! `Xᵀ·dY` (dY packed, accumulated), each timed with its packing: best of 10.
//! `BERTKIT_CPU=avx2 cargo run --release -p bertkit-kernels --example train_gemms`
use std::time::Instant;

use bertkit_kernels::{Epilogue, Mat, PackedB, Precision, gemm_ex};

fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..10)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let m = 4096;
    let fill = |len: usize, s: usize| -> Vec<f32> { (0..len).map(|i| ((i * s) % 1000) as f32 / 1000.0 - 0.5).collect() };
    for (name, k, n) in [("QKV", 384, 1152), ("attention output", 384, 384), ("FFN in", 384, 1536), ("FFN out", 1536, 384)] {
        let (x, w, dy) = (fill(m * k, 7919), fill(k * n, 104_729), fill(m * n, 31));
        let flops = 2.0 * (m * k * n) as f64 / 1e9;
        let mut packed = PackedB::new(&w, k, n, Precision::F32);
        let mut c = vec![0f32; m * n];
        let fwd = best(|| gemm_ex(Mat::rows(&x, m, k), None, &packed, None, Epilogue::None, &mut c, false));
        let mut dx = vec![0f32; m * k];
        let dxt = best(|| {
            packed.repack(Mat::transposed(&w, n, k), Precision::F32);
            gemm_ex(Mat::rows(&dy, m, n), None, &packed, None, Epilogue::None, &mut dx, false)
        });
        let mut dyp = PackedB::empty();
        let mut dw = vec![0f32; k * n];
        let dwt = best(|| {
            dyp.repack(Mat::rows(&dy, m, n), Precision::F32);
            gemm_ex(Mat::transposed(&x, k, m), None, &dyp, None, Epilogue::None, &mut dw, true)
        });
        let dwp = best(|| dyp.repack(Mat::rows(&dy, m, n), Precision::F32));
        println!(
            "{name:17} k {k:4} n {n:4}: fwd {:5.1} ms {:4.0} GF/s | dX {:5.1} ms {:4.0} | dW {:5.1} ms {:4.0} (pack dY {:4.1} ms)",
            fwd * 1e3,
            flops / fwd,
            dxt * 1e3,
            flops / dxt,
            dwt * 1e3,
            flops / dwt,
            dwp * 1e3
        );
    }
}
