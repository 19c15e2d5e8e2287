//! Losses from logits: binary cross-entropy on one logit (Keras' `BinaryCrossentropy(
//! from_logits=True)`), softmax cross-entropy for more classes, and one BCE per label for label
//! sets (PyTorch's `BCEWithLogitsLoss`, what transformers uses for `multi_label_classification`).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use super::{LossTerms, class_weight};
use crate::data::Target;

/// BCE of `logits` `[B, K]` against 0/1 `y` (row-major `[B, K]`), each entry, computed stably
/// as `max(x, 0) - x*y + log(1 + exp(-|x|))` (PyTorch's `binary_cross_entropy_with_logits`).
fn bce_entries(logits: Tensor<2>, y: Vec<f32>) -> Tensor<2> {
    let dims = logits.dims();
    let y = Tensor::<2>::from_data(TensorData::new(y, dims), &logits.device());
    let x = logits;
    x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().log1p()
}

/// Mean BCE of `logits` `[B, K]` against 0/1 `y` (row-major `[B, K]`), over all B·K entries.
pub fn bce_with_logits(logits: Tensor<2>, y: Vec<f32>) -> Tensor<1> {
    bce_entries(logits, y).mean()
}

/// Softmax cross-entropy of each row of `logits` `[B, K]` against its class index: `[B, 1]`;
/// with label smoothing s, against the smoothed targets: `(1 - s) · nll + s · mean_j(-log p_j)`
/// (PyTorch's `CrossEntropyLoss(label_smoothing)`).
fn cross_entropy_rows(logits: Tensor<2>, labels: &[usize], smoothing: f64) -> Tensor<2> {
    let [b, _] = logits.dims();
    let device = logits.device();
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
    let log_p = log_softmax(logits, 1);
    let nll = log_p.clone().gather(1, idx).neg();
    if smoothing == 0.0 {
        return nll;
    }
    nll * (1.0 - smoothing) as f32 + log_p.mean_dim(1).neg() * smoothing as f32
}

/// Mean softmax cross-entropy of `logits` `[B, K]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    cross_entropy_rows(logits, labels, 0.0).mean()
}

/// The loss of a head with `logits.dims()[1]` outputs against `targets`: one BCE per label for
/// label sets; BCE on one logit (binary) or softmax cross-entropy for classes, each example's
/// scaled by its class's weight in `terms.class_weights` before the mean (Keras'
/// `class_weight`), against targets smoothed by `terms.label_smoothing` (`Target::smoothed`).
/// The kernels' `loss_and_grad` computes the same.
pub fn classification_loss(logits: Tensor<2>, targets: &[Target], terms: LossTerms<'_>) -> Tensor<1> {
    let [b, k] = logits.dims();
    let s = terms.label_smoothing;
    if targets.iter().any(Target::is_multi_label) {
        return bce_with_logits(logits, targets.iter().flat_map(|t| (0..k).map(move |j| t.smoothed(j, k, s) as f32)).collect());
    }
    let device = logits.device();
    let rows = if k == 1 {
        // Binary: the one logit is the positive class, index 1 (`smoothed` reads it so).
        bce_entries(logits, targets.iter().map(|t| t.smoothed(0, 1, s) as f32).collect())
    } else {
        let labels: Vec<usize> = targets.iter().map(|t| t.class().unwrap_or(0)).collect();
        cross_entropy_rows(logits, &labels, s)
    };
    match terms.class_weights {
        None => rows.mean(),
        Some(_) => {
            let w: Vec<f32> = targets.iter().map(|t| class_weight(terms.class_weights, t) as f32).collect();
            (rows * Tensor::<2>::from_data(TensorData::new(w, [b, 1]), &device)).mean()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn bce_matches_the_closed_form_and_stays_finite() {
        let d = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, -1.0, 100.0, -100.0], [4, 1]), &d);
        let targets = [1, 0, 0, 0].map(Target::Class);
        let got = scalar(classification_loss(x, &targets, LossTerms::PLAIN));
        let expect = ((1.0 + (-2.0f32).exp()).ln() + (1.0 + (-1.0f32).exp()).ln() + 100.0 + 0.0) / 4.0;
        assert!((got - expect).abs() < 1e-4, "{got} vs {expect}");
    }

    #[test]
    fn cross_entropy_matches_log_softmax() {
        let d = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3]), &d);
        let got = scalar(classification_loss(x, &[Target::Class(2), Target::Class(0)], LossTerms::PLAIN));
        let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let expect = ((lse - 3.0) + 3f32.ln()) / 2.0;
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }

    #[test]
    fn label_sets_get_the_mean_bce_the_metrics_report() {
        let d = Device::flex();
        let rows = [vec![2.0f32, -1.0, 0.5], vec![0.0, 3.0, -2.0]];
        let targets = [Target::labels(vec![0, 2]), Target::labels(vec![])];
        let x = Tensor::<2>::from_data(TensorData::new(rows.concat(), [2, 3]), &d);
        let got = f64::from(scalar(classification_loss(x, &targets, LossTerms::PLAIN)));
        let want = rows.iter().zip(&targets).map(|(r, t)| crate::metrics::example_loss(r, t)).sum::<f64>() / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    /// burn's weighted loss is the kernels' (`loss_and_grad`), for one logit and for a softmax.
    #[test]
    fn class_weights_weigh_burns_loss_as_the_kernels_do() {
        let d = Device::flex();
        let weights = [0.5, 3.0, 2.0];
        for (k, logits, targets) in [
            (1, vec![2.0f32, -1.0, 0.4], vec![Target::Class(1), Target::Class(0), Target::Class(1)]),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::Class(2), Target::Class(0)]),
        ] {
            let terms = LossTerms { class_weights: Some(&weights[..k.max(2)]), label_smoothing: 0.0 };
            let x = Tensor::<2>::from_data(TensorData::new(logits.clone(), [targets.len(), k]), &d);
            let got = f64::from(scalar(classification_loss(x, &targets, terms)));
            let (want, _) = crate::train::fast::loss_and_grad(&logits, k, &targets, terms);
            assert!((got - want).abs() < 1e-5, "{k} outputs: {got} vs {want}");
        }
    }

    /// burn's smoothed loss is the kernels', for one logit, a softmax (with class weights) and
    /// label sets.
    #[test]
    fn label_smoothing_smooths_burns_loss_as_the_kernels_do() {
        let d = Device::flex();
        let w = [0.5, 3.0, 2.0];
        for (k, logits, targets, class_weights) in [
            (1, vec![2.0f32, -1.0, 0.4], vec![Target::Class(1), Target::Class(0), Target::Class(1)], None),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::Class(2), Target::Class(0)], Some(&w[..])),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::labels(vec![0, 2]), Target::labels(vec![1])], None),
        ] {
            let terms = LossTerms { class_weights, label_smoothing: 0.2 };
            let x = Tensor::<2>::from_data(TensorData::new(logits.clone(), [targets.len(), k]), &d);
            let got = f64::from(scalar(classification_loss(x, &targets, terms)));
            let (want, _) = crate::train::fast::loss_and_grad(&logits, k, &targets, terms);
            let (plain, _) = crate::train::fast::loss_and_grad(&logits, k, &targets, LossTerms { label_smoothing: 0.0, ..terms });
            assert!((got - want).abs() < 1e-5 && (want - plain).abs() > 1e-3, "{k} outputs: {got} vs {want} (unsmoothed {plain})");
        }
    }
}
