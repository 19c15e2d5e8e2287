//! What every kernels learner keeps for the tensors it trains (all of the classifier's, the
//! frozen-encoder run's head, the BiLSTM's but a frozen embedding table): their gradients, AdamW's
//! moments and the best evaluation's copy, with the step (clipping + AdamW), the checkpoint files
//! and the best-weights bookkeeping written once for all of them.

use std::path::Path;

use bertkit_kernels::grad::{AdamW, adamw, scale, sum_squares};

use crate::model::{Checkpoint, WeightsWriter};
use crate::train::{CheckpointDir, RunState, TrainError, TrainPlan};

/// A learner's checkpoint files, and what to say when a checkpoint lacks the first.
#[derive(Clone, Copy)]
pub(super) struct Files {
    pub(super) state: &'static str,
    pub(super) best: &'static str,
    /// Why a checkpoint folder may lack `state` (and what to do), after "DIR has no STATE: ".
    pub(super) missing: &'static str,
}

pub(super) struct Trained {
    /// The tensors trained; the vectors below are empty elsewhere.
    pub(super) slots: Vec<usize>,
    pub(super) grads: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// The best evaluation's values of `slots`.
    best: Option<Vec<Vec<f32>>>,
    files: Files,
}

impl Trained {
    /// State for the `slots` of `values`.
    pub(super) fn new(values: &[Vec<f32>], slots: Vec<usize>, files: Files) -> Self {
        let zeros = || -> Vec<Vec<f32>> {
            (0..values.len()).map(|i| if slots.contains(&i) { vec![0.0; values[i].len()] } else { Vec::new() }).collect()
        };
        let (grads, m, v) = (zeros(), zeros(), zeros());
        Self { slots, grads, m, v, best: None, files }
    }

    pub(super) fn zero_grads(&mut self) {
        for &i in &self.slots {
            self.grads[i].iter_mut().for_each(|g| *g = 0.0);
        }
    }

    /// Clips the gradients to the plan's global norm (PyTorch's `clip_grad_norm_` over all the
    /// trained tensors together) and takes one AdamW step on `values` (weight decay where
    /// `decay` says: BERT's recipe exempts biases and LayerNorm).
    pub(super) fn update(&mut self, values: &mut [Vec<f32>], decay: &[bool], plan: &TrainPlan, step: usize, lr: f64) {
        if let Some(max) = plan.max_grad_norm {
            let norm = self.slots.iter().map(|&i| sum_squares(&self.grads[i])).sum::<f64>().sqrt();
            if norm > max {
                let f = (max / (norm + 1e-6)) as f32;
                self.slots.iter().for_each(|&i| scale(&mut self.grads[i], f));
            }
        }
        for &i in &self.slots {
            let h = AdamW {
                lr: lr as f32,
                beta1: 0.9,
                beta2: 0.999,
                eps: plan.adam_epsilon as f32,
                weight_decay: if decay[i] { plan.weight_decay as f32 } else { 0.0 },
                step: (step + 1).min(i32::MAX as usize) as i32,
            };
            adamw(&mut values[i], &self.grads[i], &mut self.m[i], &mut self.v[i], h);
        }
    }

    /// Writes the trained tensors' values and moments (and the best copy, if kept) by `names`.
    pub(super) fn save(&self, checkpoints: &CheckpointDir, state: &RunState, names: &[String], values: &[Vec<f32>]) -> Result<(), TrainError> {
        checkpoints.save_with(state, |dir| {
            write_values(&dir.join(self.files.state), names, &self.slots, &[("value", values), ("m", &self.m), ("v", &self.v)])?;
            match &self.best {
                Some(best) => write_values(&dir.join(self.files.best), names, &self.slots, &[("best", best)]),
                None => Ok(()),
            }
        })
    }

    /// Reads what [`Self::save`] wrote into `values` and this state; returns the run's position.
    pub(super) fn load(&mut self, checkpoints: &CheckpointDir, names: &[String], values: &mut [Vec<f32>]) -> Result<RunState, TrainError> {
        let (dir, state) = checkpoints.load_state()?;
        let path = dir.join(self.files.state);
        if !path.is_file() {
            return Err(TrainError::Checkpoint(format!("{} has no {}: {}", dir.display(), self.files.state, self.files.missing)));
        }
        let mut read = values.to_vec();
        read_values(&path, names, &self.slots, &mut [("value", &mut read), ("m", &mut self.m), ("v", &mut self.v)])?;
        for &i in &self.slots {
            values[i] = std::mem::take(&mut read[i]);
        }
        let best_path = dir.join(self.files.best);
        self.best = if best_path.is_file() {
            let mut best = self.m.clone();
            read_values(&best_path, names, &self.slots, &mut [("best", &mut best)])?;
            Some(best)
        } else {
            None
        };
        Ok(state)
    }

    /// Keeps a copy of the trained tensors of `values` (reusing the allocation: the weights are
    /// copied at every improvement).
    pub(super) fn keep_best(&mut self, values: &[Vec<f32>]) {
        let best = self.best.get_or_insert_with(|| vec![Vec::new(); values.len()]);
        for &i in &self.slots {
            best[i].clear();
            best[i].extend_from_slice(&values[i]);
        }
    }

    pub(super) fn restore_best(&self, values: &mut [Vec<f32>]) -> Result<(), TrainError> {
        let best = self.best.as_ref().ok_or_else(|| TrainError::Backend("no best weights were kept".into()))?;
        for &i in &self.slots {
            values[i].copy_from_slice(&best[i]);
        }
        Ok(())
    }
}

/// Each set of per-parameter vectors (`slots` of them) under `prefix.` + the parameter's name,
/// in one safetensors file.
fn write_values(path: &Path, names: &[String], slots: &[usize], sets: &[(&str, &[Vec<f32>])]) -> Result<(), TrainError> {
    let mut w = WeightsWriter::new("");
    for &i in slots {
        for (prefix, src) in sets {
            w.values(&format!("{prefix}.{}", names[i]), &[src[i].len()], src[i].clone());
        }
    }
    let bytes = w.to_bytes(Default::default()).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|source| TrainError::Io { path: path.to_path_buf(), source })
}

/// Reads what [`write_values`] wrote into `sets`, whose vectors give the lengths expected.
fn read_values(path: &Path, names: &[String], slots: &[usize], sets: &mut [(&str, &mut Vec<Vec<f32>>)]) -> Result<(), TrainError> {
    let bad = |e: crate::model::LoadError| TrainError::Checkpoint(e.to_string());
    let ckpt = Checkpoint::read(path).map_err(bad)?;
    let weights = ckpt.tensors().map_err(bad)?;
    for &i in slots {
        for (prefix, dst) in sets.iter_mut() {
            dst[i] = weights.read(&format!("{prefix}.{}", names[i]), &[dst[i].len()]).map_err(bad)?;
        }
    }
    Ok(())
}
