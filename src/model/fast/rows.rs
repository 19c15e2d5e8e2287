//! A right-padded token batch as row indices into the embedding tables, the form every forward
//! pass (inference and training) reads.

use crate::model::ModelConfig;
use crate::tokenize::TokenBatch;

/// One batch's table rows, `[B·T]` each.
pub struct Rows {
    pub batch: usize,
    pub t: usize,
    pub ids: Vec<usize>,
    pub positions: Vec<usize>,
    pub types: Vec<usize>,
    /// Real tokens per text.
    pub lens: Vec<usize>,
}

impl Rows {
    /// Ids outside the tables are clamped here only as a last guard: the pretrained-folder loader
    /// already refuses a tokenizer whose vocabulary exceeds `vocab_size`.
    pub fn new(batch: &TokenBatch, cfg: &ModelConfig) -> Self {
        let (b, t) = (batch.batch_size, batch.seq_len.max(1));
        let clamp = |v: i64, n: usize| (v.max(0) as usize).min(n.saturating_sub(1));
        let ids: Vec<usize> = batch.input_word_ids.iter().map(|&v| clamp(v, cfg.vocab_size)).collect();
        let types: Vec<usize> = batch.input_type_ids.iter().map(|&v| clamp(v, cfg.type_vocab_size)).collect();
        let lens: Vec<usize> = batch.input_mask.chunks(t).map(|m| m.iter().filter(|&&v| v != 0).count()).collect();
        let mut positions = Vec::with_capacity(b * t);
        for row in batch.input_word_ids.chunks(t) {
            cfg.position_ids(row, &mut positions);
        }
        Self { batch: b, t, ids, positions, types, lens }
    }

    /// `B·T`.
    pub fn rows(&self) -> usize {
        self.batch * self.t
    }
}
