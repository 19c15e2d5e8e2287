//! The whole encoder (transformers' `BertModel`, `DistilBertModel`, `RobertaModel`, `AlbertModel`,
//! `ElectraModel`): embeddings, the block stack and the tanh pooler, returning `pooled_output`,
//! `sequence_output` and every layer's `encoder_outputs` like the TF Hub BERT encoders.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::names::{EncoderNames, LayerNames};
use super::{BertEmbeddings, BertLayer, Checkpoint, LoadError, ModelConfig, Weights, WeightsWriter};
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
    /// `[B, H]`: tanh(dense(`[CLS]` state)); `None` for checkpoints saved without a pooler
    /// (DistilBERT, ELECTRA, RoBERTa classifiers).
    pub pooled_output: Option<Tensor<2>>,
    /// `[B, T, H]`: the last layer's hidden states.
    pub sequence_output: Tensor<3>,
    /// One `[B, T, H]` per layer, in order; the last equals `sequence_output`.
    pub encoder_outputs: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub embeddings: BertEmbeddings,
    /// ALBERT's `embedding_hidden_mapping_in` / ELECTRA's `embeddings_project`: `E` → `H`.
    pub projection: Option<Linear>,
    /// The stored blocks; ALBERT runs them several times (see [`ModelConfig::layers_at_depth`]).
    pub layers: Vec<BertLayer>,
    pub pooler: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
}

impl BertEncoder {
    /// Loads `dir/config.json` and `dir/model.safetensors` (names with or without the family's
    /// `bert.`/`roberta.`/… prefix).
    pub fn from_dir(dir: &Path, device: &Device) -> Result<Self, LoadError> {
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let ckpt = Checkpoint::read(&dir.join("model.safetensors"))?;
        Self::load(&ckpt.encoder_weights(config.family, device)?, config)
    }

    /// Builds the encoder from already opened weights (prefix selected).
    pub fn load(w: &Weights<'_>, config: ModelConfig) -> Result<Self, LoadError> {
        let (e, h) = (config.embedding_size, config.hidden_size);
        let embeddings = BertEmbeddings::load(w, &config)?;
        let projection = match EncoderNames::projection(config.family) {
            // ELECTRA only stores the projection when the widths differ.
            Some(name) if e != h || w.contains(&format!("{name}.weight")) => Some(w.linear(name, e, h)?),
            _ => None,
        };
        let layers = (0..config.stored_layers())
            .map(|i| BertLayer::load(w, &config, &LayerNames::new(config.family, i, config.inner_group_num)))
            .collect::<Result<Vec<_>, _>>()?;
        let pooler_name = EncoderNames::pooler(config.family);
        let pooler = if w.contains(&format!("{pooler_name}.weight")) {
            Some(w.linear(pooler_name, h, h)?)
        } else {
            None
        };
        Ok(Self { embeddings, projection, layers, pooler, config })
    }

    /// Writes every tensor under the family's transformers names (the mirror of [`Self::load`]).
    pub fn save(&self, w: &mut WeightsWriter) -> Result<(), LoadError> {
        let family = self.config.family;
        self.embeddings.save(w)?;
        if let (Some(p), Some(name)) = (&self.projection, EncoderNames::projection(family)) {
            w.linear(name, p)?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            layer.save(w, &LayerNames::new(family, i, self.config.inner_group_num))?;
        }
        match &self.pooler {
            Some(p) => w.linear(EncoderNames::pooler(family), p),
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
        if let Some(projection) = &self.projection {
            x = projection.forward(x);
        }
        let depth = self.config.num_hidden_layers;
        let mut encoder_outputs = Vec::with_capacity(depth);
        for d in 0..depth {
            for layer in &self.layers[self.config.layers_at_depth(d)] {
                x = layer.forward(x, mask_bias.clone());
            }
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
