//! The kernels trainer's gradients against PyTorch's, for every model family: the classification
//! loss and every parameter's gradient (dropout off on both sides, one graph), from transformers'
//! own `<Family>ForSequenceClassification` on the fixtures' padded batch
//! (`tests/fixtures/families/make_grad_goldens.py`, run once; CI needs no Python). Our gradients
//! reach transformers' names through the export: written into the model in place of its weights
//! and saved as `bertkit train` saves, so the names, transposes and the fused QKV split are
//! checked too.

mod common;

use std::collections::BTreeSet;

use bertkit::artifact::{ClassifierBundle, save_classifier};
use bertkit::data::Target;
use bertkit::model::TextClassifier;
use bertkit::model::fast::BertModel;
use bertkit::model::fast::{Cache, Mode, NetSpec, Packed, Rows, Weights, forward};
use bertkit::train::fast::{backward, loss_and_grad};
use bertkit_kernels::Precision;
use common::families::{as_bertkit_model, family_golden, fixture, golden_batch};
use common::ran;

/// Largest gradient error allowed, relative to the tensor's largest |gradient| (the 1e-3).
const TOL: f32 = 1e-3;

fn tensors(path: &std::path::Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let v = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, v)
        })
        .collect()
}

/// Checks `family`'s loss and gradients against PyTorch's.
fn check(family: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = as_bertkit_model(family, tmp.path());
    let bundle = ClassifierBundle::load(&dir).unwrap();
    let TextClassifier::Bert(model) = &bundle.model else { panic!("{family}: not a BERT-family model") };
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(family).join("grads.json")).unwrap()).unwrap();
    let labels: Vec<Target> = golden["labels"].as_array().unwrap().iter().map(|v| Target::Class(v.as_u64().unwrap() as usize)).collect();
    let batch = golden_batch(&family_golden(family));

    let mut params = model.params.clone();
    let spec = NetSpec::of(model, Precision::F32);
    let rows = Rows::new(&batch, &spec.config).unwrap();
    let mut cache = Cache::default();
    // No seed: dropout off, as transformers' eval mode. The mode the learner runs: with the
    // families' [CLS] or pooler pooling, the last layer for the [CLS] rows alone.
    let packed = Packed::new(&params, spec.precision);
    let mode = Mode::train_for(spec.pooling, None);
    assert_eq!(mode, Mode::TrainFirst { seed: None }, "{family}: the fixtures pool the [CLS] row");
    let logits = forward(Weights { params: &params, packed: &packed }, &spec, &rows, mode, &mut cache);
    let (loss, dlogits) = loss_and_grad(&logits, model.head.num_outputs, &labels, bertkit::train::LossTerms::PLAIN);
    let torch_loss = golden["loss"].as_f64().unwrap();
    assert!((loss - torch_loss).abs() <= 1e-4 * torch_loss.abs().max(1.0), "{family}: loss {loss} vs PyTorch {torch_loss}");
    let mut grads = params.zeros_like();
    backward(&params, &spec, &rows, &mut cache, &dlogits, &mut grads);

    params.values = grads;
    let as_weights = BertModel { params, ..model.clone() };
    let out = tmp.path().join("grads-export");
    save_classifier(&out, &TextClassifier::Bert(as_weights), &bundle.meta, &bundle.tokenizer, |_| Ok(())).unwrap();
    let ours: std::collections::BTreeMap<_, _> = tensors(&out.join("model.safetensors")).into_iter().collect();
    let theirs = tensors(&fixture(family).join("grads.safetensors"));
    assert_eq!(
        ours.keys().cloned().collect::<BTreeSet<_>>(),
        theirs.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>(),
        "{family}: the exported tensors are not the parameters PyTorch has gradients for"
    );
    let max_abs = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let theirs_by_name: std::collections::BTreeMap<_, _> = theirs.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let mut worst = 0.0f32;
    for (name, want) in &theirs {
        let got = &ours[name];
        assert_eq!(got.len(), want.len(), "{family}: {name}");
        // The key bias adds the same q·b to every score of a query, which softmax ignores: its
        // true gradient is 0 and both sides hold rounding noise, measured against the query
        // bias's gradient of the same layer.
        let query_bias = key_bias_to_query(name).map(|q| *theirs_by_name.get(q.as_str()).unwrap_or_else(|| panic!("{family}: no {q}")));
        let scale = query_bias.map_or_else(|| max_abs(want), |q| max_abs(q));
        assert!(scale > 0.0, "{family}: PyTorch's {name} gradient is all zero: the golden cannot tell a wrong one");
        let err = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / scale;
        assert!(err <= TOL, "{family}: {name} gradient differs from PyTorch's by {err:.2e} (relative)");
        worst = worst.max(err);
    }
    ran(&format!("{family}: loss and {} parameter gradients vs PyTorch (worst {worst:.1e} relative)", theirs.len()));
}

/// The query bias's name for a key bias's, in each family's naming.
fn key_bias_to_query(name: &str) -> Option<String> {
    [("attention.self.key.bias", "attention.self.query.bias"), ("attention.k_lin.bias", "attention.q_lin.bias"), ("attention.key.bias", "attention.query.bias")]
        .into_iter()
        .find(|(k, _)| name.ends_with(k))
        .map(|(k, q)| format!("{}{q}", &name[..name.len() - k.len()]))
}

#[test]
fn bert_gradients_match_pytorch() {
    check("bert");
}

#[test]
fn distilbert_gradients_match_pytorch() {
    check("distilbert");
}

#[test]
fn roberta_gradients_match_pytorch() {
    check("roberta");
}

#[test]
fn electra_gradients_match_pytorch() {
    check("electra");
}

#[test]
fn albert_gradients_match_pytorch() {
    // One shared layer applied at all three depths: its gradients are the sums over them.
    check("albert");
}

/// max |a − b| relative to the largest |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

/// bf16 GEMM operands (fp32 sums) against fp32 on MiniLM: every gradient within 5 % of fp32's.
#[test]
fn bf16_gradients_stay_close_to_fp32() {
    use bertkit::model::{Family, HeadSpec, Pooling, Pretrained};
    use bertkit::tokenize::{EncodePlan, Padding, TokenBatch};
    let pretrained = Pretrained::open(&common::model_dir(), EncodePlan::default()).unwrap();
    let head = HeadSpec { hidden_size: None, ..HeadSpec::family_default(Family::Bert, pretrained.config.hidden_size, 1, 0.0) };
    let mut stored = BertModel::with_new_head(&pretrained, Pooling::Mean, head, 7).unwrap();
    // Dropout off: both precisions see one graph.
    (stored.config.hidden_dropout_prob, stored.config.attention_probs_dropout_prob) = (0.0, 0.0);
    let texts = ["a wonderful film with a great cast", "the plot was thin and the acting was worse, two hours i will not get back", "meh"];
    let tok = &pretrained.tokenizer;
    let enc: Vec<_> = texts.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    let batch = TokenBatch::pad(&enc, Padding::Longest, tok.pad_id());
    let labels = [1, 0, 1].map(Target::Class);
    let params = &stored.params;
    let run = |precision| {
        let spec = NetSpec::of(&stored, precision);
        let rows = Rows::new(&batch, &spec.config).unwrap();
        let mut cache = Cache::default();
        let packed = Packed::new(params, spec.precision);
    let y = forward(Weights { params, packed: &packed }, &spec, &rows, Mode::Train { seed: Some(1) }, &mut cache);
        let (_, dlogits) = loss_and_grad(&y, 1, &labels, bertkit::train::LossTerms::PLAIN);
        let mut g = params.zeros_like();
        backward(params, &spec, &rows, &mut cache, &dlogits, &mut g);
        g
    };
    let (full, half) = (run(Precision::F32), run(Precision::Bf16));
    let mut worst = (0.0f32, String::new());
    for (name, (a, b)) in params.names.iter().zip(half.iter().zip(&full)) {
        let err = rel_err(a, b);
        if err > worst.0 {
            worst = (err, name.clone());
        }
    }
    // bf16 operands carry 8 significant bits; the sums stay in fp32.
    assert!(worst.0 < 0.05, "bf16 gradient of {} differs from fp32 by {} (relative)", worst.1, worst.0);
    if bertkit_kernels::isa().bf16() {
        assert!(worst.0 > 0.0, "bf16 gave exactly fp32's gradients: bf16 was not exercised");
        ran(&format!("bf16 gradients vs fp32 (worst: {} at {:.1e} relative)", worst.1, worst.0));
    } else {
        eprintln!("skipped: bf16_gradients_stay_close_to_fp32 (bf16 half): level {} has no bf16 GEMM (bf16 ran in fp32)", bertkit_kernels::isa().name());
    }
}

/// The `[CLS]`-only last layer of training (`Mode::TrainFirst`) against the full one
/// (`Mode::Train`) on MiniLM with the pooler and a hidden head, dropout on: the same loss and
/// gradients, since it draws the full layer's masks for the rows it keeps. At fp32 and at bf16
/// (the rows' GEMMs convert the same values).
#[test]
fn cls_only_training_equals_the_full_pass_with_dropout_on() {
    use bertkit::model::{Family, HeadSpec, Pooling, Pretrained};
    use bertkit::tokenize::{EncodePlan, Padding, TokenBatch};
    let pretrained = Pretrained::open(&common::model_dir(), EncodePlan::default()).unwrap();
    let head = HeadSpec { hidden_size: Some(16), ..HeadSpec::family_default(Family::Bert, pretrained.config.hidden_size, 3, 0.1) };
    let stored = BertModel::with_new_head(&pretrained, Pooling::Pooler, head, 7).unwrap();
    assert!(stored.config.hidden_dropout_prob > 0.0 && stored.config.attention_probs_dropout_prob > 0.0, "MiniLM's config drops");
    let texts = ["a wonderful film with a great cast", "the plot was thin and the acting was worse, two hours i will not get back", "meh"];
    let tok = &pretrained.tokenizer;
    let enc: Vec<_> = texts.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    let batch = TokenBatch::pad(&enc, Padding::Longest, tok.pad_id());
    let labels = [1, 0, 2].map(Target::Class);
    let params = &stored.params;
    for (precision, tol) in [(Precision::F32, 1e-4), (Precision::Bf16, 2e-2)] {
        let spec = NetSpec::of(&stored, precision);
        let rows = Rows::new(&batch, &spec.config).unwrap();
        let packed = Packed::new(params, spec.precision);
        let run = |mode| {
            let mut cache = Cache::default();
            let y = forward(Weights { params, packed: &packed }, &spec, &rows, mode, &mut cache);
            let (loss, dlogits) = loss_and_grad(&y, 3, &labels, bertkit::train::LossTerms::PLAIN);
            let mut g = params.zeros_like();
            backward(params, &spec, &rows, &mut cache, &dlogits, &mut g);
            (loss, g)
        };
        let (full_loss, full) = run(Mode::Train { seed: Some(11) });
        let (first_loss, first) = run(Mode::train_for(Pooling::Pooler, Some(11)));
        let (_, other_seed) = run(Mode::Train { seed: Some(12) });
        assert!((full_loss - first_loss).abs() < 1e-5 * full_loss.abs().max(1.0), "{precision:?}: loss {first_loss} against {full_loss}");
        let mut worst = (0.0f32, String::new());
        for (name, (a, b)) in params.names.iter().zip(first.iter().zip(&full)) {
            let err = rel_err(a, b);
            if err > worst.0 {
                worst = (err, name.clone());
            }
        }
        assert!(worst.0 < tol, "{precision:?}: the [CLS]-only gradient of {} differs from the full pass's by {} (relative)", worst.1, worst.0);
        // Another dropout draw moves the gradients far more: the masks matter to this comparison.
        let moved = params.names.iter().zip(other_seed.iter().zip(&full)).map(|(_, (a, b))| rel_err(a, b)).fold(0.0f32, f32::max);
        assert!(moved > 10.0 * tol, "{precision:?}: another seed moved the gradients by only {moved}");
        let note = if precision == Precision::Bf16 && !bertkit_kernels::isa().bf16() { ", bf16 ran in fp32 at this level" } else { "" };
        ran(&format!("[CLS]-only last layer in training vs the full pass, dropout on, {precision:?}{note} (worst: {} at {:.1e})", worst.1, worst.0));
    }
}
