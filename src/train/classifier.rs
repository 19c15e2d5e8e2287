//! Trains a [`BertModel`]: the whole model (fine-tuning), or, with a frozen encoder, only
//! its head on pooled features computed once and cached (feature extraction: later epochs cost
//! almost nothing).

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use bertkit_kernels::Precision;

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

/// `rows` (`[N][H]`) as one `[N, H]` tensor.
fn matrix(rows: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let h = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), h]), device)
}

fn indices(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

/// Returns the trained classifier. `device` is where burn runs (the burn engine, and the frozen
/// run's head).
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
    let eval_bs = run.plan.eval_batch_size;
    let (k, threshold) = (run.num_classes, run.plan.threshold as f32);

    if run.plan.freeze_encoder {
        // The head trains on burn; its weights go back into the store at the end.
        let mut frozen = model.to_burn(&base)?.valid();
        // The kernels where the run has a kernels precision (several times faster than burn on
        // the CPU; golden-tested to the same features), else burn on the run's device.
        let fast = run.kernels.map(|p| FastClassifier::new(&model, p));
        let h = model.hidden_size();
        let feats = |s: &Split<'_>| -> Result<Vec<Vec<f32>>, TrainError> {
            match &fast {
                Some(f) => run_batched_tokens(s.encodings, eval_bs, run.pad_id, |b| {
                    Ok::<_, TrainError>(f.features(b).chunks(h.max(1)).map(<[f32]>::to_vec).collect())
                }),
                None => run_batched(s.encodings, eval_bs, run.pad_id, &base, |input| frozen.features(input)).map_err(backend),
            }
        };
        if !run.quiet {
            eprintln!("Frozen encoder: computing pooled features once for {} + {} texts", train.targets.len(), val.targets.len());
        }
        let t0 = std::time::Instant::now();
        let (mut train_rows, mut val_rows) = (feats(&train)?, feats(&val)?);
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
        let train_feats = matrix(&train_rows, &ad);
        let val_feats = matrix(&val_rows, &base);
        drop(fast);
        let head = frozen.head.clone().fork(&ad).train();
        let (head, history) = fit(
            head,
            args,
            |h, idx| h.forward(train_feats.clone().select(0, indices(idx, &ad))),
            |h| {
                let logits = h.forward(val_feats.clone());
                let [_, kk] = logits.dims();
                let v = logits.into_data().try_into_vec_as::<f32>().map_err(backend)?;
                let rows: Vec<Vec<f32>> = v.chunks(kk).map(<[f32]>::to_vec).collect();
                Ok(EvalReport::from_logits(&rows, val.targets, k, threshold))
            },
        )?;
        frozen.head = head.valid();
        if let Some(s) = &scaler {
            s.fold_into(&mut frozen.head)?;
        }
        return Ok((BertModel::from_burn(&frozen)?, history));
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
