//! The kernels trainer (`train::fast`) against burn's autodiff on the real MiniLM checkpoint:
//! the same loss and the same gradient for every kind of parameter (dropout off so both see
//! one graph), and weights that survive the round trip into the burn model.

mod common;

use bertkit::model::{BertClassifier, BertEncoder, EncoderInput, Pooling};
use bertkit::train::classification_loss;
use bertkit::train::fast::{Cache, NetSpec, Params, Rows, backward, forward, loss_and_grad};
use bertkit::tokenize::{EncodePlan, Padding, TextTokenizer, TokenBatch};
use bertkit_kernels::Precision;
use burn::module::{Module, Param};
use burn::nn::DropoutConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use common::model_dir;

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

fn batch() -> (TokenBatch, TextTokenizer) {
    batch_for(&model_dir())
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
    check_dir(&model_dir(), pooling, hidden, outputs);
}

fn check_dir(dir: &std::path::Path, pooling: Pooling, hidden: Option<usize>, outputs: usize) {
    let device = Device::flex();
    let encoder = BertEncoder::from_dir(dir, &device).unwrap();
    let model = without_dropout(BertClassifier::new(encoder, pooling, hidden, outputs, 0.0, 7).unwrap());
    let (batch, _) = batch_for(dir);
    let labels: Vec<usize> = (0..batch.batch_size).map(|i| i % outputs.max(2)).collect();

    // burn autodiff.
    let ad = device.clone().autodiff();
    let trainable = model.clone().fork(&ad).train();
    let logits = trainable.forward(EncoderInput::from_batch(&batch, &ad));
    let loss = classification_loss(logits, &labels);
    let burn_loss = values(loss.clone())[0];
    let grads = GradientsParams::from_grads(loss.backward(), &trainable);
    let g = |p: &Param<Tensor<2>>| values(grads.get::<2>(p.id).expect("a gradient"));
    let g1 = |p: &Param<Tensor<1>>| values(grads.get::<1>(p.id).expect("a gradient"));

    // Kernels.
    let params = Params::from_burn(&model).unwrap();
    let spec = NetSpec::of(&model, Precision::F32);
    let rows = Rows::new(&batch, &spec.config);
    let mut cache = Cache::default();
    let y = forward(&params, &spec, &rows, Some(1), &mut cache);
    let (loss, dlogits) = loss_and_grad(&y, outputs, &labels);
    assert!((loss as f32 - burn_loss).abs() < 1e-4, "loss {loss} vs burn {burn_loss}");
    let mut fast = params.zeros_like();
    backward(&params, &spec, &rows, &mut cache, &dlogits, &mut fast);

    let lay = &params.layout;
    let h = model.encoder.config.hidden_size;
    let last = lay.layers.len() - 1;
    let tm = &trainable;
    let e = &tm.encoder.embeddings;
    let mut checks: Vec<(&str, Vec<f32>, Vec<f32>)> = vec![
        ("word embeddings", fast[lay.word].clone(), g(&e.word_embeddings.weight)),
        ("position embeddings", fast[lay.position].clone(), g(&e.position_embeddings.weight)),
        ("embedding LayerNorm gamma", fast[lay.emb_norm.gamma].clone(), g1(&e.layer_norm.gamma)),
        ("head output", fast[lay.head_out.w].clone(), g(&tm.head.output.weight)),
    ];
    if let Some(ps) = lay.projection {
        checks.push(("embedding projection", fast[ps.w].clone(), g(&tm.encoder.projection.as_ref().unwrap().weight)));
    }
    if let Some(tt) = lay.token_type {
        checks.push(("token types", fast[tt].clone(), g(&e.token_type_embeddings.as_ref().unwrap().weight)));
    }
    for (l, (s, bl)) in lay.layers.iter().zip(&tm.encoder.layers).enumerate().filter(|(l, _)| [0, last].contains(l)) {
        let col = |w: &[f32], p: usize| -> Vec<f32> { w.chunks(3 * h).flat_map(|r| r[p * h..(p + 1) * h].to_vec()).collect() };
        let name = |what: &str| -> &'static str { Box::leak(format!("layer {l} {what}").into_boxed_str()) };
        checks.push((name("query"), col(&fast[s.qkv.w], 0), g(&bl.attention.query.weight)));
        checks.push((name("key"), col(&fast[s.qkv.w], 1), g(&bl.attention.key.weight)));
        checks.push((name("value bias"), fast[s.qkv.b][2 * h..].to_vec(), g1(bl.attention.value.bias.as_ref().unwrap())));
        checks.push((name("attention output"), fast[s.attn_out.w].clone(), g(&bl.attention.output.weight)));
        checks.push((name("attention LayerNorm beta"), fast[s.attn_norm.beta].clone(), g1(bl.attention.layer_norm.beta.as_ref().unwrap())));
        checks.push((name("intermediate"), fast[s.ffn_in.w].clone(), g(&bl.intermediate.weight)));
        checks.push((name("output bias"), fast[s.ffn_out.b].clone(), g1(bl.output.bias.as_ref().unwrap())));
        checks.push((name("output LayerNorm gamma"), fast[s.out_norm.gamma].clone(), g1(&bl.layer_norm.gamma)));
    }
    if let (Some(ps), Pooling::Pooler) = (lay.pooler, pooling) {
        checks.push(("pooler", fast[ps.w].clone(), g(&tm.encoder.pooler.as_ref().unwrap().weight)));
    }
    if let Some(hs) = lay.head_hidden {
        checks.push(("head hidden", fast[hs.w].clone(), g(&tm.head.hidden.as_ref().unwrap().weight)));
    }
    for (what, ours, theirs) in checks {
        let err = rel_err(&ours, &theirs);
        assert!(err < 1e-4, "{pooling:?}/{hidden:?}/{outputs}: {what} gradient differs from burn's by {err} (relative)");
    }
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
    check_dir(&common::root().join("tests/fixtures/families/distilbert"), Pooling::Cls, Some(32), 3);
}

#[test]
fn gradients_match_burn_autodiff_on_electra_with_its_embedding_projection() {
    // embedding_size 16 → hidden 32 through `embeddings_project`; head dense + GELU.
    check_dir(&common::root().join("tests/fixtures/families/electra"), Pooling::Cls, Some(32), 2);
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
}

#[test]
fn bf16_gradients_stay_close_to_fp32() {
    let device = Device::flex();
    let encoder = BertEncoder::from_dir(&model_dir(), &device).unwrap();
    let model = without_dropout(BertClassifier::new(encoder, Pooling::Mean, None, 1, 0.0, 7).unwrap());
    let (batch, _) = batch();
    let labels = [1, 0, 1];
    let params = Params::from_burn(&model).unwrap();
    let run = |precision| {
        let spec = NetSpec::of(&model, precision);
        let rows = Rows::new(&batch, &spec.config);
        let mut cache = Cache::default();
        let y = forward(&params, &spec, &rows, Some(1), &mut cache);
        let (_, dlogits) = loss_and_grad(&y, 1, &labels);
        let mut g = params.zeros_like();
        backward(&params, &spec, &rows, &mut cache, &dlogits, &mut g);
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
    } else {
        eprintln!("bf16 half skipped: level {} has no bf16 GEMM (bf16 ran in fp32)", bertkit_kernels::isa().name());
    }
}
