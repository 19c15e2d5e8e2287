//! The tiny model-family fixtures (`tests/fixtures/families`, made by its Python scripts): their
//! folders, their golden outputs, and a bertkit model folder over each checkpoint.

use std::path::{Path, PathBuf};

use bertkit::artifact::ModelMeta;
use bertkit::model::{HeadSpec, ModelConfig, Pooling, Pretrained};
use bertkit::tokenize::{EncodePlan, TokenBatch};

use super::{root, u32s};

pub fn fixture(family: &str) -> PathBuf {
    root().join("tests/fixtures/families").join(family)
}

/// `golden.json` of a family's fixture.
pub fn family_golden(family: &str) -> serde_json::Value {
    let path = fixture(family).join("golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A copy of the transformers classifier under `dir` with the `bertkit.json` that describes its
/// head (the family's default head and pooling, the golden's number of labels).
pub fn as_bertkit_model(family: &str, dir: &Path) -> PathBuf {
    let src = fixture(family);
    let out = dir.join(family);
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    let config = ModelConfig::from_file(&src.join("config.json")).unwrap();
    let plan = EncodePlan { seq_len: config.max_sequence_length().min(128), ..EncodePlan::default() };
    let has_pooler = Pretrained::open(&src, plan).unwrap().has_pooler().unwrap();
    let f = config.family;
    let n = family_golden(family)["num_labels"].as_u64().unwrap() as usize;
    let head = HeadSpec::family_default(f, config.hidden_size, n, 0.1);
    let classes = (0..n).map(|i| format!("LABEL_{i}")).collect();
    let meta = ModelMeta::new(classes, plan, Pooling::family_default(f, has_pooler), head);
    std::fs::write(out.join("bertkit.json"), serde_json::to_string(&meta).unwrap()).unwrap();
    out
}

/// The padded batch transformers ran (`batch_input_ids`, `batch_attention_mask`; token types all
/// 0, as transformers defaults them when the tokenizer returns none).
pub fn golden_batch(g: &serde_json::Value) -> TokenBatch {
    let rows = |key: &str| -> (Vec<i64>, usize, usize) {
        let rows = g[key].as_array().unwrap();
        let t = rows[0].as_array().unwrap().len();
        (rows.iter().flat_map(u32s).map(i64::from).collect(), rows.len(), t)
    };
    let (ids, b, t) = rows("batch_input_ids");
    let (mask, _, _) = rows("batch_attention_mask");
    TokenBatch { input_type_ids: vec![0; ids.len()], input_word_ids: ids, input_mask: mask, batch_size: b, seq_len: t }
}
