//! Fine-tuning on the kernels: the [`Learner`] that runs the one forward pass
//! ([`forward`](crate::model::fast::forward), training mode for steps and evaluation mode for
//! validation) and [`backward`], the loss, global-norm clipping and AdamW on flat fp32
//! parameters, and checkpoints them (weights and moments in one safetensors file).

use bertkit_kernels::Precision;
use bertkit_kernels::dropout::mix64;

use super::backward::backward;
use super::optim::{Files, Trained};
use crate::model::fast::{BertModel, Cache, Mode, NetSpec, Packed, Params, Rows, Weights, forward};
use crate::data::Target;
use crate::metrics::{EvalReport, smoothed_example_loss};
use crate::model::run_batched_tokens;
use crate::tokenize::{Padding, TokenBatch};
use crate::train::run_loop::step_seed;
use crate::train::Learner;
use crate::train::{CheckpointDir, LossTerms, RunState, Split, TrainError, TrainPlan, class_weight};

const FILES: Files = Files {
    state: "kernels.safetensors",
    best: "best.safetensors",
    missing: "it was written by the burn trainer; resume with --engine burn",
};

pub struct FastLearner<'a> {
    params: Params,
    /// The dense weights packed for the GEMMs: refreshed before the first forward pass after
    /// each change of `params` (an optimizer step, a resume, the best weights restored), so
    /// validation's batches and a step's forward pass share one pack.
    packed: Packed,
    stale: bool,
    /// Every tensor trains.
    trained: Trained,
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
        // The int8 GEMMs do not accumulate, and they used to panic saying so at the first step.
        if precision == Precision::Int8 {
            return Err(TrainError::Int8Training);
        }
        let params = model.params.clone();
        let trained = Trained::new(&params.values, (0..params.values.len()).collect(), FILES);
        Ok(Self {
            packed: Packed::new(&params, precision),
            stale: false,
            params,
            trained,
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

    /// Logits `[B, K]` of `rows`, the pack first brought up to date with the weights.
    fn run(&mut self, rows: &Rows, mode: Mode) -> Vec<f32> {
        if std::mem::take(&mut self.stale) {
            self.packed.refresh(&self.params);
        }
        let w = Weights { params: &self.params, packed: &self.packed };
        forward(w, &self.spec, rows, mode, &mut self.cache)
    }

    /// Logits `[B][K]` of a padded batch in evaluation mode.
    fn logits(&mut self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>, TrainError> {
        let rows = Rows::new(batch, &self.spec.config)?;
        let y = self.run(&rows, Mode::eval_for(self.spec.pooling));
        Ok(y.chunks(self.params.layout.head_out.d_out).map(<[f32]>::to_vec).collect())
    }
}

/// Mean loss and `dLoss/dlogits` for `logits` `[B, K]`: BCE from logits when K = 1, softmax
/// cross-entropy otherwise, and for label sets the mean BCE over all B·K logits — the same
/// [`example_loss`](crate::metrics::example_loss) validation reports, unless `terms` smooths
/// the targets ([`smoothed_example_loss`]; the gradients are then `σ(z) − q` and
/// `softmax(z) − q` against the smoothed targets q). With class weights (single-label), each
/// example's loss and gradient are scaled by its class's weight before the mean over the batch
/// (Keras' `class_weight`).
pub fn loss_and_grad(logits: &[f32], k: usize, targets: &[Target], terms: LossTerms<'_>) -> (f64, Vec<f32>) {
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    let mut grad = vec![0.0f32; logits.len()];
    let mut loss = 0.0f64;
    let n = targets.len().max(1) as f64;
    for ((row, g), target) in logits.chunks_exact(k).zip(grad.chunks_exact_mut(k)).zip(targets) {
        let weight = class_weight(terms.class_weights, target);
        loss += weight * smoothed_example_loss(row, target, terms.label_smoothing);
        // The mean's 1/B and the class's weight, folded into one scale of this row's gradient.
        let b = (n / weight) as f32;
        // Output j's target: 1 or 0, or their smoothed values.
        let q = |j: usize| target.smoothed(j, k, terms.label_smoothing) as f32;
        match target {
            // d/dz_j of mean_j BCE(z_j, q_j) = (σ(z_j) − q_j) / K.
            Target::Labels(_) => {
                for (j, (gj, &z)) in g.iter_mut().zip(row).enumerate() {
                    *gj = (sigmoid(z) - q(j)) / (b * k as f32);
                }
            }
            // d/dz of BCE(z, q) = σ(z) − q.
            Target::Class(_) if k == 1 => g[0] = (sigmoid(row[0]) - q(0)) / b,
            // d/dz of CE against q = softmax(z) − q.
            Target::Class(_) => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                for (j, (gj, v)) in g.iter_mut().zip(row).enumerate() {
                    *gj = ((v - max).exp() / sum - q(j)) / b;
                }
            }
        }
    }
    (loss / n, grad)
}

impl Learner for FastLearner<'_> {
    /// With gradient accumulation the step's examples run as micro-batches of `batch_size`, each
    /// padded to its own longest text, and their gradients add up to the whole step's before the
    /// one update: only a micro-batch's activations are held at a time.
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let micro = self.plan.batch_size.max(1);
        let total = idx.len().max(1) as f64;
        self.trained.zero_grads();
        let (mut loss, mut logits) = (0.0, Vec::with_capacity(idx.len()));
        for (m, (ids, ts)) in idx.chunks(micro).zip(targets.chunks(micro)).enumerate() {
            let batch = TokenBatch::pad(ids.iter().map(|&i| &self.train.encodings[i]), Padding::Longest, self.pad_id);
            let share = ids.len() as f64 / total;
            let (l, y) = self.accumulate(&batch, ts, step, m, share)?;
            loss += share * l;
            logits.extend(y);
        }
        self.apply(step, lr);
        Ok((loss, logits))
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let (val, bs, pad) = (self.val, self.plan.eval_batch_size, self.pad_id);
        let logits = run_batched_tokens::<_, TrainError>(val.encodings, bs, pad, |batch, _| self.logits(batch))?;
        Ok(EvalReport::from_logits(&logits, val.targets, self.num_classes, self.plan.threshold as f32))
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        self.trained.save(checkpoints, state, &self.params.names, &self.params.values)
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        self.stale = true;
        self.trained.load(checkpoints, &self.params.names, &mut self.params.values)
    }

    fn keep_best(&mut self) {
        self.trained.keep_best(&self.params.values);
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        self.stale = true;
        self.trained.restore_best(&mut self.params.values)
    }
}

impl FastLearner<'_> {
    /// One optimizer step on a padded batch, whole (what [`Learner::step`] does for a step of one
    /// micro-batch; the benchmark calls it directly).
    pub fn step_batch(&mut self, batch: &TokenBatch, targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        self.trained.zero_grads();
        let out = self.accumulate(batch, targets, step, 0, 1.0)?;
        self.apply(step, lr);
        Ok(out)
    }

    /// The forward and backward pass of micro-batch `micro` of optimizer step `step`: its mean
    /// loss and logits; its gradients, scaled by `share` (its examples' fraction of the step's),
    /// are added to those accumulated since `zero_grads`. A non-finite loss is refused before
    /// any update.
    fn accumulate(
        &mut self,
        batch: &TokenBatch,
        targets: &[Target],
        step: usize,
        micro: usize,
        share: f64,
    ) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let rows = Rows::new(batch, &self.spec.config)?;
        // Dropout masks by micro-batch; the first keeps the step's own seed, so a step of one
        // micro-batch draws exactly what it did before accumulation existed.
        let seed = match micro {
            0 => step_seed(self.plan.seed, step),
            m => mix64(step_seed(self.plan.seed, step), m as u64),
        };
        let logits = self.run(&rows, Mode::train_for(self.spec.pooling, Some(seed)));
        let k = self.params.layout.head_out.d_out;
        let (loss, mut dlogits) = loss_and_grad(&logits, k, targets, self.plan.loss_terms());
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss });
        }
        if share != 1.0 {
            dlogits.iter_mut().for_each(|g| *g *= share as f32);
        }
        backward(&self.params, &self.spec, &rows, &mut self.cache, &dlogits, &mut self.trained.grads);
        Ok((loss, logits.chunks(k).map(<[f32]>::to_vec).collect()))
    }

    /// AdamW (after clipping) on the gradients accumulated for `step`.
    fn apply(&mut self, step: usize, lr: f64) {
        self.trained.update(&mut self.params.values, &self.params.decay, self.plan, step, lr);
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::example_loss;

    fn weighted(w: &[f64]) -> LossTerms<'_> {
        LossTerms { class_weights: Some(w), ..LossTerms::PLAIN }
    }

    #[test]
    fn loss_gradients_match_the_closed_forms() {
        let (loss, g) = loss_and_grad(&[2.0, -1.0], 1, &[Target::Class(1), Target::Class(0)], LossTerms::PLAIN);
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + (-1.0f64).exp()).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
        assert!((g[0] - (sig(2.0) - 1.0) / 2.0).abs() < 1e-6 && (g[1] - sig(-1.0) / 2.0).abs() < 1e-6);
        let (loss, g) = loss_and_grad(&[1.0, 2.0, 3.0], 3, &[Target::Class(2)], LossTerms::PLAIN);
        let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((loss - (lse - 3.0)).abs() < 1e-5);
        assert!((g.iter().sum::<f32>()).abs() < 1e-6 && g[2] < 0.0);
    }

    /// The multi-label gradient against central differences of the loss itself.
    #[test]
    fn label_set_gradients_match_finite_differences() {
        let logits = [0.3f32, -1.2, 2.0, 0.7, 0.1, -0.4];
        let targets = [Target::labels(vec![0, 2]), Target::labels(vec![1])];
        let (_, g) = loss_and_grad(&logits, 3, &targets, LossTerms::PLAIN);
        for i in 0..logits.len() {
            let at = |d: f32| {
                let mut x = logits;
                x[i] += d;
                loss_and_grad(&x, 3, &targets, LossTerms::PLAIN).0
            };
            let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
            assert!((f64::from(g[i]) - numeric).abs() < 1e-4, "logit {i}: {} vs {numeric}", g[i]);
        }
    }

    /// Keras' `class_weight`: each example's loss times its class's weight, then the mean over
    /// the batch; the gradients of that weighted loss against central differences, for one logit
    /// (binary) and for a softmax.
    #[test]
    fn class_weights_scale_each_examples_loss_and_gradient() {
        let weights = [0.5, 3.0, 2.0];
        for (k, logits, targets) in [
            (1, vec![2.0f32, -1.0, 0.4], vec![Target::Class(1), Target::Class(0), Target::Class(1)]),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::Class(2), Target::Class(0)]),
        ] {
            let w = &weights[..k.max(2)];
            let (loss, g) = loss_and_grad(&logits, k, &targets, weighted(w));
            let want: f64 = logits.chunks(k).zip(&targets).map(|(row, t)| w[t.class().unwrap()] * example_loss(row, t)).sum::<f64>()
                / targets.len() as f64;
            assert!((loss - want).abs() < 1e-9, "{k} outputs: {loss} vs {want}");
            let (unweighted, _) = loss_and_grad(&logits, k, &targets, LossTerms::PLAIN);
            assert!((loss - unweighted).abs() > 1e-3, "the weights changed nothing");
            for i in 0..logits.len() {
                let at = |d: f32| {
                    let mut x = logits.clone();
                    x[i] += d;
                    loss_and_grad(&x, k, &targets, weighted(w)).0
                };
                let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
                assert!((f64::from(g[i]) - numeric).abs() < 1e-4, "{k} outputs, logit {i}: {} vs {numeric}", g[i]);
            }
        }
    }

    /// Label smoothing: the loss is the smoothed one, and its gradients match central
    /// differences for one logit, a softmax and label sets, with class weights on as well.
    #[test]
    fn smoothed_losses_and_their_gradients() {
        let w = [0.5, 3.0, 2.0];
        for (k, logits, targets, class_weights) in [
            (1, vec![2.0f32, -1.0, 0.4], vec![Target::Class(1), Target::Class(0), Target::Class(1)], Some(&w[..2])),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::Class(2), Target::Class(0)], Some(&w[..])),
            (3, vec![0.3, -1.2, 2.0, 0.7, 0.1, -0.4], vec![Target::labels(vec![0, 2]), Target::labels(vec![1])], None),
        ] {
            let terms = LossTerms { class_weights, label_smoothing: 0.2 };
            let (loss, g) = loss_and_grad(&logits, k, &targets, terms);
            let want: f64 = logits
                .chunks(k)
                .zip(&targets)
                .map(|(row, t)| class_weight(class_weights, t) * smoothed_example_loss(row, t, 0.2))
                .sum::<f64>()
                / targets.len() as f64;
            assert!((loss - want).abs() < 1e-9, "{k} outputs: {loss} vs {want}");
            let plain = loss_and_grad(&logits, k, &targets, LossTerms { label_smoothing: 0.0, ..terms });
            assert!((loss - plain.0).abs() > 1e-3, "{k} outputs: smoothing changed nothing");
            for i in 0..logits.len() {
                let at = |d: f32| {
                    let mut x = logits.clone();
                    x[i] += d;
                    loss_and_grad(&x, k, &targets, terms).0
                };
                let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
                assert!((f64::from(g[i]) - numeric).abs() < 1e-4, "{k} outputs, logit {i}: {} vs {numeric}", g[i]);
            }
        }
    }
}
