//! The encoder's `config.json`, with Hugging Face field names and defaults, validated on load.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LoadError;

/// A BERT `config.json` (transformers' `BertConfig`). Fields bertkit does not use are kept in
/// `extra` so that an exported folder carries them through unchanged.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_embedding_type: Option<String>,
    /// Classification head settings written by `BertForSequenceClassification`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// The feed-forward activation named by `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact erf GELU (`"gelu"`), what BERT was trained with.
    Gelu,
    /// tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    Relu,
}

impl BertConfig {
    pub const SUPPORTED_MODEL_TYPES: &'static [&'static str] = &["bert"];

    /// Reads and validates `path` (a `config.json`).
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        if !path.is_file() {
            return Err(LoadError::MissingFile { path: path.to_path_buf() });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates config JSON; `path` is only used in error messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, LoadError> {
        let bad = |reason: String| LoadError::BadConfig { path: path.to_path_buf(), reason };
        let cfg: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if !Self::SUPPORTED_MODEL_TYPES.contains(&cfg.model_type.as_str()) {
            return Err(LoadError::UnsupportedModel {
                found: cfg.model_type,
                path: path.to_path_buf(),
                supported: Self::SUPPORTED_MODEL_TYPES.join(", "),
            });
        }
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("`{name}` = {p} is not in [0, 1)"));
            }
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err("`layer_norm_eps` must be positive".into());
        }
        self.activation()?;
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => Ok(()),
            Some(other) => Err(format!(
                "position_embedding_type `{other}` is not supported (only `absolute`)"
            )),
        }
    }

    pub fn activation(&self) -> Result<Activation, String> {
        match self.hidden_act.as_str() {
            "gelu" | "gelu_python" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(format!("hidden_act `{other}` is not supported (gelu, gelu_new, relu)")),
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"{"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16, "use_cache": true}"#;

    #[test]
    fn fills_huggingface_defaults_and_keeps_unknown_fields() {
        let cfg = BertConfig::from_json(MINI, Path::new("config.json")).unwrap();
        assert_eq!(cfg.model_type, "bert");
        assert_eq!(cfg.max_position_embeddings, 512);
        assert_eq!(cfg.layer_norm_eps, 1e-12);
        assert_eq!(cfg.activation(), Ok(Activation::Gelu));
        assert_eq!(cfg.extra.get("use_cache"), Some(&serde_json::Value::Bool(true)));
        let round: serde_json::Value = serde_json::to_value(&cfg).unwrap();
        assert_eq!(round["use_cache"], serde_json::Value::Bool(true));
    }

    #[test]
    fn rejects_heads_that_do_not_divide_hidden() {
        let text = MINI.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
        let err = BertConfig::from_json(&text, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("not a multiple of num_attention_heads 3"), "{err}");
    }

    #[test]
    fn names_the_missing_field() {
        let err = BertConfig::from_json(r#"{"vocab_size": 3}"#, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }

    #[test]
    fn lists_supported_model_types() {
        let text = MINI.replace("\"vocab_size\"", "\"model_type\": \"t5\", \"vocab_size\"");
        let err = BertConfig::from_json(&text, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("`t5`") && err.contains("supported: bert"), "{err}");
    }
}
