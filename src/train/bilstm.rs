//! Trains the GloVe + BiLSTM baseline with the shared loop (same progress, history,
//! checkpoints and resume as the BERT path): on the kernels ([`BiLstmLearner`]) where the run
//! has a kernels engine, else burn's autodiff on `device`.

use burn::module::Module;
use burn::tensor::Device;

use super::classifier::fit_on_tokens;
use super::fast::BiLstmLearner;
use super::{CheckpointDir, FitArgs, History, Split, TrainError, TrainRun, run_loop};
use crate::model::fast::BiLstmModel;

pub fn train_bilstm(
    model: BiLstmModel,
    train: Split<'_>,
    val: Split<'_>,
    run: TrainRun<'_>,
    device: &Device,
) -> Result<(BiLstmModel, History), TrainError> {
    let checkpoints = CheckpointDir::new(run.run_dir);
    let loop_args = run.loop_args(train.targets, model.spec.num_outputs == 1, &checkpoints);
    if run.kernels.is_some() {
        let mut learner = BiLstmLearner::new(model, run.plan, (train, val), run.pad_id, run.num_classes);
        let history = run_loop(&mut learner, loop_args)?;
        return Ok((learner.finish(), history));
    }
    let ad = device.clone().autodiff();
    let args = FitArgs { run: loop_args, device: &ad };
    let trainable = model.to_burn(device)?.fork(&ad).train();
    let (trained, history) = fit_on_tokens(trainable, train, val, &run, args, device, |m, input| m.forward(input))?;
    Ok((BiLstmModel::from_burn(&trained.valid())?, history))
}
