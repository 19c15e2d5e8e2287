//! The burn engine's training paths (a build with the `burn` feature; `--engine burn`, GPUs):
//! fine-tuning and the BiLSTM on burn's autodiff, and frozen features from burn's encoder. Models
//! go to burn's modules from their weight stores and come back into them. Without the feature
//! each entry point is an error naming it.

#[cfg(feature = "burn")]
use burn::module::Module;
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor};

use super::{History, LoopArgs, Split, TrainError, TrainRun};
use crate::DeviceSpec;
use crate::model::fast::{BertModel, BiLstmModel};
#[cfg(feature = "burn")]
use super::{FitArgs, fit};
#[cfg(feature = "burn")]
use crate::metrics::EvalReport;
#[cfg(feature = "burn")]
use crate::model::EncoderInput;
#[cfg(feature = "burn")]
use crate::model::run_batched;
#[cfg(feature = "burn")]
use crate::tokenize::{Padding, TokenBatch};

#[cfg(feature = "burn")]
fn backend(e: burn::tensor::DataError) -> TrainError {
    TrainError::Backend(format!("{e:?}"))
}

/// Fine-tunes `model` on burn's autodiff on `device`.
pub(super) fn fine_tune(
    model: BertModel,
    train: Split<'_>,
    val: Split<'_>,
    run: &TrainRun<'_>,
    loop_args: LoopArgs<'_>,
    device: DeviceSpec,
) -> Result<(BertModel, History), TrainError> {
    #[cfg(feature = "burn")]
    {
        let base = device.device()?;
        let (trained, history) = train_on_burn(model.to_burn(&base)?, (train, val), run, loop_args, &base, |m, input| m.forward(input))?;
        Ok((BertModel::from_burn(&trained)?, history))
    }
    #[cfg(not(feature = "burn"))]
    {
        let _ = (model, train, val, run, loop_args, device);
        Err(crate::DeviceSpecError::BurnNotBuilt.into())
    }
}

/// The training and validation splits' pooled features, one row per text.
pub(super) type SplitFeatures = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Pooled features of both splits from burn's encoder on `device`.
pub(super) fn features(
    model: &BertModel,
    (train, val): (Split<'_>, Split<'_>),
    run: &TrainRun<'_>,
    device: DeviceSpec,
) -> Result<SplitFeatures, TrainError> {
    #[cfg(feature = "burn")]
    {
        let base = device.device()?;
        let (bs, pad) = (run.plan.eval_batch_size, run.pad_id);
        let frozen = model.to_burn(&base)?.valid();
        let feats = |s: &Split<'_>| run_batched(s.encodings, bs, pad, &base, |input| frozen.features(input)).map_err(backend);
        Ok((feats(&train)?, feats(&val)?))
    }
    #[cfg(not(feature = "burn"))]
    {
        let _ = (model, train, val, run, device);
        Err(crate::DeviceSpecError::BurnNotBuilt.into())
    }
}

/// Trains the BiLSTM baseline on burn's autodiff on `device`.
pub(super) fn bilstm(
    model: BiLstmModel,
    train: Split<'_>,
    val: Split<'_>,
    run: &TrainRun<'_>,
    loop_args: LoopArgs<'_>,
    device: DeviceSpec,
) -> Result<(BiLstmModel, History), TrainError> {
    #[cfg(feature = "burn")]
    {
        let base = device.device()?;
        let (trained, history) = train_on_burn(model.to_burn(&base)?, (train, val), run, loop_args, &base, |m, input| m.forward(input))?;
        Ok((BiLstmModel::from_burn(&trained)?, history))
    }
    #[cfg(not(feature = "burn"))]
    {
        let _ = (model, train, val, run, loop_args, device);
        Err(crate::DeviceSpecError::BurnNotBuilt.into())
    }
}

/// Trains burn's `model` on an autodiff copy of `base` and returns it in inference mode.
#[cfg(feature = "burn")]
fn train_on_burn<M, F>(
    model: M,
    (train, val): (Split<'_>, Split<'_>),
    run: &TrainRun<'_>,
    loop_args: LoopArgs<'_>,
    base: &Device,
    forward: F,
) -> Result<(M, History), TrainError>
where
    M: Module + Clone,
    F: Fn(&M, EncoderInput) -> Tensor<2>,
{
    let ad = base.clone().autodiff();
    let args = FitArgs { run: loop_args, device: &ad };
    let (trained, history) = fit_on_tokens(model.fork(&ad).train(), train, val, run, args, base, forward)?;
    Ok((trained.valid(), history))
}

/// Trains any model that maps padded token batches to logits (the fine-tuned classifier, the
/// BiLSTM baseline): each training batch is padded to its own longest text; validation runs
/// length-sorted batches on `base`, the non-autodiff device.
#[cfg(feature = "burn")]
fn fit_on_tokens<M, F>(
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
