//! A BERT-family classifier as bertkit keeps it: the weight store ([`Params`]), the encoder's
//! config, the pooling and the head's shape. Loaded straight from safetensors, exported straight
//! back; the kernels pack it for inference ([`FastClassifier`](super::FastClassifier)) and train
//! it in place.

use super::Params;
use super::params::HeadInit;
use crate::model::{Family, HeadSpec, LoadError, ModelConfig, Pooling, PoolingError, Pretrained, WeightsWriter};

#[derive(Clone)]
pub struct BertModel {
    pub params: Params,
    pub config: ModelConfig,
    pub pooling: Pooling,
    pub head: HeadSpec,
}

/// Why a model could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Pooling(#[from] PoolingError),
}

impl BertModel {
    /// `pretrained`'s encoder with a fresh head of shape `head` (drawn from `seed`).
    pub fn with_new_head(pretrained: &Pretrained, pooling: Pooling, head: HeadSpec, seed: u64) -> Result<Self, ModelError> {
        Self::read(pretrained, pooling, head, HeadInit::Fresh { seed })
    }

    /// An exported classifier: the encoder and the head stored in `pretrained`.
    pub fn load(pretrained: &Pretrained, pooling: Pooling, head: HeadSpec) -> Result<Self, ModelError> {
        Self::read(pretrained, pooling, head, HeadInit::Stored)
    }

    fn read(pretrained: &Pretrained, pooling: Pooling, head: HeadSpec, init: HeadInit) -> Result<Self, ModelError> {
        let config = pretrained.config.clone();
        let mut w = pretrained.checkpoint.encoder_tensors(config.family)?;
        let params = Params::load(&mut w, &config, &head, init)?;
        if pooling == Pooling::Pooler && params.layout.pooler.is_none() {
            return Err(PoolingError::NoPooler.into());
        }
        Ok(Self { params, config, pooling, head })
    }

    /// Writes the model under transformers' names ([`Params::save`]).
    pub fn save(&self, w: &mut WeightsWriter) {
        self.params.save(w, &self.config);
    }

    pub fn num_outputs(&self) -> usize {
        self.head.num_outputs
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Whether dropout also applies to the head's input: everywhere but DistilBERT's
    /// `pre_classifier` head, which transformers only drops after the ReLU.
    pub fn head_input_dropout(&self) -> bool {
        !(self.config.family == Family::DistilBert && self.head.hidden_size.is_some())
    }
}
