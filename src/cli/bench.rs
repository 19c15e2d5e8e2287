//! `bertkit bench`: bertkit and its peers (PyTorch, ONNX Runtime from ../shared/reference) on the
//! same checkpoint, data and shapes in one invocation, side by side, plus a GEMM microbenchmark
//! that gives the machine's attainable FLOP/s. Each measurement runs in its own process so that
//! peak RSS belongs to it alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use bertkit::data::{self, LoadOptions, Target};
use bertkit::model::fast::{BertModel, FastClassifier};
#[cfg(feature = "burn")]
use bertkit::model::EncoderInput;
use bertkit::model::{HeadSpec, Pooling, Pretrained};
use bertkit::predict::Engine;
use bertkit::tokenize::{EncodePlan, Padding, TokenBatch, Truncation};
use bertkit::train::fast::FastLearner;
use bertkit::train::{Split, TrainPlan};
#[cfg(feature = "burn")]
use bertkit::train::{classification_loss, optimizer};
use bertkit_kernels::Precision;
#[cfg(feature = "burn")]
use burn::module::Module;
#[cfg(feature = "burn")]
use burn::optim::GradientsParams;
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct BenchCmd {
    #[arg(long, default_value = "models/minilm")]
    model: PathBuf,
    /// The unpacked IMDB folder (its train/ reviews are the inputs).
    #[arg(long, default_value = "data/aclImdb")]
    data: PathBuf,
    /// all, or one of: train, train-frozen, infer, latency, gemm.
    #[arg(long, default_value = "all")]
    mode: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Timed steps (after 2 warm-up steps); the median is reported.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Reviews timed one at a time for batch-1 latency.
    #[arg(long, default_value_t = 100)]
    single: usize,
    /// Python with torch/transformers/onnxruntime (../shared/reference/requirements.txt); the
    /// peers are skipped when it is missing.
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    #[arg(long, default_value = "../shared/reference")]
    reference: PathBuf,
    /// Skip the Python peers.
    #[arg(long)]
    no_peers: bool,
    /// Engine for `--mode infer|latency|train` (`--mode all` runs every kernels engine, and burn
    /// in a build with the `burn` feature).
    #[arg(long, default_value = "auto")]
    engine: Engine,
    /// Print the table of a saved run (the JSON block a previous `bench` printed) and exit.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Forward FLOPs per token of a BERT encoder at sequence length `t` (2 per multiply-add):
/// Q/K/V/O projections 4H², feed-forward 2HI, attention scores and context 2TH, per layer.
fn forward_flops_per_token(h: f64, i: f64, layers: f64, t: f64) -> f64 {
    2.0 * layers * (4.0 * h * h + 2.0 * h * i + 2.0 * t * h)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn review_texts(data_dir: &Path, n: usize) -> anyhow::Result<Vec<(String, Target)>> {
    let (ds, _) = data::load(&data_dir.join("train"), &LoadOptions { ignore_folders: vec!["unsup".into()], ..Default::default() })
        .with_context(|| format!("loading reviews from {}", data_dir.display()))?;
    let (mut train, _) = data::split(ds, 0.0, 42)?;
    train.examples.truncate(n.max(1));
    Ok(train.examples.into_iter().map(|e| (e.text.replace("<br />", " "), e.target)).collect())
}

impl BenchCmd {
    pub fn run(self) -> anyhow::Result<()> {
        if let Some(path) = &self.report {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let json_text = match (text.find("```json"), text.rfind("```")) {
                (Some(a), Some(b)) if b > a + 7 => &text[a + 7..b],
                _ => text.as_str(),
            };
            let v: Value = serde_json::from_str(json_text).with_context(|| format!("parsing {}", path.display()))?;
            let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
            print_table(&list("bertkit"), &list("peers"));
            return Ok(());
        }
        if self.mode != "all" {
            let res = self.measure().with_context(|| format!("bench mode {}", self.mode))?;
            println!("{}", serde_json::to_string(&res)?);
            return Ok(());
        }
        let exe = std::env::current_exe()?;
        let mut ours = Vec::new();
        let runs = [
            ("gemm", Engine::Burn),
            ("infer", Engine::Burn),
            ("infer", Engine::Kernels),
            ("infer", Engine::KernelsBf16),
            ("infer", Engine::KernelsInt8),
            ("latency", Engine::Burn),
            ("latency", Engine::Kernels),
            ("latency", Engine::KernelsBf16),
            ("latency", Engine::KernelsInt8),
            ("train", Engine::Burn),
            ("train", Engine::Kernels),
            ("train", Engine::KernelsBf16),
            ("train-frozen", Engine::Burn),
        ];
        // A bf16 engine on a level without bf16 GEMMs would run fp32 again under a bf16 label;
        // burn's rows need a build with burn (the GEMM row's burn column too, measured inside).
        let runs = runs
            .into_iter()
            .filter(|(_, e)| *e != Engine::KernelsBf16 || bertkit_kernels::isa().bf16())
            .filter(|(m, e)| *m == "gemm" || *e != Engine::Burn || cfg!(feature = "burn"));
        for (mode, engine) in runs {
            eprintln!("bertkit bench --mode {mode} --engine {engine} ...");
            let out = Command::new(&exe)
                .args(["bench", "--mode", mode, "--engine", &engine.to_string()])
                .args(["--batch", &self.batch.to_string(), "--seq", &self.seq.to_string()])
                .args(["--steps", &self.steps.to_string(), "--single", &self.single.to_string()])
                .arg("--model").arg(&self.model).arg("--data").arg(&self.data)
                .output()?;
            anyhow::ensure!(out.status.success(), "bench {mode} failed: {}", String::from_utf8_lossy(&out.stderr));
            ours.push(serde_json::from_slice::<Value>(&out.stdout)?);
        }
        let peers = if self.no_peers || !self.python.is_file() {
            eprintln!("peers skipped (no {}; see ../shared/reference/requirements.txt)", self.python.display());
            Vec::new()
        } else {
            self.run_peers()?
        };
        print_table(&ours, &peers);
        println!("\n```json\n{}\n```", serde_json::to_string_pretty(&json!({ "bertkit": ours, "peers": peers }))?);
        Ok(())
    }

    fn run_peers(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let common = |c: &mut Command| {
            c.arg("--model").arg(&self.model).arg("--data").arg(&self.data).args(["--threads", "2"]);
        };
        let torch = self.reference.join("bench_torch.py");
        // With the kernels capped at AVX2 (BERTKIT_CPU=avx2 on a bigger CPU), PyTorch is pinned to
        // AVX2 too, and the runtimes that cannot be pinned (ONNX Runtime, OpenVINO) are left out.
        let avx2 = bertkit_kernels::isa().avx2_kernels();
        // (mode, dtype, batch): batch 1 is PyTorch's batch-1 latency (one text padded to --seq).
        let runs: &[(&str, &str, usize)] = if avx2 {
            &[("train", "fp32", self.batch), ("infer", "fp32", self.batch), ("infer", "fp32", 1)]
        } else {
            &[("train", "fp32", self.batch), ("train", "bf16", self.batch), ("train-frozen", "fp32", self.batch), ("infer", "fp32", self.batch)]
        };
        for &(mode, dtype, batch) in runs {
            eprintln!("pytorch {mode} {dtype} batch {batch}{} ...", if avx2 { " (pinned to AVX2)" } else { "" });
            let mut c = Command::new(&self.python);
            let steps = if batch == 1 { self.single } else { self.steps };
            c.arg(&torch).args(["--mode", mode, "--dtype", dtype, "--batch", &batch.to_string(), "--seq", &self.seq.to_string(), "--steps", &steps.to_string()]);
            if avx2 {
                c.envs([("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2")]);
            }
            common(&mut c);
            let mut v = run_json(c)?;
            if let (true, Value::Object(o)) = (avx2, &mut v) {
                o.insert("pinned".into(), json!("avx2"));
            }
            out.push(v);
        }
        if avx2 {
            return Ok(out);
        }
        eprintln!("onnxruntime ...");
        let mut c = Command::new(&self.python);
        c.arg(self.reference.join("bench_ort.py")).args(["--batch", &self.batch.to_string(), "--seq", &self.seq.to_string(), "--single", &self.single.to_string()]);
        common(&mut c);
        out.push(run_json(c)?);
        // The strongest CPU runtimes on the graph bench_ort.py just exported: OpenVINO (default
        // precision: bf16 on AMX CPUs) and ONNX Runtime int8 dynamic quantization.
        eprintln!("openvino, onnxruntime int8 ...");
        let mut c = Command::new(&self.python);
        c.arg(self.reference.join("bench_strong.py")).args(["--onnx", "target/reference/onnx/model.onnx"]);
        c.args(["--batch", &self.batch.to_string(), "--seq", &self.seq.to_string(), "--single", &self.single.to_string()]);
        common(&mut c);
        for mut v in run_json_lines(c)? {
            if let Value::Object(o) = &mut v {
                o.insert("framework".into(), json!("strong"));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn measure(&self) -> anyhow::Result<Value> {
        if self.mode == "gemm" {
            return Ok(gemm());
        }
        let engine = self.engine.resolve(bertkit::DeviceSpec::Cpu);
        #[cfg(not(feature = "burn"))]
        anyhow::ensure!(engine != Engine::Burn, "burn's rows need a bertkit built with `--features burn`");
        #[cfg(feature = "burn")]
        let device = Device::flex();
        let pretrained = Pretrained::open(&self.model, EncodePlan::new(self.seq, Truncation::LongestFirst))?;
        let tok = &pretrained.tokenizer;
        let cfg = pretrained.config.clone();
        let fpt = forward_flops_per_token(cfg.hidden_size as f64, cfg.intermediate_size as f64, cfg.num_hidden_layers as f64, self.seq as f64);
        let head = HeadSpec { hidden_size: None, ..HeadSpec::family_default(cfg.family, cfg.hidden_size, 1, 0.1) };
        let model = BertModel::with_new_head(&pretrained, Pooling::Pooler, head, 42)?;
        let warmup = 2;
        let n_batches = self.steps + warmup;
        let reviews = review_texts(&self.data, (self.batch * n_batches).max(self.single))?;
        let batches: Vec<(TokenBatch, Vec<Target>)> = reviews
            .chunks(self.batch)
            .take(n_batches)
            .map(|chunk| {
                let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
                let enc = tok.encode_all(&texts)?;
                Ok((TokenBatch::pad(&enc, Padding::Fixed(self.seq), tok.pad_id()), chunk.iter().map(|(_, l)| l.clone()).collect()))
            })
            .collect::<anyhow::Result<_>>()?;
        let real_frac = batches.iter().map(|(b, _)| b.input_mask.iter().sum::<i64>() as f64 / b.input_mask.len() as f64).sum::<f64>() / batches.len() as f64;
        let base = json!({ "framework": "bertkit", "mode": self.mode, "engine": engine.to_string(), "batch": self.batch,
                           "seq": self.seq, "steps": self.steps, "real_token_fraction": real_frac,
                           "cpu_level": bertkit_kernels::isa().name() });
        let fast = engine.precision().map(|p| FastClassifier::new(&model, p));
        // burn's modules only where a burn row is measured.
        #[cfg(feature = "burn")]
        let m = if fast.is_none() { Some(model.to_burn(&device)?.valid()) } else { None };
        // One forward pass to logits, on the chosen engine.
        let run = |b: &TokenBatch| {
            if let Some(f) = &fast {
                let _ = f.logits(b);
            }
            #[cfg(feature = "burn")]
            if let Some(m) = &m {
                let _ = m.forward(EncoderInput::from_batch(b, &device)).into_data();
            }
        };
        let mut res = match self.mode.as_str() {
            "infer" => {
                let mut times = Vec::new();
                for (i, (b, _)) in batches.iter().enumerate() {
                    let t0 = Instant::now();
                    run(b);
                    if i >= warmup {
                        times.push(t0.elapsed().as_secs_f64());
                    }
                }
                let med = median(times);
                json!({ "ms_per_step": med * 1e3, "sentences_per_sec": self.batch as f64 / med, "gflops": fpt * (self.batch * self.seq) as f64 / med / 1e9 })
            }
            "latency" => {
                let mut lat = Vec::new();
                let mut tokens = 0;
                for (i, (t, _)) in reviews.iter().take(self.single + 5).enumerate() {
                    let enc = tok.encode(t, None)?;
                    let b = TokenBatch::pad(&[enc], Padding::Longest, tok.pad_id());
                    let t0 = Instant::now();
                    run(&b);
                    if i >= 5 {
                        lat.push(t0.elapsed().as_secs_f64());
                        tokens += b.seq_len;
                    }
                }
                let n = lat.len();
                json!({ "ms_median": median(lat) * 1e3, "n": n, "mean_tokens": tokens as f64 / n as f64 })
            }
            "train" if engine.precision().is_some() => {
                let precision = engine.precision().unwrap_or(Precision::F32);
                let plan = TrainPlan { learning_rate: 3e-5, max_grad_norm: None, ..TrainPlan::default() };
                let none = Split { encodings: &[], targets: &[] };
                let mut learner = FastLearner::new(&model, precision, &plan, (none, none), tok.pad_id(), 2)?;
                let mut times = Vec::new();
                for (i, (b, labels)) in batches.iter().enumerate() {
                    let t0 = Instant::now();
                    learner.step_batch(b, labels, i, plan.learning_rate)?;
                    if i >= warmup {
                        times.push(t0.elapsed().as_secs_f64());
                    }
                }
                let med = median(times);
                json!({ "ms_per_step": med * 1e3, "examples_per_sec": self.batch as f64 / med, "gflops": 3.0 * fpt * (self.batch * self.seq) as f64 / med / 1e9 })
            }
            #[cfg(feature = "burn")]
            "train" | "train-frozen" => {
                let ad = device.clone().autodiff();
                let plan = TrainPlan { learning_rate: 3e-5, max_grad_norm: None, ..TrainPlan::default() };
                let mut optim = optimizer(&plan);
                let mut m = model.to_burn(&device)?.fork(&ad).train();
                if self.mode == "train-frozen" {
                    m.encoder = m.encoder.no_grad();
                }
                let mut times = Vec::new();
                for (i, (b, labels)) in batches.iter().enumerate() {
                    let t0 = Instant::now();
                    let logits = m.forward(EncoderInput::from_batch(b, &ad));
                    let loss = classification_loss(logits, labels);
                    let grads = GradientsParams::from_grads(loss.backward(), &m);
                    m = optim.step(plan.learning_rate, m, grads);
                    let _ = loss.into_scalar::<f32>();
                    if i >= warmup {
                        times.push(t0.elapsed().as_secs_f64());
                    }
                }
                let med = median(times);
                let mult = if self.mode == "train" { 3.0 } else { 1.0 };
                json!({ "ms_per_step": med * 1e3, "examples_per_sec": self.batch as f64 / med, "gflops": mult * fpt * (self.batch * self.seq) as f64 / med / 1e9 })
            }
            other => anyhow::bail!("unknown --mode {other}: all, train, train-frozen, infer, latency, gemm"),
        };
        if let (Value::Object(r), Value::Object(b)) = (&mut res, base) {
            r.extend(b);
            r.insert("peak_rss_mb".into(), json!(peak_rss_mb()));
        }
        Ok(res)
    }
}

/// Best-of-5 GEMM throughput on the encoder's own shapes (32×128 tokens): bertkit-kernels'
/// packed fp32 and bf16 GEMMs (weights packed once, untimed, as in inference), and burn flex's
/// fp32 matmul in a build with burn. The attainable fp32 figure is the best of all fp32 runs.
fn gemm() -> Value {
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
        let fill = |len: usize, seed: usize| -> Vec<f32> { (0..len).map(|i| ((i * 2_654_435_761 + seed) % 1000) as f32 / 1000.0).collect() };
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
            "attainable_gflops": best_all, "peak_rss_mb": peak_rss_mb(),
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

/// Every JSON object line `c` prints (bench_strong.py prints one per engine).
fn run_json_lines(mut c: Command) -> anyhow::Result<Vec<Value>> {
    let out = c.output().with_context(|| format!("running {c:?}"))?;
    anyhow::ensure!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter(|l| l.trim_start().starts_with('{')).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// The last JSON object line `c` prints (`{}` when none).
fn run_json(c: Command) -> anyhow::Result<Value> {
    Ok(run_json_lines(c)?.pop().unwrap_or_else(|| json!({})))
}

fn print_table(ours: &[Value], peers: &[Value]) {
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
            println!("Kernels {label} GEMM best {b:.1} GFLOP/s = {:.0} % of the level's nominal peak {p:.1} (FMA ports × lanes × 2 × `cpu MHz` × threads)", 100.0 * b / p);
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
    println!("GFLOP/s below: the whole model's forward flops per sentence (3x for a training step) over the time, as the peers compute it;");
    println!("bertkit does fewer: its last layer runs only the [CLS] rows the pooler reads (about 12 % fewer for MiniLM-L6), and its");
    println!("row-wise GEMMs skip the batch's padding rows (the JSON's real_token_fraction says how many there are).");
    println!();
    println!("| measure | bertkit | GFLOP/s (% of attainable) | peak RSS MB | peer | ratio |");
    println!("|---|---|---|---|---|---|");
    let peer = |framework: &str, mode: &str, dtype: &str| {
        peers.iter().find(|p| p["framework"] == framework && (mode.is_empty() || p["mode"] == mode) && (dtype.is_empty() || p["dtype"] == dtype)).cloned()
    };
    let pct = |g: f64| format!("{g:.1} ({:.0} %)", 100.0 * g / attainable);
    // bench_ort.py reports each exported graph (plain, fused) as an object with `b32` and `b1`.
    let ort_graphs = |f: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
        peer("onnxruntime", "", "")
            .and_then(|p| p.as_object().cloned())
            .map(|o| o.values().filter_map(f).collect())
            .unwrap_or_default()
    };
    let ort = ort_graphs(&|g| g["b32"]["sentences_per_sec"].as_f64()).into_iter().reduce(f64::max);
    let torch_inf = peers
        .iter()
        .find(|p| p["framework"] == "pytorch" && p["mode"] == "infer" && p["dtype"] == "fp32" && p["batch"] != 1)
        .and_then(|p| p["sentences_per_sec"].as_f64());
    let torch_b1 = peers.iter().find(|p| p["framework"] == "pytorch" && p["mode"] == "infer" && p["batch"] == 1).and_then(|p| p["ms_per_step"].as_f64());
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
        println!("| inference b{} sentences/s, {engine} | {s:.1} | {} | {:.0} | ORT {} | {} |", infer["batch"], pct(infer["gflops"].as_f64().unwrap_or(f64::NAN)), infer["peak_rss_mb"].as_f64().unwrap_or(0.0), fmt(ort), ratio(s, ort));
        println!("| inference vs PyTorch, {engine} | | | | PyTorch {} | {} |", fmt(torch_inf), ratio(s, torch_inf));
    }
    let strong = |engine: &str, key: &str| {
        peers.iter().find(|p| p["framework"] == "strong" && p["engine"] == engine).and_then(|p| p[key].as_f64())
    };
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
        println!("| batch-1 latency ms (median, {:.0} tokens), {engine} | {l:.1} | | {:.0} | ORT {} | {} |", lat["mean_tokens"].as_f64().unwrap_or(0.0), lat["peak_rss_mb"].as_f64().unwrap_or(0.0), fmt(ort_l), latency_ratio(ort_l, l));
        if torch_b1.is_some() {
            println!("| batch-1 latency vs PyTorch (one text padded to {}), {engine} | | | | PyTorch {} ms | {} |", lat["seq"], fmt(torch_b1), latency_ratio(torch_b1, l));
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
        println!("| {label} examples/s | {e:.2} | {} | {:.0} (PyTorch {}) | PyTorch fp32 {} | {} |", pct(r["gflops"].as_f64().unwrap_or(f64::NAN)), r["peak_rss_mb"].as_f64().unwrap_or(0.0), fmt(rss), fmt(fp32), ratio(e, fp32));
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
