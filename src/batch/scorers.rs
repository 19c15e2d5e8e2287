//! The two things a batch job scores with: an exported classifier (predictions) and a pretrained
//! encoder with a pooling (embeddings).

use serde_json::{Value, json};

use super::{BatchError, Outcome, OutputKind, Scorer};
use crate::model::Pooling;
use crate::model::fast::FastEncoder;
use crate::model::run_batched_tokens;
use crate::predict::Predictor;
use crate::tokenize::{Encoded, TextTokenizer};

/// Tokenizes each input on its own, so that one the tokenizer refuses fails alone.
fn encode_each<F>(inputs: &[(String, Option<String>)], encode: F) -> (Vec<Encoded>, Vec<Result<usize, String>>)
where
    F: Fn(&str, Option<&str>) -> Result<Encoded, String>,
{
    let mut good = Vec::with_capacity(inputs.len());
    let slots = inputs
        .iter()
        .map(|(text, pair)| {
            encode(text, pair.as_deref()).map(|e| {
                good.push(e);
                good.len() - 1
            })
        })
        .collect();
    (good, slots)
}

/// An exported classifier.
pub struct PredictScorer {
    predictor: Predictor,
    identity: Value,
}

impl PredictScorer {
    /// `identity`: the model folder and settings that must not change on `--resume`.
    pub fn new(predictor: Predictor, identity: Value) -> Self {
        Self { predictor, identity }
    }
}

impl Scorer for PredictScorer {
    fn kind(&self) -> OutputKind {
        let class_names = self.predictor.class_names().to_vec();
        // From the model's decision rule: a binary model has a threshold too, so "has a
        // threshold" does not mean multi-label.
        let d = self.predictor.decision();
        OutputKind::Predictions { binary: d.is_binary(), class_names, multi_label: d.is_multi_label() }
    }

    fn identity(&self) -> Value {
        json!({ "model": self.identity, "threshold": self.predictor.threshold() })
    }

    fn score(&mut self, inputs: &[(String, Option<String>)]) -> Result<Vec<Result<Outcome, String>>, BatchError> {
        let p = &self.predictor;
        let (good, slots) = encode_each(inputs, |t, pair| {
            let pairs = pair.map(|x| [x]);
            let mut e = p.encode_pairs(&[t], pairs.as_ref().map(|x| &x[..])).map_err(|e| e.to_string())?;
            e.pop().ok_or_else(|| "the tokenizer returned nothing".to_string())
        });
        let logits = p.logits(&good).map_err(|e| BatchError::Model(e.to_string()))?;
        Ok(slots.into_iter().map(|s| s.map(|i| Outcome::Prediction(p.to_prediction(&logits[i])))).collect())
    }
}

/// A pretrained encoder's pooled vectors, L2-normalised on request (what sentence-embedding
/// models are compared with).
pub struct EmbedScorer {
    tokenizer: TextTokenizer,
    encoder: FastEncoder,
    pooling: Pooling,
    normalize: bool,
    dim: usize,
    batch_size: usize,
    identity: Value,
}

impl EmbedScorer {
    pub fn new(tokenizer: TextTokenizer, encoder: FastEncoder, pooling: Pooling, normalize: bool, dim: usize, batch_size: usize, identity: Value) -> Self {
        Self { tokenizer, encoder, pooling, normalize, dim, batch_size, identity }
    }
}

impl Scorer for EmbedScorer {
    fn kind(&self) -> OutputKind {
        OutputKind::Vectors { dim: self.dim }
    }

    fn identity(&self) -> Value {
        json!({ "model": self.identity, "pooling": self.pooling.to_string(), "normalize": self.normalize })
    }

    fn score(&mut self, inputs: &[(String, Option<String>)]) -> Result<Vec<Result<Outcome, String>>, BatchError> {
        let tok = &self.tokenizer;
        let (good, slots) = encode_each(inputs, |t, pair| tok.encode(t, pair).map_err(|e| e.to_string()));
        let (encoder, pooling, dim) = (&self.encoder, self.pooling, self.dim.max(1));
        let vectors = run_batched_tokens::<_, BatchError>(&good, self.batch_size, tok.pad_id(), |batch, _| {
            let v = encoder.features(batch, pooling).map_err(|e| BatchError::Model(e.to_string()))?;
            Ok(v.chunks(dim).map(<[f32]>::to_vec).collect())
        })?;
        let normalize = self.normalize;
        Ok(slots
            .into_iter()
            .map(|s| {
                s.map(|i| {
                    let mut v = vectors[i].clone();
                    if normalize {
                        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                        v.iter_mut().for_each(|x| *x /= norm);
                    }
                    Outcome::Vector(v)
                })
            })
            .collect())
    }
}
