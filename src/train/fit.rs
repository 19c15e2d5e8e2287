//! The training loop shared by fine-tuning (the whole classifier) and feature extraction (only
//! the head, on cached features): seeded shuffling, AdamW with warm-up/decay, clipping, running
//! metrics, validation after each epoch, checkpoints and resume.

use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::progress::EpochProgress;
use super::state::{CheckpointDir, RunState};
use super::{EpochRecord, History, LinearSchedule, TrainError, TrainPlan, clip_grad_norm, classification_loss};
use crate::metrics::{EvalReport, predicted_class};

/// What [`fit`] needs besides the model: the loop's arguments and burn's device.
pub struct FitArgs<'a> {
    pub run: LoopArgs<'a>,
    /// Device the model trains on (an autodiff device); re-seeded before every step so dropout
    /// masks depend only on (seed, step) and a resumed run repeats an uninterrupted one.
    pub device: &'a Device,
}

/// AdamW as in BERT's recipe: decoupled decay on weights, none on biases and LayerNorm.
pub fn optimizer(plan: &TrainPlan) -> ModuleOptimizer {
    let cfg = |wd: f64| {
        AdamWConfig::new().with_epsilon(plan.adam_epsilon as f32).with_weight_decay(wd as f32)
    };
    cfg(plan.weight_decay).init().with_group(
        ParamGroup::from_any_predicates(vec!["bias", "layer_norm"]),
        cfg(0.0).build(),
        None,
    )
}

pub(super) fn step_seed(seed: u64, step: usize) -> u64 {
    mix64(seed, step as u64)
}

/// A seed derived from `seed` and a counter (SplitMix64's finaliser decorrelates consecutive
/// counters): per-step seeds, and per-site dropout seeds within a step.
pub(crate) fn mix64(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The shuffled example order of `epoch` (0-based).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(step_seed(seed, epoch).wrapping_add(1)));
    order
}

fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>, TrainError> {
    let [_, k] = t.dims();
    let v = t.into_data().try_into_vec_as::<f32>().map_err(|e| TrainError::Backend(format!("{e:?}")))?;
    Ok(v.chunks(k).map(<[f32]>::to_vec).collect())
}

/// A model with its optimizer as the training loop drives it: burn's autodiff ([`fit`]) or the
/// kernels trainer.
pub trait Learner {
    /// One optimizer step on the training examples `idx` (global step `step`, learning rate
    /// `lr`): returns the batch's mean loss and its logits. A non-finite loss is refused with
    /// [`TrainError::Diverged`] before any update.
    fn step(&mut self, idx: &[usize], labels: &[usize], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError>;
    /// The validation report of the current weights (evaluation mode).
    fn validate(&mut self) -> Result<EvalReport, TrainError>;
    /// Writes weights, optimizer state and `state` as one checkpoint.
    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError>;
    /// Restores weights and optimizer state; returns the saved position.
    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError>;
}

/// What the loop needs besides the learner.
#[derive(Clone, Copy)]
pub struct LoopArgs<'a> {
    pub plan: &'a TrainPlan,
    /// Training labels; batches are index lists into them.
    pub labels: &'a [usize],
    pub binary: bool,
    pub checkpoints: &'a CheckpointDir,
    pub resume: bool,
    pub quiet: bool,
}

/// Trains `model` (already on `args.device`) with burn's autodiff and AdamW.
/// `forward(model, batch_indices)` returns the batch's logits; `validate(valid_model)` returns
/// the validation report.
pub fn fit<M, F, V>(model: M, args: FitArgs<'_>, forward: F, validate: V) -> Result<(M, History), TrainError>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<2>,
    V: FnMut(&M) -> Result<EvalReport, TrainError>,
{
    let mut learner = BurnLearner { model: Some(model), optim: Some(optimizer(args.run.plan)), forward, validate, args: &args };
    let history = run_loop(&mut learner, args.run)?;
    let model = learner.model.take().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
    Ok((model, history))
}

struct BurnLearner<'a, M, F, V> {
    /// `Option`s because burn's optimizer takes the model by value.
    model: Option<M>,
    optim: Option<ModuleOptimizer>,
    forward: F,
    validate: V,
    args: &'a FitArgs<'a>,
}

impl<M, F, V> BurnLearner<'_, M, F, V> {
    fn parts(&mut self) -> Result<(M, ModuleOptimizer), TrainError> {
        match (self.model.take(), self.optim.take()) {
            (Some(m), Some(o)) => Ok((m, o)),
            _ => Err(TrainError::Backend("model lost in a failed step".into())),
        }
    }
}

impl<M, F, V> Learner for BurnLearner<'_, M, F, V>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<2>,
    V: FnMut(&M) -> Result<EvalReport, TrainError>,
{
    fn step(&mut self, idx: &[usize], labels: &[usize], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let plan = self.args.run.plan;
        self.args.device.seed(step_seed(plan.seed, step));
        let model = self.model.as_ref().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
        let logits = (self.forward)(model, idx);
        let loss = classification_loss(logits.clone(), labels);
        let loss_value = f64::from(loss.clone().into_scalar::<f32>());
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged { step, loss: loss_value });
        }
        let predicted = rows(logits.detach())?;
        let grads = loss.backward();
        let mut grads = GradientsParams::from_grads(grads, model);
        if let Some(max) = plan.max_grad_norm {
            clip_grad_norm(&mut grads, model, max);
        }
        let (model, mut optim) = self.parts()?;
        let model = optim.step(lr, model, grads);
        self.model = Some(model);
        self.optim = Some(optim);
        Ok((loss_value, predicted))
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let model = self.model.as_ref().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
        (self.validate)(&model.valid())
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        match (&self.model, &self.optim) {
            (Some(m), Some(o)) => checkpoints.save(m, o, state),
            _ => Err(TrainError::Backend("model lost in a failed step".into())),
        }
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let (model, optim) = self.parts()?;
        let (m, o, s) = checkpoints.load(model, optim)?;
        self.model = Some(m);
        self.optim = Some(o);
        Ok(s)
    }
}

/// The loop itself: seeded epoch orders, the warm-up/decay schedule, progress, running
/// metrics, validation after each epoch, checkpoints and resume.
pub fn run_loop<L: Learner>(learner: &mut L, args: LoopArgs<'_>) -> Result<History, TrainError> {
    let plan = args.plan;
    plan.validate()?;
    let n = args.labels.len();
    if n == 0 {
        return Err(TrainError::NoData);
    }
    let steps_per_epoch = plan.steps_per_epoch(n);
    let schedule = LinearSchedule::new(plan.learning_rate, plan.warmup_ratio, steps_per_epoch * plan.epochs)
        .with_decay(!plan.constant_lr);
    let mut state = RunState {
        plan: plan.clone(),
        epoch: 0,
        next_batch: 0,
        global_step: 0,
        loss_sum: 0.0,
        correct: 0,
        seen: 0,
        epoch_seconds: 0.0,
        history: History { epochs: Vec::new(), binary: args.binary },
    };
    if args.resume && args.checkpoints.exists() {
        let s = learner.load(args.checkpoints)?;
        if s.plan != *plan {
            return Err(TrainError::ResumeMismatch {
                saved: serde_json::to_string(&s.plan).unwrap_or_default(),
                given: serde_json::to_string(plan).unwrap_or_default(),
            });
        }
        state = s;
        if !args.quiet {
            eprintln!(
                "Resuming from {}: epoch {}, step {} of {steps_per_epoch}",
                args.checkpoints.path().display(),
                state.epoch + 1,
                state.next_batch
            );
        }
    }

    while state.epoch < plan.epochs {
        let order = epoch_order(n, plan.seed, state.epoch);
        let mut progress =
            EpochProgress::new(state.epoch + 1, plan.epochs, steps_per_epoch, state.next_batch, args.quiet);
        let mut lr = schedule.lr(state.global_step);
        let epoch_start = Instant::now();
        let seconds_before = state.epoch_seconds;
        for b in state.next_batch..steps_per_epoch {
            let t0 = Instant::now();
            let idx = &order[b * plan.batch_size..((b + 1) * plan.batch_size).min(n)];
            let labels: Vec<usize> = idx.iter().map(|&i| args.labels[i]).collect();
            lr = schedule.lr(state.global_step);
            let (loss_value, predicted) = learner.step(idx, &labels, state.global_step, lr)?;

            state.global_step += 1;
            state.next_batch = b + 1;
            state.loss_sum += loss_value * idx.len() as f64;
            state.seen += idx.len() as u64;
            state.correct +=
                predicted.iter().zip(&labels).filter(|(row, y)| predicted_class(row) == **y).count() as u64;
            state.epoch_seconds = seconds_before + epoch_start.elapsed().as_secs_f64();
            let (mean_loss, acc) = (state.loss_sum / state.seen as f64, state.correct as f64 / state.seen as f64);
            progress.step(b + 1, mean_loss, acc, t0.elapsed().as_secs_f64());
            if let Some(every) = plan.checkpoint_every
                && state.global_step.is_multiple_of(every)
                && b + 1 < steps_per_epoch
            {
                learner.save(args.checkpoints, &state)?;
            }
        }
        let report = learner.validate()?;
        let record = EpochRecord {
            epoch: state.epoch + 1,
            loss: state.loss_sum / state.seen.max(1) as f64,
            accuracy: state.correct as f64 / state.seen.max(1) as f64,
            val_loss: report.loss,
            val_accuracy: report.metrics.accuracy,
            val_precision: report.metrics.precision,
            val_recall: report.metrics.recall,
            val_f1: report.metrics.f1,
            lr,
            seconds: state.epoch_seconds,
            examples_per_second: n as f64 / state.epoch_seconds.max(1e-9),
        };
        progress.finish(&format!(
            "loss {:.4} acc {:.4} val_loss {:.4} val_acc {:.4} ({:.2}s, {:.1} ex/s)",
            record.loss, record.accuracy, record.val_loss, record.val_accuracy, record.seconds, record.examples_per_second
        ));
        state.history.epochs.push(record);
        state.epoch += 1;
        state.next_batch = 0;
        state.loss_sum = 0.0;
        state.correct = 0;
        state.seen = 0;
        state.epoch_seconds = 0.0;
        learner.save(args.checkpoints, &state)?;
    }
    Ok(state.history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_that_differ_by_epoch_and_repeat_by_seed() {
        let a = epoch_order(50, 42, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(50, 42, 0));
        assert_ne!(a, epoch_order(50, 42, 1));
        assert_ne!(a, epoch_order(50, 7, 0));
    }
}
