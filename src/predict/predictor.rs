//! A loaded classifier bundle in inference mode, turning texts into scored predictions.

use std::num::NonZeroUsize;
use std::sync::Arc;

use serde::Serialize;

use super::Engine;
use crate::DeviceSpec;
use crate::artifact::{ClassifierBundle, INT8_FILE, load_int8};
use crate::data::is_blank;
#[cfg(feature = "burn")]
use crate::model::BurnClassifier;
use crate::model::fast::{BertModel, BiLstmModel, BiLstmPacks, FastClassifier, Precision, TokenBatchError};
use crate::model::run_batched_tokens;
#[cfg(feature = "burn")]
use crate::model::{BatchFit, EncoderInput, tensor_rows};
use crate::model::{LoadError, TextClassifier};
use crate::tokenize::{TextEncoder, TokenizeError};

/// Texts per forward pass unless [`Predictor::set_batch_size`] says otherwise (the CLI's default).
// Evaluated at compile time: the `expect` cannot fire at run time.
const DEFAULT_BATCH_SIZE: NonZeroUsize = NonZeroUsize::new(32).expect("32 is not 0");

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("text {index} is empty")]
    EmptyText { index: usize },
    #[error("this model scores sentence pairs: give each text its second text (`text_pair`, `--pair`)")]
    PairMissing,
    #[error("this model scores single texts, not sentence pairs: drop the second texts")]
    PairNotExpected,
    #[error("a decision threshold is for multi-label models; this one is single-label")]
    NotMultiLabel,
    #[cfg(feature = "burn")]
    #[error("reading model output: {0:?}")]
    Backend(burn::tensor::DataError),
    #[error(transparent)]
    Batch(#[from] crate::model::fast::TokenBatchError),
    #[error("text {index}: {source}")]
    Tokenize {
        index: usize,
        #[source]
        source: TokenizeError,
    },
}

/// One scored text. Binary models: `score` is the probability of the positive class
/// (`class_names[1]`); multi-class: the top class's probability, with all of them in `scores`.
/// Multi-label: `scores` holds each label's own sigmoid probability, `labels` the labels at or
/// above the threshold (possibly none), and `label`/`score` the top-scoring one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub label: String,
    pub score: f32,
    pub scores: Vec<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// What scores a batch: the kernels' packed model, or burn's modules.
// One per predictor, never moved after load: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Scorer {
    Kernels(FastClassifier),
    /// The BiLSTM baseline on the kernels (fp32: its GEMMs are small).
    /// The BiLSTM baseline and its weights packed once.
    BiLstm(BiLstmModel, BiLstmPacks),
    #[cfg(feature = "burn")]
    /// burn's modules, and the table sizes a batch is checked against before they see it.
    Burn(BurnClassifier, burn::tensor::Device, BatchFit),
}

pub struct Predictor {
    scorer: Scorer,
    /// Shared with the server's request handlers, which tokenize before queueing.
    tokenizer: Arc<TextEncoder>,
    class_names: Vec<String>,
    /// Whether the model was trained on sentence pairs.
    text_pairs: bool,
    /// Multi-label: the probability at which a label is predicted; `None` for single-label.
    threshold: Option<f32>,
    /// Int8 models: where the weights came from.
    int8: Option<Int8Origin>,
    /// The engine asked for (what runs can differ: [`Self::engine_note`]).
    asked: Engine,
    /// Texts per forward pass ([`Self::set_batch_size`]); a longer list runs in several.
    batch_size: NonZeroUsize,
}

/// `e` from a batch of `texts` (their places in the caller's list), naming the caller's text.
fn batch_error(e: TokenBatchError, texts: &[usize]) -> PredictError {
    PredictError::Batch(e.of_texts(texts))
}

/// The int8 classifier of an export: its stored int8 weights (`model.int8.safetensors`, checked
/// against the fp32 file) when it has them, else the fp32 weights quantized now. Both give the
/// same scores: the stored file comes from the same quantization.
fn int8_classifier(dir: &std::path::Path, m: &BertModel) -> Result<(FastClassifier, Int8Origin), LoadError> {
    match load_int8(dir, &m.params)? {
        Some(stored) => FastClassifier::with_int8(m, &stored)
            .map(|f| (f, Int8Origin::Stored))
            .map_err(|source| LoadError::BadInt8 { name: "an encoder layer's".into(), path: dir.join(INT8_FILE), source }),
        None => Ok((FastClassifier::new(m, Precision::Int8), Int8Origin::QuantizedAtLoad)),
    }
}

/// Where an int8 predictor's weights came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Origin {
    /// The export's `model.int8.safetensors`.
    Stored,
    /// The fp32 weights, quantized when the model was loaded.
    QuantizedAtLoad,
}

impl std::fmt::Display for Int8Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stored => write!(f, "int8 weights read from the export's {INT8_FILE}"),
            Self::QuantizedAtLoad => write!(f, "int8 weights quantized at load (`bertkit quantize` stores them in the export)"),
        }
    }
}

impl Predictor {
    /// Scores with burn's modules on `device` (an error naming the missing feature in a build
    /// without burn).
    pub fn new(bundle: ClassifierBundle, device: DeviceSpec) -> Result<Self, LoadError> {
        Self::with_engine(bundle, device, Engine::Burn)
    }

    /// Scores with `engine` (already resolved: `Auto` counts as burn). On the kernels engines a
    /// BERT-family model is packed once here (the weight store is then dropped: the packed copy
    /// is all inference reads); the BiLSTM baseline runs on the kernels in fp32.
    pub fn with_engine(bundle: ClassifierBundle, device: DeviceSpec, engine: Engine) -> Result<Self, LoadError> {
        let mut int8 = None;
        let scorer = match (engine.precision(), bundle.model) {
            (Some(Precision::Int8), TextClassifier::Bert(m)) => {
                let (f, origin) = int8_classifier(&bundle.dir, &m)?;
                int8 = Some(origin);
                Scorer::Kernels(f)
            }
            (Some(precision), TextClassifier::Bert(m)) => Scorer::Kernels(FastClassifier::new(&m, precision)),
            (Some(_), TextClassifier::BiLstm(m)) => {
                let packs = m.pack();
                Scorer::BiLstm(m, packs)
            }
            #[cfg(feature = "burn")]
            (None, model) => {
                let device = device.device()?;
                Scorer::Burn(model.to_burn(&device)?, device, model.batch_fit())
            }
            #[cfg(not(feature = "burn"))]
            (None, _) => {
                let _ = device;
                return Err(crate::DeviceSpecError::BurnNotBuilt.into());
            }
        };
        Ok(Self {
            scorer,
            tokenizer: Arc::new(bundle.tokenizer),
            class_names: bundle.meta.class_names,
            text_pairs: bundle.meta.text_pairs,
            threshold: bundle.meta.multi_label.then_some(bundle.meta.threshold),
            int8,
            asked: engine,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Texts per forward pass: a longer list runs in several, a shorter one in one, padded
    /// to its longest text. The type rules out 0, which used to run as batches of one.
    pub fn set_batch_size(&mut self, n: NonZeroUsize) {
        self.batch_size = n;
    }

    /// Why what runs is not the engine asked for, for the commands to say so: bf16 on a CPU
    /// level without bf16 GEMMs ([`Engine::fallback_note`]), or bf16/int8 on the BiLSTM
    /// baseline, runs in fp32.
    pub fn engine_note(&self) -> Option<String> {
        match (&self.scorer, self.asked) {
            (Scorer::Kernels(_), asked) => asked.fallback_note(),
            (Scorer::BiLstm(..), asked @ (Engine::KernelsBf16 | Engine::KernelsInt8)) => {
                Some(format!("--engine {asked} runs in fp32 here: the BiLSTM baseline's kernels are fp32 only"))
            }
            _ => None,
        }
    }

    /// `"burn"`, `"kernels fp32"`, `"kernels bf16"` or `"kernels int8"`: what actually runs.
    pub fn engine_name(&self) -> &'static str {
        match &self.scorer {
            #[cfg(feature = "burn")]
            Scorer::Burn(..) => "burn",
            Scorer::BiLstm(..) => "kernels fp32",
            Scorer::Kernels(f) => match f.precision() {
                Precision::F32 => "kernels fp32",
                Precision::Bf16 => "kernels bf16",
                Precision::Int8 => "kernels int8",
            },
        }
    }

    /// Int8 models: whether the weights were stored in the export or quantized at load.
    pub fn int8_origin(&self) -> Option<Int8Origin> {
        self.int8
    }

    pub fn tokenizer(&self) -> &TextEncoder {
        &self.tokenizer
    }

    /// A handle to the same tokenizer (no copy), for tokenizing on other threads.
    pub fn shared_tokenizer(&self) -> Arc<TextEncoder> {
        Arc::clone(&self.tokenizer)
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Whether the model scores sentence pairs.
    pub fn text_pairs(&self) -> bool {
        self.text_pairs
    }

    /// The multi-label decision threshold; `None` for a single-label model.
    pub fn threshold(&self) -> Option<f32> {
        self.threshold
    }

    /// Overrides a multi-label model's threshold; a single-label model refuses one.
    pub fn set_threshold(&mut self, threshold: f32) -> Result<(), PredictError> {
        let t = self.threshold.as_mut().ok_or(PredictError::NotMultiLabel)?;
        *t = threshold;
        Ok(())
    }

    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<crate::tokenize::Encoded>, PredictError> {
        self.encode_pairs(texts, None::<&[&str]>)
    }

    /// Encodes texts, with their second texts for a pair model. A pair model without `pairs`,
    /// or a single-text model with them, is an error; so is an empty text.
    pub fn encode_pairs<S: AsRef<str>, P: AsRef<str>>(
        &self,
        texts: &[S],
        pairs: Option<&[P]>,
    ) -> Result<Vec<crate::tokenize::Encoded>, PredictError> {
        match (self.text_pairs, pairs) {
            (true, None) => return Err(PredictError::PairMissing),
            (false, Some(_)) => return Err(PredictError::PairNotExpected),
            (_, Some(p)) if p.len() != texts.len() => {
                let source = TokenizeError::PairCount { texts: texts.len(), pairs: p.len() };
                return Err(PredictError::Tokenize { index: texts.len().min(p.len()), source });
            }
            _ => {}
        }
        texts
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let pair = pairs.map(|p| p[index].as_ref());
                if is_blank(t.as_ref()) || pair.is_some_and(is_blank) {
                    return Err(PredictError::EmptyText { index });
                }
                let encoded = match (self.tokenizer.subword(), pair) {
                    (Some(tok), pair) => tok.encode(t.as_ref(), pair),
                    (None, _) => self.tokenizer.encode(t.as_ref()),
                };
                encoded.map_err(|source| PredictError::Tokenize { index, source })
            })
            .collect()
    }

    /// Raw logits, one row per encoding.
    pub fn logits(&self, encodings: &[crate::tokenize::Encoded]) -> Result<Vec<Vec<f32>>, PredictError> {
        let (size, pad) = (self.batch_size.get(), self.tokenizer.pad_id());
        match &self.scorer {
            // A batch error names the text by its place in `encodings`, not in the sorted batch.
            Scorer::Kernels(fast) => run_batched_tokens(encodings, size, pad, |b, texts| fast.logits(b).map_err(|e| batch_error(e, texts))),
            Scorer::BiLstm(model, packs) => {
                run_batched_tokens(encodings, size, pad, |b, texts| model.logits(packs, b).map_err(|e| batch_error(e, texts)))
            }
            #[cfg(feature = "burn")]
            Scorer::Burn(model, device, fit) => run_batched_tokens(encodings, size, pad, |b, texts| {
                fit.check(b).map_err(|e| batch_error(e, texts))?;
                tensor_rows(model.forward(EncoderInput::from_batch(b, device))).map_err(PredictError::Backend)
            }),
        }
    }

    pub fn predict<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Prediction>, PredictError> {
        self.predict_pairs(texts, None::<&[&str]>)
    }

    /// Scores sentence pairs (`pairs[i]` is `texts[i]`'s second text) or, without `pairs`,
    /// single texts.
    pub fn predict_pairs<S: AsRef<str>, P: AsRef<str>>(&self, texts: &[S], pairs: Option<&[P]>) -> Result<Vec<Prediction>, PredictError> {
        let enc = self.encode_pairs(texts, pairs)?;
        Ok(self.logits(&enc)?.iter().map(|l| self.to_prediction(l)).collect())
    }

    pub fn to_prediction(&self, logits: &[f32]) -> Prediction {
        prediction(logits, &self.class_names, self.threshold)
    }
}

/// A row of logits as a prediction: label sets above `threshold` for a multi-label model
/// (`Some`), the class for a single-label one.
pub fn prediction(logits: &[f32], class_names: &[String], threshold: Option<f32>) -> Prediction {
    match threshold {
        Some(t) => to_labels(logits, class_names, t),
        None => to_prediction(logits, class_names),
    }
}

impl Prediction {
    /// What the server answers for one instance (and Vertex batch records hold): the positive
    /// class's probability for a `binary` model, `{labels, scores}` for a multi-label one,
    /// `{label, score, scores}` otherwise.
    pub fn instance_json(&self, binary: bool) -> serde_json::Value {
        match (&self.labels, binary) {
            (Some(labels), _) => serde_json::json!({ "labels": labels, "scores": self.scores }),
            (None, true) => serde_json::json!(self.scores.get(1)),
            (None, false) => serde_json::json!({ "label": self.label, "score": self.score, "scores": self.scores }),
        }
    }
}

/// A multi-label prediction: each logit's sigmoid, the labels at or above `threshold`.
pub fn to_labels(logits: &[f32], class_names: &[String], threshold: f32) -> Prediction {
    let name = |i: usize| class_names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let scores: Vec<f32> = logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
    let labels = scores.iter().enumerate().filter(|(_, p)| **p >= threshold).map(|(i, _)| name(i)).collect();
    let best = crate::metrics::predicted_class(logits);
    let score = scores.get(best).copied().unwrap_or(f32::NAN);
    Prediction { label: name(best), score, scores, labels: Some(labels) }
}

/// Sigmoid for one logit (probability of `class_names[1]`), softmax otherwise.
pub fn to_prediction(logits: &[f32], class_names: &[String]) -> Prediction {
    let name = |i: usize| class_names.get(i).cloned().unwrap_or_else(|| i.to_string());
    if logits.len() == 1 {
        let p = 1.0 / (1.0 + (-logits[0]).exp());
        let label = name(usize::from(p >= 0.5));
        return Prediction { label, score: p, scores: vec![1.0 - p, p], labels: None };
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let scores: Vec<f32> = exps.iter().map(|e| e / sum).collect();
    let best = crate::metrics::predicted_class(logits);
    let score = scores.get(best).copied().unwrap_or(f32::NAN);
    Prediction { label: name(best), score, scores, labels: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_logit_is_the_positive_class_probability() {
        let names = vec!["neg".to_string(), "pos".to_string()];
        let p = to_prediction(&[2.0], &names);
        assert_eq!(p.label, "pos");
        assert!((p.score - 0.880_797).abs() < 1e-5);
        assert!((p.scores[0] + p.scores[1] - 1.0).abs() < 1e-6);
        assert_eq!(to_prediction(&[-0.1], &names).label, "neg");
    }

    #[test]
    fn several_logits_get_a_softmax_and_the_top_label() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let p = to_prediction(&[0.0, 1000.0, 0.0], &names);
        assert_eq!((p.label.as_str(), p.score), ("b", 1.0));
        let p = to_prediction(&[0.0, 0.0, 0.0], &names);
        assert!((p.score - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn multi_label_scores_each_label_on_its_own() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // sigmoid: 0.88, 0.62, 0.05 — two labels at 0.5, one at 0.7, none at 0.9.
        let logits = [2.0, 0.5, -3.0];
        let p = to_labels(&logits, &names, 0.5);
        assert_eq!(p.labels.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
        assert!((p.scores[1] - 0.622_459).abs() < 1e-5 && p.scores.iter().sum::<f32>() > 1.0);
        assert_eq!(to_labels(&logits, &names, 0.7).labels.unwrap(), ["a"]);
        assert!(to_labels(&logits, &names, 0.9).labels.unwrap().is_empty());
        assert_eq!((p.label.as_str(), p.score), ("a", p.scores[0]));
    }
}
