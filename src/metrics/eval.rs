//! Loss and metrics of a model's logits against true labels: what validation and
//! `bertkit evaluate` report, for single-label and multi-label tasks.

use serde::{Deserialize, Serialize};

use super::{Confusion, LabelScores, Metrics, MultiLabelMetrics, RankingScores};
use crate::data::{Target, decided_class};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub examples: usize,
    pub loss: f64,
    /// Single-label: accuracy and the positive class's (binary) or macro (multi-class)
    /// precision/recall/F1. Multi-label: subset accuracy and macro precision/recall/F1.
    pub metrics: Metrics,
    /// Single-label tasks only (empty for multi-label ones).
    pub confusion: Confusion,
    /// Single-label tasks: each class's scores, in class order (multi-label ones have theirs
    /// in `multi_label`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_class: Vec<LabelScores>,
    /// Multi-label tasks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_label: Option<MultiLabelMetrics>,
    /// ROC AUC and average precision (the positive class's, or macro over classes or labels);
    /// `None` where no class or label has both a true and a false example.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingScores>,
}

impl EvalReport {
    /// `logits`: one row per example (1 logit = binary BCE, K logits = softmax CE, or one BCE
    /// per label when the targets are label sets); a binary logit and each label are decided at
    /// `threshold`, a softmax by its top class.
    pub fn from_logits(logits: &[Vec<f32>], targets: &[Target], num_classes: usize, threshold: f32) -> Self {
        let n = targets.len().max(1);
        let loss = logits.iter().zip(targets).map(|(row, y)| example_loss(row, y)).sum::<f64>() / n as f64;
        let ranking = RankingScores::from_logits(logits, targets, num_classes);
        if targets.iter().any(Target::is_multi_label) {
            let m = MultiLabelMetrics::from_logits(logits, targets, num_classes, threshold);
            let metrics = Metrics { accuracy: m.subset_accuracy, precision: m.macro_precision, recall: m.macro_recall, f1: m.macro_f1 };
            let confusion = Confusion::new(0);
            return Self { examples: targets.len(), loss, metrics, confusion, per_class: Vec::new(), multi_label: Some(m), ranking };
        }
        let mut confusion = Confusion::new(num_classes);
        for (row, y) in logits.iter().zip(targets) {
            if let Some(c) = y.class() {
                confusion.add(c, decided_class(row, threshold));
            }
        }
        let (metrics, per_class) = (confusion.metrics(), confusion.per_class());
        Self { examples: targets.len(), loss, metrics, confusion, per_class, multi_label: None, ranking }
    }
}

fn bce(logit: f32, y: bool) -> f64 {
    let (x, y) = (f64::from(logit), f64::from(u8::from(y)));
    x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
}

/// The loss of one example, in f64: BCE from one logit (binary), softmax cross-entropy
/// (multi-class), or the mean BCE over the labels (multi-label, PyTorch's `BCEWithLogitsLoss`).
pub fn example_loss(logits: &[f32], target: &Target) -> f64 {
    match target {
        Target::Labels(_) => logits.iter().enumerate().map(|(j, &z)| bce(z, target.has(j))).sum::<f64>() / logits.len().max(1) as f64,
        Target::Class(label) if logits.len() == 1 => bce(logits[0], *label == 1),
        Target::Class(label) => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max + logits.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
            lse - logits.get(*label).map_or(f64::NAN, |&z| f64::from(z))
        }
    }
}

/// The training loss of one example with label smoothing `smoothing` (see
/// [`Target::smoothed`]): the cross-entropy of the logits' softmax (or of each sigmoid) against
/// the smoothed targets. With 0 it is [`example_loss`] exactly.
pub fn smoothed_example_loss(logits: &[f32], target: &Target, smoothing: f64) -> f64 {
    if smoothing == 0.0 {
        return example_loss(logits, target);
    }
    let k = logits.len();
    let q = |j: usize| target.smoothed(j, k, smoothing);
    if k == 1 || target.is_multi_label() {
        let soft_bce = |j: usize, z: f32| {
            let x = f64::from(z);
            x.max(0.0) - x * q(j) + (-x.abs()).exp().ln_1p()
        };
        return logits.iter().enumerate().map(|(j, &z)| soft_bce(j, z)).sum::<f64>() / k as f64;
    }
    // -sum_j q_j log softmax(z)_j = logsumexp(z) - sum_j q_j z_j, as sum_j q_j = 1.
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + logits.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
    lse - logits.iter().enumerate().map(|(j, &z)| q(j) * f64::from(z)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(c: &[usize]) -> Vec<Target> {
        c.iter().map(|&c| Target::Class(c)).collect()
    }

    #[test]
    fn report_from_binary_logits() {
        let r = EvalReport::from_logits(&[vec![2.0], vec![-1.0], vec![0.5]], &classes(&[1, 0, 0]), 2, 0.5);
        assert_eq!(r.examples, 3);
        assert!((r.metrics.accuracy - 2.0 / 3.0).abs() < 1e-12);
        let expect = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + (-1.0f64).exp()).ln() + (0.5 + (1.0 + (-0.5f64).exp()).ln())) / 3.0;
        assert!((r.loss - expect).abs() < 1e-9);
        assert!(r.multi_label.is_none());
        // The positive example (logit 2) outranks both negatives.
        assert_eq!(r.ranking.map(|k| (k.roc_auc, k.average_precision)), Some((1.0, 1.0)));
    }

    /// PyTorch 2.x: `CrossEntropyLoss(label_smoothing=0.1)([[1, 2, 3], [0, 0, 0]], [2, 0])` is
    /// 0.8031090; `BCEWithLogitsLoss()([2, -1, 0.4], y * 0.8 + 0.1)` for y = [1, 0, 1] (Keras'
    /// smoothing at 0.2) is 0.4310683.
    #[test]
    fn smoothed_losses_match_pytorch() {
        let ce = |row: &[f32], c| smoothed_example_loss(row, &Target::Class(c), 0.1);
        let ce = (ce(&[1.0, 2.0, 3.0], 2) + ce(&[0.0; 3], 0)) / 2.0;
        assert!((ce - 0.803_109_049_797_058_1).abs() < 1e-6, "{ce}");
        let bce = |z, y| smoothed_example_loss(&[z], &Target::Class(y), 0.2);
        let bce = (bce(2.0, 1) + bce(-1.0, 0) + bce(0.4, 1)) / 3.0;
        assert!((bce - 0.431_068_331_003_189_1).abs() < 1e-6, "{bce}");
        // A label set: the mean over its labels of the same smoothed BCE.
        let set = smoothed_example_loss(&[2.0, -1.0], &Target::labels(vec![0]), 0.2);
        let one = |z, y| smoothed_example_loss(&[z], &Target::Class(y), 0.2);
        assert!((set - (one(2.0, 1) + one(-1.0, 0)) / 2.0).abs() < 1e-12);
        assert_eq!(smoothed_example_loss(&[0.3, -0.2], &Target::Class(1), 0.0), example_loss(&[0.3, -0.2], &Target::Class(1)));
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k() {
        assert!((example_loss(&[0.0, 0.0, 0.0, 0.0], &Target::Class(2)) - 4f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn multi_label_loss_is_the_mean_bce_over_labels_and_metrics_are_macro() {
        let t = Target::labels(vec![0]);
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 2.0;
        assert!((example_loss(&[2.0, 1.0], &t) - want).abs() < 1e-12);
        let r = EvalReport::from_logits(&[vec![2.0, 1.0], vec![-1.0, 3.0]], &[t, Target::labels(vec![1])], 2, 0.5);
        let m = r.multi_label.clone().unwrap();
        assert_eq!((r.metrics.accuracy, m.subset_accuracy), (0.5, 0.5));
        assert_eq!(r.metrics.f1, m.macro_f1);
        assert!(r.confusion.counts.is_empty());
    }
}
