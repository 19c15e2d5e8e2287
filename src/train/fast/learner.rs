//! Fine-tuning on the kernels: the [`Learner`] that runs [`network`](super::network)'s forward
//! and backward passes, the loss, global-norm clipping and AdamW on flat fp32 parameters, and
//! checkpoints them (weights and moments in one safetensors file).

use std::path::Path;

use bertkit_kernels::Precision;
use bertkit_kernels::grad::{AdamW, adamw, scale, sum_squares};

use super::backward::backward;
use super::network::{Cache, NetSpec, Rows, forward};
use crate::model::fast::{BertModel, Params};
use crate::data::Target;
use crate::metrics::{EvalReport, example_loss};
use crate::model::{Checkpoint, WeightsWriter};
use crate::predict::run_batched_tokens;
use crate::tokenize::{Padding, TokenBatch};
use crate::train::run_loop::step_seed;
use crate::train::Learner;
use crate::train::{CheckpointDir, RunState, Split, TrainError, TrainPlan};

const STATE_FILE: &str = "kernels.safetensors";
/// The best evaluation's weights, when one was kept.
const BEST_FILE: &str = "best.safetensors";

pub struct FastLearner<'a> {
    params: Params,
    grads: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// The best evaluation's weights.
    best: Option<Vec<Vec<f32>>>,
    spec: NetSpec,
    cache: Cache,
    plan: &'a TrainPlan,
    train: Split<'a>,
    val: Split<'a>,
    pad_id: u32,
    num_classes: usize,
}

impl<'a> FastLearner<'a> {
    pub fn new(
        model: &BertModel,
        precision: Precision,
        plan: &'a TrainPlan,
        (train, val): (Split<'a>, Split<'a>),
        pad_id: u32,
        num_classes: usize,
    ) -> Result<Self, TrainError> {
        let params = model.params.clone();
        let (grads, m, v) = (params.zeros_like(), params.zeros_like(), params.zeros_like());
        Ok(Self {
            params,
            grads,
            m,
            v,
            best: None,
            spec: NetSpec::of(model, precision),
            cache: Cache::default(),
            plan,
            train,
            val,
            pad_id,
            num_classes,
        })
    }

    /// The trained weights, in place of `model`'s.
    pub fn finish(self, model: &mut BertModel) {
        model.params = self.params;
    }

    /// Logits `[B][K]` of a padded batch in evaluation mode.
    fn logits(&mut self, batch: &TokenBatch) -> Vec<Vec<f32>> {
        let rows = Rows::new(batch, &self.spec.config);
        let y = forward(&self.params, &self.spec, &rows, None, &mut self.cache);
        y.chunks(self.params.layout.head_out.d_out).map(<[f32]>::to_vec).collect()
    }
}

/// Mean loss (the same [`example_loss`] validation reports) and `dLoss/dlogits` for `logits`
/// `[B, K]`: BCE from logits when K = 1, softmax cross-entropy otherwise, and for label sets the
/// mean BCE over all B·K logits.
pub fn loss_and_grad(logits: &[f32], k: usize, targets: &[Target]) -> (f64, Vec<f32>) {
    let b = targets.len().max(1) as f32;
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    let mut grad = vec![0.0f32; logits.len()];
    let mut loss = 0.0f64;
    for ((row, g), target) in logits.chunks_exact(k).zip(grad.chunks_exact_mut(k)).zip(targets) {
        loss += example_loss(row, target);
        match target {
            // d/dz_j of mean_j BCE(z_j, y_j) = (σ(z_j) − y_j) / K.
            Target::Labels(_) => {
                for (j, (gj, &z)) in g.iter_mut().zip(row).enumerate() {
                    *gj = (sigmoid(z) - f32::from(u8::from(target.has(j)))) / (b * k as f32);
                }
            }
            // d/dz of BCE(z, y) = σ(z) − y.
            Target::Class(y) if k == 1 => g[0] = (sigmoid(row[0]) - *y as f32) / b,
            // d/dz of CE = softmax(z) − one_hot(y).
            Target::Class(y) => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                for (j, (gj, v)) in g.iter_mut().zip(row).enumerate() {
                    *gj = ((v - max).exp() / sum - if j == *y { 1.0 } else { 0.0 }) / b;
                }
            }
        }
    }
    (loss / f64::from(b), grad)
}

impl Learner for FastLearner<'_> {
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let batch = TokenBatch::pad(idx.iter().map(|&i| &self.train.encodings[i]), Padding::Longest, self.pad_id);
        self.step_batch(&batch, targets, step, lr)
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let (val, bs, pad) = (self.val, self.plan.eval_batch_size, self.pad_id);
        let logits = run_batched_tokens::<_, TrainError>(val.encodings, bs, pad, |batch| Ok(self.logits(batch)))?;
        Ok(EvalReport::from_logits(&logits, val.targets, self.num_classes, self.plan.threshold as f32))
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        checkpoints.save_with(state, |dir| {
            self.write_state(&dir.join(STATE_FILE))?;
            match &self.best {
                Some(best) => self.write_values(&dir.join(BEST_FILE), &[("best", best)]),
                None => Ok(()),
            }
        })
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let (dir, state) = checkpoints.load_state()?;
        self.read_state(&dir.join(STATE_FILE))?;
        let best_path = dir.join(BEST_FILE);
        self.best = if best_path.is_file() {
            let mut best = self.params.zeros_like();
            self.read_values(&best_path, &mut [("best", &mut best)])?;
            Some(best)
        } else {
            None
        };
        Ok(state)
    }

    fn keep_best(&mut self) {
        match &mut self.best {
            // Reuse the allocation: the weights are copied at every improvement.
            Some(best) => best.iter_mut().zip(&self.params.values).for_each(|(b, v)| b.copy_from_slice(v)),
            None => self.best = Some(self.params.values.clone()),
        }
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        let best = self.best.as_ref().ok_or_else(|| TrainError::Backend("no best weights were kept".into()))?;
        self.params.values.iter_mut().zip(best).for_each(|(v, b)| v.copy_from_slice(b));
        Ok(())
    }
}

impl FastLearner<'_> {
    /// One optimizer step on a padded batch (what [`Learner::step`] does after padding; the
    /// benchmark calls it directly).
    pub fn step_batch(&mut self, batch: &TokenBatch, targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let rows = Rows::new(batch, &self.spec.config);
        let seed = step_seed(self.plan.seed, step);
        let logits = forward(&self.params, &self.spec, &rows, Some(seed), &mut self.cache);
        let k = self.params.layout.head_out.d_out;
        let (loss, dlogits) = loss_and_grad(&logits, k, targets);
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss });
        }
        self.grads.iter_mut().for_each(|g| g.iter_mut().for_each(|v| *v = 0.0));
        backward(&self.params, &self.spec, &rows, &mut self.cache, &dlogits, &mut self.grads);
        let all: Vec<usize> = (0..self.params.values.len()).collect();
        update(&mut self.params.values, &self.params.decay, (&mut self.grads, &mut self.m, &mut self.v), &all, self.plan, step, lr);
        Ok((loss, logits.chunks(k).map(<[f32]>::to_vec).collect()))
    }

    /// Weights and both AdamW moments under `value.`/`m.`/`v.` + the parameter's name.
    fn write_state(&self, path: &Path) -> Result<(), TrainError> {
        self.write_values(path, &[("value", &self.params.values), ("m", &self.m), ("v", &self.v)])
    }

    fn read_state(&mut self, path: &Path) -> Result<(), TrainError> {
        if !path.is_file() {
            return Err(TrainError::Checkpoint(format!(
                "{} has no {STATE_FILE}: it was written by the burn trainer; resume with --engine burn",
                path.parent().unwrap_or(path).display()
            )));
        }
        let (mut values, mut m, mut v) = (self.params.zeros_like(), self.params.zeros_like(), self.params.zeros_like());
        self.read_values(path, &mut [("value", &mut values), ("m", &mut m), ("v", &mut v)])?;
        (self.params.values, self.m, self.v) = (values, m, v);
        Ok(())
    }

    fn write_values(&self, path: &Path, sets: &[(&str, &Vec<Vec<f32>>)]) -> Result<(), TrainError> {
        let all: Vec<usize> = (0..self.params.names.len()).collect();
        write_values(path, &self.params.names, &all, sets)
    }

    fn read_values(&self, path: &Path, sets: &mut [(&str, &mut Vec<Vec<f32>>)]) -> Result<(), TrainError> {
        let all: Vec<usize> = (0..self.params.names.len()).collect();
        read_values(path, &self.params.names, &all, sets)
    }
}

/// Gradients, first and second AdamW moments, one vector per parameter.
pub(super) type Moments<'a> = (&'a mut [Vec<f32>], &'a mut [Vec<f32>], &'a mut [Vec<f32>]);

/// Clips the gradients of `slots` to the plan's global norm (PyTorch's `clip_grad_norm_` over
/// them together) and takes one AdamW step on their `values` (weight decay where `decay` says).
pub(super) fn update(
    values: &mut [Vec<f32>],
    decay: &[bool],
    (grads, m, v): Moments<'_>,
    slots: &[usize],
    plan: &TrainPlan,
    step: usize,
    lr: f64,
) {
    if let Some(max) = plan.max_grad_norm {
        let norm = slots.iter().map(|&i| sum_squares(&grads[i])).sum::<f64>().sqrt();
        if norm > max {
            let f = (max / (norm + 1e-6)) as f32;
            slots.iter().for_each(|&i| scale(&mut grads[i], f));
        }
    }
    for &i in slots {
        let h = AdamW {
            lr: lr as f32,
            beta1: 0.9,
            beta2: 0.999,
            eps: plan.adam_epsilon as f32,
            weight_decay: if decay[i] { plan.weight_decay as f32 } else { 0.0 },
            step: (step + 1).min(i32::MAX as usize) as i32,
        };
        adamw(&mut values[i], &grads[i], &mut m[i], &mut v[i], h);
    }
}

/// The best weights a checkpoint kept, if it kept them (`like`: vectors of the trained lengths,
/// empty elsewhere).
pub(super) fn best_of(path: &Path, names: &[String], slots: &[usize], like: &[Vec<f32>]) -> Result<Option<Vec<Vec<f32>>>, TrainError> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut best = like.to_vec();
    read_values(path, names, slots, &mut [("best", &mut best)])?;
    Ok(Some(best))
}

/// Each set of per-parameter vectors (`slots` of them) under `prefix.` + the parameter's name,
/// in one safetensors file.
pub(super) fn write_values(path: &Path, names: &[String], slots: &[usize], sets: &[(&str, &Vec<Vec<f32>>)]) -> Result<(), TrainError> {
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
pub(super) fn read_values(path: &Path, names: &[String], slots: &[usize], sets: &mut [(&str, &mut Vec<Vec<f32>>)]) -> Result<(), TrainError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_gradients_match_the_closed_forms() {
        let (loss, g) = loss_and_grad(&[2.0, -1.0], 1, &[Target::Class(1), Target::Class(0)]);
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + (-1.0f64).exp()).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
        assert!((g[0] - (sig(2.0) - 1.0) / 2.0).abs() < 1e-6 && (g[1] - sig(-1.0) / 2.0).abs() < 1e-6);
        let (loss, g) = loss_and_grad(&[1.0, 2.0, 3.0], 3, &[Target::Class(2)]);
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((loss - (lse - 3.0)).abs() < 1e-5);
        assert!((g.iter().sum::<f32>()).abs() < 1e-6 && g[2] < 0.0);
    }

    /// The multi-label gradient against central differences of the loss itself.
    #[test]
    fn label_set_gradients_match_finite_differences() {
        let logits = [0.3f32, -1.2, 2.0, 0.7, 0.1, -0.4];
        let targets = [Target::labels(vec![0, 2]), Target::labels(vec![1])];
        let (_, g) = loss_and_grad(&logits, 3, &targets);
        for i in 0..logits.len() {
            let at = |d: f32| {
                let mut x = logits;
                x[i] += d;
                loss_and_grad(&x, 3, &targets).0
            };
            let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
            assert!((f64::from(g[i]) - numeric).abs() < 1e-4, "logit {i}: {} vs {numeric}", g[i]);
        }
    }
}
