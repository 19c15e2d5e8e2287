//! `bertkit embed`: runs the pretrained encoder on text and prints its three outputs.

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::model::{BertEncoder, EncoderInput};
use bertkit::tokenize::{Padding, TokenBatch};
use burn::module::Module;
use burn::tensor::Tensor;
use clap::Args;

use super::args::head_f32;
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
    /// Text(s) to embed.
    #[arg(required = true)]
    texts: Vec<String>,
}

fn values<const D: usize>(t: &Tensor<D>) -> anyhow::Result<Vec<f32>> {
    t.to_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading tensor values: {e:?}"))
}

impl EmbedCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let device = self.device.device()?;
        let tok = self.pre.tokenizer(&self.model)?;
        let encoder = BertEncoder::from_dir(&self.model.model, &device)
            .with_context(|| format!("loading the encoder from {}", self.model.model.display()))?;
        let cfg = &encoder.config;
        anyhow::ensure!(
            self.pre.seq_len <= cfg.max_position_embeddings,
            "--seq-len {} exceeds the model's max_position_embeddings {}",
            self.pre.seq_len,
            cfg.max_position_embeddings
        );
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
