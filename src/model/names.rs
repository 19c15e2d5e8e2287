//! Where each family keeps a transformer block's tensors in a transformers checkpoint.

use super::Family;

/// Checkpoint names (without `.weight`/`.bias`) of one post-LayerNorm block's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerNames {
    pub query: String,
    pub key: String,
    pub value: String,
    pub attention_output: String,
    pub attention_norm: String,
    pub ffn_in: String,
    pub ffn_out: String,
    pub output_norm: String,
}

impl LayerNames {
    /// Stored layer `index` (for ALBERT, numbered group-major: group `index / inner`, inner layer
    /// `index % inner`).
    pub fn new(family: Family, index: usize, inner_group_num: usize) -> Self {
        match family {
            Family::Bert | Family::Roberta | Family::Electra => {
                let p = format!("encoder.layer.{index}");
                Self {
                    query: format!("{p}.attention.self.query"),
                    key: format!("{p}.attention.self.key"),
                    value: format!("{p}.attention.self.value"),
                    attention_output: format!("{p}.attention.output.dense"),
                    attention_norm: format!("{p}.attention.output.LayerNorm"),
                    ffn_in: format!("{p}.intermediate.dense"),
                    ffn_out: format!("{p}.output.dense"),
                    output_norm: format!("{p}.output.LayerNorm"),
                }
            }
            Family::DistilBert => {
                let p = format!("transformer.layer.{index}");
                Self {
                    query: format!("{p}.attention.q_lin"),
                    key: format!("{p}.attention.k_lin"),
                    value: format!("{p}.attention.v_lin"),
                    attention_output: format!("{p}.attention.out_lin"),
                    attention_norm: format!("{p}.sa_layer_norm"),
                    ffn_in: format!("{p}.ffn.lin1"),
                    ffn_out: format!("{p}.ffn.lin2"),
                    output_norm: format!("{p}.output_layer_norm"),
                }
            }
            Family::Albert => {
                let inner = inner_group_num.max(1);
                let p = format!("encoder.albert_layer_groups.{}.albert_layers.{}", index / inner, index % inner);
                Self {
                    query: format!("{p}.attention.query"),
                    key: format!("{p}.attention.key"),
                    value: format!("{p}.attention.value"),
                    attention_output: format!("{p}.attention.dense"),
                    attention_norm: format!("{p}.attention.LayerNorm"),
                    ffn_in: format!("{p}.ffn"),
                    ffn_out: format!("{p}.ffn_output"),
                    output_norm: format!("{p}.full_layer_layer_norm"),
                }
            }
        }
    }
}

/// Names of the parts around the block stack.
pub struct EncoderNames;

impl EncoderNames {
    /// The dense layer mapping `embedding_size` to `hidden_size`, when the family has one.
    pub fn projection(family: Family) -> Option<&'static str> {
        match family {
            Family::Albert => Some("encoder.embedding_hidden_mapping_in"),
            Family::Electra => Some("embeddings_project"),
            _ => None,
        }
    }

    /// The tanh pooler's dense layer.
    pub fn pooler(family: Family) -> &'static str {
        match family {
            Family::Albert => "pooler",
            _ => "pooler.dense",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_each_family() {
        assert_eq!(LayerNames::new(Family::Bert, 3, 1).ffn_in, "encoder.layer.3.intermediate.dense");
        assert_eq!(LayerNames::new(Family::DistilBert, 0, 1).attention_norm, "transformer.layer.0.sa_layer_norm");
        assert_eq!(
            LayerNames::new(Family::Albert, 3, 2).query,
            "encoder.albert_layer_groups.1.albert_layers.1.attention.query"
        );
    }
}
