//! The BERT-family architectures bertkit loads, chosen by `config.json`'s `model_type`, and what
//! differs between them: tensor-name prefixes, the transformers head class and its default head.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One architecture of the BERT family. All share the post-LayerNorm transformer block; they
/// differ in embeddings, layer names, weight sharing and classification head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Bert,
    /// No token types, no pooler, `transformer.layer.N` names.
    DistilBert,
    /// Positions offset by `padding_idx + 1`, byte-level BPE tokenizer.
    Roberta,
    /// Factorised embeddings and one set of layer weights shared across depth.
    Albert,
    /// Discriminator: an embedding projection when `embedding_size != hidden_size`.
    Electra,
}

/// The activation between the head's two dense layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadActivation {
    /// The book's custom head and DistilBERT's `pre_classifier`.
    #[default]
    Relu,
    /// RoBERTa's `RobertaClassificationHead`.
    Tanh,
    /// ELECTRA's `ElectraClassificationHead`.
    Gelu,
}

/// Which text vector the head reads and how the head is shaped, as transformers'
/// `*ForSequenceClassification` does it for a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadDefaults {
    /// `true`: the tanh pooler (`pooled_output`); `false`: the first token's state.
    pub uses_pooler: bool,
    /// A hidden dense layer of `hidden_size` before the output layer.
    pub hidden_layer: bool,
    pub activation: HeadActivation,
}

impl Family {
    pub const ALL: [Family; 5] = [Self::Bert, Self::DistilBert, Self::Roberta, Self::Albert, Self::Electra];

    /// `config.json`'s `model_type` (missing means `bert`, as in old BERT checkpoints).
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.model_type() == model_type)
    }

    pub fn model_type(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::DistilBert => "distilbert",
            Self::Roberta => "roberta",
            Self::Albert => "albert",
            Self::Electra => "electra",
        }
    }

    /// A comma-separated list for error messages.
    pub fn supported() -> String {
        Self::ALL.map(Self::model_type).join(", ")
    }

    /// The prefix of the encoder's tensors inside a `*ForSequenceClassification` checkpoint.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert.",
            Self::DistilBert => "distilbert.",
            Self::Roberta => "roberta.",
            Self::Albert => "albert.",
            Self::Electra => "electra.",
        }
    }

    /// transformers' sequence-classification class, written to `architectures`.
    pub fn classification_architecture(self) -> &'static str {
        match self {
            Self::Bert => "BertForSequenceClassification",
            Self::DistilBert => "DistilBertForSequenceClassification",
            Self::Roberta => "RobertaForSequenceClassification",
            Self::Albert => "AlbertForSequenceClassification",
            Self::Electra => "ElectraForSequenceClassification",
        }
    }

    /// The head transformers puts on this family (`BertForSequenceClassification`:
    /// pooler → dropout → classifier; DistilBERT: `[CLS]` → pre_classifier → ReLU → dropout →
    /// classifier; RoBERTa/ELECTRA: `<s>` → dropout → dense → tanh/GELU → dropout → out_proj).
    pub fn head_defaults(self) -> HeadDefaults {
        match self {
            Self::Bert | Self::Albert => {
                HeadDefaults { uses_pooler: true, hidden_layer: false, activation: HeadActivation::Relu }
            }
            Self::DistilBert => {
                HeadDefaults { uses_pooler: false, hidden_layer: true, activation: HeadActivation::Relu }
            }
            Self::Roberta => {
                HeadDefaults { uses_pooler: false, hidden_layer: true, activation: HeadActivation::Tanh }
            }
            Self::Electra => {
                HeadDefaults { uses_pooler: false, hidden_layer: true, activation: HeadActivation::Gelu }
            }
        }
    }

    /// Names of the head's (hidden, output) dense layers in transformers' layout.
    pub fn head_names(self) -> (&'static str, &'static str) {
        match self {
            Self::Roberta | Self::Electra => ("classifier.dense", "classifier.out_proj"),
            Self::Bert | Self::DistilBert | Self::Albert => ("pre_classifier", "classifier"),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.model_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_types_round_trip() {
        for f in Family::ALL {
            assert_eq!(Family::from_model_type(f.model_type()), Some(f));
        }
        assert_eq!(Family::from_model_type("t5"), None);
        assert_eq!(Family::supported(), "bert, distilbert, roberta, albert, electra");
    }

    #[test]
    fn head_layouts_follow_transformers() {
        assert_eq!(Family::Roberta.head_names(), ("classifier.dense", "classifier.out_proj"));
        assert_eq!(Family::DistilBert.head_names().0, "pre_classifier");
        assert!(Family::Albert.head_defaults().uses_pooler);
        assert_eq!(Family::Electra.head_defaults().activation, HeadActivation::Gelu);
    }
}
