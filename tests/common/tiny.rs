//! A tiny random BERT checkpoint folder (config.json, model.safetensors, vocab.txt) and a tiny
//! labelled dataset, written by the tests so training tests run in seconds.
#![allow(dead_code)]

use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

pub const POS: &[&str] = &["good", "great", "fine", "love", "best", "fun"];
pub const NEG: &[&str] = &["bad", "awful", "boring", "hate", "worst", "dull"];
pub const NEUTRAL: &[&str] = &["the", "movie", "was", "a", "film", "plot", "it", "and"];
const HIDDEN: usize = 16;
const LAYERS: usize = 2;
const INTER: usize = 32;
const POSITIONS: usize = 64;

fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ".", ","].iter().map(|s| s.to_string()).collect();
    v.extend(POS.iter().chain(NEG).chain(NEUTRAL).map(|s| s.to_string()));
    v
}

/// Deterministic pseudo-random values in [-scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// transformers' `BertModel` tensor names (with `prefix`) and shapes.
pub fn bert_tensors(prefix: &str, vocab: usize, h: usize, inter: usize, layers: usize, positions: usize) -> Vec<(String, Vec<usize>)> {
    let mut t: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![vocab, h]),
        ("embeddings.position_embeddings.weight".into(), vec![positions, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
        ("pooler.dense.weight".into(), vec![h, h]),
        ("pooler.dense.bias".into(), vec![h]),
    ];
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for lin in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
            t.push((format!("{p}.{lin}.weight"), vec![h, h]));
            t.push((format!("{p}.{lin}.bias"), vec![h]));
        }
        t.push((format!("{p}.intermediate.dense.weight"), vec![inter, h]));
        t.push((format!("{p}.intermediate.dense.bias"), vec![inter]));
        t.push((format!("{p}.output.dense.weight"), vec![h, inter]));
        t.push((format!("{p}.output.dense.bias"), vec![h]));
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.push((format!("{p}.{ln}.weight"), vec![h]));
            t.push((format!("{p}.{ln}.bias"), vec![h]));
        }
    }
    t.into_iter().map(|(n, s)| (format!("{prefix}{n}"), s)).collect()
}

pub fn write_tiny_bert(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let vocab = vocab();
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"do_lower_case": true}"#).unwrap();
    let config = format!(
        r#"{{"model_type": "bert", "vocab_size": {}, "hidden_size": {HIDDEN}, "num_hidden_layers": {LAYERS},
        "num_attention_heads": 2, "intermediate_size": {INTER}, "max_position_embeddings": {POSITIONS},
        "type_vocab_size": 2, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}}"#,
        vocab.len()
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let t = bert_tensors("", vocab.len(), HIDDEN, INTER, LAYERS, POSITIONS);
    let data: Vec<Vec<u8>> = t
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let v = if name.contains("LayerNorm.weight") {
                vec![1.0; n]
            } else if name.contains("LayerNorm.bias") {
                vec![0.0; n]
            } else {
                values(n, i as u64 + 1, 0.2)
            };
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        t.iter().zip(&data).map(|((n, s), b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// `root/{neg,pos}/*.txt` (or three classes with `neutral`) with `per_class` reviews each,
/// built from sentiment words so a model can learn them.
pub fn write_tiny_reviews(root: &Path, per_class: usize, three_classes: bool) {
    let mut classes = vec![("neg", NEG), ("pos", POS)];
    if three_classes {
        classes.push(("neutral", NEUTRAL));
    }
    for (ci, (name, words)) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let w1 = words[i % words.len()];
            let w2 = words[(i * 7 + ci) % words.len()];
            let filler = NEUTRAL[(i * 3) % NEUTRAL.len()];
            let text = format!("the movie was {w1} and {filler} {w2} !");
            std::fs::write(dir.join(format!("{i}_{ci}.txt")), text).unwrap();
        }
    }
}
