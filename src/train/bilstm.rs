//! Trains the GloVe + BiLSTM baseline with the shared loop (same progress, history,
//! checkpoints and resume as the BERT path): on the kernels ([`BiLstmLearner`]) where the run
//! has a kernels engine, else burn's autodiff on `device` (a build with the `burn` feature).

use super::fast::BiLstmLearner;
use super::{CheckpointDir, History, Split, TrainError, TrainRun, run_loop};
use crate::DeviceSpec;
use crate::model::fast::{BiLstmModel, TokenBatchError};
use crate::tokenize::TokenBatch;

pub fn train_bilstm(
    model: BiLstmModel,
    train: Split<'_>,
    val: Split<'_>,
    run: TrainRun<'_>,
    device: DeviceSpec,
) -> Result<(BiLstmModel, History), TrainError> {
    let vocab_size = model.spec.vocab_size;
    let fits = |b: &TokenBatch| TokenBatchError::word_rows(b, vocab_size).map(drop);
    super::check_accumulation(run.plan, true, run.kernels.is_some())?;
    run.check(model.spec.num_outputs, [("training", &train), ("validation", &val)], fits)?;
    let checkpoints = CheckpointDir::new(run.run_dir);
    let loop_args = run.loop_args(train.targets, model.spec.num_outputs == 1, &checkpoints);
    if run.kernels.is_none() {
        return super::burn_engine::bilstm(model, train, val, &run, loop_args, device);
    }
    let mut learner = BiLstmLearner::new(model, run.plan, (train, val), run.pad_id, run.num_classes);
    let history = run_loop(&mut learner, loop_args)?;
    Ok((learner.finish(), history))
}
