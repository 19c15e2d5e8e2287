//! Multi-head self-attention with the post-attention residual and LayerNorm (transformers'
//! `BertSelfAttention` + `BertSelfOutput`, eager attention).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::{BertConfig, LoadError, Weights, WeightsWriter};

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
    /// Reads `{prefix}.self.{query,key,value}` and `{prefix}.output.{dense,LayerNorm}`.
    pub fn load(w: &Weights<'_>, cfg: &BertConfig, prefix: &str) -> Result<Self, LoadError> {
        let h = cfg.hidden_size;
        Ok(Self {
            query: w.linear(&format!("{prefix}.self.query"), h, h)?,
            key: w.linear(&format!("{prefix}.self.key"), h, h)?,
            value: w.linear(&format!("{prefix}.self.value"), h, h)?,
            output: w.linear(&format!("{prefix}.output.dense"), h, h)?,
            layer_norm: w.layer_norm(&format!("{prefix}.output.LayerNorm"), h, cfg.layer_norm_eps)?,
            attention_dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
            output_dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            num_heads: cfg.num_attention_heads,
        })
    }

    /// Writes `{prefix}.self.*` and `{prefix}.output.*` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter, prefix: &str) -> Result<(), LoadError> {
        w.linear(&format!("{prefix}.self.query"), &self.query)?;
        w.linear(&format!("{prefix}.self.key"), &self.key)?;
        w.linear(&format!("{prefix}.self.value"), &self.value)?;
        w.linear(&format!("{prefix}.output.dense"), &self.output)?;
        w.layer_norm(&format!("{prefix}.output.LayerNorm"), &self.layer_norm)
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
