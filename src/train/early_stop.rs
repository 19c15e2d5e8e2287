//! Early stopping and best weights, as Keras' `EarlyStopping(monitor, min_delta, patience,
//! restore_best_weights=True)` and transformers' `load_best_model_at_end` do them: which metric
//! is watched, what counts as better, and the state a checkpoint keeps so `--resume` continues
//! the count.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::EvalReport;

/// The validation metric that picks the best weights (and stops the run with `patience`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Lower is better (Keras' and transformers' default).
    #[default]
    ValLoss,
    ValAccuracy,
    /// F1 of the positive class (binary) or macro F1 (multi-class, multi-label).
    ValF1,
    /// Macro F1 over the labels: the name Keras users give it on multi-label tasks (single-label
    /// runs refuse it; see [`Monitor::check`]).
    ValMacroF1,
    /// ROC AUC: the positive class's (binary), else the macro mean over classes (one-vs-rest)
    /// or labels (Keras' `AUC` metric, logged as `val_auc`).
    ValAuc,
}

impl Monitor {
    pub fn value(self, report: &EvalReport) -> f64 {
        match self {
            Self::ValLoss => report.loss,
            Self::ValAccuracy => report.metrics.accuracy,
            Self::ValF1 => report.metrics.f1,
            Self::ValMacroF1 => report.multi_label.as_ref().map_or(report.metrics.f1, |m| m.macro_f1),
            // The loop refuses a report without it (`TrainError::AucUndefined`).
            Self::ValAuc => report.ranking.map_or(f64::NAN, |r| r.roc_auc),
        }
    }

    /// Whether this metric exists for the task: `val_macro_f1` is the multi-label one.
    pub fn check(self, multi_label: bool) -> Result<(), WrongTask> {
        if self == Self::ValMacroF1 && !multi_label {
            return Err(WrongTask);
        }
        Ok(())
    }

    pub fn higher_is_better(self) -> bool {
        self != Self::ValLoss
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown metric `{0}` to monitor: use val_loss, val_accuracy, val_f1, val_auc or (multi-label) val_macro_f1")]
pub struct UnknownMonitor(String);

#[derive(Debug, thiserror::Error)]
#[error("--monitor val_macro_f1 is for multi-label data; single-label runs monitor val_f1 (macro F1 for more than two classes)")]
pub struct WrongTask;

impl FromStr for Monitor {
    type Err = UnknownMonitor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "val_loss" | "loss" => Ok(Self::ValLoss),
            "val_accuracy" | "accuracy" | "val_acc" => Ok(Self::ValAccuracy),
            "val_f1" | "f1" => Ok(Self::ValF1),
            "val_macro_f1" | "macro_f1" => Ok(Self::ValMacroF1),
            "val_auc" | "auc" => Ok(Self::ValAuc),
            _ => Err(UnknownMonitor(s.to_string())),
        }
    }
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ValLoss => "val_loss",
            Self::ValAccuracy => "val_accuracy",
            Self::ValF1 => "val_f1",
            Self::ValMacroF1 => "val_macro_f1",
            Self::ValAuc => "val_auc",
        })
    }
}

/// The best evaluation so far and how many evaluations have passed without beating it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BestState {
    /// `None` before the first evaluation.
    pub value: Option<f64>,
    /// Optimizer steps done when the best evaluation ran.
    pub step: usize,
    /// The same point in epochs (fractional with `--eval-every`).
    pub epoch: f64,
    /// Evaluations since the best one (Keras' `wait`).
    pub evals_since: usize,
}

impl BestState {
    /// Records an evaluation; returns `true` when it is the new best: better than the best so
    /// far by more than `min_delta` (Keras' rule; the first evaluation always is).
    pub fn update(&mut self, value: f64, (step, epoch): (usize, f64), monitor: Monitor, min_delta: f64) -> bool {
        let better = match self.value {
            None => true,
            Some(best) if monitor.higher_is_better() => value > best + min_delta,
            Some(best) => value < best - min_delta,
        };
        if better {
            *self = Self { value: Some(value), step, epoch, evals_since: 0 };
        } else {
            self.evals_since += 1;
        }
        better
    }

    /// Whether `patience` evaluations in a row have not improved.
    pub fn should_stop(&self, patience: Option<usize>) -> bool {
        patience.is_some_and(|p| self.evals_since >= p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_rule_with_min_delta_and_patience() {
        let mut b = BestState::default();
        let curve = [1.0, 0.8, 0.79, 0.85, 0.7, 0.71, 0.72];
        let news: Vec<bool> = curve.iter().enumerate().map(|(i, &v)| b.update(v, (i, i as f64), Monitor::ValLoss, 0.05)).collect();
        // 0.79 is not 0.05 better than 0.8; 0.7 is.
        assert_eq!(news, [true, true, false, false, true, false, false]);
        assert_eq!((b.value, b.step, b.evals_since), (Some(0.7), 4, 2));
        assert!(b.should_stop(Some(2)) && !b.should_stop(Some(3)) && !b.should_stop(None));
        let mut acc = BestState::default();
        assert!(acc.update(0.5, (1, 1.0), Monitor::ValAccuracy, 0.0));
        assert!(!acc.update(0.5, (2, 2.0), Monitor::ValAccuracy, 0.0), "equal is not better");
        assert!(acc.update(0.6, (3, 3.0), Monitor::ValAccuracy, 0.0));
    }

    #[test]
    fn monitor_names_parse_and_print_as_keras_does() {
        for m in [Monitor::ValLoss, Monitor::ValAccuracy, Monitor::ValF1, Monitor::ValMacroF1, Monitor::ValAuc] {
            assert_eq!(m.to_string().parse::<Monitor>().unwrap(), m);
        }
        let err = "val_prc".parse::<Monitor>().unwrap_err().to_string();
        assert!(err.contains("val_prc") && err.contains("val_f1") && err.contains("val_auc"), "{err}");
        assert!(Monitor::ValAuc.higher_is_better());
        assert!(Monitor::ValMacroF1.check(false).is_err() && Monitor::ValMacroF1.check(true).is_ok());
    }
}
