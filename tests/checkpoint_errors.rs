//! Bad checkpoints get one clear error naming the file or tensor at fault, never a panic.
//! Uses a tiny random BERT written by the test itself.

mod common;

use std::collections::HashMap;
use std::path::Path;

use bertkit::model::fast::{HeadInit, Params};
#[cfg(feature = "burn")]
use bertkit::model::BertEncoder;
use bertkit::model::{Checkpoint, HeadSpec, LoadError, ModelConfig};
#[cfg(feature = "burn")]
use burn::tensor::Device;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const CONFIG: &str = r#"{"model_type": "bert", "vocab_size": 20, "hidden_size": 8,
  "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
  "max_position_embeddings": 16, "type_vocab_size": 2}"#;

/// transformers' BertModel tensor names and shapes for CONFIG.
fn tiny_tensors(prefix: &str) -> Vec<(String, Vec<usize>)> {
    common::tiny::bert_tensors(prefix, 20, 8, 16, 2, 16)
}

fn write_checkpoint(dir: &Path, tensors: &[(String, Vec<usize>)]) {
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape)| {
            let n: usize = shape.iter().product();
            (0..n).flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes()).collect()
        })
        .collect();
    let views: HashMap<String, TensorView<'_>> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape), b)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// The weight store's loader (what every command reads checkpoints with) on `dir`.
fn store_load(dir: &Path) -> Result<Params, LoadError> {
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::read(&dir.join("model.safetensors"))?;
    let head = HeadSpec::family_default(cfg.family, cfg.hidden_size, 2, 0.1);
    Params::load(&mut ckpt.encoder_tensors(cfg.family)?, &cfg, &head, HeadInit::Fresh { seed: 0 })
}

/// The weight store's error (and, with the `burn` feature, burn's loader's, which must agree).
fn load_err(dir: &Path) -> String {
    let store = store_load(dir).err().expect("the weight store loaded a bad checkpoint").to_string();
    #[cfg(feature = "burn")]
    {
        let burn = BertEncoder::from_dir(dir, &Device::flex()).unwrap_err().to_string();
        assert_eq!(store, burn, "the two loaders report the same problem differently");
    }
    store
}

#[test]
fn tiny_checkpoint_loads_with_and_without_bert_prefix() {
    for prefix in ["", "bert."] {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), &tiny_tensors(prefix));
        #[cfg(feature = "burn")]
        {
            let enc = BertEncoder::from_dir(dir.path(), &Device::flex()).unwrap();
            assert_eq!(enc.layers.len(), 2);
            assert!(enc.pooler.is_some());
        }
        let store = store_load(dir.path()).unwrap();
        assert_eq!(store.layout.layers.len(), 2);
        assert!(store.layout.pooler.is_some());
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let tensors: Vec<_> = tiny_tensors("")
        .into_iter()
        .filter(|(n, _)| n != "encoder.layer.1.attention.self.key.bias")
        .collect();
    write_checkpoint(dir.path(), &tensors);
    let err = load_err(dir.path());
    assert!(err.contains("`encoder.layer.1.attention.self.key.bias` is missing"), "{err}");
}

#[test]
fn misshapen_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = tiny_tensors("bert.");
    for (name, shape) in &mut tensors {
        if name == "bert.encoder.layer.0.intermediate.dense.weight" {
            *shape = vec![15, 8];
        }
    }
    write_checkpoint(dir.path(), &tensors);
    let err = load_err(dir.path());
    assert!(err.contains("bert.encoder.layer.0.intermediate.dense.weight"), "{err}");
    assert!(err.contains("[15, 8]") && err.contains("[16, 8]"), "{err}");
}

#[test]
fn missing_files_and_bad_config_are_named() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_err(dir.path()).contains("config.json not found"));
    write_checkpoint(dir.path(), &tiny_tensors(""));
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(load_err(dir.path()).contains("model.safetensors not found"));
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("invalid config") && err.contains("config.json"), "{err}");
}

#[test]
fn truncated_safetensors_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &tiny_tensors(""));
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("not a valid safetensors file"), "{err}");
}

#[test]
fn checkpoint_of_another_architecture_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &[("transformer.wte.weight".to_string(), vec![20, 8])]);
    let err = load_err(dir.path());
    assert!(err.contains("embeddings.word_embeddings.weight or bert.embeddings.word_embeddings.weight"), "{err}");
}

fn bertkit(args: &[&str], model: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bertkit"))
        .args(args)
        .arg("--model")
        .arg(model)
        .output()
        .unwrap()
}

/// Regression: a tokenizer with ids past `vocab_size` made `embed` exit 101 on burn's
/// index-out-of-bounds panic (and the kernels clamped such ids to the last row). Now every
/// command that opens the folder refuses it at load, naming both sides.
#[test]
fn tokenizer_larger_than_vocab_size_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    common::tiny::write_tiny_bert(&model);
    let vocab = std::fs::read_to_string(model.join("vocab.txt")).unwrap();
    let n = vocab.lines().count();
    // Three words the checkpoint's embedding table has no rows for, one of them in the text.
    std::fs::write(model.join("vocab.txt"), format!("{vocab}zebra\nquokka\nwombat\n")).unwrap();
    let out = bertkit(&["embed", "a quokka"], &model);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("ids up to {}", n + 2)) && err.contains(&format!("vocab_size = {n}")), "{err}");
    let e = bertkit::model::Pretrained::open(&model, bertkit::tokenize::EncodePlan::default()).err().unwrap();
    assert!(matches!(e, bertkit::model::LoadError::VocabTooLarge { ids, vocab_size, .. } if ids == n + 3 && vocab_size == n));
}

/// Regression: `embed` compared `--seq-len` with `max_position_embeddings`, so RoBERTa (whose
/// positions start at `pad_token_id + 1`) accepted lengths its table cannot hold and clamped the
/// last positions. The RoBERTa fixture has 66 rows and pad_token_id 1: 64 tokens fit, 65 do not.
#[test]
fn roberta_sequence_length_counts_the_padding_offset() {
    let model = common::root().join("tests/fixtures/families/roberta");
    let out = bertkit(&["embed", "--seq-len", "65", "a b"], &model);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sequence length 65 is longer than the 64 tokens"), "{err}");
    assert!(err.contains("pad_token_id + 1 = 2"), "{err}");
    let out = bertkit(&["embed", "--seq-len", "64", "a b"], &model);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A BERT's table is all positions.
    let dir = tempfile::tempdir().unwrap();
    common::tiny::write_tiny_bert(dir.path());
    let out = bertkit(&["embed", "--seq-len", "4096", "a b"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_position_embeddings = "), "{out:?}");
}

/// A classifier on the tiny BERT fixture (`tests/fixtures/families/bert`) scoring with `engine`,
/// and its vocabulary size.
#[cfg(feature = "burn")]
fn fixture_predictor(engine: bertkit::predict::Engine) -> (bertkit::predict::Predictor, usize) {
    use bertkit::artifact::{ClassifierBundle, ModelMeta};
    use bertkit::model::fast::BertModel;
    use bertkit::model::{Pooling, Pretrained, TextClassifier};
    use bertkit::tokenize::{EncodePlan, TextEncoder, Truncation};

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families/bert");
    let plan = EncodePlan::new(32, Truncation::LongestFirst);
    let pretrained = Pretrained::open(&dir, plan).unwrap();
    let cfg = pretrained.config.clone();
    let head = HeadSpec { hidden_size: None, ..HeadSpec::family_default(cfg.family, cfg.hidden_size, 2, 0.1) };
    let model = BertModel::with_new_head(&pretrained, Pooling::Pooler, head, 7).unwrap();
    let meta = ModelMeta::new(vec!["neg".into(), "pos".into()], plan, Pooling::Pooler, model.head);
    let bundle =
        ClassifierBundle { model: TextClassifier::Bert(model), meta, tokenizer: TextEncoder::Subword(pretrained.tokenizer), dir };
    (bertkit::predict::Predictor::with_engine(bundle, bertkit::DeviceSpec::Cpu, engine).unwrap(), cfg.vocab_size)
}

/// burn's embedding lookup panicked on an id past its table; the burn engine now refuses the
/// batch with the kernels' error (`BatchFit`), and still scores a fitting one as they do.
#[cfg(feature = "burn")]
#[test]
fn the_burn_engine_refuses_an_id_past_the_vocabulary_as_the_kernels_do() {
    use bertkit::predict::Engine;
    use bertkit::tokenize::Encoded;

    let ((kernels, vocab), (burn, _)) = (fixture_predictor(Engine::Kernels), fixture_predictor(Engine::Burn));
    let bad = [Encoded { ids: vec![2, 5, 3], type_ids: vec![0; 3] }, Encoded { ids: vec![2, vocab as u32, 3], type_ids: vec![0; 3] }];
    let (k, b) = (kernels.logits(&bad).unwrap_err().to_string(), burn.logits(&bad).unwrap_err().to_string());
    assert_eq!(b, k);
    assert!(b.contains(&format!("input_word_ids holds {vocab} at text 1, token 1")), "{b}");
    let good = &bad[..1];
    let (k, b) = (kernels.logits(good).unwrap(), burn.logits(good).unwrap());
    for (x, y) in k[0].iter().zip(&b[0]) {
        assert!((x - y).abs() < 1e-4, "{k:?} vs {b:?}");
    }
}
