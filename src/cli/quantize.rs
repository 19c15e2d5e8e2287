//! `bertkit quantize`: stores an export's int8 weights (`model.int8.safetensors`) beside its fp32
//! ones, so that `--precision int8` reads them instead of quantizing at every load. The fp32
//! weights stay: transformers loads them, and the other precisions read them.

use std::path::PathBuf;

use anyhow::Context;
use bertkit::artifact::{ClassifierBundle, save_int8};
use bertkit::model::TextClassifier;
use clap::Args;

#[derive(Args, Debug)]
pub struct QuantizeCmd {
    /// A folder written by `bertkit train`.
    #[arg(long, env = "BERTKIT_MODEL")]
    model: PathBuf,
}

impl QuantizeCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let dir = &self.model;
        let bundle = ClassifierBundle::load(dir).with_context(|| format!("loading {}", dir.display()))?;
        let TextClassifier::Bert(model) = &bundle.model else {
            anyhow::bail!("{} is the BiLSTM baseline: int8 weights are for BERT-family encoders (the BiLSTM runs in fp32)", dir.display());
        };
        let s = save_int8(dir, &model.params).with_context(|| format!("storing the int8 weights of {}", dir.display()))?;
        let mb = |b: usize| b as f64 / 1e6;
        println!(
            "Wrote {}: {} encoder weights, {:.1} MB in fp32 stored as {:.1} MB (int8 values, one fp32 scale per output column).",
            s.path.display(),
            s.weights,
            mb(s.fp32_bytes),
            mb(s.int8_bytes)
        );
        println!(
            "`--precision int8` (predict, evaluate, serve) now reads them. They are tied to this model.safetensors by its SHA-256: int8 refuses them by name if it changes."
        );
        Ok(())
    }
}
