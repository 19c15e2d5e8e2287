//! `bertkit export-embeddings`: writes a checkpoint's token embedding table in GloVe text
//! format, so the BiLSTM baseline can start from real pretrained vectors when no GloVe file can
//! be downloaded.

use std::path::PathBuf;

use anyhow::Context;
use bertkit::model::{ModelConfig, Pretrained, write_glove};
use bertkit::tokenize::EncodePlan;
use clap::Args;

#[derive(Args, Debug)]
pub struct ExportEmbeddingsCmd {
    /// Hugging Face checkpoint folder (or a folder written by `bertkit train`).
    #[arg(long, env = "BERTKIT_MODEL")]
    model: PathBuf,
    /// Output text file: `token v1 ... vN` per line.
    #[arg(long, env = "BERTKIT_OUT")]
    out: PathBuf,
}

impl ExportEmbeddingsCmd {
    pub fn run(self) -> anyhow::Result<()> {
        // No text is encoded here: any plan the position table holds will do.
        let positions = ModelConfig::from_file(&self.model.join("config.json"))?.max_sequence_length();
        let pretrained = Pretrained::open(&self.model, EncodePlan { seq_len: positions.min(128), ..EncodePlan::default() })
            .with_context(|| format!("opening {}", self.model.display()))?;
        let (config, tok) = (&pretrained.config, &pretrained.tokenizer);
        let w = pretrained.checkpoint.encoder_tensors(config.family)?;
        let (n, dim) = (config.vocab_size, config.embedding_size);
        let matrix = w.read("embeddings.word_embeddings.weight", &[n, dim])?;
        let tokens: Vec<String> = (0..n as u32).map(|i| tok.id_to_token(i).unwrap_or_default()).collect();
        let written = write_glove(&self.out, &tokens, &matrix, dim)?;
        println!("Wrote {written} vectors of dimension {dim} to {} (from {})", self.out.display(), self.model.display());
        if written < n {
            eprintln!("note: {} ids without a writable token were skipped", n - written);
        }
        Ok(())
    }
}
