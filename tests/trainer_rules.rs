//! Rules the fine-tuning trainers (the kernels, and burn's autodiff with the `burn` feature) must keep, checked through
//! `train_classifier` on the tiny random BERT: AdamW's decoupled weight decay skips biases and
//! LayerNorm, clipping scales every gradient by one global norm (PyTorch's `clip_grad_norm_`,
//! not per tensor), the export reloads to the trained model's own scores, and the best
//! evaluation's weights come back bit for bit.

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bertkit::artifact::{ClassifierBundle, ModelMeta, save_classifier};
use bertkit::data::Target;
use bertkit::DeviceSpec;
use bertkit::model::fast::{BertModel, FastClassifier};
use bertkit::model::{Family, HeadSpec, Pooling, Pretrained, TextClassifier};
use bertkit::tokenize::{EncodePlan, Encoded, Padding, TextEncoder, TextTokenizer, TokenBatch};
use bertkit::train::{Split, TrainPlan, TrainRun, train_classifier};
use bertkit_kernels::Precision;
use common::tiny::write_tiny_bert;

const TEXTS: &[&str] = &[
    "the movie was great and fun !",
    "awful , boring and the worst plot",
    "it was a film",
    "the best movie , i love it",
    "dull and bad",
    "a movie",
];

/// The trainers: the kernels in fp32 and, with the `burn` feature, burn's autodiff (`None`).
#[cfg(feature = "burn")]
const TRAINERS: &[(&str, Option<Precision>)] = &[("burn", None), ("kernels", Some(Precision::F32))];
#[cfg(not(feature = "burn"))]
const TRAINERS: &[(&str, Option<Precision>)] = &[("kernels", Some(Precision::F32))];

struct Setup {
    tmp: tempfile::TempDir,
    model: BertModel,
    tok: TextTokenizer,
    enc: Vec<Encoded>,
    labels: Vec<Target>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-bert");
    write_tiny_bert(&dir);
    // The tiny BERT has 64 positions.
    let plan = EncodePlan { seq_len: 64, ..EncodePlan::default() };
    let pretrained = Pretrained::open(&dir, plan).unwrap();
    let head = HeadSpec::family_default(Family::Bert, pretrained.config.hidden_size, 2, 0.0);
    let model = BertModel::with_new_head(&pretrained, Pooling::Pooler, head, 7).unwrap();
    let tok = pretrained.tokenizer;
    let enc = TEXTS.iter().map(|t| tok.encode(t, None).unwrap()).collect();
    let labels = (0..TEXTS.len()).map(|i| Target::Class(i % 2)).collect();
    Setup { tmp, model, tok, enc, labels }
}

/// One optimizer step on all texts at learning rate `lr` (no warm-up, no decay of the rate).
fn one_step_plan(lr: f64) -> TrainPlan {
    TrainPlan {
        epochs: 1,
        batch_size: TEXTS.len(),
        eval_batch_size: TEXTS.len(),
        learning_rate: lr,
        warmup_ratio: 0.0,
        lr_scheduler: bertkit::train::LrScheduler::Constant,
        ..TrainPlan::default()
    }
}

/// burn draws dropout masks and head initialisations from its device's one global generator
/// (re-seeded per step): a test building a model while another trains would move that one's
/// masks, and two runs meant to differ in one setting would differ in their gradients too. The
/// tests here run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A quiet two-class run of `plan` into `run_dir` on `kernels` (`None`: burn's autodiff).
fn two_class_run<'a>(s: &Setup, plan: &'a TrainPlan, run_dir: &'a Path, kernels: Option<Precision>) -> TrainRun<'a> {
    TrainRun {
        plan,
        num_classes: 2,
        multi_label: false,
        pad_id: s.tok.pad_id(),
        run_dir,
        resume: false,
        quiet: true,
        halt_after_step: None,
        kernels,
    }
}

fn train(s: &Setup, plan: &TrainPlan, kernels: Option<Precision>, run: &str) -> BertModel {
    let split = Split { encodings: &s.enc, targets: &s.labels };
    let run_dir = s.tmp.path().join(run);
    let run = two_class_run(s, plan, &run_dir, kernels);
    train_classifier(s.model.clone(), split, split, run, DeviceSpec::Cpu).unwrap().0
}

/// Every trainable tensor, by name (the weight store's flat layout, which both trainers return).
fn params(m: &BertModel) -> Vec<(String, Vec<f32>)> {
    m.params.names.iter().cloned().zip(m.params.values.iter().cloned()).collect()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}

/// BERT's recipe, written here independently of either trainer's own list.
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("norm"))
}

#[test]
fn weight_decay_skips_biases_and_layer_norm_in_both_trainers() {
    let _one = serial();
    let s = setup();
    let p0 = params(&s.model);
    let (lr, wd) = (0.1, 0.5);
    for &(trainer, kernels) in TRAINERS {
        // The same step with and without decay: the gradients are the same (same weights, batch
        // and dropout seed), so AdamW's decoupled decay is the whole difference: −lr·wd·p₀.
        let without = params(&train(&s, &TrainPlan { weight_decay: 0.0, ..one_step_plan(lr) }, kernels, "a"));
        let with = params(&train(&s, &TrainPlan { weight_decay: wd, ..one_step_plan(lr) }, kernels, "b"));
        let (mut decayed, mut kept) = (0, 0);
        for (((name, w0), (_, a)), (_, b)) in p0.iter().zip(&without).zip(&with) {
            let diff: Vec<f32> = b.iter().zip(a).map(|(x, y)| x - y).collect();
            if decays(name) {
                let want: Vec<f32> = w0.iter().map(|x| -(lr * wd) as f32 * x).collect();
                let err = norm(&diff.iter().zip(&want).map(|(d, w)| d - w).collect::<Vec<_>>()) / norm(&want);
                assert!(err < 1e-3, "{trainer}: {name} was not decayed by lr·wd·w (relative error {err})");
                decayed += 1;
            } else {
                let moved = norm(&diff);
                assert!(moved < 1e-6 * norm(w0).max(1.0), "{trainer}: {name} was decayed (moved {moved})");
                kept += 1;
            }
        }
        assert!(decayed >= 10 && kept >= 10, "{trainer}: {decayed} decayed and {kept} exempt tensors checked");
    }
}

#[test]
fn clipping_scales_every_gradient_by_one_global_norm_in_both_trainers() {
    let _one = serial();
    let s = setup();
    let p0 = params(&s.model);
    // With ε ≫ |g| AdamW's first step is lr·g/(|g| + ε) ≈ g for lr = ε: linear in the gradient,
    // so the clipped step over the unclipped one is the clipping factor, tensor by tensor.
    let eps = 1e4;
    let plan = |clip| TrainPlan { adam_epsilon: eps, weight_decay: 0.0, max_grad_norm: clip, ..one_step_plan(eps) };
    for &(trainer, kernels) in TRAINERS {
        let delta = |m: &BertModel| -> Vec<Vec<f32>> {
            params(m).iter().zip(&p0).map(|((_, a), (_, b))| a.iter().zip(b).map(|(x, y)| x - y).collect()).collect()
        };
        let free = delta(&train(&s, &plan(None), kernels, "free"));
        let global = free.iter().map(|d| norm(d).powi(2)).sum::<f64>().sqrt();
        assert!(global > 1e-3, "{trainer}: the step moved nothing ({global})");
        // Clip to a tenth of the gradient's global norm: every tensor's step shrinks by 10x,
        // also the tensors whose own norm is below the limit (per-tensor clipping leaves those).
        let limit = 0.1 * global;
        let below = free.iter().filter(|d| norm(d) < limit && norm(d) > 1e-3 * global).count();
        assert!(below > 0, "{trainer}: no tensor is below the limit; the test could not tell per-tensor clipping");
        let clipped = delta(&train(&s, &plan(Some(limit)), kernels, "clipped"));
        for ((name, _), (c, f)) in p0.iter().zip(clipped.iter().zip(&free)) {
            let ff: f64 = f.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            if ff.sqrt() < 1e-3 * global {
                continue; // (almost) no gradient: nothing to compare
            }
            let factor = c.iter().zip(f).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>() / ff;
            assert!((factor - 0.1).abs() < 2e-3, "{trainer}: {name}'s step scaled by {factor}, not the global 0.1");
        }
    }
}

/// fp32 kernels logits (golden-tested against transformers and, with the `burn` feature, burn).
fn logits(model: &TextClassifier, batch: &TokenBatch) -> Vec<f32> {
    let TextClassifier::Bert(m) = model else { panic!("a BERT-family model") };
    FastClassifier::new(m, Precision::F32).logits(batch).unwrap().concat()
}

#[test]
fn the_export_reloads_to_the_trained_models_own_scores_in_both_trainers() {
    let _one = serial();
    let s = setup();
    let plan = TrainPlan { epochs: 2, batch_size: 2, learning_rate: 1e-3, ..TrainPlan::default() };
    let batch = TokenBatch::pad(&s.enc, Padding::Longest, s.tok.pad_id());
    let untrained = logits(&TextClassifier::Bert(s.model.clone()), &batch);
    for &(trainer, kernels) in TRAINERS {
        let model = TextClassifier::Bert(train(&s, &plan, kernels, trainer));
        let trained = logits(&model, &batch);
        let moved = trained.iter().zip(&untrained).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(moved > 1e-3, "{trainer}: training did not change the scores ({moved})");
        let TextClassifier::Bert(m) = &model else { unreachable!() };
        let meta = ModelMeta::new(vec!["neg".into(), "pos".into()], s.tok.plan(), m.pooling, m.head);
        let out = s.tmp.path().join(format!("{trainer}-export"));
        save_classifier(&out, &model, &meta, &TextEncoder::Subword(s.tok.clone()), |_| Ok(())).unwrap();
        let reloaded = ClassifierBundle::load(&out).unwrap();
        assert_eq!(logits(&reloaded.model, &batch), trained, "{trainer}: the export scores differently from the trained model");
    }
}

#[test]
fn the_best_evaluations_weights_are_restored_exactly_in_both_trainers() {
    let _one = serial();
    let s = setup();
    // One step per epoch (the batch is every text), the rate constant so that a shorter run
    // repeats a longer one's first steps. Validation asks for the opposite labels, so the more
    // the model learns, the worse validation gets after a first step that still helps it.
    let plan = |epochs, restore_best| TrainPlan {
        epochs,
        learning_rate: 3e-2,
        restore_best,
        ..one_step_plan(3e-2)
    };
    for &(trainer, kernels) in TRAINERS {
        let (restored, h) = {
            let train_split = Split { encodings: &s.enc, targets: &s.labels };
            let flipped: Vec<Target> = s.labels.iter().map(|y| Target::Class(1 - y.class().unwrap())).collect();
            let val_split = Split { encodings: &s.enc, targets: &flipped };
            let run_dir = s.tmp.path().join(format!("{trainer}-long"));
            let long = plan(12, true);
            let run = two_class_run(&s, &long, &run_dir, kernels);
            train_classifier(s.model.clone(), train_split, val_split, run, DeviceSpec::Cpu).unwrap()
        };
        let best = h.best.clone().unwrap();
        assert!(best.restored && best.step < 12, "{trainer}: the best evaluation was the last ({best:?}); the test needs one before it");
        let last = h.evaluations.last().unwrap().val_loss;
        assert!(last > best.value + 1e-3, "{trainer}: the last evaluation ({last}) is as good as the best ({})", best.value);
        // The same run stopped at the best step, keeping its last weights: the same weights, bit for bit.
        let short = train(&s, &plan(best.step, false), kernels, &format!("{trainer}-short"));
        for ((name, a), (_, b)) in params(&restored).iter().zip(&params(&short)) {
            assert_eq!(a, b, "{trainer}: {name} differs from step {}'s weights", best.step);
        }
    }
}

/// Regression for stale packed weights: the kernels trainer packs its weights once per step and
/// validation reuses that pack, so each evaluation must score the weights of its own step, the
/// same loss a fresh model at those weights gives (a pack left from an earlier step would not).
#[test]
fn every_validation_scores_the_weights_of_its_own_step() {
    let _one = serial();
    let s = setup();
    let split = Split { encodings: &s.enc, targets: &s.labels };
    let plan = |epochs| TrainPlan { epochs, ..one_step_plan(3e-2) };
    let run_dir = s.tmp.path().join("packs");
    let this_plan = plan(3);
    let run = two_class_run(&s, &this_plan, &run_dir, Some(Precision::F32));
    let history = train_classifier(s.model.clone(), split, split, run, DeviceSpec::Cpu).unwrap().1;
    assert_eq!(history.evaluations.len(), 3, "one evaluation per epoch");
    let batch = TokenBatch::pad(&s.enc, Padding::Longest, s.tok.pad_id());
    let mut losses = Vec::new();
    for e in &history.evaluations {
        let at_step = train(&s, &TrainPlan { restore_best: false, ..plan(e.step) }, Some(Precision::F32), &format!("packs-{}", e.step));
        let logits = FastClassifier::new(&at_step, Precision::F32).logits(&batch).unwrap();
        let loss = logits.iter().zip(&s.labels).map(|(row, y)| bertkit::metrics::example_loss(row, y)).sum::<f64>() / s.labels.len() as f64;
        assert!((loss - e.val_loss).abs() < 1e-5, "step {}: validation reported {} but the step's weights score {loss}", e.step, e.val_loss);
        losses.push(loss);
    }
    assert!(losses.windows(2).all(|w| (w[0] - w[1]).abs() > 1e-4), "the weights did not move between evaluations: {losses:?}");
}

/// The frozen-encoder run (pooled features once, then the kernels' head learner): the encoder
/// stays bit for bit, the head follows AdamW's decoupled decay (not on its bias), and the best
/// evaluation's head comes back exactly.
#[test]
fn the_frozen_encoder_run_trains_only_the_head_by_the_same_rules() {
    let _one = serial();
    let s = setup();
    let p0 = params(&s.model);
    let frozen = |plan: TrainPlan, run: &str| {
        params(&train(&s, &TrainPlan { freeze_encoder: true, standardize_features: false, ..plan }, Some(Precision::F32), run))
    };
    let (lr, wd) = (0.1, 0.5);
    let without = frozen(TrainPlan { weight_decay: 0.0, ..one_step_plan(lr) }, "frozen-a");
    let with = frozen(TrainPlan { weight_decay: wd, ..one_step_plan(lr) }, "frozen-b");
    let mut head = 0;
    for (((name, w0), (_, a)), (_, b)) in p0.iter().zip(&without).zip(&with) {
        if !name.starts_with("head.") {
            assert!(a == w0 && b == w0, "{name} is in the frozen encoder but changed");
            continue;
        }
        head += 1;
        assert!(a != w0, "{name} did not train");
        let diff: Vec<f32> = b.iter().zip(a).map(|(x, y)| x - y).collect();
        if decays(name) {
            let want: Vec<f32> = w0.iter().map(|x| -(lr * wd) as f32 * x).collect();
            let err = norm(&diff.iter().zip(&want).map(|(d, w)| d - w).collect::<Vec<_>>()) / norm(&want);
            assert!(err < 1e-3, "{name} was not decayed by lr·wd·w (relative error {err})");
        } else {
            assert!(norm(&diff) < 1e-6, "{name} was decayed");
        }
    }
    assert_eq!(head, 2, "the head's weight and bias");

    // The best evaluation's head, restored, equals a run stopped there.
    let plan = |epochs, restore_best| TrainPlan { epochs, restore_best, freeze_encoder: true, standardize_features: false, ..one_step_plan(0.3) };
    let train_split = Split { encodings: &s.enc, targets: &s.labels };
    let flipped: Vec<Target> = s.labels.iter().map(|y| Target::Class(1 - y.class().unwrap())).collect();
    let val_split = Split { encodings: &s.enc, targets: &flipped };
    let run_dir = s.tmp.path().join("frozen-long");
    let long = plan(12, true);
    let run = two_class_run(&s, &long, &run_dir, Some(Precision::F32));
    let (restored, h) = train_classifier(s.model.clone(), train_split, val_split, run, DeviceSpec::Cpu).unwrap();
    let best = h.best.clone().unwrap();
    assert!(best.restored && best.step < 12, "the best evaluation was the last ({best:?}); the test needs one before it");
    let short = train(&s, &plan(best.step, false), Some(Precision::F32), "frozen-short");
    for ((name, a), (_, b)) in params(&restored).iter().zip(&params(&short)) {
        assert_eq!(a, b, "{name} differs from step {}'s weights", best.step);
    }
}

/// Regression: a head dropout of 1.5 trained (the kernels' keep scale 1/(1 − p) = −2) without a
/// word; every trainer now refuses a head dropout outside [0, 1), naming it.
#[test]
fn head_dropout_outside_zero_one_is_refused_by_every_trainer() {
    let _one = serial();
    let s = setup();
    let split = Split { encodings: &s.enc, targets: &s.labels };
    for &(trainer, kernels) in TRAINERS {
        for (p, freeze) in [(1.5, false), (-0.1, false), (1.0, true)] {
            let mut model = s.model.clone();
            model.head.dropout = p;
            let plan = TrainPlan { freeze_encoder: freeze, ..one_step_plan(1e-3) };
            let run_dir = s.tmp.path().join(format!("{trainer}-dropout"));
            let run = two_class_run(&s, &plan, &run_dir, kernels);
            let err = train_classifier(model, split, split, run, DeviceSpec::Cpu).err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(err, format!("the head's dropout must be a probability in [0, 1), got {p}"), "{trainer}, dropout {p}");
        }
    }
}

/// Regression: fine-tuning with int8 weights (`FastLearner` on `Precision::Int8`, as
/// `bench --mode train --engine kernels-int8` asked for) panicked in the kernels at the first
/// step; it is refused by name before any work.
#[test]
fn fine_tuning_in_int8_is_refused_not_a_panic() {
    let _one = serial();
    let s = setup();
    let split = Split { encodings: &s.enc, targets: &s.labels };
    let plan = one_step_plan(1e-3);
    let run_dir = s.tmp.path().join("int8");
    let run = two_class_run(&s, &plan, &run_dir, Some(Precision::Int8));
    let err = train_classifier(s.model.clone(), split, split, run, DeviceSpec::Cpu).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("int8 is for inference (predict, evaluate, serve, bench): fine-tune in fp32 or bf16"));
    assert!(!run_dir.exists(), "a refused run wrote {}", run_dir.display());
}

/// Regression: a library caller's targets were trusted. A class past the model's outputs trained
/// on a NaN loss reported as "try a lower learning rate", a binary model took class 2 as class 0
/// without a word, and a split with fewer targets than texts trained on part of it. Each is now
/// refused by name before any work, in every trainer.
#[test]
fn targets_the_run_does_not_have_are_refused_by_name() {
    let _one = serial();
    let s = setup();
    let plan = one_step_plan(1e-3);
    let run_dir = s.tmp.path().join("targets");
    let mut class_two = s.labels.clone();
    class_two[3] = Target::Class(2);
    let label_set = [vec![Target::Labels(vec![0])], s.labels[1..].to_vec()].concat();
    let cases: [(&[Target], &str); 3] = [
        (&class_two, "target 3 of the training split is class 2: past the run's classes (this run has 2)"),
        (&label_set, "target 0 of the training split is label set [0]: a single-label run takes one class per text (this run has 2)"),
        (&s.labels[1..], &format!("the training split has {} texts but {} targets: one per text", s.enc.len(), s.enc.len() - 1)),
    ];
    for &(trainer, kernels) in TRAINERS {
        for (targets, want) in &cases {
            let train = Split { encodings: &s.enc, targets };
            let val = Split { encodings: &s.enc, targets: &s.labels };
            let run = two_class_run(&s, &plan, &run_dir, kernels);
            let err = train_classifier(s.model.clone(), train, val, run, DeviceSpec::Cpu).err().map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some(*want), "{trainer}");
        }
        // A two-class run takes one output (a sigmoid) or two (a softmax), not three.
        let three = BertModel { head: HeadSpec { num_outputs: 3, ..s.model.head }, ..s.model.clone() };
        let run = two_class_run(&s, &plan, &run_dir, kernels);
        let split = Split { encodings: &s.enc, targets: &s.labels };
        let err = train_classifier(three, split, split, run, DeviceSpec::Cpu).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("the model has 3 outputs, but a run of 2 classes needs 1 (a sigmoid) or 2 (a softmax)"), "{trainer}");
    }
    assert!(!run_dir.exists(), "a refused run wrote {}", run_dir.display());
}

/// A text whose ids do not fit the model's tables (a library caller's hand-made `Encoded`) was
/// refused at its training step, named by its place in the shuffled batch, or, on burn's
/// autodiff, panicked in its gather. Every text is now checked before the first step and named
/// by its place in its split.
#[test]
fn a_text_that_does_not_fit_the_model_is_named_by_its_place_in_its_split() {
    let _one = serial();
    let s = setup();
    let plan = one_step_plan(1e-3);
    let run_dir = s.tmp.path().join("texts");
    let vocab = s.model.config.vocab_size;
    let mut past_vocab = s.enc.clone();
    past_vocab[4].ids[1] = vocab as u32;
    let mut empty = s.enc.clone();
    empty[2] = Encoded { ids: vec![], type_ids: vec![] };
    let mut long = s.enc.clone();
    long[5] = Encoded { ids: vec![s.enc[5].ids[0]; 65], type_ids: vec![0; 65] };
    let cases = [
        ("training", &past_vocab, format!("the training split: input_word_ids holds {vocab} at text 4, token 1, outside the model's {vocab} rows (vocab_size)")),
        ("validation", &empty, "the validation split: text 2 has no real token (its input_mask is all 0); every text needs at least one".to_string()),
        ("training", &long, "text 5 of the training split is 65 tokens long, but the model's position table allows 64".to_string()),
    ];
    for &(trainer, kernels) in TRAINERS {
        for (split, encodings, want) in &cases {
            let bad = Split { encodings, targets: &s.labels };
            let good = Split { encodings: &s.enc, targets: &s.labels };
            let (train, val) = if *split == "training" { (bad, good) } else { (good, bad) };
            let run = two_class_run(&s, &plan, &run_dir, kernels);
            let err = train_classifier(s.model.clone(), train, val, run, DeviceSpec::Cpu).err().map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some(want.as_str()), "{trainer}");
        }
    }
    assert!(!run_dir.exists(), "a refused run wrote {}", run_dir.display());
}

/// A library caller's class weights must give one weight per class of a single-label run:
/// weights past the classes were ignored, and missing ones read as 1.
#[test]
fn class_weights_that_do_not_fit_the_run_are_refused() {
    let _one = serial();
    let s = setup();
    let run_dir = s.tmp.path().join("weights");
    let split = Split { encodings: &s.enc, targets: &s.labels };
    for &(trainer, kernels) in TRAINERS {
        let plan = TrainPlan { class_weights: Some(vec![1.0, 2.0, 3.0]), ..one_step_plan(1e-3) };
        let run = two_class_run(&s, &plan, &run_dir, kernels);
        let err = train_classifier(s.model.clone(), split, split, run, DeviceSpec::Cpu).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("the plan has 3 class weights, but this run has 2 classes: one weight per class"), "{trainer}");
        let plan = TrainPlan { class_weights: Some(vec![1.0, 2.0]), ..one_step_plan(1e-3) };
        assert!(train_classifier(s.model.clone(), split, split, two_class_run(&s, &plan, &run_dir, kernels), DeviceSpec::Cpu).is_ok());
    }
}

/// `gradient_accumulation_steps`: three micro-batches of 2 add up to the optimizer step that one
/// batch of all 6 texts makes (dropout off, so only the order of the sums differs), and not to
/// three steps of 2. Only the kernels fine-tuning trainer accumulates; the others refuse it.
#[test]
fn accumulated_micro_batches_make_the_whole_batchs_step() {
    let _one = serial();
    let mut s = setup();
    s.model.config.hidden_dropout_prob = 0.0;
    s.model.config.attention_probs_dropout_prob = 0.0;
    let whole = one_step_plan(1e-3);
    let accumulated = TrainPlan { batch_size: 2, gradient_accumulation_steps: 3, ..whole.clone() };
    let three_steps = TrainPlan { batch_size: 2, ..whole.clone() };
    let f32s = Some(Precision::F32);
    let p0 = params(&s.model);
    let (a, b, c) = (params(&train(&s, &whole, f32s, "whole")), params(&train(&s, &accumulated, f32s, "acc")), params(&train(&s, &three_steps, f32s, "3")));
    let gap = |x: &[(String, Vec<f32>)], y: &[(String, Vec<f32>)]| {
        x.iter().zip(y).flat_map(|((_, u), (_, v))| u.iter().zip(v).map(|(p, q)| (p - q).abs())).fold(0.0f32, f32::max)
    };
    assert!(gap(&a, &p0) > 5e-4, "the step moved nothing: {}", gap(&a, &p0));
    assert!(gap(&a, &b) < 1e-6, "accumulated step differs from the whole batch's by {}", gap(&a, &b));
    assert!(gap(&a, &c) > 1e-4, "three steps of 2 made the same weights as one of 6: {}", gap(&a, &c));

    let mut whole_steps = vec![("the frozen-encoder head", TrainPlan { freeze_encoder: true, ..accumulated.clone() }, f32s)];
    if cfg!(feature = "burn") {
        whole_steps.push(("the burn engine", accumulated.clone(), None));
    }
    for (what, plan, kernels) in whole_steps {
        let split = Split { encodings: &s.enc, targets: &s.labels };
        let run_dir = s.tmp.path().join("refused");
        let Err(err) = train_classifier(s.model.clone(), split, split, two_class_run(&s, &plan, &run_dir, kernels), DeviceSpec::Cpu) else {
            panic!("{what} accumulated");
        };
        assert!(err.to_string().contains(&format!("{what} takes each step's examples whole")), "{err}");
    }
}
