//! `bertkit bench --mode gemm`: the GEMM microbenchmark on the encoder's shapes, and the CPU
//! level's nominal peak, which the side-by-side table reads the GEMMs' share of.

use std::time::Instant;

#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor};
use serde_json::{Value, json};

/// Best-of-5 GEMM throughput on the encoder's own shapes (32×128 tokens): bertkit-kernels'
/// packed fp32 and bf16 GEMMs (weights packed once, untimed, as in inference), and burn flex's
/// fp32 matmul in a build with burn. The attainable fp32 figure is the best of all fp32 runs.
pub(super) fn gemm() -> Value {
    use bertkit_kernels::{Epilogue, PackedB, Precision};
    let shapes = [(4096usize, 384usize, 1536usize), (4096, 1536, 384), (4096, 384, 384), (2048, 2048, 2048)];
    let mut rows = Vec::new();
    let mut best_all: f64 = 0.0;
    let best_of = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    for (m, k, n) in shapes {
        let flops = 2.0 * (m * k * n) as f64;
        // Values in [0, 1) from a fixed sequence: the timing does not depend on them.
        let fill =
            |len: usize, seed: usize| -> Vec<f32> { (0..len).map(|i| ((i * 2_654_435_761 + seed) % 1000) as f32 / 1000.0).collect() };
        let (av, bv) = (fill(m * k, 1), fill(k * n, 2));
        #[cfg(feature = "burn")]
        let flex = {
            let device = Device::flex();
            let a = Tensor::<2>::from_data(burn::tensor::TensorData::new(av.clone(), [m, k]), &device);
            let b = Tensor::<2>::from_data(burn::tensor::TensorData::new(bv.clone(), [k, n]), &device);
            Some(best_of(&mut || {
                let _ = a.clone().matmul(b.clone()).into_data();
            }))
        };
        #[cfg(not(feature = "burn"))]
        let flex: Option<f64> = None;
        let mut c = vec![0.0f32; m * n];
        let mut ours = |precision| {
            let packed = PackedB::new(&bv, k, n, precision);
            let t = best_of(&mut || bertkit_kernels::gemm(&av, m, &packed, None, Epilogue::None, &mut c));
            (flops / t / 1e9, packed.precision() == precision)
        };
        let (f32_gflops, _) = ours(Precision::F32);
        let (bf16_gflops, bf16_native) = ours(Precision::Bf16);
        best_all = best_all.max(flex.map_or(0.0, |t| flops / t / 1e9)).max(f32_gflops);
        rows.push(json!({ "m": m, "k": k, "n": n, "ms": flex.map(|t| t * 1e3), "gflops": flex.map(|t| flops / t / 1e9),
            "kernels_f32_gflops": f32_gflops, "kernels_bf16_gflops": if bf16_native { json!(bf16_gflops) } else { Value::Null } }));
    }
    let (f32_peak, bf16_peak) = level_peaks();
    json!({ "framework": "bertkit", "mode": "gemm", "isa": format!("{:?}", bertkit_kernels::isa()), "shapes": rows,
            "attainable_gflops": best_all, "peak_rss_mb": super::bench::peak_rss_mb(),
            "fp32_peak_gflops": f32_peak, "bf16_peak_gflops": bf16_peak })
}

/// The level's nominal peak GFLOP/s (fp32 FMA, and bf16 where it has bf16 GEMMs): flops per
/// cycle per core (two FMA ports × lanes × 2; AVX512-BF16's `vdpbf16ps` doubles the lanes' pairs;
/// one AMX tile unit does 16 × 16 × 32 bf16 multiply-adds per 16 cycles = 1024 flops) × the
/// nominal clock of /proc/cpuinfo (`cpu MHz`; turbo can exceed it) × the threads.
fn level_peaks() -> (Option<f64>, Option<f64>) {
    use bertkit_kernels::Isa;
    let mhz = super::cpu::cpuinfo_field("cpu MHz").and_then(|v| v.parse::<f64>().ok());
    let threads = rayon::current_num_threads() as f64;
    let (f32_cycle, bf16_cycle) = match bertkit_kernels::isa() {
        Isa::Portable => (None, None),
        Isa::Avx2 | Isa::Avx2Vnni => (Some(32.0), None),
        Isa::Avx512 => (Some(64.0), None),
        Isa::Avx512Bf16 => (Some(64.0), Some(128.0)),
        Isa::Amx => (Some(64.0), Some(1024.0)),
    };
    let peak = |c: Option<f64>| c.zip(mhz).map(|(c, m)| c * m * threads / 1e3);
    (peak(f32_cycle), peak(bf16_cycle))
}
