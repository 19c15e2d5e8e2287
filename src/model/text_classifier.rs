//! Either kind of classifier bertkit trains and serves: a BERT-family encoder with a head, or the
//! GloVe + BiLSTM baseline. Both read the same padded `[B, T]` ids and mask.

use burn::module::Module;
use burn::tensor::Tensor;

use super::{BertClassifier, BiLstmClassifier, EncoderInput};

// One value per loaded model, moved rarely: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum TextClassifier {
    Bert(BertClassifier),
    BiLstm(BiLstmClassifier),
}

impl TextClassifier {
    /// Logits `[B, num_outputs]`.
    pub fn forward(&self, input: EncoderInput) -> Tensor<2> {
        match self {
            Self::Bert(m) => m.forward(input),
            Self::BiLstm(m) => m.forward(input),
        }
    }

    /// An inference copy: dropout off, no autodiff graph.
    pub fn valid(&self) -> Self {
        match self {
            Self::Bert(m) => Self::Bert(m.valid()),
            Self::BiLstm(m) => Self::BiLstm(m.valid()),
        }
    }

    pub fn num_outputs(&self) -> usize {
        match self {
            Self::Bert(m) => m.num_outputs(),
            Self::BiLstm(m) => m.spec.num_outputs,
        }
    }
}
