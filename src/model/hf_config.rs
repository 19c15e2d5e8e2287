//! transformers' `config.json` formats, field for field: `BertConfig` (whose names RoBERTa,
//! ALBERT and ELECTRA share) and `DistilBertConfig` (which renames them). Parsed here, then
//! validated into one [`ModelConfig`](super::ModelConfig).

use serde::Deserialize;

/// `BertConfig` / `RobertaConfig` / `AlbertConfig` / `ElectraConfig`.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
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
    pub pad_token_id: Option<usize>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// ALBERT and ELECTRA: the (smaller) width of the embedding tables.
    #[serde(default)]
    pub embedding_size: Option<usize>,
    /// ALBERT: how many distinct layer groups the depth shares.
    #[serde(default)]
    pub num_hidden_groups: Option<usize>,
    /// ALBERT: layers inside each group.
    #[serde(default)]
    pub inner_group_num: Option<usize>,
}

/// `DistilBertConfig`.
#[derive(Clone, Debug, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    #[serde(default = "default_act")]
    pub activation: String,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default = "default_dropout")]
    pub attention_dropout: f64,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
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
