//! `bertkit embed`: runs the pretrained encoder on text and prints its three outputs, or writes
//! a pooled vector for every row of a file (`--input`/`--output`: the batch job).

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::model::{EncoderInput, HeadSpec, Pretrained};
use bertkit::tokenize::{Padding, TokenBatch};
use burn::module::Module;
use burn::tensor::Tensor;
use bertkit::batch::{EmbedScorer, JobPlan, run_job};
use bertkit::model::Pooling;
use bertkit::model::fast::{BertModel, FastEncoder, ModelError, Precision};
use bertkit::predict::Engine;
use clap::Args;

use super::args::head_f32;
use super::job_args::{JobArgs, print_report};
use super::{ModelArgs, PreprocessArgs};

#[derive(Args, Debug)]
pub struct EmbedCmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    pre: PreprocessArgs,
    /// Pad to the longest text instead of --seq-len.
    #[arg(long)]
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
        let cfg = &pretrained.config;
        // The store always carries a head; this one (`[H, 1]`) is never read.
        let head = HeadSpec { hidden_size: None, ..HeadSpec::family_default(cfg.family, cfg.hidden_size, 1, 0.0) };
        let model = match BertModel::with_new_head(&pretrained, self.pooling, head, 0) {
            Err(ModelError::Pooling(_)) => {
                anyhow::bail!("--pooling pooler: {} has no pooler; use mean or cls", self.model.model.display())
            }
            other => other.with_context(|| format!("loading the encoder from {}", self.model.model.display()))?,
        };
        let precision = self.engine.resolve(DeviceSpec::Cpu).precision().unwrap_or(Precision::F32);
        let fast = FastEncoder::new(&model.params, &model.config, precision);
        let tok = pretrained.tokenizer;
        let source = std::fs::canonicalize(&self.model.model).unwrap_or_else(|_| self.model.model.clone());
        let identity = serde_json::json!({ "dir": source, "encode": tok.plan(), "precision": format!("{precision:?}") });
        let dim = model.hidden_size();
        let mut scorer = EmbedScorer::new(tok, fast, self.pooling, self.normalize, dim, self.job.batch_size, identity);
        let report = run_job(plan, &mut scorer).with_context(|| format!("embedding {}", plan.input.display()))?;
        print_report(plan, &report);
        Ok(())
    }
}

fn values<const D: usize>(t: &Tensor<D>) -> anyhow::Result<Vec<f32>> {
    t.to_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading tensor values: {e:?}"))
}

impl EmbedCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let device = self.device.device()?;
        let dir = &self.model.model;
        let pretrained = Pretrained::open(dir, self.pre.plan()?).with_context(|| format!("opening {}", dir.display()))?;
        if let Some(plan) = self.job.plan(true)? {
            return self.run_job(&plan, pretrained);
        }
        let encoder =
            pretrained.encoder(&device).with_context(|| format!("loading the encoder from {}", dir.display()))?;
        let tok = pretrained.tokenizer;
        let cfg = &encoder.config;
        println!(
            "Loaded BERT from {}: {} layers, hidden size {}, {} heads, {} parameters, pooler: {}",
            self.model.model.display(),
            cfg.num_hidden_layers,
            cfg.hidden_size,
            cfg.num_attention_heads,
            encoder.num_params(),
            if encoder.pooler.is_some() { "yes" } else { "no" },
        );
        let encodings = tok.encode_all(&self.texts).context("tokenizing")?;
        let padding = if self.dynamic { Padding::Longest } else { Padding::Fixed(self.pre.seq_len) };
        let batch = TokenBatch::pad(&encodings, padding, tok.pad_id());
        let out = encoder.forward(EncoderInput::from_batch(&batch, &device));
        if let Some(pooled) = &out.pooled_output {
            println!("Pooled Outputs Shape:{:?}", pooled.dims());
            println!("Pooled Outputs Values:{}", head_f32(&values(pooled)?, 12));
        }
        let seq = &out.sequence_output;
        println!("Sequence Outputs Shape:{:?}", seq.dims());
        let seq_values = values(seq)?;
        let h = cfg.hidden_size;
        for t in 0..batch.real_len(0).min(4) {
            println!("Sequence Outputs Values[0, {t}]:{}", head_f32(&seq_values[t * h..], 12));
        }
        let shapes: Vec<String> = out.encoder_outputs.iter().map(|t| format!("{:?}", t.dims())).collect();
        println!("Encoder Outputs: {} tensors, shapes {}", out.encoder_outputs.len(), shapes.join(" "));
        Ok(())
    }
}
