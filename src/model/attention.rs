//! Multi-head self-attention with the post-attention residual and LayerNorm (transformers'
//! `BertSelfAttention` + `BertSelfOutput`, eager attention; the same math in every family).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::names::LayerNames;
use super::{Family, LoadError, ModelConfig, Weights, WeightsWriter};

#[derive(Module, Debug)]
pub struct BertAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    /// Dropout on the attention probabilities.
    pub attention_dropout: Dropout,
    /// Dropout on the projected output, before the residual.
    pub output_dropout: Dropout,
    pub num_heads: usize,
}

impl BertAttention {
    /// Reads the query/key/value/output projections and the LayerNorm named by `names`.
    pub fn load(w: &Weights<'_>, cfg: &ModelConfig, names: &LayerNames) -> Result<Self, LoadError> {
        let h = cfg.hidden_size;
        // DistilBERT's `MultiHeadSelfAttention` has no dropout after `out_lin`.
        let output_p = if cfg.family == Family::DistilBert { 0.0 } else { cfg.hidden_dropout_prob };
        Ok(Self {
            query: w.linear(&names.query, h, h)?,
            key: w.linear(&names.key, h, h)?,
            value: w.linear(&names.value, h, h)?,
            output: w.linear(&names.attention_output, h, h)?,
            layer_norm: w.layer_norm(&names.attention_norm, h, cfg.layer_norm_eps)?,
            attention_dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
            output_dropout: DropoutConfig::new(output_p).init(),
            num_heads: cfg.num_attention_heads,
        })
    }

    /// Writes the tensors under `names` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter, names: &LayerNames) -> Result<(), LoadError> {
        w.linear(&names.query, &self.query)?;
        w.linear(&names.key, &self.key)?;
        w.linear(&names.value, &self.value)?;
        w.linear(&names.attention_output, &self.output)?;
        w.layer_norm(&names.attention_norm, &self.layer_norm)
    }

    /// `x`: `[B, T, H]`; `mask_bias`: `[B, 1, 1, T]`, 0 for real tokens and a large negative
    /// number for padding. Returns `[B, T, H]`.
    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let [b, t, h] = x.dims();
        let (nh, hd) = (self.num_heads, h / self.num_heads);
        let heads = |y: Tensor<3>| y.reshape([b, t, nh, hd]).swap_dims(1, 2);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        // [B, nh, T, T]
        let scores = q.matmul(k.transpose()) * (1.0 / (hd as f64).sqrt()) + mask_bias;
        let probs = self.attention_dropout.forward(softmax(scores, 3));
        let context = probs.matmul(v).swap_dims(1, 2).reshape([b, t, h]);
        let out = self.output_dropout.forward(self.output.forward(context));
        self.layer_norm.forward(out + x)
    }
}
