//! The kernels trainer (`train::fast`) against burn's autodiff (the `burn` feature) on the real
//! MiniLM checkpoint:
//! the same loss and the same gradient for every kind of parameter (dropout off so both see
//! one graph), and weights that survive the round trip into the burn model.
#![cfg(feature = "burn")]

mod common;

use bertkit::data::Target;
use bertkit::model::{BertClassifier, BertEncoder, EncoderInput, Pooling};
use bertkit::train::classification_loss;
use bertkit::model::fast::{BertModel, Params};
use bertkit::model::fast::{Cache, Mode, NetSpec, Packed, Rows, Weights, forward};
use bertkit::train::fast::{backward, loss_and_grad};
use bertkit::tokenize::{EncodePlan, Padding, TextTokenizer, TokenBatch};
use bertkit_kernels::Precision;
use burn::module::{Module, Param};
use burn::nn::DropoutConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::{model_dir, ran};

fn without_dropout(mut m: BertClassifier) -> BertClassifier {
    let off = || DropoutConfig::new(0.0).init();
    m.encoder.config.hidden_dropout_prob = 0.0;
    m.encoder.config.attention_probs_dropout_prob = 0.0;
    m.encoder.embeddings.dropout = off();
    for l in &mut m.encoder.layers {
        l.dropout = off();
        l.attention.attention_dropout = off();
        l.attention.output_dropout = off();
    }
    m.head.dropout = off();
    m
}

fn batch_for(dir: &std::path::Path) -> (TokenBatch, TextTokenizer) {
    let tok = TextTokenizer::from_dir(dir, EncodePlan::default()).unwrap();
    let texts = [
        "a wonderful film with a great cast",
        "the plot was thin and the acting was worse, two hours i will not get back",
        "meh",
    ];
    let enc: Vec<_> = texts.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    (TokenBatch::pad(&enc, Padding::Longest, tok.pad_id()), tok)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// max |a − b| relative to the largest |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

fn check(pooling: Pooling, hidden: Option<usize>, outputs: usize) {
    check_dir(&model_dir(), pooling, hidden, outputs, false);
}

/// `multi_label`: label sets (one BCE per output) instead of classes.
fn check_dir(dir: &std::path::Path, pooling: Pooling, hidden: Option<usize>, outputs: usize, multi_label: bool) {
    let device = Device::flex();
    let encoder = BertEncoder::from_dir(dir, &device).unwrap();
    let model = without_dropout(BertClassifier::new(encoder, pooling, hidden, outputs, 0.0, 7).unwrap());
    let (batch, _) = batch_for(dir);
    let labels: Vec<Target> = (0..batch.batch_size)
        .map(|i| match multi_label {
            // Different sets per example, the empty one included.
            true => Target::labels((0..outputs).filter(|j| (i + j) % 3 == 1).collect()),
            false => Target::Class(i % outputs.max(2)),
        })
        .collect();

    // burn autodiff.
    let ad = device.clone().autodiff();
    let trainable = model.clone().fork(&ad).train();
    let logits = trainable.forward(EncoderInput::from_batch(&batch, &ad));
    let loss = classification_loss(logits, &labels, bertkit::train::LossTerms::PLAIN);
    let burn_loss = values(loss.clone())[0];
    let grads = GradientsParams::from_grads(loss.backward(), &trainable);
    let g = |p: &Param<Tensor<2>>| values(grads.get::<2>(p.id).expect("a gradient"));
    let g1 = |p: &Param<Tensor<1>>| values(grads.get::<1>(p.id).expect("a gradient"));

    // Kernels.
    let stored = BertModel::from_burn(&model).unwrap();
    let params = &stored.params;
    let spec = NetSpec::of(&stored, Precision::F32);
    let rows = Rows::new(&batch, &spec.config).unwrap();
    let mut cache = Cache::default();
    let packed = Packed::new(params, spec.precision);
    let y = forward(Weights { params, packed: &packed }, &spec, &rows, Mode::Train { seed: Some(1) }, &mut cache);
    let (loss, dlogits) = loss_and_grad(&y, outputs, &labels, bertkit::train::LossTerms::PLAIN);
    assert!((loss as f32 - burn_loss).abs() < 1e-4, "loss {loss} vs burn {burn_loss}");
    let mut fast = params.zeros_like();
    backward(params, &spec, &rows, &mut cache, &dlogits, &mut fast);

    let lay = &params.layout;
    let h = model.encoder.config.hidden_size;
    let tm = &trainable;
    let e = &tm.encoder.embeddings;
    let b1 = |p: &Option<Param<Tensor<1>>>| g1(p.as_ref().expect("a bias"));
    let mut checks: Vec<(String, Vec<f32>, Vec<f32>)> = vec![
        ("word embeddings".into(), fast[lay.word].clone(), g(&e.word_embeddings.weight)),
        ("position embeddings".into(), fast[lay.position].clone(), g(&e.position_embeddings.weight)),
        ("embedding LayerNorm gamma".into(), fast[lay.emb_norm.gamma].clone(), g1(&e.layer_norm.gamma)),
        ("embedding LayerNorm beta".into(), fast[lay.emb_norm.beta].clone(), b1(&e.layer_norm.beta)),
        ("head output".into(), fast[lay.head_out.w].clone(), g(&tm.head.output.weight)),
        ("head output bias".into(), fast[lay.head_out.b].clone(), b1(&tm.head.output.bias)),
    ];
    if let Some(ps) = lay.projection {
        let p = tm.encoder.projection.as_ref().unwrap();
        checks.push(("embedding projection".into(), fast[ps.w].clone(), g(&p.weight)));
        checks.push(("embedding projection bias".into(), fast[ps.b].clone(), b1(&p.bias)));
    }
    if let Some(tt) = lay.token_type {
        checks.push(("token types".into(), fast[tt].clone(), g(&e.token_type_embeddings.as_ref().unwrap().weight)));
    }
    // Every parameter of every layer: the fused QKV weight and bias split back into their parts.
    assert_eq!(lay.layers.len(), tm.encoder.layers.len());
    for (l, (s, bl)) in lay.layers.iter().zip(&tm.encoder.layers).enumerate() {
        let col = |w: &[f32], p: usize| -> Vec<f32> { w.chunks(3 * h).flat_map(|r| r[p * h..(p + 1) * h].to_vec()).collect() };
        let part = |b: &[f32], p: usize| b[p * h..(p + 1) * h].to_vec();
        let a = &bl.attention;
        let mut push = |what: &str, ours: Vec<f32>, theirs: Vec<f32>| checks.push((format!("layer {l} {what}"), ours, theirs));
        for (p, (name, lin)) in [("query", &a.query), ("key", &a.key), ("value", &a.value)].into_iter().enumerate() {
            push(name, col(&fast[s.qkv.w], p), g(&lin.weight));
            push(&format!("{name} bias"), part(&fast[s.qkv.b], p), b1(&lin.bias));
        }
        // The key bias adds q·b to every score of a query's row, which softmax ignores: its
        // true gradient is 0, so both sides must be rounding noise next to the query bias's.
        let scale = b1(&a.query.bias).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (side, v) in [("ours", part(&fast[s.qkv.b], 1)), ("burn's", b1(&a.key.bias))] {
            let worst = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(worst <= 1e-3 * scale, "layer {l}: {side} key bias gradient {worst} is not ~0 (query bias: {scale})");
        }
        push("attention output", fast[s.attn_out.w].clone(), g(&a.output.weight));
        push("attention output bias", fast[s.attn_out.b].clone(), b1(&a.output.bias));
        push("attention LayerNorm gamma", fast[s.attn_norm.gamma].clone(), g1(&a.layer_norm.gamma));
        push("attention LayerNorm beta", fast[s.attn_norm.beta].clone(), b1(&a.layer_norm.beta));
        push("intermediate", fast[s.ffn_in.w].clone(), g(&bl.intermediate.weight));
        push("intermediate bias", fast[s.ffn_in.b].clone(), b1(&bl.intermediate.bias));
        push("output", fast[s.ffn_out.w].clone(), g(&bl.output.weight));
        push("output bias", fast[s.ffn_out.b].clone(), b1(&bl.output.bias));
        push("output LayerNorm gamma", fast[s.out_norm.gamma].clone(), g1(&bl.layer_norm.gamma));
        push("output LayerNorm beta", fast[s.out_norm.beta].clone(), b1(&bl.layer_norm.beta));
    }
    if let (Some(ps), Pooling::Pooler) = (lay.pooler, pooling) {
        let p = tm.encoder.pooler.as_ref().unwrap();
        checks.push(("pooler".into(), fast[ps.w].clone(), g(&p.weight)));
        checks.push(("pooler bias".into(), fast[ps.b].clone(), b1(&p.bias)));
    }
    if let (Some(ps), false) = (lay.pooler, pooling == Pooling::Pooler) {
        // Trainable but unused by this pooling: no gradient at all.
        for slot in [ps.w, ps.b] {
            assert!(fast[slot].iter().all(|&v| v == 0.0), "{pooling:?}: the unused pooler got a gradient");
            checks.push(("unused pooler".into(), fast[slot].clone(), fast[slot].clone()));
        }
    }
    if let Some(hs) = lay.head_hidden {
        let hid = tm.head.hidden.as_ref().unwrap();
        checks.push(("head hidden".into(), fast[hs.w].clone(), g(&hid.weight)));
        checks.push(("head hidden bias".into(), fast[hs.b].clone(), b1(&hid.bias)));
    }
    // Every trainable tensor of the kernels trainer is among the checks above (the fused QKV
    // weight and bias are checked as three parts each: four more checks per layer).
    let covered = checks.len() - 4 * lay.layers.len();
    assert_eq!(covered, params.values.len(), "{pooling:?}/{hidden:?}: checks cover {covered} of {} tensors", params.values.len());
    let mut errs: Vec<(f32, String)> = checks
        .into_iter()
        .filter(|(what, ..)| !what.ends_with("key bias"))
        .map(|(what, ours, theirs)| (rel_err(&ours, &theirs), what))
        .collect();
    errs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (err, what) in &errs {
        assert!(*err < 3e-4, "{pooling:?}/{hidden:?}/{outputs}: {what} gradient differs from burn's by {err} (relative)");
    }
    ran(&format!("fp32 gradients of all {} tensors vs burn autodiff ({pooling:?} pooling, head {hidden:?}, {outputs} outputs)", params.values.len()));
}

#[test]
fn gradients_match_burn_autodiff_with_mean_pooling_and_bce() {
    check(Pooling::Mean, None, 1);
}

#[test]
fn gradients_match_burn_autodiff_with_the_pooler_a_hidden_head_and_cross_entropy() {
    check(Pooling::Pooler, Some(32), 3);
}

#[test]
fn gradients_match_burn_autodiff_on_distilbert() {
    // No token types, no pooler, its own head (pre_classifier + ReLU).
    check_dir(&common::root().join("tests/fixtures/families/distilbert"), Pooling::Cls, Some(32), 3, false);
}

#[test]
fn gradients_match_burn_autodiff_on_electra_with_its_embedding_projection() {
    // embedding_size 16 → hidden 32 through `embeddings_project`; head dense + GELU.
    check_dir(&common::root().join("tests/fixtures/families/electra"), Pooling::Cls, Some(32), 2, false);
}

#[test]
fn gradients_match_burn_autodiff_with_one_bce_per_label() {
    check_dir(&model_dir(), Pooling::Mean, None, 3, true);
}

/// transformers' DistilBERT head drops out only after `pre_classifier`'s ReLU; bertkit used to
/// drop its input too (in training; inference was never affected).
#[test]
fn distilbert_head_has_no_dropout_before_pre_classifier() {
    use bertkit::model::{ClassifierHead, Family, HeadActivation, HeadSpec};
    use burn::tensor::TensorData;
    let ad = Device::flex().autodiff();
    let spec = HeadSpec { input_size: 4, hidden_size: Some(1), num_outputs: 1, dropout: 0.5, activation: HeadActivation::Relu };
    let mut head = ClassifierHead::new(spec, Family::DistilBert, &ad, 1);
    let set = |w: Vec<f32>, shape: [usize; 2]| Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w, shape), &ad));
    // One hidden unit = x0 + x1 + x2 + x3; the output reads it with weight 1 and bias 0.
    head.hidden.as_mut().unwrap().weight = set(vec![1.0; 4], [4, 1]);
    head.hidden.as_mut().unwrap().bias = Some(Param::from_tensor(Tensor::<1>::zeros([1], &ad)));
    head.output.weight = set(vec![1.0], [1, 1]);
    head.output.bias = Some(Param::from_tensor(Tensor::<1>::zeros([1], &ad)));
    let head = head.train();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4]), &ad);
    // Dropout after the ReLU only: the logit is 0 or 10 / (1 − 0.5) = 20, nothing in between.
    for _ in 0..40 {
        let y = values(head.forward(x.clone()))[0];
        assert!(y == 0.0 || (y - 20.0).abs() < 1e-4, "logit {y}: the head's input was dropped out too");
    }
    assert!(!head.input_dropout());
    let bert = ClassifierHead::new(spec, Family::Bert, &ad, 1);
    assert!(bert.input_dropout(), "other heads keep the input dropout");
}

#[test]
fn params_round_trip_through_the_burn_model() {
    let device = Device::flex();
    let encoder = BertEncoder::from_dir(&model_dir(), &device).unwrap();
    let model = BertClassifier::new(encoder, Pooling::Cls, None, 2, 0.1, 3).unwrap();
    let mut params = Params::from_burn(&model).unwrap();
    for v in &mut params.values {
        v.iter_mut().enumerate().for_each(|(i, x)| *x += (i % 7) as f32 * 1e-3);
    }
    let mut rebuilt = model.clone();
    params.write_back(&mut rebuilt);
    let again = Params::from_burn(&rebuilt).unwrap();
    assert_eq!(params.names, again.names);
    for (name, (a, b)) in params.names.iter().zip(params.values.iter().zip(&again.values)) {
        assert_eq!(a, b, "{name} changed in the round trip");
    }
    // And through the export's file format (what the burn engine loads a stored model with).
    let stored = BertModel { params, ..BertModel::from_burn(&model).unwrap() };
    let again = Params::from_burn(&stored.to_burn(&device).unwrap()).unwrap();
    let params = stored.params;
    assert_eq!(params.names, again.names);
    for (name, (a, b)) in params.names.iter().zip(params.values.iter().zip(&again.values)) {
        assert_eq!(a, b, "{name} changed in the round trip");
    }
}

