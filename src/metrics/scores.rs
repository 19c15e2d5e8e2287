//! One class's (or label's) precision, recall, F1 and support from its counts, and their
//! averages: scikit-learn's `precision_recall_fscore_support` with `zero_division=0`, which
//! both the single-label (`confusion.rs`) and the multi-label (`multilabel.rs`) reports use.

use serde::{Deserialize, Serialize};

/// One class's or label's scores; `support` is how many examples truly hold it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

impl LabelScores {
    /// From true positives, false positives and false negatives (a score with a 0 denominator
    /// is 0, as scikit-learn's `zero_division=0`).
    pub fn from_counts(tp: u64, fp: u64, fn_: u64) -> Self {
        let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        Self { precision, recall, f1, support: tp + fn_ }
    }

    /// The unweighted mean of `scores` (scikit-learn's `average="macro"`), with their total
    /// support.
    pub fn macro_average(scores: &[Self]) -> Self {
        Self::mean(scores, |_| 1.0)
    }

    /// The mean of `scores` weighted by support (`average="weighted"`).
    pub fn weighted_average(scores: &[Self]) -> Self {
        Self::mean(scores, |s| s.support as f64)
    }

    fn mean(scores: &[Self], weight: impl Fn(&Self) -> f64) -> Self {
        let total: f64 = scores.iter().map(&weight).sum();
        let avg = |f: fn(&Self) -> f64| if total > 0.0 { scores.iter().map(|s| weight(s) * f(s)).sum::<f64>() / total } else { 0.0 };
        Self {
            precision: avg(|s| s.precision),
            recall: avg(|s| s.recall),
            f1: avg(|s| s.f1),
            support: scores.iter().map(|s| s.support).sum(),
        }
    }
}

/// `a / b`, or 0 when `b` is 0.
pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn's `classification_report` docs: y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2,
    /// 2, 1] gives class 0: 0.50 / 1.00 / 0.67 (support 1), class 1: 0 / 0 / 0 (1), class 2:
    /// 1.00 / 0.67 / 0.80 (3); macro avg 0.50 / 0.56 / 0.49; weighted avg 0.70 / 0.60 / 0.61.
    #[test]
    fn averages_match_scikit_learns_classification_report_example() {
        let classes = [LabelScores::from_counts(1, 1, 0), LabelScores::from_counts(0, 1, 1), LabelScores::from_counts(2, 0, 1)];
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let row = |s: LabelScores| (round(s.precision), round(s.recall), round(s.f1), s.support);
        assert_eq!(classes.map(row), [(0.5, 1.0, 0.67, 1), (0.0, 0.0, 0.0, 1), (1.0, 0.67, 0.8, 3)]);
        assert_eq!(row(LabelScores::macro_average(&classes)), (0.5, 0.56, 0.49, 5));
        assert_eq!(row(LabelScores::weighted_average(&classes)), (0.7, 0.6, 0.61, 5));
    }

    #[test]
    fn nothing_to_average_is_zero_not_nan() {
        assert_eq!(LabelScores::macro_average(&[]), LabelScores { precision: 0.0, recall: 0.0, f1: 0.0, support: 0 });
        let unseen = LabelScores::from_counts(0, 0, 0);
        assert_eq!(LabelScores::weighted_average(&[unseen]), unseen);
    }
}
