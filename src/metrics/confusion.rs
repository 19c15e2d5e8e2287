//! Confusion matrix and the metrics derived from it (accuracy; precision/recall/F1 of the
//! positive class for binary tasks, macro-averaged otherwise, like scikit-learn's defaults; and
//! each class's, as its `classification_report`).

use serde::{Deserialize, Serialize};

use super::LabelScores;
use super::scores::ratio;

/// `counts[truth][predicted]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Confusion {
    pub fn new(num_classes: usize) -> Self {
        Self { counts: vec![vec![0; num_classes]; num_classes] }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Each class's precision, recall, F1 and support, in class order.
    pub fn per_class(&self) -> Vec<LabelScores> {
        let k = self.counts.len();
        (0..k)
            .map(|c| {
                let tp = self.counts[c][c];
                let predicted: u64 = (0..k).map(|t| self.counts[t][c]).sum();
                let actual: u64 = self.counts[c].iter().sum();
                LabelScores::from_counts(tp, predicted - tp, actual - tp)
            })
            .collect()
    }

    pub fn metrics(&self) -> Metrics {
        let k = self.counts.len();
        let correct: u64 = (0..k).map(|i| self.counts[i][i]).sum();
        let accuracy = ratio(correct, self.total());
        let per_class = self.per_class();
        let s = if k == 2 { per_class[1] } else { LabelScores::macro_average(&per_class) };
        Metrics { accuracy, precision: s.precision, recall: s.recall, f1: s.f1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_metrics_use_the_positive_class() {
        let mut c = Confusion::new(2);
        // truth 1: 3 right, 1 wrong; truth 0: 4 right, 2 wrong.
        for (t, p) in [(1, 1), (1, 1), (1, 1), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 1), (0, 1)] {
            c.add(t, p);
        }
        let m = c.metrics();
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((m.precision - 0.6).abs() < 1e-12);
        assert!((m.recall - 0.75).abs() < 1e-12);
        assert!((m.f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
    }

    /// scikit-learn's `classification_report` example: y_true = [0, 1, 2, 2, 2], y_pred = [0, 0,
    /// 2, 2, 1]; class 0 is predicted twice (once right), class 2 found twice of three times.
    #[test]
    fn per_class_scores_are_scikit_learns() {
        let mut c = Confusion::new(3);
        for (t, p) in [(0, 0), (1, 0), (2, 2), (2, 2), (2, 1)] {
            c.add(t, p);
        }
        let s = c.per_class();
        assert_eq!(s.iter().map(|s| s.support).collect::<Vec<_>>(), [1, 1, 3]);
        assert_eq!((s[0].precision, s[0].recall), (0.5, 1.0));
        assert_eq!((s[1].precision, s[1].recall, s[1].f1), (0.0, 0.0, 0.0));
        assert!((s[2].precision - 1.0).abs() < 1e-12 && (s[2].recall - 2.0 / 3.0).abs() < 1e-12 && (s[2].f1 - 0.8).abs() < 1e-12);
    }

    #[test]
    fn multiclass_metrics_are_macro_averaged() {
        let mut c = Confusion::new(3);
        for (t, p) in [(0, 0), (1, 1), (2, 2), (2, 0)] {
            c.add(t, p);
        }
        let m = c.metrics();
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        assert!((m.precision - (0.5 + 1.0 + 1.0) / 3.0).abs() < 1e-12);
        assert!((m.recall - (1.0 + 1.0 + 0.5) / 3.0).abs() < 1e-12);
    }
}
