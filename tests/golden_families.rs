//! Golden tests for the other BERT-family architectures on the kernels (weight store → one
//! encoder): tiny random DistilBERT, RoBERTa, ALBERT and ELECTRA checkpoints with transformers'
//! own outputs, made by
//! `tests/fixtures/families/make_fixtures.py` (run once; CI needs no Python).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use bertkit::artifact::{ClassifierBundle, save_classifier};
use bertkit::artifact::ClassifierBundle as Bundle;
use bertkit::model::fast::{FastClassifier, FastEncoder, Precision, TokenBatchError};
use bertkit::model::{Family, LoadError, ModelConfig, TextClassifier};
use bertkit::tokenize::{EncodePlan, TextTokenizer, TokenBatch};
use common::families::{as_bertkit_model, family_golden, fixture, golden_batch};
use common::{assert_close, assert_rows_differ, f32s, u32s};

const TOL: f32 = 1e-4;
const FAMILIES: [&str; 4] = ["distilbert", "roberta", "albert", "electra"];

fn golden(family: &str) -> serde_json::Value {
    family_golden(family)
}

/// The rows of `values` (`[B·T, H]`) at real tokens: padded positions hold whatever a model
/// computes there (the kernels skip work transformers does), so only real tokens are compared.
fn real_rows(values: &[f32], batch: &TokenBatch, h: usize) -> Vec<f32> {
    values.chunks_exact(h).zip(&batch.input_mask).filter(|(_, m)| **m != 0).flat_map(|(r, _)| r.iter().copied()).collect()
}

/// A bundle's fp32 kernels logits on the golden batch.
fn logits(bundle: &Bundle, batch: &TokenBatch) -> Vec<f32> {
    let TextClassifier::Bert(m) = &bundle.model else { panic!("a BERT-family model") };
    FastClassifier::new(m, Precision::F32).logits(batch).unwrap().concat()
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

/// Every layer's output and the pooler, from the weight store through the one kernels encoder.
#[test]
fn encoders_match_transformers_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    for family in FAMILIES {
        let g = golden(family);
        let bundle = Bundle::load(&as_bertkit_model(family, tmp.path())).unwrap();
        let TextClassifier::Bert(m) = &bundle.model else { panic!("a BERT-family model") };
        assert_eq!(m.config.family.model_type(), family);
        let batch = golden_batch(&g);
        let h = m.config.hidden_size;
        let out = FastEncoder::new(&m.params, &m.config, Precision::F32).forward_all(&batch).unwrap();
        let layers = g["hidden_states"].as_array().unwrap();
        assert_eq!(out.hidden_states.len(), layers.len(), "{family}: one output per layer");
        for (i, (ours, theirs)) in out.hidden_states.iter().zip(layers).enumerate() {
            assert_close(&real_rows(ours, &batch, h), &real_rows(&f32s(theirs), &batch, h), TOL, &format!("{family} layer {i}"));
        }
        let last = real_rows(&f32s(&g["last_hidden_state"]), &batch, h);
        assert_close(&real_rows(&out.sequence, &batch, h), &last, TOL, family);
        match (&out.pooled, g["pooler_output"].is_null()) {
            (Some(p), false) => assert_close(p, &f32s(&g["pooler_output"]), TOL, "pooler"),
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
    let tmp = tempfile::tempdir().unwrap();
    for family in FAMILIES {
        let g = golden(family);
        let dir = as_bertkit_model(family, tmp.path());
        let bundle = ClassifierBundle::load(&dir).unwrap();
        let batch = golden_batch(&g);
        let logits = logits(&bundle, &batch);
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
        assert_eq!(self::logits(&reloaded, &batch), logits, "{family} reload");
    }
}

/// A batch built by hand with an id past the embedding table used to be scored as the table's
/// last token; every family now refuses it, naming the text and token. DistilBERT, which has no
/// token-type table, ignores type ids as transformers does.
#[test]
fn an_id_past_the_vocabulary_is_refused_not_clamped_in_every_family() {
    let tmp = tempfile::tempdir().unwrap();
    for family in FAMILIES {
        let bundle = Bundle::load(&as_bertkit_model(family, tmp.path())).unwrap();
        let TextClassifier::Bert(m) = &bundle.model else { panic!("a BERT-family model") };
        let fast = FastClassifier::new(m, Precision::F32);
        let mut batch = golden_batch(&golden(family));
        let t = batch.seq_len;
        batch.input_word_ids[t + 1] = m.config.vocab_size as i64;
        let want = TokenBatchError::OutOfTable {
            field: "input_word_ids",
            id: m.config.vocab_size as i64,
            text: 1,
            token: 1,
            rows: m.config.vocab_size,
            table: "vocab_size",
        };
        assert_eq!(fast.logits(&batch).err(), Some(want), "{family}");
        let good = golden_batch(&golden(family));
        let mut typed = good.clone();
        typed.input_type_ids.iter_mut().for_each(|v| *v = 1);
        let err = fast.logits(&typed).err();
        if m.config.family == Family::DistilBert {
            assert_eq!(fast.logits(&typed).unwrap(), fast.logits(&good).unwrap(), "distilbert reads no type ids");
        } else if m.config.type_vocab_size < 2 {
            assert!(matches!(err, Some(TokenBatchError::OutOfTable { field: "input_type_ids", .. })), "{family}: {err:?}");
        } else {
            assert!(err.is_none(), "{family}: {err:?}");
        }
    }
}

/// The predictor sorts texts by length into batches: a text that does not fit used to be named
/// by its place in its sorted batch ("text 1" for the first text given, behind a shorter one);
/// it is now named by its place in the caller's list.
#[test]
fn a_predictor_names_the_callers_text_not_its_place_in_the_sorted_batch() {
    let tmp = tempfile::tempdir().unwrap();
    for family in FAMILIES {
        let bundle = Bundle::load(&as_bertkit_model(family, tmp.path())).unwrap();
        let TextClassifier::Bert(m) = &bundle.model else { panic!("a BERT-family model") };
        let vocab = m.config.vocab_size as u32;
        let predictor = bertkit::predict::Predictor::with_engine(bundle, bertkit::DeviceSpec::Cpu, bertkit::predict::Engine::Kernels).unwrap();
        let long_and_bad = bertkit::tokenize::Encoded { ids: vec![5, vocab, 6, 7], type_ids: vec![0; 4] };
        let short = bertkit::tokenize::Encoded { ids: vec![5, 6, 7], type_ids: vec![0; 3] };
        let err = predictor.logits(&[long_and_bad, short]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("input_word_ids holds {vocab} at text 0, token 1")), "{family}: {err}");
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
    let err = ModelConfig::from_file(&tmp.path().join("config.json")).unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`deberta-v2`") && msg.contains("bert, distilbert, roberta, albert, electra"),
        "{msg}"
    );
}
