//! A loaded classifier bundle in inference mode, turning texts into scored predictions.

use std::num::NonZeroUsize;
use std::sync::Arc;

use serde::Serialize;

use super::{Decision, Engine};
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
    #[error("a decision threshold is for binary and multi-label models; this one picks the top of its {classes} classes (softmax)")]
    NoThreshold { classes: usize },
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
/// (`class_names[1]`), `label` the class decided at the model's threshold; multi-class: the top
/// class's probability, with all of them in `scores`. Multi-label: `scores` holds each label's
/// own sigmoid probability, `labels` the labels at or above the threshold (possibly none), and
/// `label`/`score` the top-scoring one.
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
    /// The top class, or the threshold of a binary or multi-label model.
    decision: Decision,
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
            decision: Decision::of(&bundle.meta),
            class_names: bundle.meta.class_names,
            text_pairs: bundle.meta.text_pairs,
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

    /// How this model's logits become labels, at its threshold if it has one.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The decision threshold of a binary or multi-label model; `None` for a softmax.
    pub fn threshold(&self) -> Option<f32> {
        self.decision.threshold()
    }

    /// Overrides a binary or multi-label model's threshold; a softmax refuses one.
    pub fn set_threshold(&mut self, threshold: f32) -> Result<(), PredictError> {
        self.decision = self.decision.at(threshold)?;
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
        self.decision.predict(logits, &self.class_names)
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
