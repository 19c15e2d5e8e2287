//! The validated training settings (`bertkit train` flags), stored with checkpoints so that a
//! resumed run can refuse different settings.

use serde::{Deserialize, Serialize};

use super::{LrScheduler, Monitor};
use crate::data::Target;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainPlan {
    pub epochs: usize,
    /// Train exactly this many optimizer steps, in place of `epochs` (transformers' `max_steps`):
    /// as many epochs as they need, the last one ending at the last step.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Examples per forward and backward pass; an optimizer step takes
    /// `gradient_accumulation_steps` of them.
    pub batch_size: usize,
    /// Micro-batches whose gradients add up to one optimizer step (transformers'
    /// `gradient_accumulation_steps`): a step of `batch_size × N` examples that holds one
    /// micro-batch's activations at a time. The kernels fine-tuning trainer only.
    #[serde(default = "one")]
    pub gradient_accumulation_steps: usize,
    /// Peak learning rate after warm-up.
    pub learning_rate: f64,
    /// Fraction of all steps spent warming up linearly from 0.
    pub warmup_ratio: f64,
    /// Warm-up length in optimizer steps, in place of `warmup_ratio` (transformers'
    /// `warmup_steps`); it must leave at least one step after it.
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Decoupled (AdamW) weight decay; biases and LayerNorm parameters get none.
    pub weight_decay: f64,
    pub adam_epsilon: f64,
    /// Global gradient-norm clip; `None` = no clipping.
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
    /// Train only the head on cached pooled features (feature extraction).
    pub freeze_encoder: bool,
    pub eval_batch_size: usize,
    /// Also checkpoint every this many optimizer steps (besides every epoch end).
    pub checkpoint_every: Option<usize>,
    /// The rate after warm-up: decayed to 0 linearly or along a half cosine, or held at the peak
    /// (Keras' `Adam` with a fixed rate, as the BiLSTM baseline and the frozen probe train).
    /// Older checkpoints hold `constant_lr: true|false` instead, read as `constant`/`linear`.
    #[serde(default, alias = "constant_lr", deserialize_with = "LrScheduler::from_plan")]
    pub lr_scheduler: LrScheduler,
    /// Also evaluate every this many optimizer steps (an evaluation always ends each epoch).
    #[serde(default)]
    pub eval_every: Option<usize>,
    /// The validation metric that picks the best weights and drives early stopping.
    #[serde(default)]
    pub monitor: Monitor,
    /// Stop after this many evaluations in a row without improvement; `None`: run every epoch.
    #[serde(default)]
    pub patience: Option<usize>,
    /// The smallest change of the monitored metric that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
    /// Export the best evaluation's weights (Keras' `restore_best_weights`, transformers'
    /// `load_best_model_at_end`); `false`: the last step's.
    #[serde(default = "restore_best_default")]
    pub restore_best: bool,
    /// With `freeze_encoder`: standardise the cached features (per-dimension mean 0, std 1 on
    /// the training split) for the head, then fold that into the head's first layer.
    #[serde(default)]
    pub standardize_features: bool,
    /// Multi-label tasks: the probability at which a label counts as predicted (for the
    /// metrics; the export keeps it as the model's default).
    #[serde(default = "threshold_default")]
    pub threshold: f64,
    /// Single-label tasks: each class's weight in the training loss, in class order (Keras'
    /// `class_weight`: an example's loss times its class's weight, averaged over the batch);
    /// `None`: 1 each. Validation losses stay unweighted.
    #[serde(default)]
    pub class_weights: Option<Vec<f64>>,
    /// Label smoothing of the training loss (see `Target::smoothed`): PyTorch's and
    /// transformers' for a softmax, Keras' for sigmoids. Validation losses are not smoothed.
    #[serde(default)]
    pub label_smoothing: f64,
}

/// What shapes a training loss besides the logits and targets: class weights and label
/// smoothing (both off in [`LossTerms::PLAIN`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossTerms<'a> {
    pub class_weights: Option<&'a [f64]>,
    pub label_smoothing: f64,
}

impl LossTerms<'_> {
    /// Every example weighs 1 against its exact target.
    pub const PLAIN: LossTerms<'static> = LossTerms { class_weights: None, label_smoothing: 0.0 };
}

fn one() -> usize {
    1
}

fn restore_best_default() -> bool {
    true
}

fn threshold_default() -> f64 {
    0.5
}

/// `target`'s weight under a plan's `class_weights`: its class's, or 1 (no weights, or a label
/// set: a run checks that weights come only with single-label targets).
pub fn class_weight(class_weights: Option<&[f64]>, target: &Target) -> f64 {
    match (class_weights, target.class()) {
        (Some(w), Some(c)) => w.get(c).copied().unwrap_or(1.0),
        _ => 1.0,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{name} must be {rule}, got {value}")]
    Invalid { name: &'static str, rule: &'static str, value: String },
}

impl Default for TrainPlan {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 32,
            gradient_accumulation_steps: 1,
            learning_rate: 3e-5,
            warmup_ratio: 0.1,
            warmup_steps: None,
            weight_decay: 0.01,
            adam_epsilon: 1e-6,
            max_grad_norm: Some(1.0),
            seed: 42,
            freeze_encoder: false,
            eval_batch_size: 64,
            checkpoint_every: None,
            lr_scheduler: LrScheduler::Linear,
            eval_every: None,
            monitor: Monitor::ValLoss,
            patience: None,
            min_delta: 0.0,
            restore_best: true,
            standardize_features: false,
            threshold: 0.5,
            class_weights: None,
            label_smoothing: 0.0,
        }
    }
}

impl TrainPlan {
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |name, rule, value: String| Err(PlanError::Invalid { name, rule, value });
        if self.epochs == 0 {
            return bad("epochs", "at least 1", self.epochs.to_string());
        }
        if self.batch_size == 0 {
            return bad("batch size", "at least 1", "0".into());
        }
        if self.max_steps == Some(0) {
            return bad("max steps", "at least 1", "0".into());
        }
        if self.gradient_accumulation_steps == 0 {
            return bad("gradient accumulation steps", "at least 1", "0".into());
        }
        if self.eval_batch_size == 0 {
            return bad("eval batch size", "at least 1", "0".into());
        }
        if !self.learning_rate.is_finite() || self.learning_rate <= 0.0 {
            return bad("learning rate", "a positive number", self.learning_rate.to_string());
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("warmup ratio", "in [0, 1)", self.warmup_ratio.to_string());
        }
        if self.warmup_steps.is_some() && self.warmup_ratio != 0.0 {
            return bad("warmup ratio", "0 when warmup steps are given (they replace it)", self.warmup_ratio.to_string());
        }
        if !(0.0..1.0).contains(&self.weight_decay) {
            return bad("weight decay", "in [0, 1)", self.weight_decay.to_string());
        }
        // Adam divides by sqrt(v) + epsilon: 0 makes 0/0 = NaN for any weight whose gradient is
        // still 0, which then read as a diverged run ("try a lower learning rate").
        if !self.adam_epsilon.is_finite() || self.adam_epsilon <= 0.0 {
            return bad("adam epsilon", "a positive number", self.adam_epsilon.to_string());
        }
        if let Some(n) = self.max_grad_norm
            && (n.is_nan() || n <= 0.0)
        {
            return bad("max grad norm", "positive", n.to_string());
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint every", "at least 1 step", "0".into());
        }
        if self.eval_every == Some(0) {
            return bad("eval every", "at least 1 step", "0".into());
        }
        if self.patience == Some(0) {
            return bad("patience", "at least 1 evaluation", "0".into());
        }
        if !self.min_delta.is_finite() || self.min_delta < 0.0 {
            return bad("min delta", "a number >= 0", self.min_delta.to_string());
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad("threshold", "a probability in (0, 1)", self.threshold.to_string());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label smoothing", "in [0, 1)", self.label_smoothing.to_string());
        }
        if let Some(w) = self.class_weights.iter().flatten().find(|w| !w.is_finite() || **w <= 0.0) {
            return bad("a class weight", "a positive number", w.to_string());
        }
        Ok(())
    }

    /// The plan's class weights and label smoothing, for the learners' losses.
    pub fn loss_terms(&self) -> LossTerms<'_> {
        LossTerms { class_weights: self.class_weights.as_deref(), label_smoothing: self.label_smoothing }
    }

    /// Examples per optimizer step: `batch_size` times the micro-batches accumulated.
    pub fn examples_per_step(&self) -> usize {
        self.batch_size * self.gradient_accumulation_steps
    }

    pub fn steps_per_epoch(&self, examples: usize) -> usize {
        examples.div_ceil(self.examples_per_step())
    }

    /// The run's optimizer steps over `examples`: `max_steps`, else every epoch's.
    pub fn total_steps(&self, examples: usize) -> usize {
        self.max_steps.unwrap_or(self.steps_per_epoch(examples) * self.epochs)
    }

    /// The epochs those steps take: `epochs`, or as many as `max_steps` needs (the last one
    /// short).
    pub fn epochs_to_run(&self, examples: usize) -> usize {
        self.max_steps.map_or(self.epochs, |m| m.div_ceil(self.steps_per_epoch(examples).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nonsense() {
        assert!(TrainPlan::default().validate().is_ok());
        let p = TrainPlan { learning_rate: -1.0, ..Default::default() };
        assert!(p.validate().unwrap_err().to_string().contains("learning rate"));
        assert!(TrainPlan { epochs: 0, ..Default::default() }.validate().is_err());
        assert!(TrainPlan { threshold: 1.0, ..Default::default() }.validate().unwrap_err().to_string().contains("threshold"));
        let err = |p: TrainPlan| p.validate().unwrap_err().to_string();
        assert_eq!(err(TrainPlan { eval_batch_size: 0, ..Default::default() }), "eval batch size must be at least 1, got 0");
        assert_eq!(err(TrainPlan { batch_size: 0, ..Default::default() }), "batch size must be at least 1, got 0");
        assert_eq!(TrainPlan::default().steps_per_epoch(20000), 625);
        assert_eq!(err(TrainPlan { label_smoothing: 1.0, ..Default::default() }), "label smoothing must be in [0, 1), got 1");
        assert_eq!(err(TrainPlan { label_smoothing: -0.1, ..Default::default() }), "label smoothing must be in [0, 1), got -0.1");
    }

    /// `warmup_steps` replaces the ratio: a library plan with both would warm up by one of them
    /// without saying which.
    #[test]
    fn warmup_steps_and_a_warmup_ratio_are_not_both_taken() {
        let p = TrainPlan { warmup_steps: Some(10), ..Default::default() };
        assert_eq!(p.validate().unwrap_err().to_string(), "warmup ratio must be 0 when warmup steps are given (they replace it), got 0.1");
        assert!(TrainPlan { warmup_ratio: 0.0, ..p }.validate().is_ok());
    }

    /// A weight of 0 would drop a class from the loss (and a negative one train against it).
    #[test]
    fn class_weights_must_be_positive() {
        let with = |w: Vec<f64>| TrainPlan { class_weights: Some(w), ..Default::default() }.validate().map_err(|e| e.to_string());
        assert!(with(vec![0.5, 3.0]).is_ok());
        assert_eq!(with(vec![1.0, 0.0]), Err("a class weight must be a positive number, got 0".into()));
        assert_eq!(with(vec![-2.0]), Err("a class weight must be a positive number, got -2".into()));
        assert_eq!(with(vec![f64::INFINITY]), Err("a class weight must be a positive number, got inf".into()));
    }

    /// `--adam-epsilon 0` trained into NaN and was reported as divergence.
    #[test]
    fn adam_epsilon_0_is_refused_not_reported_as_divergence() {
        for eps in [0.0, -1e-8, f64::NAN] {
            let e = TrainPlan { adam_epsilon: eps, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(e.starts_with("adam epsilon must be a positive number, got"), "{eps}: {e}");
        }
    }
}
