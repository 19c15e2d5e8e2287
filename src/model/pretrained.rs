//! Opens a checkpoint folder once — `config.json`, `model.safetensors` and the tokenizer — and
//! checks them against each other before any model is built or any text is scored.
//!
//! Each part can be valid alone and the three still not fit: a tokenizer whose ids run past the
//! embedding table (burn's embedding then panics on an out-of-range index, the kernels refuse
//! the batch at the first text that holds one), or a sequence length past the position table
//! (RoBERTa spends `pad_token_id + 1` of its rows before the first token). Every command that
//! opens a pretrained or exported folder goes through [`Pretrained::open`], so these are told
//! once, by name, at load.

use std::path::{Path, PathBuf};

#[cfg(feature = "burn")]
use burn::tensor::Device;

#[cfg(feature = "burn")]
use super::{BertEncoder, Weights};
use super::{Checkpoint, EncoderNames, Family, LoadError, ModelConfig};
use crate::tokenize::{EncodePlan, TextTokenizer};

/// A checkpoint folder whose config, weights and tokenizer fit together.
pub struct Pretrained {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub checkpoint: Checkpoint,
    pub tokenizer: TextTokenizer,
}

impl Pretrained {
    /// Opens `dir` for inputs of `plan` (its `seq_len` is checked against the position table).
    pub fn open(dir: &Path, plan: EncodePlan) -> Result<Self, LoadError> {
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let tokenizer = TextTokenizer::from_dir(dir, plan)
            .map_err(|source| LoadError::Tokenizer { dir: dir.to_path_buf(), source })?;
        check_fit(&config, &tokenizer, dir)?;
        let checkpoint = Checkpoint::read(&dir.join("model.safetensors"))?;
        Ok(Self { dir: dir.to_path_buf(), config, checkpoint, tokenizer })
    }

    #[cfg(feature = "burn")]
    /// The weights with the encoder's prefix selected ([`Checkpoint::encoder_weights`]).
    pub fn encoder_weights(&self, device: &Device) -> Result<Weights<'_>, LoadError> {
        self.checkpoint.encoder_weights(self.config.family, device)
    }

    /// Whether the checkpoint stores the tanh pooler.
    pub fn has_pooler(&self) -> Result<bool, LoadError> {
        let family = self.config.family;
        Ok(self.checkpoint.encoder_tensors(family)?.contains(&format!("{}.weight", EncoderNames::pooler(family))))
    }

    #[cfg(feature = "burn")]
    /// The encoder on burn's `device`.
    pub fn encoder(&self, device: &Device) -> Result<BertEncoder, LoadError> {
        BertEncoder::load(&self.encoder_weights(device)?, self.config.clone())
    }
}

/// The checks [`Pretrained::open`] makes, for callers that hold the parts already.
pub fn check_fit(config: &ModelConfig, tokenizer: &TextTokenizer, dir: &Path) -> Result<(), LoadError> {
    let ids = tokenizer.id_count();
    if ids > config.vocab_size {
        return Err(LoadError::VocabTooLarge {
            tokenizer: tokenizer.source().to_path_buf(),
            ids,
            vocab_size: config.vocab_size,
            config: dir.join("config.json"),
        });
    }
    let seq_len = tokenizer.plan().seq_len;
    let max = config.max_sequence_length();
    if seq_len > max {
        let why = match config.family {
            Family::Roberta => format!(
                "{} position rows, of which RoBERTa spends pad_token_id + 1 = {} before the first token",
                config.max_position_embeddings,
                config.pad_token_id + 1
            ),
            _ => format!("max_position_embeddings = {}", config.max_position_embeddings),
        };
        return Err(LoadError::SeqLenTooLong { seq_len, max, why, config: dir.join("config.json") });
    }
    Ok(())
}
