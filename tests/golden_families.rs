//! Golden tests for the other BERT-family architectures: tiny random DistilBERT, RoBERTa, ALBERT
//! and ELECTRA checkpoints with transformers' own outputs, made by
//! `tests/fixtures/families/make_fixtures.py` (run once; CI needs no Python).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use bertkit::artifact::{ClassifierBundle, save_classifier};
use bertkit::model::{BertEncoder, EncoderInput, Family, LoadError};
use bertkit::tokenize::{EncodePlan, TextTokenizer};
use burn::tensor::{Device, Tensor};
use common::families::{as_bertkit_model, family_golden, fixture, golden_batch};
use common::{assert_close, assert_rows_differ, f32s, u32s};

const TOL: f32 = 1e-4;
const FAMILIES: [&str; 4] = ["distilbert", "roberta", "albert", "electra"];

fn golden(family: &str) -> serde_json::Value {
    family_golden(family)
}

fn vals<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

fn golden_input(g: &serde_json::Value, device: &Device) -> EncoderInput {
    EncoderInput::from_batch(&golden_batch(g), device)
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
        let bundle = ClassifierBundle::load(&dir).unwrap();
        let logits = vals(&bundle.model.to_burn(&device).unwrap().forward(golden_input(&g, &device)));
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
        let reloaded = ClassifierBundle::load(&out).unwrap();
        assert_eq!(vals(&reloaded.model.to_burn(&device).unwrap().forward(golden_input(&g, &device))), logits, "{family} reload");
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
