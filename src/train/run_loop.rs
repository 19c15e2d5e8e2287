//! The training loop every learner runs (the kernels trainer, burn's autodiff for fine-tuning,
//! the frozen-encoder head and the BiLSTM): seeded epoch orders, the learning-rate schedule,
//! running metrics, evaluations with best weights and early stopping, checkpoints and resume.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::progress::EpochProgress;
use super::state::{CheckpointDir, RunState};
use super::{BestPoint, EpochRecord, EvalPoint, History, Monitor, Schedule, TrainError, TrainPlan};
use bertkit_kernels::dropout::mix64;

use crate::data::Target;
use crate::metrics::EvalReport;

/// The seed of global step `step` (dropout masks derive from it).
pub fn step_seed(seed: u64, step: usize) -> u64 {
    mix64(seed, step as u64)
}


/// The shuffled example order of `epoch` (0-based).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(step_seed(seed, epoch).wrapping_add(1)));
    order
}

/// A model with its optimizer as the training loop drives it: burn's autodiff (`fit`, with the `burn` feature) or the
/// kernels trainer.
pub trait Learner {
    /// One optimizer step on the training examples `idx` with their `targets` (global step
    /// `step`, learning rate `lr`): returns the batch's mean loss and its logits. A non-finite
    /// loss is refused with [`TrainError::Diverged`] before any update.
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError>;
    /// The validation report of the current weights (evaluation mode).
    fn validate(&mut self) -> Result<EvalReport, TrainError>;
    /// Writes weights, optimizer state and `state` as one checkpoint.
    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError>;
    /// Restores weights and optimizer state; returns the saved position.
    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError>;
    /// Keeps a copy of the current weights as the best so far (`save` writes it too).
    fn keep_best(&mut self);
    /// Puts the kept best weights back; an error if none was kept.
    fn restore_best(&mut self) -> Result<(), TrainError>;
}

/// What the loop needs besides the learner.
#[derive(Clone, Copy)]
pub struct LoopArgs<'a> {
    pub plan: &'a TrainPlan,
    /// Training targets; batches are index lists into them.
    pub targets: &'a [Target],
    pub binary: bool,
    pub checkpoints: &'a CheckpointDir,
    pub resume: bool,
    pub quiet: bool,
    /// The test hook behind `train --halt-after-step`: see `halt_if_due`.
    pub halt_after_step: Option<usize>,
}

/// Saves a checkpoint, then halts if the run was asked to.
fn save<L: Learner>(learner: &L, args: &LoopArgs<'_>, state: &RunState) -> Result<(), TrainError> {
    learner.save(args.checkpoints, state)?;
    halt_if_due(args, state);
    Ok(())
}

/// Once a checkpoint at or past step `halt_after_step` is on disk, says so on stderr and waits to
/// be killed. Why: the resume tests kill a run at a known point; polling the checkpoint folder
/// raced a tiny model that finishes all its steps in milliseconds (a CI run saw it export before
/// the kill landed).
fn halt_if_due(args: &LoopArgs<'_>, state: &RunState) {
    if args.halt_after_step.is_some_and(|n| state.global_step >= n) {
        eprintln!("Halted after the checkpoint of step {} (--halt-after-step): waiting to be killed", state.global_step);
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Runs validation, records it, keeps the weights if they are the best so far and decides
/// whether to stop (`state.history.stopped_early`).
fn evaluate<L: Learner>(
    learner: &mut L,
    state: &mut RunState,
    (steps_per_epoch, total_steps): (usize, usize),
) -> Result<EvalReport, TrainError> {
    let plan = &state.plan;
    let report = learner.validate()?;
    let epoch = state.global_step as f64 / steps_per_epoch.max(1) as f64;
    state.history.evaluations.push(EvalPoint {
        step: state.global_step,
        epoch,
        val_loss: report.loss,
        val_accuracy: report.metrics.accuracy,
        val_f1: report.metrics.f1,
        val_auc: report.ranking.map(|r| r.roc_auc),
    });
    if plan.monitor == Monitor::ValAuc && report.ranking.is_none() {
        // `TrainRun::check` refuses such a validation split before training; a library caller's
        // learner can still validate on one, and a NaN would never count as best.
        return Err(TrainError::AucUndefined);
    }
    let value = plan.monitor.value(&report);
    if state.best.update(value, (state.global_step, epoch), plan.monitor, plan.min_delta) {
        learner.keep_best();
    }
    let last_step = state.global_step == total_steps;
    state.history.stopped_early = !last_step && state.best.should_stop(plan.patience);
    Ok(report)
}

/// The loop itself: seeded epoch orders, the warm-up/decay schedule, progress, running
/// metrics, validation after each epoch, checkpoints and resume.
pub fn run_loop<L: Learner>(learner: &mut L, args: LoopArgs<'_>) -> Result<History, TrainError> {
    let plan = args.plan;
    plan.validate()?;
    let n = args.targets.len();
    if n == 0 {
        return Err(TrainError::NoData);
    }
    let (steps_per_epoch, per_step) = (plan.steps_per_epoch(n), plan.examples_per_step());
    let (total_steps, epochs) = (plan.total_steps(n), plan.epochs_to_run(n));
    let mut schedule = Schedule::new(plan.learning_rate, plan.warmup_ratio, total_steps, plan.lr_scheduler);
    if let Some(warmup) = plan.warmup_steps {
        if warmup >= total_steps {
            let why = match plan.max_steps {
                Some(_) => "--max-steps".to_string(),
                None => format!("{steps_per_epoch} per epoch x {} epochs", plan.epochs),
            };
            return Err(TrainError::WarmupTooLong { warmup, total: total_steps, why });
        }
        schedule = schedule.with_warmup_steps(warmup);
    }
    let mut state = RunState {
        plan: plan.clone(),
        epoch: 0,
        next_batch: 0,
        global_step: 0,
        loss_sum: 0.0,
        correct: 0,
        seen: 0,
        epoch_seconds: 0.0,
        history: History { binary: args.binary, multi_label: args.targets.iter().any(Target::is_multi_label), ..History::default() },
        best: Default::default(),
        train_examples: Some(n),
    };
    if args.resume && !args.checkpoints.exists() && !args.quiet {
        // Not an error: a preemptible job passes --resume on its first start too (as Keras'
        // BackupAndRestore does); said so that a mistyped --out is not a silent fresh start.
        eprintln!("No checkpoint in {} to resume from: starting from the first step", args.checkpoints.path().display());
    }
    if args.resume && args.checkpoints.exists() {
        let s = learner.load(args.checkpoints)?;
        if s.plan != *plan {
            return Err(TrainError::ResumeMismatch {
                saved: serde_json::to_string(&s.plan).unwrap_or_default(),
                given: serde_json::to_string(plan).unwrap_or_default(),
            });
        }
        if let Some(saved) = s.train_examples.filter(|&saved| saved != n) {
            return Err(TrainError::ResumeData { saved, given: n });
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

    while state.epoch < epochs && !state.history.stopped_early {
        let order = epoch_order(n, plan.seed, state.epoch);
        // Every epoch's steps, but for a `max_steps` run's last one, cut at its last step.
        let this_epoch = steps_per_epoch.min(total_steps - state.epoch * steps_per_epoch);
        let mut progress = EpochProgress::new(state.epoch + 1, epochs, this_epoch, state.next_batch, args.quiet);
        let epoch_start = Instant::now();
        let seconds_before = state.epoch_seconds;
        for b in state.next_batch..this_epoch {
            let t0 = Instant::now();
            let idx = &order[b * per_step..((b + 1) * per_step).min(n)];
            let targets: Vec<Target> = idx.iter().map(|&i| args.targets[i].clone()).collect();
            let lr = schedule.lr(state.global_step);
            let (loss_value, predicted) = learner.step(idx, &targets, state.global_step, lr)?;

            state.global_step += 1;
            state.next_batch = b + 1;
            state.loss_sum += loss_value * idx.len() as f64;
            state.seen += idx.len() as u64;
            let threshold = plan.threshold as f32;
            state.correct += predicted.iter().zip(&targets).filter(|(row, y)| y.is_hit(row, threshold)).count() as u64;
            state.epoch_seconds = seconds_before + epoch_start.elapsed().as_secs_f64();
            let (mean_loss, acc) = (state.loss_sum / state.seen as f64, state.correct as f64 / state.seen as f64);
            progress.step(b + 1, mean_loss, acc, t0.elapsed().as_secs_f64());

            let epoch_end = b + 1 == this_epoch;
            let due = plan.eval_every.is_some_and(|every| state.global_step.is_multiple_of(every));
            if !(epoch_end || due) {
                if let Some(every) = plan.checkpoint_every
                    && state.global_step.is_multiple_of(every)
                {
                    save(learner, &args, &state)?;
                }
                continue;
            }
            let report = evaluate(learner, &mut state, (steps_per_epoch, total_steps))?;
            if epoch_end || state.history.stopped_early {
                let record = EpochRecord {
                    epoch: state.epoch + 1,
                    loss: mean_loss,
                    accuracy: acc,
                    val_loss: report.loss,
                    val_accuracy: report.metrics.accuracy,
                    val_precision: report.metrics.precision,
                    val_recall: report.metrics.recall,
                    val_f1: report.metrics.f1,
                    val_auc: report.ranking.map(|r| r.roc_auc),
                    lr,
                    seconds: state.epoch_seconds,
                    examples_per_second: state.seen as f64 / state.epoch_seconds.max(1e-9),
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
                save(learner, &args, &state)?;
                break;
            }
            // A mid-epoch evaluation: checkpoint here so a resumed run keeps the count.
            save(learner, &args, &state)?;
        }
    }
    if state.history.stopped_early && !args.quiet {
        eprintln!(
            "Early stopping after step {}: {} did not improve for {} evaluations",
            state.global_step,
            plan.monitor,
            state.best.evals_since
        );
    }
    if let Some(value) = state.best.value {
        let restored = plan.restore_best && state.best.step != state.global_step;
        if restored {
            learner.restore_best()?;
            if !args.quiet {
                eprintln!(
                    "Restored the weights of step {} (epoch {:.2}), the best {} ({value:.4})",
                    state.best.step, state.best.epoch, plan.monitor
                );
            }
        }
        state.history.best = Some(BestPoint {
            monitor: plan.monitor.to_string(),
            value,
            step: state.best.step,
            epoch: state.best.epoch,
            restored: plan.restore_best,
        });
    }
    Ok(state.history)
}

#[cfg(test)]
#[path = "run_loop_tests.rs"]
mod tests;
