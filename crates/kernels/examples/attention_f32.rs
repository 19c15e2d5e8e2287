//! The fp32 inference attention of one MiniLM layer at batch 32 × 128 (12 heads of 32), as the
//! encoder calls it, texts 97–128 tokens long: median and best of 40 timed calls after 5
//! untimed ones. For same-sitting A/Bs of `attention_f32.rs`, which the whole-model bench
//! measures only through a fifth of an int8 batch.
//! `cargo run --release -p bertkit-kernels --example attention_f32`
use std::time::Instant;

use bertkit_kernels::Precision;
use bertkit_kernels::attention::attention;

fn main() {
    let (b, t, heads, hd) = (32, 128, 12, 32);
    let h = heads * hd;
    let lens: Vec<usize> = (0..b).map(|i| if i % 4 == 3 { 97 + i } else { t }).collect();
    let qkv: Vec<f32> = (0..b * t * 3 * h).map(|i| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect();
    let mut out = vec![0f32; b * t * h];
    for _ in 0..5 {
        attention(&qkv, &lens, (t, heads, hd), Precision::F32, &mut out);
    }
    let mut times: Vec<f64> = (0..40)
        .map(|_| {
            let t0 = Instant::now();
            attention(&qkv, &lens, (t, heads, hd), Precision::F32, &mut out);
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let check: f64 = out.iter().map(|&x| f64::from(x)).sum();
    println!(
        "{{\"level\":\"{:?}\",\"median_ms\":{:.3},\"best_ms\":{:.3},\"checksum\":{check:.6}}}",
        bertkit_kernels::isa(),
        times[20],
        times[0]
    );
}
