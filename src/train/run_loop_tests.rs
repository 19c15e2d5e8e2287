//! The training loop's tests, on a fake learner whose "weights" count its steps: early
//! stopping, best weights, resume, warm-up, `max_steps` and the monitored metric.

use super::*;
use crate::train::Monitor;

/// A learner whose "weights" are the number of steps taken and whose validation loss at step
/// s is `curve(s)`: the loop's early stopping and best weights, exactly.
struct Fake {
    w: usize,
    best: Option<usize>,
    /// Fail (as a kill would) when asked for this step.
    die_at: Option<usize>,
}

fn curve(step: usize) -> f64 {
    match step {
        2 => 1.0,
        4 => 0.8,
        5 => 0.75,
        6 => 0.7,
        8 => 0.72,
        10 => 0.71,
        _ => 0.9,
    }
}

impl Learner for Fake {
    fn step(&mut self, idx: &[usize], _: &[Target], step: usize, _: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        if self.die_at == Some(step) {
            return Err(TrainError::Backend("killed".into()));
        }
        self.w += 1;
        Ok((1.0, vec![vec![0.0]; idx.len()]))
    }
    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let mut r = EvalReport::from_logits(&[vec![0.0]], &[Target::Class(0)], 2, 0.5);
        r.loss = curve(self.w);
        Ok(r)
    }
    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        let text = format!("{} {}", self.w, self.best.map_or(-1, |b| b as i64));
        checkpoints.save_with(state, |dir| std::fs::write(dir.join("fake"), text).map_err(|e| TrainError::Checkpoint(e.to_string())))
    }
    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let (dir, state) = checkpoints.load_state()?;
        let text = std::fs::read_to_string(dir.join("fake")).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        let v: Vec<i64> = text.split(' ').map(|x| x.parse().unwrap_or(-1)).collect();
        (self.w, self.best) = (v[0] as usize, usize::try_from(v[1]).ok());
        Ok(state)
    }
    fn keep_best(&mut self) {
        self.best = Some(self.w);
    }
    fn restore_best(&mut self) -> Result<(), TrainError> {
        self.w = self.best.ok_or_else(|| TrainError::Backend("none".into()))?;
        Ok(())
    }
}

/// 10 examples in batches of 2 (5 steps an epoch), 4 epochs, an evaluation every 2 steps.
fn plan(patience: Option<usize>, restore_best: bool) -> TrainPlan {
    TrainPlan { epochs: 4, batch_size: 2, eval_every: Some(2), patience, restore_best, monitor: Monitor::ValLoss, ..TrainPlan::default() }
}

fn run(plan: &TrainPlan, dir: &std::path::Path, fake: &mut Fake, resume: bool) -> Result<History, TrainError> {
    let targets = vec![Target::Class(0); 10];
    let checkpoints = CheckpointDir::new(dir);
    let args = LoopArgs { plan, targets: &targets, binary: true, checkpoints: &checkpoints, resume, quiet: true, halt_after_step: None };
    run_loop(fake, args)
}

#[test]
fn early_stopping_stops_after_patience_and_restores_the_best_steps_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake { w: 0, best: None, die_at: None };
    let h = run(&plan(Some(3), true), dir.path(), &mut fake, false).unwrap();
    // Evaluations at steps 2, 4, 5 (epoch end), 6, 8, 10, 12: the best is step 6 (0.7);
    // 8, 10 and 12 do not beat it, so the third of them stops the run, mid-epoch 3.
    let steps: Vec<usize> = h.evaluations.iter().map(|e| e.step).collect();
    assert_eq!(steps, [2, 4, 5, 6, 8, 10, 12]);
    assert!(h.stopped_early);
    assert_eq!(h.epochs.len(), 3, "the stopped epoch is recorded");
    let best = h.best.clone().unwrap();
    assert_eq!((best.step, best.value, best.epoch, best.restored), (6, 0.7, 1.2, true));
    assert_eq!(fake.w, 6, "the learner holds step 6's weights, not step 12's");

    // Without restore_best: stops at the same place, keeps the last weights.
    let dir2 = tempfile::tempdir().unwrap();
    let mut last = Fake { w: 0, best: None, die_at: None };
    let h2 = run(&plan(Some(3), false), dir2.path(), &mut last, false).unwrap();
    assert_eq!((last.w, h2.best.unwrap().restored), (12, false));

    // No patience: every epoch runs; the best weights still come back.
    let dir3 = tempfile::tempdir().unwrap();
    let mut full = Fake { w: 0, best: None, die_at: None };
    let h3 = run(&plan(None, true), dir3.path(), &mut full, false).unwrap();
    assert!(!h3.stopped_early);
    assert_eq!((h3.epochs.len(), h3.evaluations.last().unwrap().step, full.w), (4, 20, 6));
}

#[test]
fn a_resumed_run_keeps_the_early_stopping_count() {
    let uninterrupted = {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake { w: 0, best: None, die_at: None };
        (run(&plan(Some(3), true), dir.path(), &mut fake, false).unwrap(), fake.w)
    };
    let dir = tempfile::tempdir().unwrap();
    // Killed at step 9: the last checkpoint is step 8's evaluation (best 6, one bad evaluation).
    let mut first = Fake { w: 0, best: None, die_at: Some(9) };
    assert!(run(&plan(Some(3), true), dir.path(), &mut first, false).is_err());
    let mut resumed = Fake { w: 0, best: None, die_at: None };
    let h = run(&plan(Some(3), true), dir.path(), &mut resumed, true).unwrap();
    assert_eq!(resumed.w, uninterrupted.1);
    assert_eq!(h.evaluations, uninterrupted.0.evaluations);
    assert_eq!(h.best, uninterrupted.0.best);
    assert!(h.stopped_early);
}

/// The fake validates on one example of one class, where ROC AUC is undefined: a library
/// caller's run monitoring it stops at the first evaluation, by name, instead of comparing
/// NaNs (which would never count as best).
#[test]
fn monitoring_an_undefined_auc_is_an_error_not_a_nan() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake { w: 0, best: None, die_at: None };
    let p = TrainPlan { monitor: Monitor::ValAuc, ..plan(None, true) };
    assert!(matches!(run(&p, dir.path(), &mut fake, false), Err(TrainError::AucUndefined)));
    assert_eq!(fake.w, 2, "stopped at the first evaluation");
}

/// 20 steps in all: a warm-up of 19 leaves one at the peak; 20 leave none and are refused
/// before the first step.
#[test]
fn a_warm_up_as_long_as_the_run_is_refused_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake { w: 0, best: None, die_at: None };
    let p = TrainPlan { warmup_ratio: 0.0, warmup_steps: Some(20), ..plan(None, true) };
    let err = run(&p, dir.path(), &mut fake, false).unwrap_err();
    assert!(matches!(err, TrainError::WarmupTooLong { warmup: 20, total: 20, .. }), "{err}");
    assert!(err.to_string().contains("this run has 20 (5 per epoch x 4 epochs)"), "{err}");
    assert_eq!(fake.w, 0);
    let p = TrainPlan { warmup_steps: Some(19), ..p };
    assert!(run(&p, tempfile::tempdir().unwrap().path(), &mut fake, false).is_ok());
}

/// `max_steps` 7 at 5 steps an epoch: a whole epoch, then one cut at step 7, which is the
/// last evaluation (with those every 2 steps); the rate decays to 0 over the 7 steps.
#[test]
fn max_steps_ends_the_run_mid_epoch_at_that_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake { w: 0, best: None, die_at: None };
    let p = TrainPlan { max_steps: Some(7), restore_best: false, ..plan(None, true) };
    let h = run(&p, dir.path(), &mut fake, false).unwrap();
    let steps: Vec<usize> = h.evaluations.iter().map(|e| e.step).collect();
    assert_eq!(steps, [2, 4, 5, 6, 7]);
    assert_eq!((h.epochs.len(), fake.w, h.stopped_early), (2, 7, false));
    let lr: Vec<f64> = h.epochs.iter().map(|e| e.lr).collect();
    // Each epoch's last rate (steps 4 and 6) is a linear schedule's over 7 steps, the first
    // of them warm-up (10 % of 7, rounded up), decaying to 0 at the 7th.
    let s = Schedule::new(p.learning_rate, p.warmup_ratio, 7, p.lr_scheduler);
    assert_eq!(lr, [s.lr(4), s.lr(6)]);
}

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
