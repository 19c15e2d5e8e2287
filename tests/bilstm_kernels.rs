//! The GloVe + BiLSTM baseline on the kernels (`model::fast::BiLstmModel`, `train::fast`): the
//! same logits as burn's module for the same weights (with the `burn` feature) (texts of different lengths, padding
//! included), every gradient against central differences of the loss, and the weights
//! round-trip through burn's module and the export format; validation scores each step's weights.

use bertkit::data::Target;
use bertkit::model::fast::{BiLstmCache, BiLstmModel};
use bertkit::model::BiLstmSpec;
#[cfg(feature = "burn")]
use bertkit::model::{BiLstmClassifier, EncoderInput};
use bertkit::tokenize::{Encoded, Padding, TokenBatch};
use bertkit::train::fast::{bilstm_backward, loss_and_grad};
#[cfg(feature = "burn")]
use burn::module::Module;
#[cfg(feature = "burn")]
use burn::tensor::Device;

fn spec(num_outputs: usize, trainable_embeddings: bool, dropout: f64) -> BiLstmSpec {
    BiLstmSpec { vocab_size: 12, embedding_dim: 4, units: 3, num_outputs, dropout_first: dropout, dropout_second: dropout / 2.0, trainable_embeddings }
}

fn matrix() -> Vec<f32> {
    (0..48).map(|i| if i < 4 { 0.0 } else { ((i * 7 % 11) as f32 - 5.0) / 5.0 }).collect()
}

/// Three texts of lengths 5, 2 and 1 (one word), post-padded to 5.
fn batch() -> TokenBatch {
    let texts: [&[u32]; 3] = [&[3, 4, 5, 6, 7], &[8, 2], &[11]];
    let enc: Vec<Encoded> = texts.iter().map(|ids| Encoded { ids: ids.to_vec(), type_ids: vec![0; ids.len()] }).collect();
    TokenBatch::pad(&enc, Padding::Longest, 0)
}

#[cfg(feature = "burn")]
#[test]
fn logits_match_burns_module_with_the_same_weights() {
    let device = Device::flex();
    for outputs in [1, 3] {
        let burn = BiLstmClassifier::new(spec(outputs, false, 0.5), matrix(), &device, 5);
        let ours = BiLstmModel::from_burn(&burn).unwrap();
        let b = batch();
        let theirs = burn.valid().forward(EncoderInput::from_batch(&b, &device)).into_data().try_to_vec::<f32>().unwrap();
        let got = ours.logits(&ours.pack(), &b).unwrap().concat();
        assert_eq!(got.len(), theirs.len());
        let worst = got.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{outputs} outputs: kernels {got:?} vs burn {theirs:?}");
        // And back into burn's module: the same weights, bit for bit.
        let again = BiLstmModel::from_burn(&ours.to_burn(&device).unwrap()).unwrap();
        assert!(again.values == ours.values, "the weights changed through burn's module");
    }
}

/// An id past the GloVe table used to be scored as the table's last word.
#[test]
fn an_id_past_the_embedding_table_is_refused_not_clamped() {
    let m = BiLstmModel::new(spec(2, false, 0.5), matrix(), 3);
    let mut b = batch();
    b.input_word_ids[5] = 12;
    let err = m.logits(&m.pack(), &b).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("input_word_ids holds 12 at text 1, token 0, outside the model's 12 rows (vocab_size)"));
}

/// A text with no words ("!!!") still gets a score, as Keras' masked LSTM gives one; a batch
/// padded on the left, which the forward pass would read as its padding, is refused.
#[test]
fn a_text_without_words_is_scored_and_a_left_padded_batch_is_refused() {
    let m = BiLstmModel::new(spec(2, false, 0.5), matrix(), 3);
    let texts = [Encoded { ids: vec![8, 2], type_ids: vec![0, 0] }, Encoded { ids: vec![], type_ids: vec![] }];
    let logits = m.logits(&m.pack(), &TokenBatch::pad(&texts, Padding::Longest, 0)).unwrap();
    assert!(logits.len() == 2 && logits.iter().flatten().all(|v| v.is_finite()), "{logits:?}");
    // Alone, it makes a batch of length 0; it scores as it did beside a longer text.
    let alone = m.logits(&m.pack(), &TokenBatch::pad(&texts[1..], Padding::Longest, 0)).unwrap();
    assert_eq!(alone, logits[1..]);
    let mut b = batch();
    b.input_word_ids[5..10].copy_from_slice(&[0, 0, 0, 8, 2]);
    b.input_mask[5..10].copy_from_slice(&[0, 0, 0, 1, 1]);
    let err = m.logits(&m.pack(), &b).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("text 1 is not right-padded: its input_mask marks token 3 real"), "{err}");
}

#[test]
fn padding_and_batch_neighbours_do_not_change_a_text() {
    let m = BiLstmModel::new(spec(2, false, 0.5), matrix(), 3);
    let alone = TokenBatch::pad(&[Encoded { ids: vec![8, 2], type_ids: vec![0, 0] }], Padding::Longest, 0);
    let a = m.logits(&m.pack(), &alone).unwrap()[0].clone();
    let b = m.logits(&m.pack(), &batch()).unwrap()[1].clone();
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "{a:?} vs {b:?}");
}

/// The loss of `m` on the batch (dropout on, with a fixed step seed: the same masks every call).
fn loss(m: &BiLstmModel, targets: &[Target]) -> f64 {
    let y = m.forward(&m.pack(), &batch(), Some(42), &mut BiLstmCache::default()).unwrap();
    loss_and_grad(&y, m.spec.num_outputs, targets, bertkit::train::LossTerms::PLAIN).0
}

#[test]
fn every_gradient_matches_central_differences() {
    for (outputs, trainable) in [(1, true), (3, false)] {
        let m = BiLstmModel::new(spec(outputs, trainable, 0.3), matrix(), 9);
        let targets: Vec<Target> = (0..3).map(|i| Target::Class(i % outputs.max(2))).collect();
        let mut cache = BiLstmCache::default();
        let y = m.forward(&m.pack(), &batch(), Some(42), &mut cache).unwrap();
        let (_, dlogits) = loss_and_grad(&y, outputs, &targets, bertkit::train::LossTerms::PLAIN);
        let mut grads: Vec<Vec<f32>> = m.values.iter().map(|v| vec![0.0; v.len()]).collect();
        bilstm_backward(&m, &cache, &dlogits, &mut grads);
        let mut checked = 0;
        for (slot, name) in m.names.iter().enumerate() {
            if name == "embedding" && !trainable {
                assert!(grads[slot].iter().all(|&g| g == 0.0), "the frozen table got a gradient");
                continue;
            }
            for (i, &g) in grads[slot].iter().enumerate() {
                let at = |e: f32| {
                    let mut p = m.clone();
                    p.values[slot][i] += e;
                    loss(&p, &targets)
                };
                let numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
                let g = f64::from(g);
                assert!((g - numeric).abs() < 1e-3 + 1e-2 * numeric.abs(), "{outputs} outputs: d{name}[{i}] {g} vs {numeric}");
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked} values checked");
    }
}

/// Regression for stale packed weights (as in `trainer_rules.rs` for the encoder): the BiLSTM
/// learner packs once per step and validation reuses the pack, so each evaluation must report
/// the loss a fresh model at that step's weights gives.
#[test]
fn every_validation_scores_the_weights_of_its_own_step() {
    use bertkit::DeviceSpec;
    use bertkit::train::{Split, TrainPlan, TrainRun, train_bilstm};
    let texts: [&[u32]; 4] = [&[3, 4, 5, 6, 7], &[8, 2], &[11], &[9, 10, 3]];
    let enc: Vec<Encoded> = texts.iter().map(|ids| Encoded { ids: ids.to_vec(), type_ids: vec![0; ids.len()] }).collect();
    let labels: Vec<Target> = (0..texts.len()).map(|i| Target::Class(i % 2)).collect();
    let split = Split { encodings: &enc, targets: &labels };
    let tmp = tempfile::tempdir().unwrap();
    let plan = |epochs| TrainPlan {
        epochs,
        batch_size: texts.len(),
        eval_batch_size: texts.len(),
        learning_rate: 5e-2,
        warmup_ratio: 0.0,
        lr_scheduler: bertkit::train::LrScheduler::Constant,
        restore_best: false,
        ..TrainPlan::default()
    };
    let train = |epochs: usize, name: &str| {
        let dir = tmp.path().join(name);
        let p = plan(epochs);
        let run = TrainRun {
            plan: &p,
            num_classes: 2,
            multi_label: false,
            pad_id: 0,
            run_dir: &dir,
            resume: false,
            quiet: true,
            halt_after_step: None,
            kernels: Some(bertkit::model::fast::Precision::F32),
        };
        train_bilstm(BiLstmModel::new(spec(1, true, 0.3), matrix(), 4), split, split, run, DeviceSpec::Cpu).unwrap()
    };
    let (_, history) = train(3, "long");
    assert_eq!(history.evaluations.len(), 3, "one evaluation per epoch");
    let batch = TokenBatch::pad(&enc, Padding::Longest, 0);
    let mut losses = Vec::new();
    for e in &history.evaluations {
        let (m, _) = train(e.step, &format!("short-{}", e.step));
        let logits = m.logits(&m.pack(), &batch).unwrap();
        let loss = logits.iter().zip(&labels).map(|(row, y)| bertkit::metrics::example_loss(row, y)).sum::<f64>() / labels.len() as f64;
        assert!((loss - e.val_loss).abs() < 1e-5, "step {}: validation reported {} but the step's weights score {loss}", e.step, e.val_loss);
        losses.push(loss);
    }
    assert!(losses.windows(2).all(|w| (w[0] - w[1]).abs() > 1e-4), "the weights did not move between evaluations: {losses:?}");
}

/// A word id past the embedding table (a library caller's hand-made `Encoded`) is refused
/// before the first step, named by its place in its split (it was named by its place in a
/// shuffled batch); a text of no words is legal here, as in Keras' masked LSTM.
#[test]
fn a_word_id_past_the_table_is_named_by_its_place_in_its_split() {
    use bertkit::DeviceSpec;
    use bertkit::train::{Split, TrainPlan, TrainRun, train_bilstm};
    let texts: [&[u32]; 4] = [&[3, 4, 5], &[8, 2], &[], &[9, 12, 3]];
    let enc: Vec<Encoded> = texts.iter().map(|ids| Encoded { ids: ids.to_vec(), type_ids: vec![0; ids.len()] }).collect();
    let labels: Vec<Target> = (0..texts.len()).map(|i| Target::Class(i % 2)).collect();
    let (good, bad) = (Split { encodings: &enc[..3], targets: &labels[..3] }, Split { encodings: &enc, targets: &labels });
    let tmp = tempfile::tempdir().unwrap();
    let plan = TrainPlan { epochs: 1, batch_size: 4, eval_batch_size: 4, ..TrainPlan::default() };
    fn run<'a>(plan: &'a TrainPlan, run_dir: &'a std::path::Path) -> TrainRun<'a> {
        let kernels = Some(bertkit::model::fast::Precision::F32);
        TrainRun {
            plan,
            num_classes: 2,
            multi_label: false,
            pad_id: 0,
            run_dir,
            resume: false,
            quiet: true,
            halt_after_step: None,
            kernels,
        }
    }
    let (bad_dir, good_dir) = (tmp.path().join("bad"), tmp.path().join("good"));
    let model = || BiLstmModel::new(spec(1, true, 0.0), matrix(), 4);
    let err = train_bilstm(model(), good, bad, run(&plan, &bad_dir), DeviceSpec::Cpu).err().map(|e| e.to_string());
    let want = "the validation split: input_word_ids holds 12 at text 3, token 1, outside the model's 12 rows (vocab_size)";
    assert_eq!(err.as_deref(), Some(want));
    assert!(!bad_dir.exists(), "the refused run wrote a checkpoint");
    assert!(train_bilstm(model(), good, good, run(&plan, &good_dir), DeviceSpec::Cpu).is_ok(), "the empty text trains");
}
