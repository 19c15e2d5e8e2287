//! The classification head's shape (stored in `bertkit.json`): input width, optional hidden
//! layer, outputs, dropout and the activation between the layers.

use super::{Family, HeadActivation};

/// Shape of the head, stored in the exported metadata.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadSpec {
    pub input_size: usize,
    /// Size of the optional hidden layer (`--head-hidden`), as in the book's custom model.
    pub hidden_size: Option<usize>,
    /// Logits per text: 1 for binary (sigmoid), the class count otherwise (softmax).
    pub num_outputs: usize,
    pub dropout: f64,
    /// Between the hidden and the output layer (ReLU in files written before families).
    #[serde(default)]
    pub activation: HeadActivation,
}

impl HeadSpec {
    /// The head transformers' `*ForSequenceClassification` puts on `family`, for an encoder of
    /// width `input_size`.
    pub fn family_default(family: Family, input_size: usize, num_outputs: usize, dropout: f64) -> Self {
        let d = family.head_defaults();
        Self {
            input_size,
            hidden_size: d.hidden_layer.then_some(input_size),
            num_outputs,
            dropout,
            activation: d.activation,
        }
    }
}
