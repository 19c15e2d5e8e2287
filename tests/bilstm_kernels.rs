//! The GloVe + BiLSTM baseline on the kernels (`model::fast::BiLstmModel`, `train::fast`): the
//! same logits as burn's module for the same weights (with the `burn` feature) (texts of different lengths, padding
//! included), every gradient against central differences of the loss, and the weights
//! round-trip through burn's module and the export format.

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
        let got = ours.logits(&ours.pack(), &b).concat();
        assert_eq!(got.len(), theirs.len());
        let worst = got.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{outputs} outputs: kernels {got:?} vs burn {theirs:?}");
        // And back into burn's module: the same weights, bit for bit.
        let again = BiLstmModel::from_burn(&ours.to_burn(&device).unwrap()).unwrap();
        assert!(again.values == ours.values, "the weights changed through burn's module");
    }
}

#[test]
fn padding_and_batch_neighbours_do_not_change_a_text() {
    let m = BiLstmModel::new(spec(2, false, 0.5), matrix(), 3);
    let alone = TokenBatch::pad(&[Encoded { ids: vec![8, 2], type_ids: vec![0, 0] }], Padding::Longest, 0);
    let a = m.logits(&m.pack(), &alone)[0].clone();
    let b = m.logits(&m.pack(), &batch())[1].clone();
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "{a:?} vs {b:?}");
}

/// The loss of `m` on the batch (dropout on, with a fixed step seed: the same masks every call).
fn loss(m: &BiLstmModel, targets: &[Target]) -> f64 {
    let y = m.forward(&m.pack(), &batch(), Some(42), &mut BiLstmCache::default());
    loss_and_grad(&y, m.spec.num_outputs, targets).0
}

#[test]
fn every_gradient_matches_central_differences() {
    for (outputs, trainable) in [(1, true), (3, false)] {
        let m = BiLstmModel::new(spec(outputs, trainable, 0.3), matrix(), 9);
        let targets: Vec<Target> = (0..3).map(|i| Target::Class(i % outputs.max(2))).collect();
        let mut cache = BiLstmCache::default();
        let y = m.forward(&m.pack(), &batch(), Some(42), &mut cache);
        let (_, dlogits) = loss_and_grad(&y, outputs, &targets);
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
