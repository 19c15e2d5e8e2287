//! One post-LayerNorm transformer block: attention, then the GELU feed-forward with its residual
//! and LayerNorm (transformers' `BertLayer` = attention + `BertIntermediate` + `BertOutput`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, gelu_approximate, relu};

use super::attention::BertAttention;
use super::{Activation, BertConfig, LoadError, Weights, WeightsWriter};

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
    /// Reads `encoder.layer.{index}.*`.
    pub fn load(w: &Weights<'_>, cfg: &BertConfig, index: usize) -> Result<Self, LoadError> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let p = format!("encoder.layer.{index}");
        Ok(Self {
            attention: BertAttention::load(w, cfg, &format!("{p}.attention"))?,
            intermediate: w.linear(&format!("{p}.intermediate.dense"), h, i)?,
            output: w.linear(&format!("{p}.output.dense"), i, h)?,
            layer_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, cfg.layer_norm_eps)?,
            dropout: DropoutConfig::new(cfg.hidden_dropout_prob).init(),
            activation: cfg.activation().map_err(|reason| LoadError::BadConfig {
                path: "config.json".into(),
                reason,
            })?,
        })
    }

    /// Writes `encoder.layer.{index}.*` (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter, index: usize) -> Result<(), LoadError> {
        let p = format!("encoder.layer.{index}");
        self.attention.save(w, &format!("{p}.attention"))?;
        w.linear(&format!("{p}.intermediate.dense"), &self.intermediate)?;
        w.linear(&format!("{p}.output.dense"), &self.output)?;
        w.layer_norm(&format!("{p}.output.LayerNorm"), &self.layer_norm)
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
