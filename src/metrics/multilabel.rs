//! Multi-label metrics, as scikit-learn computes them from label indicator matrices
//! (`zero_division=0`): micro and macro precision/recall/F1, per-label scores with support,
//! subset accuracy (`accuracy_score`) and Hamming loss (`hamming_loss`).

use serde::{Deserialize, Serialize};

use super::LabelScores;
use super::scores::ratio;
use crate::data::{Target, predicted_on};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelMetrics {
    /// The probability at which a label counts as predicted.
    pub threshold: f64,
    /// Examples whose predicted label set equals the true one.
    pub subset_accuracy: f64,
    /// Wrong (example, label) decisions over all of them.
    pub hamming_loss: f64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    /// In label order.
    pub per_label: Vec<LabelScores>,
}

/// Per-label true positives, false positives and false negatives.
#[derive(Clone, Copy, Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn scores(self) -> LabelScores {
        LabelScores::from_counts(self.tp, self.fp, self.fn_)
    }
}

impl MultiLabelMetrics {
    /// `logits[i]` holds one logit per label; label `j` is predicted when `sigmoid >= threshold`.
    pub fn from_logits(logits: &[Vec<f32>], targets: &[Target], num_labels: usize, threshold: f32) -> Self {
        let mut counts = vec![Counts::default(); num_labels];
        let (mut exact, mut wrong) = (0u64, 0u64);
        for (row, target) in logits.iter().zip(targets) {
            let mut all_right = true;
            for (j, c) in counts.iter_mut().enumerate() {
                let (predicted, truth) = (row.get(j).is_some_and(|&z| predicted_on(z, threshold)), target.has(j));
                match (predicted, truth) {
                    (true, true) => c.tp += 1,
                    (true, false) => c.fp += 1,
                    (false, true) => c.fn_ += 1,
                    (false, false) => {}
                }
                if predicted != truth {
                    all_right = false;
                    wrong += 1;
                }
            }
            exact += u64::from(all_right);
        }
        let n = targets.len().min(logits.len()) as u64;
        let per_label: Vec<LabelScores> = counts.iter().map(|c| c.scores()).collect();
        let sum = counts.iter().fold(Counts::default(), |a, c| Counts { tp: a.tp + c.tp, fp: a.fp + c.fp, fn_: a.fn_ + c.fn_ });
        let micro = sum.scores();
        let macro_ = LabelScores::macro_average(&per_label);
        Self {
            threshold: f64::from(threshold),
            subset_accuracy: ratio(exact, n),
            hamming_loss: ratio(wrong, n * num_labels as u64),
            micro_precision: micro.precision,
            micro_recall: micro.recall,
            micro_f1: micro.f1,
            macro_precision: macro_.precision,
            macro_recall: macro_.recall,
            macro_f1: macro_.f1,
            per_label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of scikit-learn's multi-label docs, worked out by hand:
    /// y_true = [[1,0,1],[0,1,0],[1,1,0]], y_pred = [[1,0,0],[0,1,0],[1,0,1]].
    #[test]
    fn matches_scikit_learn_on_a_worked_example() {
        let on = 2.0f32;
        let off = -2.0f32;
        let logits = vec![vec![on, off, off], vec![off, on, off], vec![on, off, on]];
        let targets = [Target::labels(vec![0, 2]), Target::labels(vec![1]), Target::labels(vec![0, 1])];
        let m = MultiLabelMetrics::from_logits(&logits, &targets, 3, 0.5);
        // Label 0: tp 2; label 1: tp 1, fn 1; label 2: fp 1, fn 1.
        assert_eq!(m.per_label.iter().map(|s| s.support).collect::<Vec<_>>(), [2, 2, 1]);
        assert!((m.per_label[1].recall - 0.5).abs() < 1e-12 && m.per_label[1].precision == 1.0);
        assert_eq!(m.per_label[2].f1, 0.0);
        assert!((m.subset_accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.hamming_loss - 3.0 / 9.0).abs() < 1e-12);
        // Micro: tp 3, fp 1, fn 2 → p 0.75, r 0.6.
        assert!((m.micro_precision - 0.75).abs() < 1e-12 && (m.micro_recall - 0.6).abs() < 1e-12);
        assert!((m.micro_f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        let f1_1 = 2.0 * 1.0 * 0.5 / 1.5;
        assert!((m.macro_f1 - (1.0 + f1_1 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_threshold_moves_the_decisions() {
        // sigmoid(0.5) = 0.62.
        let logits = vec![vec![0.5, -3.0]];
        let targets = [Target::labels(vec![0])];
        assert_eq!(MultiLabelMetrics::from_logits(&logits, &targets, 2, 0.5).subset_accuracy, 1.0);
        assert_eq!(MultiLabelMetrics::from_logits(&logits, &targets, 2, 0.7).subset_accuracy, 0.0);
    }
}
