//! Trains a [`BertModel`]: the whole model (fine-tuning), or, with a frozen encoder, only
//! its head on pooled features computed once and cached (feature extraction: later epochs cost
//! almost nothing).

use std::path::Path;

use bertkit_kernels::Precision;

use super::fast::{Features, HeadLearner};
use super::{CheckpointDir, History, LoopArgs, Monitor, PlanError, Standardizer, TrainError, TrainPlan, run_loop};
use crate::DeviceSpec;
use crate::data::Target;
use crate::metrics::RankingScores;
use crate::model::fast::{BertModel, FastClassifier, Rows, TokenBatchError};
use crate::model::run_batched_tokens;
use crate::tokenize::{Encoded, Padding, TokenBatch};

/// Encoded texts and their targets.
#[derive(Clone, Copy)]
pub struct Split<'a> {
    pub encodings: &'a [Encoded],
    pub targets: &'a [Target],
}

pub struct TrainRun<'a> {
    pub plan: &'a TrainPlan,
    pub num_classes: usize,
    /// The targets are label sets: one sigmoid output per label.
    pub multi_label: bool,
    pub pad_id: u32,
    pub run_dir: &'a Path,
    pub resume: bool,
    pub quiet: bool,
    /// Halt after the checkpoint of this step, waiting to be killed (a test hook).
    pub halt_after_step: Option<usize>,
    /// Fine-tune on the kernels with this GEMM precision instead of burn's autodiff.
    pub kernels: Option<Precision>,
}

impl<'a> TrainRun<'a> {
    /// The head's outputs: one logit for two classes (BCE, Keras' binary setup), one per class
    /// (softmax) or one per label (multi-label, even for two labels).
    pub fn num_outputs(&self) -> usize {
        if self.num_classes == 2 && !self.multi_label { 1 } else { self.num_classes }
    }

    /// Checks what a library caller hands in before any work: a model with this run's outputs,
    /// class weights (if any) one per class of a single-label run, and splits of one target per
    /// text, each a class (or label set) the run has. Unchecked, a class past the outputs trained
    /// on a NaN loss reported as "try a lower learning rate", and a binary model took class 2 as
    /// class 0, without a word. `fits` checks one text as a batch
    /// of its own against the model's tables: each text is checked here, where the error can
    /// name it by its place in its split, not in a shuffled batch (and burn's autodiff, which
    /// would panic on an id past a table, never sees one). `splits` are the training split, then
    /// the validation split, on which `--monitor val_auc` must be defined.
    pub fn check(
        &self,
        model_outputs: usize,
        splits: [(&'static str, &Split<'_>); 2],
        fits: impl Fn(&TokenBatch) -> Result<(), TokenBatchError>,
    ) -> Result<(), TrainError> {
        if let Some(weights) = &self.plan.class_weights {
            if self.multi_label {
                return Err(TrainError::ClassWeightsMultiLabel);
            }
            if weights.len() != self.num_classes {
                return Err(TrainError::ClassWeights { given: weights.len(), classes: self.num_classes });
            }
        }
        // Two classes train as one sigmoid output (Keras' binary setup, what `bertkit train`
        // builds) or as a two-way softmax; otherwise one output per class or label.
        let binary = self.num_classes == 2 && !self.multi_label;
        if model_outputs != self.num_classes && !(binary && model_outputs == 1) {
            let needed = if binary { "1 (a sigmoid) or 2 (a softmax)".to_string() } else { self.num_classes.to_string() };
            return Err(TrainError::Outputs { model: model_outputs, classes: self.num_classes, needed });
        }
        // A softmax decides by its top class: a threshold would be stored and never used.
        if model_outputs > 1 && !self.multi_label && self.plan.threshold != 0.5 {
            return Err(TrainError::ThresholdForSoftmax { threshold: self.plan.threshold, outputs: model_outputs });
        }
        // The second split validates: val_auc needs a class there with examples on both sides.
        if self.plan.monitor == Monitor::ValAuc && !RankingScores::defined_for(splits[1].1.targets, self.num_classes) {
            return Err(TrainError::AucUndefined);
        }
        for (split, s) in splits {
            if s.encodings.len() != s.targets.len() {
                return Err(TrainError::SplitLengths { split, texts: s.encodings.len(), targets: s.targets.len() });
            }
            for (index, target) in s.targets.iter().enumerate() {
                let why = match target {
                    Target::Class(_) if self.multi_label => "a multi-label run takes a label set per text",
                    Target::Labels(_) if !self.multi_label => "a single-label run takes one class per text",
                    Target::Class(c) if *c >= self.num_classes => "past the run's classes",
                    Target::Labels(set) if set.iter().any(|&j| j >= self.num_classes) => "past the run's labels",
                    _ => continue,
                };
                let target = match target {
                    Target::Class(c) => format!("class {c}"),
                    Target::Labels(set) => format!("label set {set:?}"),
                };
                return Err(TrainError::BadTarget { split, index, target, why, classes: self.num_classes });
            }
            for (index, text) in s.encodings.iter().enumerate() {
                fits(&TokenBatch::pad([text], Padding::Longest, self.pad_id)).map_err(|error| match error {
                    TokenBatchError::TooLong { seq_len, max } => TrainError::TooLong { split, index, len: seq_len, max },
                    error => TrainError::Text { split, error: error.of_texts(&[index]) },
                })?;
            }
        }
        Ok(())
    }

    /// The loop's arguments for this run.
    pub(super) fn loop_args(&self, targets: &'a [Target], binary: bool, checkpoints: &'a CheckpointDir) -> LoopArgs<'a> {
        LoopArgs {
            plan: self.plan,
            targets,
            binary,
            checkpoints,
            resume: self.resume,
            quiet: self.quiet,
            halt_after_step: self.halt_after_step,
        }
    }
}

/// Refuses gradient accumulation where the run's trainer takes each step's examples whole: the
/// BiLSTM baseline, the frozen-encoder head and burn (a run without a kernels precision). Only
/// the kernels fine-tuning trainer splits a step into micro-batches.
pub fn check_accumulation(plan: &TrainPlan, bilstm: bool, kernels: bool) -> Result<(), TrainError> {
    let whole = if bilstm {
        "the BiLSTM baseline"
    } else if plan.freeze_encoder {
        "the frozen-encoder head"
    } else if !kernels {
        "the burn engine"
    } else {
        return Ok(());
    };
    if plan.gradient_accumulation_steps > 1 {
        return Err(TrainError::Accumulation { trainer: whole });
    }
    Ok(())
}

/// Returns the trained classifier: on the kernels where the run has a kernels precision, else on
/// burn's autodiff on `device` (a build with the `burn` feature).
pub fn train_classifier(
    mut model: BertModel,
    train: Split<'_>,
    val: Split<'_>,
    run: TrainRun<'_>,
    device: DeviceSpec,
) -> Result<(BertModel, History), TrainError> {
    let p = model.head.dropout;
    if !(0.0..1.0).contains(&p) {
        // A keep scale of 1/(1 − p) ≤ 0 would train on sign-flipped features without a word.
        return Err(PlanError::Invalid { name: "the head's dropout", rule: "a probability in [0, 1)", value: p.to_string() }.into());
    }
    run.check(model.num_outputs(), [("training", &train), ("validation", &val)], |b| Rows::new(b, &model.config).map(drop))?;
    let checkpoints = CheckpointDir::new(run.run_dir);
    let loop_args = run.loop_args(train.targets, model.num_outputs() == 1, &checkpoints);
    check_accumulation(run.plan, false, run.kernels.is_some())?;
    if run.plan.freeze_encoder {
        return train_head(model, train, val, &run, loop_args, device);
    }
    let Some(precision) = run.kernels else {
        return super::burn_engine::fine_tune(model, train, val, &run, loop_args, device);
    };
    let mut learner = super::fast::FastLearner::new(&model, precision, run.plan, (train, val), run.pad_id, run.num_classes)?;
    let history = run_loop(&mut learner, loop_args)?;
    learner.finish(&mut model);
    Ok((model, history))
}

/// Feature extraction: the encoder's pooled features computed once (on the kernels where the run
/// has a kernels precision, several times faster than burn on the CPU and golden-tested to the
/// same features; else burn on `device`), optionally standardised, then only the head trains, on
/// the kernels ([`HeadLearner`]).
fn train_head(
    mut model: BertModel,
    train: Split<'_>,
    val: Split<'_>,
    run: &TrainRun<'_>,
    loop_args: LoopArgs<'_>,
    device: DeviceSpec,
) -> Result<(BertModel, History), TrainError> {
    let (bs, pad, h) = (run.plan.eval_batch_size, run.pad_id, model.hidden_size());
    if !run.quiet {
        eprintln!("Frozen encoder: computing pooled features once for {} + {} texts", train.targets.len(), val.targets.len());
    }
    let t0 = std::time::Instant::now();
    let (mut train_rows, mut val_rows) = match run.kernels {
        Some(p) => {
            let fast = FastClassifier::new(&model, p);
            let feats = |s: &Split<'_>| {
                run_batched_tokens(s.encodings, bs, pad, |b, _| {
                    Ok::<_, TrainError>(fast.features(b)?.chunks(h.max(1)).map(<[f32]>::to_vec).collect())
                })
            };
            (feats(&train)?, feats(&val)?)
        }
        None => super::burn_engine::features(&model, (train, val), run, device)?,
    };
    let scaler = run.plan.standardize_features.then(|| Standardizer::fit(&train_rows));
    if let Some(s) = &scaler {
        s.apply(&mut train_rows);
        s.apply(&mut val_rows);
    }
    if !run.quiet {
        eprintln!(
            "Features cached in {:.1}s{}",
            t0.elapsed().as_secs_f64(),
            if scaler.is_some() { " and standardised (mean 0, std 1 per dimension on the training split)" } else { "" }
        );
    }
    let features = (
        Features { rows: train_rows.concat(), targets: train.targets },
        Features { rows: val_rows.concat(), targets: val.targets },
    );
    let mut learner = HeadLearner::new(&model, run.plan, features, run.num_classes);
    let history = run_loop(&mut learner, loop_args)?;
    model.params = learner.finish();
    if let Some(s) = &scaler {
        s.fold_into_params(&mut model.params)?;
    }
    Ok((model, history))
}
