//! Turns the encoder's per-token states into one vector per text: the pretrained pooler, the
//! `[CLS]` state, or the mask-aware mean (sentence-transformers' `mean_pooling`).

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "burn")]
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

#[cfg(feature = "burn")]
use super::EncoderOutput;
use super::Family;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// `pooled_output`: tanh(dense(`[CLS]`)), what `BertForSequenceClassification` uses.
    #[default]
    Pooler,
    /// The last layer's `[CLS]` state, no dense layer.
    Cls,
    /// Average of the real (unmasked) tokens' last-layer states.
    Mean,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolingError {
    #[error("unknown pooling `{0}`: expected pooler, cls or mean")]
    Unknown(String),
    #[error("pooling `pooler` needs a checkpoint with pooler.dense weights; use --pooling mean or cls")]
    NoPooler,
}

impl FromStr for Pooling {
    type Err = PoolingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pooler" | "pooled" => Ok(Self::Pooler),
            "cls" => Ok(Self::Cls),
            "mean" | "avg" => Ok(Self::Mean),
            _ => Err(PoolingError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pooler => "pooler",
            Self::Cls => "cls",
            Self::Mean => "mean",
        })
    }
}

impl Pooling {
    /// What transformers' `*ForSequenceClassification` reads for `family`: the pooler for
    /// BERT/ALBERT (when the checkpoint has one), the first token's state otherwise.
    pub fn family_default(family: Family, has_pooler: bool) -> Self {
        if family.head_defaults().uses_pooler && has_pooler { Self::Pooler } else { Self::Cls }
    }

    /// `out` from an encoder run on a `[B, T]` `mask` → `[B, H]`.
    #[cfg(feature = "burn")]
    pub fn apply(self, out: &EncoderOutput, mask: Tensor<2, Int>) -> Result<Tensor<2>, PoolingError> {
        let seq = out.sequence_output.clone();
        let [b, _, h] = seq.dims();
        match self {
            Self::Pooler => out.pooled_output.clone().ok_or(PoolingError::NoPooler),
            Self::Cls => Ok(seq.narrow(1, 0, 1).reshape([b, h])),
            Self::Mean => Ok(mean_pool(seq, mask)),
        }
    }
}

/// `seq`: `[B, T, H]`, `mask`: `[B, T]` (1 = real token) → `[B, H]`.
#[cfg(feature = "burn")]
pub fn mean_pool(seq: Tensor<3>, mask: Tensor<2, Int>) -> Tensor<2> {
    let [b, t, h] = seq.dims();
    let m = mask.float().reshape([b, t, 1]);
    let summed = (seq * m.clone()).sum_dim(1).reshape([b, h]);
    let counts = m.sum_dim(1).reshape([b, 1]).clamp_min(1.0);
    summed / counts
}
