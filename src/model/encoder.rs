//! The whole BERT encoder (transformers' `BertModel`): embeddings, the layer stack and the tanh
//! pooler, returning `pooled_output`, `sequence_output` and every layer's `encoder_outputs` like
//! the TF Hub BERT encoders.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{BertConfig, BertEmbeddings, BertLayer, Checkpoint, LoadError, Weights, WeightsWriter};
use crate::tokenize::TokenBatch;

/// Added to attention scores of padding tokens. Large enough that `exp` underflows to exactly 0
/// in f32 (like transformers' `finfo.min` mask), small enough not to overflow when added.
const MASK_NEG: f64 = -1.0e9;

/// Token ids on a device. All `[B, T]`.
#[derive(Clone, Debug)]
pub struct EncoderInput {
    pub input_word_ids: Tensor<2, Int>,
    pub input_mask: Tensor<2, Int>,
    pub input_type_ids: Tensor<2, Int>,
}

impl EncoderInput {
    pub fn from_batch(batch: &TokenBatch, device: &Device) -> Self {
        let shape = [batch.batch_size, batch.seq_len];
        let t = |v: &Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v.clone(), shape), device);
        Self {
            input_word_ids: t(&batch.input_word_ids),
            input_mask: t(&batch.input_mask),
            input_type_ids: t(&batch.input_type_ids),
        }
    }
}

/// What the encoder returns.
#[derive(Clone, Debug)]
pub struct EncoderOutput {
    /// `[B, H]`: tanh(dense(`[CLS]` state)); `None` for checkpoints saved without a pooler.
    pub pooled_output: Option<Tensor<2>>,
    /// `[B, T, H]`: the last layer's hidden states.
    pub sequence_output: Tensor<3>,
    /// One `[B, T, H]` per layer, in order; the last equals `sequence_output`.
    pub encoder_outputs: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
    pub pooler: Option<Linear>,
    #[module(skip)]
    pub config: BertConfig,
}

impl BertEncoder {
    /// Loads `dir/config.json` and `dir/model.safetensors` (names with or without `bert.`).
    pub fn from_dir(dir: &Path, device: &Device) -> Result<Self, LoadError> {
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let ckpt = Checkpoint::read(&dir.join("model.safetensors"))?;
        let mut weights = ckpt.weights(device)?;
        weights.select_prefix("embeddings.word_embeddings.weight", &["", "bert."])?;
        Self::load(&weights, config)
    }

    /// Builds the encoder from already opened weights (prefix selected).
    pub fn load(w: &Weights<'_>, config: BertConfig) -> Result<Self, LoadError> {
        let embeddings = BertEmbeddings::load(w, &config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::load(w, &config, i))
            .collect::<Result<Vec<_>, _>>()?;
        let pooler = if w.contains("pooler.dense.weight") {
            Some(w.linear("pooler.dense", config.hidden_size, config.hidden_size)?)
        } else {
            None
        };
        Ok(Self { embeddings, layers, pooler, config })
    }

    /// Writes every tensor under transformers' `BertModel` names (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        self.embeddings.save(w)?;
        for (i, layer) in self.layers.iter().enumerate() {
            layer.save(w, i)?;
        }
        match &self.pooler {
            Some(p) => w.linear("pooler.dense", p),
            None => Ok(()),
        }
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Runs the encoder. Dropout is active only when the module is in training mode on an
    /// autodiff device (see [`Module::valid`]).
    pub fn forward(&self, input: EncoderInput) -> EncoderOutput {
        let [b, t] = input.input_mask.dims();
        let mask_bias = (input.input_mask.float().neg() + 1.0).mul_scalar(MASK_NEG).reshape([b, 1, 1, t]);
        let mut x = self.embeddings.forward(input.input_word_ids, input.input_type_ids);
        let mut encoder_outputs = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            x = layer.forward(x, mask_bias.clone());
            encoder_outputs.push(x.clone());
        }
        let pooled_output = self.pooler.as_ref().map(|dense| {
            let h = self.config.hidden_size;
            let cls = x.clone().narrow(1, 0, 1).reshape([b, h]);
            tanh(dense.forward(cls))
        });
        EncoderOutput { pooled_output, sequence_output: x, encoder_outputs }
    }
}
