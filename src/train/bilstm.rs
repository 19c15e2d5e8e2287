//! Trains the GloVe + BiLSTM baseline with the shared loop (same progress, history,
//! checkpoints and resume as the BERT path).

use burn::module::Module;

use super::classifier::fit_on_tokens;
use super::{CheckpointDir, FitArgs, History, Split, TrainError, TrainRun};
use crate::model::BiLstmClassifier;

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
    let args = FitArgs { run: run.loop_args(train.targets, model.spec.num_outputs == 1, &checkpoints), device: &ad };
    let trainable = model.fork(&ad).train();
    let (trained, history) = fit_on_tokens(trainable, train, val, &run, args, &base, |m, input| m.forward(input))?;
    Ok((trained.valid(), history))
}
