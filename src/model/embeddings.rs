//! BERT's input embeddings: word + absolute position + token type, then LayerNorm and dropout
//! (transformers' `BertEmbeddings`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm};
use burn::tensor::{Int, Tensor};

use super::{BertConfig, LoadError, Weights, WeightsWriter};

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertEmbeddings {
    /// Reads `embeddings.*` from the checkpoint.
    pub fn load(w: &Weights<'_>, cfg: &BertConfig) -> Result<Self, LoadError> {
        let h = cfg.hidden_size;
        Ok(Self {
            word_embeddings: w.embedding("embeddings.word_embeddings", cfg.vocab_size, h)?,
            position_embeddings: w.embedding(
                "embeddings.position_embeddings",
                cfg.max_position_embeddings,
                h,
            )?,
            token_type_embeddings: w.embedding(
                "embeddings.token_type_embeddings",
                cfg.type_vocab_size,
                h,
            )?,
            layer_norm: w.layer_norm("embeddings.LayerNorm", h, cfg.layer_norm_eps)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
        })
    }

    /// Writes `embeddings.*` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        w.embedding("embeddings.word_embeddings", &self.word_embeddings)?;
        w.embedding("embeddings.position_embeddings", &self.position_embeddings)?;
        w.embedding("embeddings.token_type_embeddings", &self.token_type_embeddings)?;
        w.layer_norm("embeddings.LayerNorm", &self.layer_norm)
    }

    /// `input_ids`, `type_ids`: `[B, T]` → `[B, T, H]`. Positions are `0..T` (right padding).
    pub fn forward(&self, input_ids: Tensor<2, Int>, type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, t] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &input_ids.device()).unsqueeze::<2>();
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(type_ids);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}
