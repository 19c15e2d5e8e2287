//! One post-LayerNorm transformer block: attention, then the GELU feed-forward with its residual
//! and LayerNorm (transformers' `BertLayer` = attention + `BertIntermediate` + `BertOutput`;
//! DistilBERT's `TransformerBlock` and ALBERT's `AlbertLayer` are the same computation).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, gelu_approximate, relu};

use super::attention::BertAttention;
use super::names::LayerNames;
use super::{Activation, LoadError, ModelConfig, Weights, WeightsWriter};

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

impl BertLayer {
    /// Reads one block's tensors, named as `names` says.
    pub fn load(w: &Weights<'_>, cfg: &ModelConfig, names: &LayerNames) -> Result<Self, LoadError> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            attention: BertAttention::load(w, cfg, names)?,
            intermediate: w.linear(&names.ffn_in, h, i)?,
            output: w.linear(&names.ffn_out, i, h)?,
            layer_norm: w.layer_norm(&names.output_norm, h, cfg.layer_norm_eps)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            activation: cfg.activation,
        })
    }

    /// Writes the block under `names` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter, names: &LayerNames) -> Result<(), LoadError> {
        self.attention.save(w, names)?;
        w.linear(&names.ffn_in, &self.intermediate)?;
        w.linear(&names.ffn_out, &self.output)?;
        w.layer_norm(&names.output_norm, &self.layer_norm)
    }

    /// `x`: `[B, T, H]`, `mask_bias`: `[B, 1, 1, T]` → `[B, T, H]`.
    pub fn forward(&self, x: Tensor<3>, mask_bias: Tensor<4>) -> Tensor<3> {
        let x = self.attention.forward(x, mask_bias);
        let y = self.intermediate.forward(x.clone());
        let y = match self.activation {
            Activation::Gelu => gelu(y),
            Activation::GeluTanh => gelu_approximate(y),
            Activation::Relu => relu(y),
        };
        let y = self.dropout.forward(self.output.forward(y));
        self.layer_norm.forward(y + x)
    }
}
