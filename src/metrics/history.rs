//! Per-epoch training history, written as Keras-style `history.json` columns.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_precision: f64,
    pub val_recall: f64,
    pub val_f1: f64,
    /// ROC AUC (see [`crate::metrics::RankingScores`]); `None` where undefined on the validation
    /// data, and in checkpoints written before it was recorded.
    #[serde(default)]
    pub val_auc: Option<f64>,
    /// Learning rate of the last step of the epoch.
    pub lr: f64,
    pub seconds: f64,
    pub examples_per_second: f64,
}

/// One validation run: at each epoch end, and every `--eval-every` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Optimizer steps done.
    pub step: usize,
    /// The same point in epochs (fractional between epoch ends).
    pub epoch: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_f1: f64,
    #[serde(default)]
    pub val_auc: Option<f64>,
}

/// The evaluation whose weights the export holds (or would, with `restore_best`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestPoint {
    /// The `--monitor` name: `val_loss`, `val_accuracy`, `val_f1`, `val_macro_f1` or `val_auc`.
    pub monitor: String,
    pub value: f64,
    pub step: usize,
    pub epoch: f64,
    /// Whether the trained model was set back to these weights (`false`: it kept the last step's).
    pub restored: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    pub binary: bool,
    /// Label sets: accuracy is subset accuracy, F1 is macro F1.
    #[serde(default)]
    pub multi_label: bool,
    /// Every validation run (absent in checkpoints written before early stopping existed).
    #[serde(default)]
    pub evaluations: Vec<EvalPoint>,
    #[serde(default)]
    pub best: Option<BestPoint>,
    /// The run stopped before its last epoch because the monitored metric stopped improving.
    #[serde(default)]
    pub stopped_early: bool,
}

impl History {
    /// `{"loss": [...], "binary_accuracy": [...], "val_loss": [...], ...}` — the shape of
    /// Keras' `history.history`, accuracy named `binary_accuracy` or `accuracy`
    /// (`subset_accuracy` for label sets).
    pub fn to_keras_json(&self) -> serde_json::Value {
        let acc = match (self.binary, self.multi_label) {
            (_, true) => "subset_accuracy",
            (true, false) => "binary_accuracy",
            (false, false) => "accuracy",
        };
        let col = |f: fn(&EpochRecord) -> f64| -> Vec<f64> { self.epochs.iter().map(f).collect() };
        serde_json::json!({
            "epoch": self.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            "loss": col(|e| e.loss),
            acc: col(|e| e.accuracy),
            "val_loss": col(|e| e.val_loss),
            format!("val_{acc}"): col(|e| e.val_accuracy),
            "val_precision": col(|e| e.val_precision),
            "val_recall": col(|e| e.val_recall),
            "val_f1": col(|e| e.val_f1),
            "val_auc": self.epochs.iter().map(|e| e.val_auc).collect::<Vec<_>>(),
            "lr": col(|e| e.lr),
            "epoch_seconds": col(|e| e.seconds),
            "examples_per_second": col(|e| e.examples_per_second),
            "evaluations": self.evaluations,
            "best": self.best,
            "stopped_early": self.stopped_early,
        })
    }
}
