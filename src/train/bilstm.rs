//! Trains the GloVe + BiLSTM baseline with the shared loop (same progress, history,
//! checkpoints and resume as the BERT path).

use burn::module::Module;

use super::{CheckpointDir, FitArgs, History, Split, TrainError, TrainRun, fit};
use crate::metrics::EvalReport;
use crate::model::{BiLstmClassifier, EncoderInput};
use crate::predict::run_batched;
use crate::tokenize::{Padding, TokenBatch};

/// Returns the trained model in inference mode on the device it came from.
pub fn train_bilstm(
    model: BiLstmClassifier,
    train: Split<'_>,
    val: Split<'_>,
    run: TrainRun<'_>,
) -> Result<(BiLstmClassifier, History), TrainError> {
    let base = model.output.weight.device();
    let ad = base.clone().autodiff();
    let checkpoints = CheckpointDir::new(run.run_dir);
    let args = FitArgs {
        plan: run.plan,
        labels: train.labels,
        binary: model.spec.num_outputs == 1,
        checkpoints: &checkpoints,
        resume: run.resume,
        quiet: run.quiet,
        device: &ad,
    };
    let (eval_bs, k) = (run.plan.eval_batch_size, run.num_classes);
    let trainable = model.fork(&ad).train().freeze_embeddings_unless_trainable();
    let (trained, history) = fit(
        trainable,
        args,
        |m, idx| {
            let batch = TokenBatch::pad(idx.iter().map(|&i| &train.encodings[i]), Padding::Longest, run.pad_id);
            m.forward(EncoderInput::from_batch(&batch, &ad))
        },
        |m| {
            let logits = run_batched(val.encodings, eval_bs, run.pad_id, &base, |input| m.forward(input))
                .map_err(|e| TrainError::Backend(format!("{e:?}")))?;
            Ok(EvalReport::from_logits(&logits, val.labels, k))
        },
    )?;
    Ok((trained.valid(), history))
}
