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
use burn::tensor::Device;
use clap::Args;
use serde_json::{Value, json};

use super::args::say_note;

#[derive(Args, Debug)]
pub struct BenchCmd {
    #[arg(long, env = "BERTKIT_MODEL", default_value = "models/minilm")]
    model: PathBuf,
    /// The unpacked IMDB folder (its train/ reviews are the inputs).
    #[arg(long, env = "BERTKIT_DATA", default_value = "data/aclImdb")]
    data: PathBuf,
    /// all, or one measurement: train, train-frozen (burn's), infer, latency or gemm.
    #[arg(long, env = "BERTKIT_MODE", value_enum, default_value_t = BenchMode::All)]
    mode: BenchMode,
    /// Texts per timed batch.
    #[arg(long, env = "BERTKIT_BATCH", default_value_t = 32, value_parser = super::at_least_one)]
    batch: usize,
    #[arg(long, env = "BERTKIT_SEQ", default_value_t = 128)]
    seq: usize,
    /// Timed steps (after 2 warm-up steps); the median is reported.
    #[arg(long, env = "BERTKIT_STEPS", default_value_t = 10, value_parser = super::at_least_one)]
    steps: usize,
    /// Reviews timed one at a time for batch-1 latency.
    #[arg(long, env = "BERTKIT_SINGLE", default_value_t = 100, value_parser = super::at_least_one)]
    single: usize,
    /// Python with torch/transformers/onnxruntime (../shared/reference/requirements.txt); the
    /// peers are skipped when it is missing.
    #[arg(long, env = "BERTKIT_PYTHON", default_value = ".venv/bin/python")]
    python: PathBuf,
    #[arg(long, env = "BERTKIT_REFERENCE", default_value = "../shared/reference")]
    reference: PathBuf,
    /// Skip the Python peers.
    #[arg(long, env = "BERTKIT_NO_PEERS")]
    no_peers: bool,
    /// Engine for `--mode infer|latency|train` (`--mode all` runs every kernels engine, and burn
    /// in a build with the `burn` feature).
    #[arg(long, env = "BERTKIT_ENGINE", default_value = "auto")]
    engine: Engine,
    /// Print the table of a saved run (the JSON block a previous `bench` printed) and exit.
    #[arg(long, env = "BERTKIT_REPORT")]
    report: Option<PathBuf>,
}

/// Forward FLOPs per token of a BERT encoder at sequence length `t` (2 per multiply-add):
/// Q/K/V/O projections 4H², feed-forward 2HI, attention scores and context 2TH, per layer.
fn forward_flops_per_token(h: f64, i: f64, layers: f64, t: f64) -> f64 {
    2.0 * layers * (4.0 * h * h + 2.0 * h * i + 2.0 * t * h)
}

pub(super) fn peak_rss_mb() -> f64 {
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

/// What `bertkit bench` measures: everything side by side with the peers, or one measurement
/// (what `all` runs each of in a child process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    All,
    Train,
    TrainFrozen,
    Infer,
    Latency,
    Gemm,
}

impl std::fmt::Display for BenchMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self);
        f.write_str(value.as_ref().map_or("?", |v| v.get_name()))
    }
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
            super::bench_table::print_table(&list("bertkit"), &list("peers"));
            return Ok(());
        }
        if self.mode != BenchMode::All {
            let res = self.measure().with_context(|| format!("bench mode {}", self.mode))?;
            println!("{}", serde_json::to_string(&res)?);
            return Ok(());
        }
        let exe = std::env::current_exe()?;
        let mut ours = Vec::new();
        let runs = [
            (BenchMode::Gemm, Engine::Burn),
            (BenchMode::Infer, Engine::Burn),
            (BenchMode::Infer, Engine::Kernels),
            (BenchMode::Infer, Engine::KernelsBf16),
            (BenchMode::Infer, Engine::KernelsInt8),
            (BenchMode::Latency, Engine::Burn),
            (BenchMode::Latency, Engine::Kernels),
            (BenchMode::Latency, Engine::KernelsBf16),
            (BenchMode::Latency, Engine::KernelsInt8),
            (BenchMode::Train, Engine::Burn),
            (BenchMode::Train, Engine::Kernels),
            (BenchMode::Train, Engine::KernelsBf16),
            (BenchMode::TrainFrozen, Engine::Burn),
        ];
        // A bf16 engine on a level without bf16 GEMMs would run fp32 again under a bf16 label;
        // burn's rows need a build with burn (the GEMM row's burn column too, measured inside).
        let runs = runs
            .into_iter()
            .filter(|(_, e)| *e != Engine::KernelsBf16 || bertkit_kernels::isa().bf16())
            .filter(|(m, e)| *m == BenchMode::Gemm || *e != Engine::Burn || cfg!(feature = "burn"));
        for (mode, engine) in runs {
            eprintln!("bertkit bench --mode {mode} --engine {engine} ...");
            let out = Command::new(&exe)
                .args(["bench", "--mode", &mode.to_string(), "--engine", &engine.to_string()])
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
        super::bench_table::print_table(&ours, &peers);
        println!("\n```json\n{}\n```", serde_json::to_string_pretty(&json!({ "bertkit": ours, "peers": peers }))?);
        Ok(())
    }

    fn run_peers(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let common = |c: &mut Command| {
            // The peers get the threads the kernels run on (`--threads`, else every CPU), not a
            // fixed count: 2 was this machine's whole CPU and would have starved them elsewhere.
            c.arg("--model").arg(&self.model).arg("--data").arg(&self.data).arg("--threads").arg(rayon::current_num_threads().to_string());
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
        if self.mode == BenchMode::Gemm {
            return Ok(super::bench_gemm::gemm());
        }
        let engine = self.engine.resolve(bertkit::DeviceSpec::Cpu);
        say_note(engine.fallback_note());
        anyhow::ensure!(
            self.mode != BenchMode::TrainFrozen || engine == Engine::Burn,
            "--mode train-frozen times burn's frozen-encoder step: use --engine burn"
        );
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
        let base = json!({ "framework": "bertkit", "mode": self.mode.to_string(), "engine": engine.to_string(), "batch": self.batch,
                           "seq": self.seq, "steps": self.steps, "real_token_fraction": real_frac,
                           "cpu_level": bertkit_kernels::isa().name() });
        let fast = engine.precision().map(|p| FastClassifier::new(&model, p));
        // burn's modules only where a burn row is measured.
        #[cfg(feature = "burn")]
        let m = if fast.is_none() { Some(model.to_burn(&device)?.valid()) } else { None };
        // One forward pass to logits, on the chosen engine.
        let run = |b: &TokenBatch| -> anyhow::Result<()> {
            if let Some(f) = &fast {
                f.logits(b)?;
            }
            #[cfg(feature = "burn")]
            if let Some(m) = &m {
                let _ = m.forward(EncoderInput::from_batch(b, &device)).into_data();
            }
            Ok(())
        };
        let mut res = match self.mode {
            BenchMode::Infer => {
                let mut times = Vec::new();
                for (i, (b, _)) in batches.iter().enumerate() {
                    let t0 = Instant::now();
                    run(b)?;
                    if i >= warmup {
                        times.push(t0.elapsed().as_secs_f64());
                    }
                }
                let med = median(times);
                json!({ "ms_per_step": med * 1e3, "sentences_per_sec": self.batch as f64 / med, "gflops": fpt * (self.batch * self.seq) as f64 / med / 1e9 })
            }
            BenchMode::Latency => {
                let mut lat = Vec::new();
                let mut tokens = 0;
                for (i, (t, _)) in reviews.iter().take(self.single + 5).enumerate() {
                    let enc = tok.encode(t, None)?;
                    let b = TokenBatch::pad(&[enc], Padding::Longest, tok.pad_id());
                    let t0 = Instant::now();
                    run(&b)?;
                    if i >= 5 {
                        lat.push(t0.elapsed().as_secs_f64());
                        tokens += b.seq_len;
                    }
                }
                let n = lat.len();
                json!({ "ms_median": median(lat) * 1e3, "n": n, "mean_tokens": tokens as f64 / n as f64 })
            }
            BenchMode::Train if engine.precision().is_some() => {
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
            BenchMode::Train | BenchMode::TrainFrozen => {
                let ad = device.clone().autodiff();
                let plan = TrainPlan { learning_rate: 3e-5, max_grad_norm: None, ..TrainPlan::default() };
                let mut optim = optimizer(&plan);
                let mut m = model.to_burn(&device)?.fork(&ad).train();
                if self.mode == BenchMode::TrainFrozen {
                    m.encoder = m.encoder.no_grad();
                }
                let mut times = Vec::new();
                for (i, (b, labels)) in batches.iter().enumerate() {
                    let t0 = Instant::now();
                    let logits = m.forward(EncoderInput::from_batch(b, &ad));
                    let loss = classification_loss(logits, labels, bertkit::train::LossTerms::PLAIN);
                    let grads = GradientsParams::from_grads(loss.backward(), &m);
                    m = optim.step(plan.learning_rate, m, grads);
                    let _ = loss.into_scalar::<f32>();
                    if i >= warmup {
                        times.push(t0.elapsed().as_secs_f64());
                    }
                }
                let med = median(times);
                let mult = if self.mode == BenchMode::Train { 3.0 } else { 1.0 };
                json!({ "ms_per_step": med * 1e3, "examples_per_sec": self.batch as f64 / med, "gflops": mult * fpt * (self.batch * self.seq) as f64 / med / 1e9 })
            }
            // `all` runs each measurement in a child process (`run`), `gemm` returned above, and
            // without burn the burn engine was refused above.
            other => anyhow::bail!("--mode {other} with --engine {engine} is not one measurement this build takes"),
        };
        if let (Value::Object(r), Value::Object(b)) = (&mut res, base) {
            r.extend(b);
            r.insert("peak_rss_mb".into(), json!(peak_rss_mb()));
        }
        Ok(res)
    }
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
