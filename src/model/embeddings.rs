//! Input embeddings: word + position (+ token type), then LayerNorm and dropout (transformers'
//! `BertEmbeddings`, and its RoBERTa/ALBERT/ELECTRA/DistilBERT variants).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm};
use burn::tensor::{Int, Tensor};

use super::{Family, LoadError, ModelConfig, Weights, WeightsWriter};

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    /// `None` for DistilBERT.
    pub token_type_embeddings: Option<Embedding>,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// RoBERTa's `padding_idx`: positions count from `padding_idx + 1` over non-pad tokens.
    pub position_padding_idx: Option<usize>,
}

impl BertEmbeddings {
    /// Reads `embeddings.*` from the checkpoint; tables are `embedding_size` wide.
    pub fn load(w: &Weights<'_>, cfg: &ModelConfig) -> Result<Self, LoadError> {
        let e = cfg.embedding_size;
        let token_type_embeddings = match cfg.family {
            Family::DistilBert => None,
            _ => Some(w.embedding("embeddings.token_type_embeddings", cfg.type_vocab_size, e)?),
        };
        Ok(Self {
            word_embeddings: w.embedding("embeddings.word_embeddings", cfg.vocab_size, e)?,
            position_embeddings: w.embedding("embeddings.position_embeddings", cfg.max_position_embeddings, e)?,
            token_type_embeddings,
            layer_norm: w.layer_norm("embeddings.LayerNorm", e, cfg.layer_norm_eps)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            position_padding_idx: (cfg.family == Family::Roberta).then_some(cfg.pad_token_id),
        })
    }

    /// Writes `embeddings.*` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        w.embedding("embeddings.word_embeddings", &self.word_embeddings)?;
        w.embedding("embeddings.position_embeddings", &self.position_embeddings)?;
        if let Some(t) = &self.token_type_embeddings {
            w.embedding("embeddings.token_type_embeddings", t)?;
        }
        w.layer_norm("embeddings.LayerNorm", &self.layer_norm)
    }

    /// `input_ids`, `type_ids`: `[B, T]` → `[B, T, E]`. Positions are `0..T` (right padding),
    /// or RoBERTa's `create_position_ids_from_input_ids`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = input_ids.dims();
        let device = input_ids.device();
        let positions = match self.position_padding_idx {
            None => Tensor::<1, Int>::arange(0..t as i64, &device).unsqueeze::<2>().expand([b, t]),
            Some(pad) => {
                // transformers: cumsum(ids != pad) * (ids != pad) + pad
                let real = input_ids.clone().not_equal_elem(pad as i64).int();
                real.clone().cumsum(1) * real + pad as i64
            }
        };
        let mut x = self.word_embeddings.forward(input_ids) + self.position_embeddings.forward(positions);
        if let Some(types) = &self.token_type_embeddings {
            x = x + types.forward(type_ids);
        }
        self.dropout.forward(self.layer_norm.forward(x))
    }
}
