//! The weight store (`model::fast::Params`) against transformers' files: every family's checkpoint
//! read and written back bit for bit under the same names, and a fresh head drawn as
//! `BertForSequenceClassification` draws it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bertkit::artifact::{ClassifierBundle, save_classifier};
use bertkit::model::fast::BertModel;
use bertkit::model::{Family, HeadSpec, Pooling, Pretrained};
use bertkit::tokenize::EncodePlan;
use common::families::{as_bertkit_model, fixture};
use common::tiny::write_tiny_bert;

/// Every tensor of a safetensors file, by name, as raw little-endian bytes.
fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(name, v)| (name, (v.shape().to_vec(), v.data().to_vec()))).collect()
}

#[test]
fn every_family_exports_the_tensors_it_loaded_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    for family in ["bert", "distilbert", "roberta", "albert", "electra"] {
        let dir = as_bertkit_model(family, tmp.path());
        let bundle = ClassifierBundle::load(&dir).unwrap();
        let out = tmp.path().join(format!("{family}-export"));
        save_classifier(&out, &bundle.model, &bundle.meta, &bundle.tokenizer, |_| Ok(())).unwrap();
        let (ours, theirs) = (tensors(&out.join("model.safetensors")), tensors(&fixture(family).join("model.safetensors")));
        assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{family}: tensor names");
        for (name, (shape, data)) in &theirs {
            assert_eq!(&ours[name].0, shape, "{family}: {name}'s shape");
            assert!(ours[name].1 == *data, "{family}: {name} changed between load and export");
        }
    }
}

#[test]
fn a_fresh_head_is_normal_0_02_with_zero_bias_and_the_seed_decides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-bert");
    write_tiny_bert(&dir);
    let pretrained = Pretrained::open(&dir, EncodePlan { seq_len: 64, ..EncodePlan::default() }).unwrap();
    let h = pretrained.config.hidden_size;
    // A wide head: enough draws for the moments to be tight.
    let head = HeadSpec { hidden_size: Some(4096), ..HeadSpec::family_default(Family::Bert, h, 3, 0.1) };
    let draw = |seed| BertModel::with_new_head(&pretrained, Pooling::Cls, head, seed).unwrap();
    let (a, b, c) = (draw(7), draw(7), draw(8));
    let lay = &a.params.layout;
    let hidden = lay.head_hidden.expect("a hidden layer");
    for s in [hidden, lay.head_out] {
        let w = &a.params.values[s.w];
        let n = w.len() as f64;
        let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let std = (w.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 3.0 * 0.02 / n.sqrt() + 1e-4, "mean {mean} over {n} weights");
        assert!((std - 0.02).abs() < 0.02 * 0.05, "std {std}, not 0.02");
        assert!(a.params.values[s.b].iter().all(|&x| x == 0.0), "biases start at zero");
        assert_eq!(w, &b.params.values[s.w], "the same seed draws the same head");
        assert_ne!(w, &c.params.values[s.w], "another seed draws another head");
    }
    // The encoder is the checkpoint's, whatever the seed.
    assert_eq!(a.params.values[lay.word], c.params.values[lay.word]);
}
