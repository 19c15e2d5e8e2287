//! Golden tests for the other BERT-family architectures: tiny random DistilBERT, RoBERTa, ALBERT
//! and ELECTRA checkpoints with transformers' own outputs, made by
//! `tests/fixtures/families/make_fixtures.py` (run once; CI needs no Python).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bertkit::artifact::{ClassifierBundle, ModelMeta, save_classifier};
use bertkit::model::{BertEncoder, EncoderInput, Family, HeadSpec, LoadError, Pooling};
use bertkit::tokenize::{EncodePlan, TextTokenizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{assert_close, assert_rows_differ, f32s, root, u32s};

const TOL: f32 = 1e-4;
const FAMILIES: [&str; 4] = ["distilbert", "roberta", "albert", "electra"];

fn fixture(family: &str) -> PathBuf {
    root().join("tests/fixtures/families").join(family)
}

fn golden(family: &str) -> serde_json::Value {
    let path = fixture(family).join("golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn vals<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

/// The padded batch transformers ran, as encoder input (token types all 0, as transformers
/// defaults them when the tokenizer returns none).
fn golden_input(g: &serde_json::Value, device: &Device) -> EncoderInput {
    let rows = |key: &str| -> (Vec<i64>, [usize; 2]) {
        let rows = g[key].as_array().unwrap();
        let t = rows[0].as_array().unwrap().len();
        let flat: Vec<i64> = rows.iter().flat_map(u32s).map(i64::from).collect();
        (flat, [rows.len(), t])
    };
    let (ids, shape) = rows("batch_input_ids");
    let (mask, _) = rows("batch_attention_mask");
    let t = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, shape), device);
    EncoderInput {
        input_word_ids: t(ids),
        input_mask: t(mask),
        input_type_ids: t(vec![0; shape[0] * shape[1]]),
    }
}

#[test]
fn tokenizers_match_transformers_ids_exactly() {
    for family in FAMILIES {
        let g = golden(family);
        let tok = TextTokenizer::from_dir(&fixture(family), EncodePlan::default()).unwrap();
        for (text, ids) in g["texts"].as_array().unwrap().iter().zip(g["ids"].as_array().unwrap()) {
            let enc = tok.encode(text.as_str().unwrap(), None).unwrap();
            assert_eq!(enc.ids, u32s(ids), "{family}: {text}");
        }
        let pairs = g["pairs"].as_array().unwrap();
        for (i, pair) in pairs.iter().enumerate() {
            let (a, b) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let enc = tok.encode(a, Some(b)).unwrap();
            assert_eq!(enc.ids, u32s(&g["pair_ids"][i]), "{family} pair {i}");
            if !g["pair_type_ids"][i].is_null() {
                assert_eq!(enc.type_ids, u32s(&g["pair_type_ids"][i]), "{family} pair {i} type ids");
            }
        }
    }
}

#[test]
fn encoders_match_transformers_outputs() {
    let device = Device::flex();
    for family in FAMILIES {
        let g = golden(family);
        let encoder = BertEncoder::from_dir(&fixture(family), &device).unwrap();
        assert_eq!(encoder.config.family.model_type(), family);
        let out = encoder.forward(golden_input(&g, &device));
        let layers = g["hidden_states"].as_array().unwrap();
        assert_eq!(out.encoder_outputs.len(), layers.len(), "{family}: one output per layer");
        for (i, (ours, theirs)) in out.encoder_outputs.iter().zip(layers).enumerate() {
            assert_close(&vals(ours), &f32s(theirs), TOL, &format!("{family} layer {i}"));
        }
        assert_close(&vals(&out.sequence_output), &f32s(&g["last_hidden_state"]), TOL, family);
        match (&out.pooled_output, g["pooler_output"].is_null()) {
            (Some(p), false) => assert_close(&vals(p), &f32s(&g["pooler_output"]), TOL, "pooler"),
            (None, true) => {}
            (ours, theirs_missing) => panic!("{family}: pooler {} but golden {theirs_missing}", ours.is_some()),
        }
    }
}

/// A copy of the transformers classifier with the `bertkit.json` that describes its head.
fn as_bertkit_model(family: &str, dir: &Path) -> PathBuf {
    let src = fixture(family);
    let out = dir.join(family);
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    let encoder = BertEncoder::from_dir(&src, &Device::flex()).unwrap();
    let f = encoder.config.family;
    let g = golden(family);
    let n = g["num_labels"].as_u64().unwrap() as usize;
    let head = HeadSpec::family_default(f, encoder.config.hidden_size, n, 0.1);
    let classes = (0..n).map(|i| format!("LABEL_{i}")).collect();
    let plan = EncodePlan { seq_len: encoder.config.max_sequence_length().min(128), ..EncodePlan::default() };
    let meta = ModelMeta::new(classes, plan, Pooling::family_default(f, encoder.pooler.is_some()), head);
    std::fs::write(out.join("bertkit.json"), serde_json::to_string(&meta).unwrap()).unwrap();
    out
}

fn tensor_names(path: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.names().into_iter().map(str::to_string).collect()
}

#[test]
fn classification_heads_match_transformers_and_export_in_its_layout() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    for family in FAMILIES {
        let g = golden(family);
        let dir = as_bertkit_model(family, tmp.path());
        let bundle = ClassifierBundle::load(&dir, &device).unwrap();
        let logits = vals(&bundle.model.forward(golden_input(&g, &device)));
        // The fixtures' heads are drawn wide (make_fixtures.py) so that texts' logits differ by
        // 100x the tolerance: mixing rows up or dropping a head activation cannot pass.
        let n = g["num_labels"].as_u64().unwrap() as usize;
        assert_rows_differ(&f32s(&g["logits"]), n, 100.0 * TOL, &format!("{family} logits"));
        assert_close(&logits, &f32s(&g["logits"]), TOL, &format!("{family} logits"));

        let out = tmp.path().join(format!("{family}-export"));
        save_classifier(&out, &bundle.model, &bundle.meta, &bundle.tokenizer, |_| Ok(())).unwrap();
        assert_eq!(
            tensor_names(&out.join("model.safetensors")),
            tensor_names(&fixture(family).join("model.safetensors")),
            "{family}: exported tensor names are transformers' names"
        );
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["model_type"], family);
        let arch = Family::from_model_type(family).unwrap().classification_architecture();
        assert_eq!(cfg["architectures"][0], arch);
        assert_eq!(cfg["num_labels"], 3);
        let reloaded = ClassifierBundle::load(&out, &device).unwrap();
        assert_eq!(vals(&reloaded.model.forward(golden_input(&g, &device))), logits, "{family} reload");
    }
}

#[test]
fn unsupported_model_type_lists_the_supported_ones() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"model_type": "deberta-v2", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16}"#,
    )
    .unwrap();
    let err = BertEncoder::from_dir(tmp.path(), &Device::flex()).unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`deberta-v2`") && msg.contains("bert, distilbert, roberta, albert, electra"),
        "{msg}"
    );
}
