//! `bertkit bench`'s side-by-side table: bertkit's measurements against the peers', as printed
//! at the end of a run and by `--report` from a saved one.

use serde_json::Value;

/// The side-by-side table of bertkit's runs (`ours`) and the peers' (PyTorch, ONNX Runtime,
/// OpenVINO), with each ratio in bertkit's favour above 1.
pub(super) fn print_table(ours: &[Value], peers: &[Value]) {
    println!("CPU: {}\n", super::cpu::cpu_summary());
    // Runs without an `engine` field (older reports) are burn's.
    let engine_of = |r: &Value| r["engine"].as_str().unwrap_or("burn").to_string();
    let get_engine = |v: &[Value], mode: &str, engine: &str| {
        v.iter().find(|r| r["mode"] == mode && engine_of(r) == engine).cloned().unwrap_or(Value::Null)
    };
    let get = |v: &[Value], mode: &str| get_engine(v, mode, "burn");
    let attainable = get(ours, "gemm")["attainable_gflops"].as_f64().unwrap_or(f64::NAN);
    println!("GEMM attainable: {attainable:.1} GFLOP/s (fp32, best of the encoder's shapes)");
    let g = get(ours, "gemm");
    let best = |key: &str| g["shapes"].as_array().into_iter().flatten().filter_map(|r| r[key].as_f64()).fold(f64::NAN, f64::max);
    for (label, key, peak) in [("fp32", "kernels_f32_gflops", "fp32_peak_gflops"), ("bf16", "kernels_bf16_gflops", "bf16_peak_gflops")] {
        if let Some(p) = g[peak].as_f64() {
            let b = best(key);
            println!(
                "Kernels {label} GEMM best {b:.1} GFLOP/s = {:.0} % of the level's nominal peak {p:.1} (FMA ports × lanes × 2 × `cpu MHz` × threads)",
                100.0 * b / p
            );
        }
    }
    println!();
    println!("| GEMM m×k×n | burn flex fp32 | bertkit-kernels fp32 | bertkit-kernels bf16 ({}) |", g["isa"].as_str().unwrap_or("?"));
    println!("|---|---|---|---|");
    for r in g["shapes"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let f = |key: &str| r[key].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"));
        println!("| {}×{}×{} | {} | {} | {} |", r["m"], r["k"], r["n"], f("gflops"), f("kernels_f32_gflops"), f("kernels_bf16_gflops"));
    }
    println!();
    println!(
        "GFLOP/s below: the whole model's forward flops per sentence (3x for a training step) over the time, as the peers compute it;"
    );
    println!("bertkit does fewer: its last layer runs only the [CLS] rows the pooler reads (about 12 % fewer for MiniLM-L6), and its");
    println!("row-wise GEMMs skip the batch's padding rows (the JSON's real_token_fraction says how many there are).");
    println!();
    println!("| measure | bertkit | GFLOP/s (% of attainable) | peak RSS MB | peer | ratio |");
    println!("|---|---|---|---|---|---|");
    let peer = |framework: &str, mode: &str, dtype: &str| {
        peers
            .iter()
            .find(|p| p["framework"] == framework && (mode.is_empty() || p["mode"] == mode) && (dtype.is_empty() || p["dtype"] == dtype))
            .cloned()
    };
    let pct = |g: f64| format!("{g:.1} ({:.0} %)", 100.0 * g / attainable);
    // bench_ort.py reports each exported graph (plain, fused) as an object with `b32` and `b1`.
    let ort_graphs = |f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
        peer("onnxruntime", "", "").and_then(|p| p.as_object().cloned()).map(|o| o.values().filter_map(f).collect()).unwrap_or_default()
    };
    let ort = ort_graphs(&|g| g["b32"]["sentences_per_sec"].as_f64()).into_iter().reduce(f64::max);
    let torch_inf = peers
        .iter()
        .find(|p| p["framework"] == "pytorch" && p["mode"] == "infer" && p["dtype"] == "fp32" && p["batch"] != 1)
        .and_then(|p| p["sentences_per_sec"].as_f64());
    let torch_b1 = peers
        .iter()
        .find(|p| p["framework"] == "pytorch" && p["mode"] == "infer" && p["batch"] == 1)
        .and_then(|p| p["ms_per_step"].as_f64());
    if peers.iter().any(|p| p["pinned"] == "avx2") {
        println!("| (PyTorch pinned to AVX2: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2) | | | | | |");
    }
    let ort_l = ort_graphs(&|g| g["b1"]["ms_median"].as_f64()).into_iter().reduce(f64::min);
    for engine in ["burn", "kernels", "kernels-bf16", "kernels-int8"] {
        let infer = get_engine(ours, "infer", engine);
        if infer.is_null() {
            continue;
        }
        let s = infer["sentences_per_sec"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| inference b{} sentences/s, {engine} | {s:.1} | {} | {:.0} | ORT {} | {} |",
            infer["batch"],
            pct(infer["gflops"].as_f64().unwrap_or(f64::NAN)),
            infer["peak_rss_mb"].as_f64().unwrap_or(0.0),
            fmt(ort),
            ratio(s, ort)
        );
        println!("| inference vs PyTorch, {engine} | | | | PyTorch {} | {} |", fmt(torch_inf), ratio(s, torch_inf));
    }
    let strong =
        |engine: &str, key: &str| peers.iter().find(|p| p["framework"] == "strong" && p["engine"] == engine).and_then(|p| p[key].as_f64());
    for engine in ["kernels", "kernels-bf16", "kernels-int8"] {
        let s = get_engine(ours, "infer", engine)["sentences_per_sec"].as_f64().unwrap_or(f64::NAN);
        for (peer_engine, label) in [("ov-default", "OpenVINO default"), ("ov-f32", "OpenVINO fp32"), ("ort-int8", "ORT int8")] {
            let theirs = strong(peer_engine, "sentences_per_s");
            if theirs.is_some() {
                println!("| inference vs {label}, {engine} | | | | {label} {} | {} |", fmt(theirs), ratio(s, theirs));
            }
        }
    }
    for engine in ["burn", "kernels", "kernels-bf16", "kernels-int8"] {
        let lat = get_engine(ours, "latency", engine);
        if lat.is_null() {
            continue;
        }
        let l = lat["ms_median"].as_f64().unwrap_or(f64::NAN);
        // Latency ratio = ORT ms / bertkit ms, so that above 1 means bertkit is faster here too.
        println!(
            "| batch-1 latency ms (median, {:.0} tokens), {engine} | {l:.1} | | {:.0} | ORT {} | {} |",
            lat["mean_tokens"].as_f64().unwrap_or(0.0),
            lat["peak_rss_mb"].as_f64().unwrap_or(0.0),
            fmt(ort_l),
            latency_ratio(ort_l, l)
        );
        if torch_b1.is_some() {
            println!(
                "| batch-1 latency vs PyTorch (one text padded to {}), {engine} | | | | PyTorch {} ms | {} |",
                lat["seq"],
                fmt(torch_b1),
                latency_ratio(torch_b1, l)
            );
        }
        for (peer_engine, label) in [("ov-default", "OpenVINO default"), ("ort-int8", "ORT int8")] {
            let theirs = strong(peer_engine, "batch1_median_ms");
            if theirs.is_some() {
                println!("| batch-1 latency vs {label}, {engine} | | | | {label} {} ms | {} |", fmt(theirs), latency_ratio(theirs, l));
            }
        }
    }
    for (mode, label, engine) in [
        ("train", "fine-tune", "burn"),
        ("train", "fine-tune", "kernels"),
        ("train", "fine-tune", "kernels-bf16"),
        ("train-frozen", "frozen-encoder", "burn"),
    ] {
        let r = get_engine(ours, mode, engine);
        if r.is_null() {
            continue;
        }
        let label = format!("{label} ({engine})");
        let e = r["examples_per_sec"].as_f64().unwrap_or(f64::NAN);
        let fp32 = peer("pytorch", mode, "fp32").and_then(|p| p["examples_per_sec"].as_f64());
        let rss = peer("pytorch", mode, "fp32").and_then(|p| p["peak_rss_mb"].as_f64());
        println!(
            "| {label} examples/s | {e:.2} | {} | {:.0} (PyTorch {}) | PyTorch fp32 {} | {} |",
            pct(r["gflops"].as_f64().unwrap_or(f64::NAN)),
            r["peak_rss_mb"].as_f64().unwrap_or(0.0),
            fmt(rss),
            fmt(fp32),
            ratio(e, fp32)
        );
        if mode == "train" {
            let bf16 = peer("pytorch", mode, "bf16").and_then(|p| p["examples_per_sec"].as_f64());
            println!("| fine-tune vs bf16 ({engine}) | | | | PyTorch bf16 {} | {} |", fmt(bf16), ratio(e, bf16));
        }
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

/// `ours / theirs` (higher is better for bertkit).
fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or("-".into(), |t| format!("{:.2}x", ours / t))
}

/// `theirs / ours` for times, so that above 1 means bertkit is faster; "-" without a peer (it
/// printed "NaNx" when ONNX Runtime was left out, as at the AVX2 levels).
fn latency_ratio(theirs_ms: Option<f64>, ours_ms: f64) -> String {
    theirs_ms.map_or("-".into(), |t| format!("{:.2}x", t / ours_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_ratio_without_a_peer_is_a_dash_not_nan() {
        assert_eq!(latency_ratio(None, 18.2), "-");
        assert_eq!(latency_ratio(Some(19.24), 18.5), "1.04x");
        assert_eq!(ratio(74.1, None), "-");
        assert_eq!(ratio(74.1, Some(57.0)), "1.30x");
    }
}
