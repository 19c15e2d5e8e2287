//! Saves a classifier as `config.json` + `model.safetensors` (`bert.*` + `classifier.*`, or the
//! family's own layout) + tokenizer files + `bertkit.json`, and loads it back with its tokenizer.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{ArtifactError, Arch, META_FILE, ModelMeta, swap};
use crate::model::fast::{BertModel, BiLstmModel, ModelError};
use crate::model::{Checkpoint, Family, ModelConfig, Pretrained, TextClassifier, WeightsWriter};
use crate::tokenize::{TextEncoder, WordVocab};

/// The BiLSTM baseline's vocabulary, one word per line in id order (id 0 = padding is implicit).
pub const WORDS_FILE: &str = "words.txt";

/// Tokenizer files copied from the source checkpoint when present.
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
];

/// A reloaded classifier with everything needed to score raw text.
pub struct ClassifierBundle {
    pub model: TextClassifier,
    pub meta: ModelMeta,
    pub tokenizer: TextEncoder,
    pub dir: PathBuf,
}

impl ClassifierBundle {
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let meta_path = dir.join(META_FILE);
        if !dir.exists() {
            // A save killed mid-swap on a file system that cannot exchange folders left the
            // model only as its backup: put it back rather than report no model.
            swap::recover(dir)?;
        }
        if !meta_path.is_file() {
            return Err(ArtifactError::NotAModel { path: meta_path, dir: dir.to_path_buf() });
        }
        let text = fs::read_to_string(&meta_path)
            .map_err(|source| ArtifactError::Read { path: meta_path.clone(), source })?;
        let meta: ModelMeta = serde_json::from_str(&text)
            .map_err(|e| ArtifactError::BadMeta { path: meta_path.clone(), reason: e.to_string() })?;
        if meta.arch == Arch::Bilstm {
            return Self::load_bilstm(dir, meta);
        }
        let pretrained = Pretrained::open(dir, meta.encode)?;
        let model = match BertModel::load(&pretrained, meta.pooling, meta.head) {
            Ok(m) => TextClassifier::Bert(m),
            Err(ModelError::Load(e)) => return Err(e.into()),
            Err(ModelError::Pooling(e)) => return Err(e.into()),
        };
        let tokenizer = TextEncoder::Subword(pretrained.tokenizer);
        Ok(Self { model, meta, tokenizer, dir: dir.to_path_buf() })
    }

    fn load_bilstm(dir: &Path, meta: ModelMeta) -> Result<Self, ArtifactError> {
        let spec = meta.bilstm.ok_or_else(|| ArtifactError::BadMeta {
            path: dir.join(META_FILE),
            reason: "`arch` is bilstm but the `bilstm` section is missing".into(),
        })?;
        let ckpt = Checkpoint::read(&dir.join("model.safetensors"))?;
        let model = TextClassifier::BiLstm(BiLstmModel::load(&ckpt.tensors()?, spec)?);
        let vocab = WordVocab::load(&dir.join(WORDS_FILE))?;
        if vocab.vocab_size() != spec.vocab_size {
            return Err(ArtifactError::BadMeta {
                path: dir.join(WORDS_FILE),
                reason: format!("{} words + padding + OOV != the model's {} embedding rows", vocab.len(), spec.vocab_size),
            });
        }
        let tokenizer = TextEncoder::Words { vocab: std::sync::Arc::new(vocab), max_len: meta.encode.seq_len };
        Ok(Self { model, meta, tokenizer, dir: dir.to_path_buf() })
    }
}

/// Writes `model` to `out` atomically: everything goes to a sibling staging folder that takes
/// `out`'s place only once complete (`swap::swap_in`), so `out` holds a whole model at every
/// instant. `extras` may add
/// files (history, plots) to that temp folder before the swap.
pub fn save_classifier<E>(
    out: &Path,
    model: &TextClassifier,
    meta: &ModelMeta,
    tokenizer: &TextEncoder,
    extras: E,
) -> Result<(), ArtifactError>
where
    E: FnOnce(&Path) -> Result<(), ArtifactError>,
{
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArtifactError::Write { path, source }
    };
    fs::create_dir_all(parent).map_err(write_err(parent))?;
    // Folders of earlier saves that were killed (and a model they left only as a backup).
    swap::recover(out)?;
    let tmp = swap::staging_dir(out);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(write_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;

    let mut w = WeightsWriter::new("");
    match model {
        TextClassifier::Bert(m) => {
            m.save(&mut w);
            let config = hf_config(&m.config, meta);
            let cfg_path = tmp.join("config.json");
            let cfg_text = serde_json::to_string_pretty(&config)
                .map_err(|e| ArtifactError::BadMeta { path: cfg_path.clone(), reason: e.to_string() })?;
            fs::write(&cfg_path, cfg_text).map_err(write_err(&cfg_path))?;
        }
        TextClassifier::BiLstm(m) => m.save(&mut w),
    }
    let st_meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = w.to_bytes(st_meta)?;
    let st_path = tmp.join("model.safetensors");
    fs::write(&st_path, bytes).map_err(write_err(&st_path))?;

    let meta_path = tmp.join(META_FILE);
    let meta_text = serde_json::to_string_pretty(meta)
        .map_err(|e| ArtifactError::BadMeta { path: meta_path.clone(), reason: e.to_string() })?;
    fs::write(&meta_path, meta_text).map_err(write_err(&meta_path))?;

    match tokenizer {
        TextEncoder::Subword(t) => {
            let tokenizer_dir = t.source().parent().unwrap_or(Path::new("."));
            for f in TOKENIZER_FILES {
                let src = tokenizer_dir.join(f);
                if src.is_file() {
                    fs::copy(&src, tmp.join(f)).map_err(write_err(&src))?;
                }
            }
        }
        TextEncoder::Words { vocab, .. } => vocab.save(&tmp.join(WORDS_FILE))?,
    }

    extras(&tmp)?;

    swap::swap_in(&tmp, out)
}

/// The encoder's `config.json` as read, plus what `*ForSequenceClassification` reads:
/// architectures, `id2label`/`label2id`, `problem_type` and the head's dropout. A binary bertkit
/// model has one logit trained with BCE, which transformers calls `multi_label_classification`
/// with `num_labels = 1`; a multi-label one has one BCE logit per label.
fn hf_config(encoder: &ModelConfig, meta: &ModelMeta) -> serde_json::Map<String, serde_json::Value> {
    let mut cfg = encoder.raw.clone();
    let labels: Vec<&String> = if meta.is_binary() {
        meta.class_names.iter().skip(1).take(1).collect()
    } else {
        meta.class_names.iter().collect()
    };
    let id2label: BTreeMap<String, String> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), (*l).clone())).collect();
    let label2id: BTreeMap<String, usize> = labels.iter().enumerate().map(|(i, l)| ((*l).clone(), i)).collect();
    let problem = if meta.is_binary() || meta.multi_label { "multi_label_classification" } else { "single_label_classification" };
    let dropout_field = match encoder.family {
        Family::DistilBert => "seq_classif_dropout",
        Family::Albert => "classifier_dropout_prob",
        Family::Bert | Family::Roberta | Family::Electra => "classifier_dropout",
    };
    cfg.insert("model_type".into(), json!(encoder.family.model_type()));
    cfg.insert("id2label".into(), json!(id2label));
    cfg.insert("label2id".into(), json!(label2id));
    cfg.insert("problem_type".into(), json!(problem));
    cfg.insert(dropout_field.into(), json!(meta.head.dropout));
    cfg.insert("architectures".into(), json!([encoder.family.classification_architecture()]));
    cfg.insert("num_labels".into(), json!(labels.len()));
    cfg
}
