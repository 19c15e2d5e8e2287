//! Either kind of classifier bertkit trains and serves, as their weight stores: a BERT-family
//! encoder with a head ([`BertModel`]) or the GloVe + BiLSTM baseline ([`BiLstmModel`]). Both
//! read the same padded `[B, T]` ids and mask.

#[cfg(feature = "burn")]
use burn::module::Module;
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor};

use super::fast::{BertModel, BiLstmModel};
#[cfg(feature = "burn")]
use super::fast::{Rows, TokenBatchError};
#[cfg(feature = "burn")]
use super::{BertClassifier, BiLstmClassifier, EncoderInput, LoadError, ModelConfig};
#[cfg(feature = "burn")]
use crate::tokenize::TokenBatch;

// One value per loaded model, moved rarely: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum TextClassifier {
    Bert(BertModel),
    BiLstm(BiLstmModel),
}

impl TextClassifier {
    pub fn num_outputs(&self) -> usize {
        match self {
            Self::Bert(m) => m.num_outputs(),
            Self::BiLstm(m) => m.spec.num_outputs,
        }
    }

    #[cfg(feature = "burn")]
    /// The model as burn modules on `device`, in inference mode (dropout off, no autodiff graph).
    pub fn to_burn(&self, device: &Device) -> Result<BurnClassifier, LoadError> {
        Ok(match self {
            Self::Bert(m) => BurnClassifier::Bert(m.to_burn(device)?.valid()),
            Self::BiLstm(m) => BurnClassifier::BiLstm(m.to_burn(device)?.valid()),
        })
    }

    #[cfg(feature = "burn")]
    /// What a token batch must fit to be scored by this model, to keep beside its burn modules.
    pub fn batch_fit(&self) -> BatchFit {
        match self {
            Self::Bert(m) => BatchFit::Bert(m.config.clone()),
            Self::BiLstm(m) => BatchFit::BiLstm { vocab_size: m.spec.vocab_size },
        }
    }
}

#[cfg(feature = "burn")]
/// The sizes of a model's tables, kept beside its burn modules: burn's embedding lookup panics on
/// an id past its table, where the kernels' forward passes refuse the batch by name.
#[derive(Debug, Clone)]
pub enum BatchFit {
    Bert(ModelConfig),
    BiLstm { vocab_size: usize },
}

#[cfg(feature = "burn")]
impl BatchFit {
    /// `batch` fits the model, or which field, text and token do not: the checks of the kernels'
    /// forward passes ([`Rows::new`]; `BiLstmModel::forward`'s layout and id checks).
    pub fn check(&self, batch: &TokenBatch) -> Result<(), TokenBatchError> {
        match self {
            Self::Bert(config) => Rows::new(batch, config).map(drop),
            Self::BiLstm { vocab_size } => {
                TokenBatchError::check_layout(batch)?;
                TokenBatchError::word_rows(batch, *vocab_size).map(drop)
            }
        }
    }
}

#[cfg(feature = "burn")]
/// A classifier on burn's modules: the burn engine's (GPU) inference path.
// As above: one per loaded model.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum BurnClassifier {
    Bert(BertClassifier),
    BiLstm(BiLstmClassifier),
}

#[cfg(feature = "burn")]
impl BurnClassifier {
    /// Logits `[B, num_outputs]`.
    pub fn forward(&self, input: EncoderInput) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.forward(input),
            Self::BiLstm(m) => m.forward(input),
        }
    }
}
