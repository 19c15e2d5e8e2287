//! `bertkit embed`: runs the pretrained encoder (on the kernels) on text and prints its three
//! outputs, or writes a pooled vector for every row of a file (`--input`/`--output`: the batch
//! job).

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::model::{HeadSpec, Pretrained};
use bertkit::tokenize::{Padding, TokenBatch};
use bertkit::batch::{EmbedScorer, JobPlan, run_job};
use bertkit::model::Pooling;
use bertkit::model::fast::{BertModel, FastEncoder, ModelError, Precision};
use bertkit::predict::Engine;
use clap::Args;

use super::args::{head_f32, say_note};
use super::job_args::{JobArgs, print_report};
use super::{ModelArgs, PreprocessArgs};

#[derive(Args, Debug)]
pub struct EmbedCmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    pre: PreprocessArgs,
    /// Pad to the longest text instead of --seq-len.
    #[arg(long, env = "BERTKIT_DYNAMIC")]
    dynamic: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    device: DeviceSpec,
    #[command(flatten)]
    job: JobArgs,
    /// The batch job's vectors: mean (of the real tokens' last states, what sentence-embedding
    /// checkpoints such as MiniLM are trained for), cls, or pooler (the checkpoint's tanh pooler).
    #[arg(long, default_value = "mean", env = "BERTKIT_POOLING")]
    pooling: Pooling,
    /// Scale each vector to unit length (cosine similarity becomes a dot product).
    #[arg(long, env = "BERTKIT_NORMALIZE")]
    normalize: bool,
    /// The batch job's encoder: auto, kernels (fp32), kernels-bf16 or kernels-int8 (all on the CPU kernels).
    #[arg(long, alias = "precision", default_value = "auto", env = "BERTKIT_ENGINE")]
    engine: Engine,
    /// Text(s) to embed (or --input FILE).
    #[arg(required_unless_present = "input", conflicts_with = "input")]
    texts: Vec<String>,
}

impl EmbedCmd {
    /// Embeds every row of --input on the kernels.
    fn run_job(&self, plan: &JobPlan, pretrained: Pretrained) -> anyhow::Result<()> {
        anyhow::ensure!(self.engine != Engine::Burn, "the embedding job runs on the kernels: use --engine auto, kernels or kernels-bf16");
        let model = self.store(&pretrained, self.pooling)?;
        let engine = self.engine.resolve(DeviceSpec::Cpu);
        say_note(engine.fallback_note());
        let precision = engine.precision().unwrap_or(Precision::F32);
        let fast = FastEncoder::new(&model.params, &model.config, precision);
        let tok = pretrained.tokenizer;
        let source = std::fs::canonicalize(&self.model.model).unwrap_or_else(|_| self.model.model.clone());
        let identity = serde_json::json!({ "dir": source, "encode": tok.plan(), "precision": format!("{precision:?}") });
        let dim = model.hidden_size();
        let mut scorer = EmbedScorer::new(tok, fast, self.pooling, self.normalize, dim, self.job.batch_size.get(), identity);
        let report = run_job(plan, &mut scorer).with_context(|| format!("embedding {}", plan.input.display()))?;
        print_report(plan, &report);
        Ok(())
    }
}

impl EmbedCmd {
    /// The checkpoint's encoder in the weight store. The store always carries a head; this one
    /// (`[H, 1]`) is never read.
    fn store(&self, pretrained: &Pretrained, pooling: Pooling) -> anyhow::Result<BertModel> {
        let cfg = &pretrained.config;
        let head = HeadSpec { hidden_size: None, ..HeadSpec::family_default(cfg.family, cfg.hidden_size, 1, 0.0) };
        match BertModel::with_new_head(pretrained, pooling, head, 0) {
            Err(ModelError::Pooling(_)) => {
                anyhow::bail!("--pooling pooler: {} has no pooler; use mean or cls", self.model.model.display())
            }
            other => other.with_context(|| format!("loading the encoder from {}", self.model.model.display())),
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.device == DeviceSpec::Cpu,
            "embed runs the encoder on the CPU kernels; drop --device {} (GPU inference is `predict`/`serve` with --engine burn)",
            self.device
        );
        let dir = &self.model.model;
        let pretrained = Pretrained::open(dir, self.pre.plan()?).with_context(|| format!("opening {}", dir.display()))?;
        if let Some(plan) = self.job.plan(true)? {
            return self.run_job(&plan, pretrained);
        }
        let model = self.store(&pretrained, Pooling::Cls)?;
        let cfg = &model.config;
        let lay = &model.params.layout;
        let head_tensors = lay.head_hidden.iter().chain([&lay.head_out]).flat_map(|s| [s.w, s.b]).collect::<Vec<_>>();
        let params: usize = model.params.values.iter().enumerate().filter(|(i, _)| !head_tensors.contains(i)).map(|(_, v)| v.len()).sum();
        println!(
            "Loaded BERT from {}: {} layers, hidden size {}, {} heads, {} parameters, pooler: {}",
            self.model.model.display(),
            cfg.num_hidden_layers,
            cfg.hidden_size,
            cfg.num_attention_heads,
            params,
            if lay.pooler.is_some() { "yes" } else { "no" },
        );
        let tok = &pretrained.tokenizer;
        let encodings = tok.encode_all(&self.texts).context("tokenizing")?;
        let padding = if self.dynamic { Padding::Longest } else { Padding::Fixed(self.pre.seq_len) };
        let batch = TokenBatch::pad(&encodings, padding, tok.pad_id());
        // fp32: the printed values are the checkpoint's own (within 1e-4 of transformers').
        let out = FastEncoder::new(&model.params, cfg, Precision::F32).forward_all(&batch)?;
        let (b, t, h) = (batch.batch_size, batch.seq_len, cfg.hidden_size);
        if let Some(pooled) = &out.pooled {
            println!("Pooled Outputs Shape:{:?}", [b, h]);
            println!("Pooled Outputs Values:{}", head_f32(pooled, 12));
        }
        println!("Sequence Outputs Shape:{:?}", [b, t, h]);
        for ti in 0..batch.real_len(0).min(4) {
            println!("Sequence Outputs Values[0, {ti}]:{}", head_f32(&out.sequence[ti * h..], 12));
        }
        let shapes: Vec<String> = out.hidden_states.iter().map(|_| format!("{:?}", [b, t, h])).collect();
        println!("Encoder Outputs: {} tensors, shapes {}", out.hidden_states.len(), shapes.join(" "));
        Ok(())
    }
}
