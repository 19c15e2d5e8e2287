//! Confusion matrix and the metrics derived from it (accuracy; precision/recall/F1 of the
//! positive class for binary tasks, macro-averaged otherwise, like scikit-learn's defaults).

use serde::{Deserialize, Serialize};

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

    pub fn metrics(&self) -> Metrics {
        let k = self.counts.len();
        let total = self.total();
        let correct: u64 = (0..k).map(|i| self.counts[i][i]).sum();
        let accuracy = ratio(correct, total);
        let prf = |c: usize| {
            let tp = self.counts[c][c];
            let predicted: u64 = (0..k).map(|t| self.counts[t][c]).sum();
            let actual: u64 = self.counts[c].iter().sum();
            let (p, r) = (ratio(tp, predicted), ratio(tp, actual));
            let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
            (p, r, f1)
        };
        let (precision, recall, f1) = if k == 2 {
            prf(1)
        } else {
            let all: Vec<_> = (0..k).map(prf).collect();
            let mean = |f: fn(&(f64, f64, f64)) -> f64| all.iter().map(f).sum::<f64>() / k.max(1) as f64;
            (mean(|x| x.0), mean(|x| x.1), mean(|x| x.2))
        };
        Metrics { accuracy, precision, recall, f1 }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
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
