//! The GloVe + BiLSTM baseline's shape (stored in `bertkit.json`).

use serde::{Deserialize, Serialize};

/// The baseline's shape, stored in `bertkit.json`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiLstmSpec {
    /// Rows of the embedding: padding + vocabulary words + OOV.
    pub vocab_size: usize,
    pub embedding_dim: usize,
    /// Units per direction (64 in the chapter).
    pub units: usize,
    pub num_outputs: usize,
    /// Dropout on the first BiLSTM's inputs (0.5) and the second's (0.25).
    pub dropout_first: f64,
    pub dropout_second: f64,
    /// Fine-tune the embedding table (`--trainable-embeddings`) or keep GloVe frozen.
    pub trainable_embeddings: bool,
}
