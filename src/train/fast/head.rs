//! The frozen-encoder run's learner: only the classification head trains, on pooled features the
//! encoder computed once (feature extraction), on the kernels. Every epoch after the feature
//! pass costs only the head's small GEMMs.

use bertkit_kernels::Precision;

use super::backward::head_backward;
use super::learner::{best_of, loss_and_grad, read_values, update, write_values};
use super::network::{Cache, NetSpec, head_forward};
use crate::data::Target;
use crate::metrics::EvalReport;
use crate::model::fast::{BertModel, Params};
use crate::train::run_loop::step_seed;
use crate::train::{CheckpointDir, Learner, RunState, TrainError, TrainPlan};

const STATE_FILE: &str = "head.safetensors";
const BEST_FILE: &str = "best-head.safetensors";

/// Features `[N, H]` row-major with their targets.
pub struct Features<'a> {
    pub rows: Vec<f32>,
    pub targets: &'a [Target],
}

pub struct HeadLearner<'a> {
    params: Params,
    /// The head's tensors: the only ones trained (and checkpointed).
    slots: Vec<usize>,
    /// Gradients and AdamW moments, empty outside `slots`.
    grads: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    best: Option<Vec<Vec<f32>>>,
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
        let zeros = || -> Vec<Vec<f32>> {
            (0..params.values.len()).map(|i| if slots.contains(&i) { vec![0.0; params.values[i].len()] } else { Vec::new() }).collect()
        };
        let (grads, m, v) = (zeros(), zeros(), zeros());
        let width = lay.head_hidden.unwrap_or(lay.head_out).d_in;
        Self {
            grads,
            m,
            v,
            best: None,
            spec: NetSpec::of(model, Precision::F32),
            cache: Cache::default(),
            plan,
            train,
            val,
            width,
            num_classes,
            slots,
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
        (head_forward(&self.params, &self.spec, b, seed, &mut self.cache), b)
    }
}

impl Learner for HeadLearner<'_> {
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let seed = step_seed(self.plan.seed, step);
        let (logits, b) = self.logits(idx.iter().copied(), true, Some(seed));
        let k = self.params.layout.head_out.d_out;
        let (loss, dlogits) = loss_and_grad(&logits, k, targets);
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss });
        }
        for &i in &self.slots {
            self.grads[i].iter_mut().for_each(|g| *g = 0.0);
        }
        let mut packs = std::mem::take(&mut self.cache.packs);
        head_backward(&self.params, &self.spec, b, &self.cache, &dlogits, &mut self.grads, &mut packs);
        self.cache.packs = packs;
        update(&mut self.params.values, &self.params.decay, (&mut self.grads, &mut self.m, &mut self.v), &self.slots, self.plan, step, lr);
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
        let names = &self.params.names;
        checkpoints.save_with(state, |dir| {
            write_values(&dir.join(STATE_FILE), names, &self.slots, &[("value", &self.params.values), ("m", &self.m), ("v", &self.v)])?;
            match &self.best {
                Some(best) => write_values(&dir.join(BEST_FILE), names, &self.slots, &[("best", best)]),
                None => Ok(()),
            }
        })
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let (dir, state) = checkpoints.load_state()?;
        let path = dir.join(STATE_FILE);
        if !path.is_file() {
            return Err(TrainError::Checkpoint(format!(
                "{} has no {STATE_FILE}: it was not written by a frozen-encoder run of this version; rerun without --resume",
                dir.display()
            )));
        }
        let names = self.params.names.clone();
        let mut values = self.params.values.clone();
        read_values(&path, &names, &self.slots, &mut [("value", &mut values), ("m", &mut self.m), ("v", &mut self.v)])?;
        self.params.values = values;
        self.best = best_of(&dir.join(BEST_FILE), &names, &self.slots, &self.m)?;
        Ok(state)
    }

    fn keep_best(&mut self) {
        let (values, slots) = (&self.params.values, &self.slots);
        let best = self.best.get_or_insert_with(|| vec![Vec::new(); values.len()]);
        for &i in slots {
            best[i].clear();
            best[i].extend_from_slice(&values[i]);
        }
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        let best = self.best.as_ref().ok_or_else(|| TrainError::Backend("no best weights were kept".into()))?;
        for &i in &self.slots {
            self.params.values[i].copy_from_slice(&best[i]);
        }
        Ok(())
    }
}
