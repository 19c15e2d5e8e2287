//! The frozen-encoder run's learner: only the classification head trains, on pooled features the
//! encoder computed once (feature extraction), on the kernels. Every epoch after the feature
//! pass costs only the head's small GEMMs.

use bertkit_kernels::Precision;

use super::backward::head_backward;
use super::learner::loss_and_grad;
use super::optim::{Files, Trained};
use crate::data::Target;
use crate::metrics::EvalReport;
use crate::model::fast::{BertModel, Cache, NetSpec, Packed, Params, Weights, head_forward};
use crate::train::run_loop::step_seed;
use crate::train::{CheckpointDir, Learner, RunState, TrainError, TrainPlan};

const FILES: Files = Files {
    state: "head.safetensors",
    best: "best-head.safetensors",
    missing: "it was not written by a frozen-encoder run of this version; rerun without --resume",
};

/// Features `[N, H]` row-major with their targets.
pub struct Features<'a> {
    pub rows: Vec<f32>,
    pub targets: &'a [Target],
}

pub struct HeadLearner<'a> {
    params: Params,
    /// The head's weights packed, refreshed after every change.
    packed: Packed,
    /// The head's tensors: the only ones trained (and checkpointed).
    trained: Trained,
    spec: NetSpec,
    cache: Cache,
    plan: &'a TrainPlan,
    train: Features<'a>,
    val: Features<'a>,
    width: usize,
    num_classes: usize,
}

impl<'a> HeadLearner<'a> {
    pub fn new(model: &BertModel, plan: &'a TrainPlan, (train, val): (Features<'a>, Features<'a>), num_classes: usize) -> Self {
        let params = model.params.clone();
        let lay = &params.layout;
        let slots: Vec<usize> = lay.head_hidden.iter().chain([&lay.head_out]).flat_map(|s| [s.w, s.b]).collect();
        let width = lay.head_hidden.unwrap_or(lay.head_out).d_in;
        Self {
            packed: Packed::head(&params),
            trained: Trained::new(&params.values, slots, FILES),
            spec: NetSpec::of(model, Precision::F32),
            cache: Cache::default(),
            plan,
            train,
            val,
            width,
            num_classes,
            params,
        }
    }

    /// The store with the trained head.
    pub fn finish(self) -> Params {
        self.params
    }

    /// Logits `[B·K]` of the feature rows `rows` (`seed`: training, dropout on).
    fn logits(&mut self, rows: impl Iterator<Item = usize>, from_train: bool, seed: Option<u64>) -> (Vec<f32>, usize) {
        let src = if from_train { &self.train.rows } else { &self.val.rows };
        let x = &mut self.cache.head_in;
        x.clear();
        let mut b = 0;
        for r in rows {
            x.extend_from_slice(&src[r * self.width..(r + 1) * self.width]);
            b += 1;
        }
        let w = Weights { params: &self.params, packed: &self.packed };
        (head_forward(w, &self.spec, b, seed, &mut self.cache), b)
    }
}

impl Learner for HeadLearner<'_> {
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let seed = step_seed(self.plan.seed, step);
        let (logits, b) = self.logits(idx.iter().copied(), true, Some(seed));
        let k = self.params.layout.head_out.d_out;
        let (loss, dlogits) = loss_and_grad(&logits, k, targets, self.plan.loss_terms());
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss });
        }
        self.trained.zero_grads();
        let mut packs = std::mem::take(&mut self.cache.backward.packs);
        head_backward(&self.params, &self.spec, b, &self.cache, &dlogits, &mut self.trained.grads, &mut packs);
        self.cache.backward.packs = packs;
        self.trained.update(&mut self.params.values, &self.params.decay, self.plan, step, lr);
        self.packed.refresh(&self.params);
        Ok((loss, logits.chunks(k).map(<[f32]>::to_vec).collect()))
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let n = self.val.targets.len();
        let k = self.params.layout.head_out.d_out;
        let bs = self.plan.eval_batch_size.max(1);
        let mut rows = Vec::with_capacity(n);
        for start in (0..n).step_by(bs) {
            let (logits, _) = self.logits(start..(start + bs).min(n), false, None);
            rows.extend(logits.chunks(k).map(<[f32]>::to_vec));
        }
        Ok(EvalReport::from_logits(&rows, self.val.targets, self.num_classes, self.plan.threshold as f32))
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        self.trained.save(checkpoints, state, &self.params.names, &self.params.values)
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let state = self.trained.load(checkpoints, &self.params.names, &mut self.params.values)?;
        self.packed.refresh(&self.params);
        Ok(state)
    }

    fn keep_best(&mut self) {
        self.trained.keep_best(&self.params.values);
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        self.trained.restore_best(&mut self.params.values)?;
        self.packed.refresh(&self.params);
        Ok(())
    }
}
