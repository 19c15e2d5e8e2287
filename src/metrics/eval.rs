//! Loss and metrics of a model's logits against true labels: what validation and
//! `bertkit evaluate` report.

use serde::{Deserialize, Serialize};

use super::{Confusion, Metrics, predicted_class};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub examples: usize,
    pub loss: f64,
    pub metrics: Metrics,
    pub confusion: Confusion,
}

impl EvalReport {
    /// `logits`: one row per example (1 logit = binary BCE, K logits = softmax CE).
    pub fn from_logits(logits: &[Vec<f32>], labels: &[usize], num_classes: usize) -> Self {
        let mut confusion = Confusion::new(num_classes);
        let mut loss = 0.0;
        for (row, &y) in logits.iter().zip(labels) {
            loss += example_loss(row, y);
            confusion.add(y, predicted_class(row));
        }
        let n = labels.len().max(1);
        Self { examples: labels.len(), loss: loss / n as f64, metrics: confusion.metrics(), confusion }
    }
}

/// BCE-from-logits or softmax cross-entropy of one example, in f64.
pub fn example_loss(logits: &[f32], label: usize) -> f64 {
    if logits.len() == 1 {
        let (x, y) = (f64::from(logits[0]), label as f64);
        return x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + logits.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
    lse - f64::from(logits[label])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_from_binary_logits() {
        let r = EvalReport::from_logits(&[vec![2.0], vec![-1.0], vec![0.5]], &[1, 0, 0], 2);
        assert_eq!(r.examples, 3);
        assert!((r.metrics.accuracy - 2.0 / 3.0).abs() < 1e-12);
        let expect = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + (-1.0f64).exp()).ln() + (0.5 + (1.0 + (-0.5f64).exp()).ln())) / 3.0;
        assert!((r.loss - expect).abs() < 1e-9);
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k() {
        assert!((example_loss(&[0.0, 0.0, 0.0, 0.0], 2) - 4f64.ln()).abs() < 1e-12);
    }
}
