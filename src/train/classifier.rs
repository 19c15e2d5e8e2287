//! Trains a [`BertModel`]: the whole model (fine-tuning), or, with a frozen encoder, only
//! its head on pooled features computed once and cached (feature extraction: later epochs cost
//! almost nothing).

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use bertkit_kernels::Precision;

use super::fast::{Features, HeadLearner};
use super::{CheckpointDir, FitArgs, History, LoopArgs, Standardizer, TrainError, TrainPlan, fit, run_loop};
use crate::data::Target;
use crate::metrics::EvalReport;
use crate::model::EncoderInput;
use crate::model::fast::{BertModel, FastClassifier};
use crate::predict::{run_batched, run_batched_tokens};
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
    /// Fine-tune on the kernels with this GEMM precision instead of burn's autodiff.
    pub kernels: Option<Precision>,
}

impl<'a> TrainRun<'a> {
    /// The head's outputs: one logit for two classes (BCE, Keras' binary setup), one per class
    /// (softmax) or one per label (multi-label, even for two labels).
    pub fn num_outputs(&self) -> usize {
        if self.num_classes == 2 && !self.multi_label { 1 } else { self.num_classes }
    }

    /// The loop's arguments for this run.
    pub(super) fn loop_args(&self, targets: &'a [Target], binary: bool, checkpoints: &'a CheckpointDir) -> LoopArgs<'a> {
        LoopArgs { plan: self.plan, targets, binary, checkpoints, resume: self.resume, quiet: self.quiet }
    }
}

fn backend(e: burn::tensor::DataError) -> TrainError {
    TrainError::Backend(format!("{e:?}"))
}

/// Returns the trained classifier. `device` is where burn runs (the burn engine's fine-tuning and
/// frozen features).
pub fn train_classifier(
    mut model: BertModel,
    train: Split<'_>,
    val: Split<'_>,
    run: TrainRun<'_>,
    device: &Device,
) -> Result<(BertModel, History), TrainError> {
    let base = device.clone();
    let ad = base.clone().autodiff();
    let checkpoints = CheckpointDir::new(run.run_dir);
    let loop_args = run.loop_args(train.targets, model.num_outputs() == 1, &checkpoints);
    let args = FitArgs { run: loop_args, device: &ad };
    let k = run.num_classes;

    if run.plan.freeze_encoder {
        return train_head(model, train, val, &run, loop_args, &base);
    }

    if let Some(precision) = run.kernels {
        let mut learner = super::fast::FastLearner::new(&model, precision, run.plan, (train, val), run.pad_id, k)?;
        let history = run_loop(&mut learner, loop_args)?;
        learner.finish(&mut model);
        return Ok((model, history));
    }

    let trainable = model.to_burn(&base)?.fork(&ad).train();
    let (trained, history) = fit_on_tokens(trainable, train, val, &run, args, &base, |m, input| m.forward(input))?;
    Ok((BertModel::from_burn(&trained.valid())?, history))
}

/// Feature extraction: the encoder's pooled features computed once (on the kernels where the run
/// has a kernels precision, several times faster than burn on the CPU and golden-tested to the
/// same features; else burn on `base`), optionally standardised, then only the head trains, on
/// the kernels ([`HeadLearner`]).
fn train_head(
    mut model: BertModel,
    train: Split<'_>,
    val: Split<'_>,
    run: &TrainRun<'_>,
    loop_args: LoopArgs<'_>,
    base: &Device,
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
                run_batched_tokens(s.encodings, bs, pad, |b| Ok::<_, TrainError>(fast.features(b).chunks(h.max(1)).map(<[f32]>::to_vec).collect()))
            };
            (feats(&train)?, feats(&val)?)
        }
        None => {
            let frozen = model.to_burn(base)?.valid();
            let feats = |s: &Split<'_>| run_batched(s.encodings, bs, pad, base, |input| frozen.features(input)).map_err(backend);
            (feats(&train)?, feats(&val)?)
        }
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

/// Trains any model that maps padded token batches to logits (the fine-tuned classifier, the
/// BiLSTM baseline): each training batch is padded to its own longest text; validation runs
/// length-sorted batches on `base`, the non-autodiff device.
pub(super) fn fit_on_tokens<M, F>(
    model: M,
    train: Split<'_>,
    val: Split<'_>,
    run: &TrainRun<'_>,
    args: FitArgs<'_>,
    base: &Device,
    forward: F,
) -> Result<(M, History), TrainError>
where
    M: Module + Clone,
    F: Fn(&M, EncoderInput) -> Tensor<2>,
{
    let ad = args.device.clone();
    let (eval_bs, k, pad, threshold) = (run.plan.eval_batch_size, run.num_classes, run.pad_id, run.plan.threshold as f32);
    fit(
        model,
        args,
        |m, idx| {
            let batch = TokenBatch::pad(idx.iter().map(|&i| &train.encodings[i]), Padding::Longest, pad);
            forward(m, EncoderInput::from_batch(&batch, &ad))
        },
        |m| {
            let logits = run_batched(val.encodings, eval_bs, pad, base, |input| forward(m, input)).map_err(backend)?;
            Ok(EvalReport::from_logits(&logits, val.targets, k, threshold))
        },
    )
}
