//! The encoder's configuration, read from any supported family's `config.json` and validated once
//! into one typed [`ModelConfig`].

use std::path::Path;

use super::hf_config::{BertConfig, DistilBertConfig};
use super::{Family, LoadError};

/// DistilBERT's LayerNorms are built with `eps=1e-12` in code, not from the config.
const DISTILBERT_EPS: f64 = 1e-12;

/// The feed-forward activation named by `hidden_act` (`activation` for DistilBERT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact erf GELU (`"gelu"`), what BERT was trained with.
    Gelu,
    /// tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`), ALBERT's default.
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "gelu" | "gelu_python" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            "relu" => Ok(Self::Relu),
            other => Err(format!("activation `{other}` is not supported (gelu, gelu_new, relu)")),
        }
    }
}

/// A validated encoder configuration, whatever the family.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// Width of the embedding tables: `hidden_size` except for factorised ALBERT/ELECTRA ones.
    pub embedding_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// 0 for DistilBERT, which has no token-type embeddings.
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub activation: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub pad_token_id: usize,
    /// ALBERT's weight sharing: `num_hidden_layers` runs over `num_hidden_groups` groups of
    /// `inner_group_num` layers; 1 and 1 elsewhere means "no sharing" with one group per layer.
    pub num_hidden_groups: usize,
    pub inner_group_num: usize,
    /// The file as read. An export writes it back with only the classification fields changed,
    /// so every field bertkit does not use survives.
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl ModelConfig {
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
        let raw: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let model_type = match raw.get("model_type") {
            None => "bert",
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(other) => return Err(bad(format!("`model_type` must be a string, found {other}"))),
        };
        let family = Family::from_model_type(model_type).ok_or_else(|| LoadError::UnsupportedModel {
            found: model_type.to_string(),
            path: path.to_path_buf(),
            supported: Family::supported(),
        })?;
        let value = serde_json::Value::Object(raw.clone());
        let cfg = if family == Family::DistilBert {
            let c: DistilBertConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            Self::from_distilbert(c, raw)
        } else {
            let c: BertConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            Self::from_bert(family, c, raw)
        }
        .map_err(bad)?;
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    fn from_bert(
        family: Family,
        c: BertConfig,
        raw: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        match c.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => {
                return Err(format!("position_embedding_type `{other}` is not supported (only `absolute`)"));
            }
        }
        let shared = family == Family::Albert;
        Ok(Self {
            family,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            // BERT and RoBERTa configs may carry no `embedding_size`; only these two families use it.
            embedding_size: match family {
                Family::Albert => c.embedding_size.unwrap_or(128),
                Family::Electra => c.embedding_size.unwrap_or(c.hidden_size),
                _ => c.hidden_size,
            },
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            max_position_embeddings: c.max_position_embeddings,
            type_vocab_size: c.type_vocab_size,
            layer_norm_eps: c.layer_norm_eps,
            activation: Activation::parse(&c.hidden_act)?,
            hidden_dropout_prob: c.hidden_dropout_prob,
            attention_probs_dropout_prob: c.attention_probs_dropout_prob,
            pad_token_id: c.pad_token_id.unwrap_or(if family == Family::Roberta { 1 } else { 0 }),
            num_hidden_groups: if shared { c.num_hidden_groups.unwrap_or(1) } else { 1 },
            inner_group_num: if shared { c.inner_group_num.unwrap_or(1) } else { 1 },
            raw,
        })
    }

    fn from_distilbert(
        c: DistilBertConfig,
        raw: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        Ok(Self {
            family: Family::DistilBert,
            vocab_size: c.vocab_size,
            hidden_size: c.dim,
            embedding_size: c.dim,
            num_hidden_layers: c.n_layers,
            num_attention_heads: c.n_heads,
            intermediate_size: c.hidden_dim,
            max_position_embeddings: c.max_position_embeddings,
            type_vocab_size: 0,
            layer_norm_eps: DISTILBERT_EPS,
            activation: Activation::parse(&c.activation)?,
            hidden_dropout_prob: c.dropout,
            attention_probs_dropout_prob: c.attention_dropout,
            pad_token_id: c.pad_token_id.unwrap_or(0),
            num_hidden_groups: 1,
            inner_group_num: 1,
            raw,
        })
    }

    fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("embedding_size", self.embedding_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("num_hidden_groups", self.num_hidden_groups),
            ("inner_group_num", self.inner_group_num),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        if self.family != Family::DistilBert && self.type_vocab_size == 0 {
            return Err("`type_vocab_size` must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_hidden_groups > self.num_hidden_layers {
            return Err(format!(
                "num_hidden_groups {} exceeds num_hidden_layers {}",
                self.num_hidden_groups, self.num_hidden_layers
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
        if self.family == Family::Roberta && self.pad_token_id + 1 >= self.max_position_embeddings {
            return Err("RoBERTa positions start at pad_token_id + 1, past max_position_embeddings".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Position-table rows of one right-padded text's `ids` (appended to `out`): `0..T`, or
    /// RoBERTa's `create_position_ids_from_input_ids` (non-pad tokens count from `pad + 1`, pads
    /// sit at `pad`), clamped to the table (unreached from [`Rows::new`](super::fast::Rows::new),
    /// which refuses a batch longer than [`Self::max_sequence_length`] first). The slice twin of burn's `BertEmbeddings::forward`
    /// tensor version (the `burn` feature), for the kernels paths.
    pub fn position_ids(&self, ids: &[i64], out: &mut Vec<usize>) {
        let last = self.max_position_embeddings.saturating_sub(1);
        let pad = self.pad_token_id as i64;
        let mut real = 0;
        for (ti, &id) in ids.iter().enumerate() {
            let p = if self.family != Family::Roberta {
                ti
            } else if id != pad {
                real += 1;
                self.pad_token_id + real
            } else {
                self.pad_token_id
            };
            out.push(p.min(last));
        }
    }

    /// The longest input the position table allows (RoBERTa spends `pad_token_id + 1` slots).
    pub fn max_sequence_length(&self) -> usize {
        match self.family {
            Family::Roberta => self.max_position_embeddings - self.pad_token_id - 1,
            _ => self.max_position_embeddings,
        }
    }

    /// How many layer modules the checkpoint stores (fewer than the depth for ALBERT).
    pub fn stored_layers(&self) -> usize {
        match self.family {
            Family::Albert => self.num_hidden_groups * self.inner_group_num,
            _ => self.num_hidden_layers,
        }
    }

    /// The stored layers run at depth `depth` (transformers' `AlbertTransformer.forward`:
    /// group `depth / (layers / groups)`, all its inner layers); one layer elsewhere.
    pub fn layers_at_depth(&self, depth: usize) -> std::ops::Range<usize> {
        match self.family {
            Family::Albert => {
                let group = depth * self.num_hidden_groups / self.num_hidden_layers;
                group * self.inner_group_num..(group + 1) * self.inner_group_num
            }
            _ => depth..depth + 1,
        }
    }

    /// The encoder's layer applications in order, as indices into its layers: layer `d` at
    /// depth `d`, or ALBERT's shared group at every depth.
    pub fn layer_sequence(&self) -> Vec<usize> {
        (0..self.num_hidden_layers).flat_map(|d| self.layers_at_depth(d)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"{"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16, "use_cache": true}"#;

    #[test]
    fn fills_huggingface_defaults_and_keeps_unknown_fields() {
        let cfg = ModelConfig::from_json(MINI, Path::new("config.json")).unwrap();
        assert_eq!(cfg.family, Family::Bert);
        assert_eq!(cfg.max_position_embeddings, 512);
        assert_eq!(cfg.layer_norm_eps, 1e-12);
        assert_eq!(cfg.activation, Activation::Gelu);
        assert_eq!(cfg.embedding_size, 8);
        assert_eq!(cfg.raw.get("use_cache"), Some(&serde_json::Value::Bool(true)));
    }

    #[test]
    fn rejects_heads_that_do_not_divide_hidden() {
        let text = MINI.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
        let err = ModelConfig::from_json(&text, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("not a multiple of num_attention_heads 3"), "{err}");
    }

    #[test]
    fn names_the_missing_field() {
        let err = ModelConfig::from_json(r#"{"vocab_size": 3}"#, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("hidden_size"), "{err}");
        let err = ModelConfig::from_json(r#"{"model_type": "distilbert", "vocab_size": 3}"#, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`dim`"), "{err}");
    }

    #[test]
    fn lists_supported_model_types() {
        let text = MINI.replace("\"vocab_size\"", "\"model_type\": \"t5\", \"vocab_size\"");
        let err = ModelConfig::from_json(&text, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("`t5`") && err.contains("supported: bert, distilbert, roberta, albert, electra"), "{err}");
    }

    #[test]
    fn reads_distilbert_names() {
        let text = r#"{"model_type": "distilbert", "vocab_size": 50, "dim": 8, "n_layers": 3, "n_heads": 2,
            "hidden_dim": 16, "activation": "gelu", "seq_classif_dropout": 0.2}"#;
        let cfg = ModelConfig::from_json(text, Path::new("c.json")).unwrap();
        assert_eq!((cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size), (8, 3, 16));
        assert_eq!(cfg.type_vocab_size, 0);
    }

    #[test]
    fn albert_shares_layers_across_depth() {
        let text = MINI.replace(
            "\"vocab_size\"",
            "\"model_type\": \"albert\", \"embedding_size\": 4, \"num_hidden_groups\": 1, \"vocab_size\"",
        );
        let cfg = ModelConfig::from_json(&text, Path::new("c.json")).unwrap();
        assert_eq!((cfg.embedding_size, cfg.stored_layers()), (4, 1));
        assert_eq!(cfg.layers_at_depth(1), 0..1);
        assert_eq!(cfg.layer_sequence(), vec![0, 0]);
        let bert = ModelConfig::from_json(MINI, Path::new("c.json")).unwrap();
        assert_eq!(bert.layers_at_depth(1), 1..2);
        assert_eq!(bert.layer_sequence(), vec![0, 1]);
    }

    #[test]
    fn roberta_positions_start_after_padding() {
        let text = MINI.replace("\"vocab_size\"", "\"model_type\": \"roberta\", \"max_position_embeddings\": 66, \"vocab_size\"");
        let cfg = ModelConfig::from_json(&text, Path::new("c.json")).unwrap();
        assert_eq!((cfg.pad_token_id, cfg.max_sequence_length()), (1, 64));
    }
}
