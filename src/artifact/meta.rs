//! `bertkit.json`: what a reloaded model needs beyond the weights (classes, preprocessing,
//! pooling, head shape) and a record of how it was trained.

use serde::{Deserialize, Serialize};

use crate::model::{BiLstmSpec, HeadSpec, Pooling};
use crate::tokenize::EncodePlan;

pub const META_FILE: &str = "bertkit.json";
pub const FORMAT_VERSION: u32 = 1;

/// Which kind of model the folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// A BERT-family encoder + head (the family comes from `config.json`).
    #[default]
    Bert,
    /// The GloVe + BiLSTM baseline (`words.txt` vocabulary, bertkit's own tensor names).
    Bilstm,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format_version: u32,
    pub bertkit_version: String,
    /// Absent in files written before the baseline existed: those are BERT models.
    #[serde(default)]
    pub arch: Arch,
    /// The baseline's shape (only for `arch: bilstm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bilstm: Option<BiLstmSpec>,
    /// Label index → name. Binary models have one logit: the probability of `class_names[1]`.
    pub class_names: Vec<String>,
    pub encode: EncodePlan,
    pub pooling: Pooling,
    pub head: HeadSpec,
    /// The model scores sentence pairs (trained with `--pair-column`): every input needs its
    /// second text, tokenized as `[CLS] a [SEP] b [SEP]` (absent in older files: single texts).
    #[serde(default)]
    pub text_pairs: bool,
    /// Multi-label: one sigmoid per class name, every label whose probability reaches
    /// `threshold` is predicted (absent in older files: single-label).
    #[serde(default)]
    pub multi_label: bool,
    /// Binary and multi-label models: the default decision threshold (predict/serve
    /// `--threshold` overrides it; a softmax model has none).
    #[serde(default = "threshold_default")]
    pub threshold: f32,
    /// The training settings, as given (free-form so that older files stay readable).
    #[serde(default)]
    pub training: serde_json::Value,
    /// Final validation/test metrics, when known.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

impl ModelMeta {
    pub fn new(class_names: Vec<String>, encode: EncodePlan, pooling: Pooling, head: HeadSpec) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            bertkit_version: env!("CARGO_PKG_VERSION").to_string(),
            arch: Arch::Bert,
            bilstm: None,
            class_names,
            encode,
            pooling,
            head,
            text_pairs: false,
            multi_label: false,
            threshold: threshold_default(),
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        }
    }

    /// One logit, the probability of `class_names[1]`.
    pub fn is_binary(&self) -> bool {
        self.head.num_outputs == 1 && !self.multi_label
    }
}

fn threshold_default() -> f32 {
    0.5
}
