//! Losses from logits: binary cross-entropy on one logit (Keras' `BinaryCrossentropy(
//! from_logits=True)`) and softmax cross-entropy for more classes.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// Mean BCE of `logits` `[B, 1]` against `labels` (0/1), computed stably as
/// `max(x, 0) - x*y + log(1 + exp(-|x|))` (PyTorch's `binary_cross_entropy_with_logits`).
pub fn bce_with_logits(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, _] = logits.dims();
    let device = logits.device();
    let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
    let y = Tensor::<2>::from_data(TensorData::new(y, [b, 1]), &device);
    let x = logits;
    let loss = x.clone().clamp_min(0.0) - x.clone() * y + x.abs().neg().exp().log1p();
    loss.mean()
}

/// Mean softmax cross-entropy of `logits` `[B, K]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, _] = logits.dims();
    let device = logits.device();
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &device);
    log_softmax(logits, 1).gather(1, idx).mean().neg()
}

/// The loss for a head with `logits.dims()[1]` outputs.
pub fn classification_loss(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    if logits.dims()[1] == 1 { bce_with_logits(logits, labels) } else { cross_entropy(logits, labels) }
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
        let got = scalar(bce_with_logits(x, &[1, 0, 0, 0]));
        let expect = ((1.0 + (-2.0f32).exp()).ln() + (1.0 + (-1.0f32).exp()).ln() + 100.0 + 0.0) / 4.0;
        assert!((got - expect).abs() < 1e-4, "{got} vs {expect}");
    }

    #[test]
    fn cross_entropy_matches_log_softmax() {
        let d = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3]), &d);
        let got = scalar(cross_entropy(x, &[2, 0]));
        let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let expect = ((lse - 3.0) + 3f32.ln()) / 2.0;
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }
}
