//! The GloVe + BiLSTM baseline's backward pass and learner on the kernels: from the logits'
//! gradient back through the dense layer, both BiLSTMs (through time, per direction) and their
//! input dropouts into the embedding table (when it trains), then AdamW and clipping as the
//! other learners do.

use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::lstm::{Steps, lstm_backward};
use bertkit_kernels::{Epilogue, Mat, PackedB, Precision, gemm_ex};

use super::learner::loss_and_grad;
use super::optim::{Files, Trained};
use crate::data::Target;
use crate::metrics::EvalReport;
use crate::model::fast::{BiLstmCache, BiLstmModel, BiLstmPacks, EMBEDDING, OUTPUT_B, OUTPUT_W, direction};
use crate::model::run_batched_tokens;
use crate::tokenize::{Padding, TokenBatch};
use crate::train::run_loop::step_seed;
use crate::train::{CheckpointDir, Learner, RunState, Split, TrainError, TrainPlan};

const FILES: Files = Files {
    state: "bilstm.safetensors",
    best: "best-bilstm.safetensors",
    missing: "it was written by the burn trainer; resume with --engine burn",
};

/// `m` `[rows, cols]` packed as its transpose `[cols, rows]`.
fn packed_t(m: &[f32], rows: usize, cols: usize) -> PackedB {
    let mut p = PackedB::empty();
    p.repack(Mat::transposed(m, cols, rows), Precision::F32);
    p
}

/// Gradients of the loss into `grads` (accumulated) from `dlogits` `[B, K]`, using the cache of
/// the [`BiLstmModel::forward`] call on the same batch.
pub fn bilstm_backward(model: &BiLstmModel, cache: &BiLstmCache, dlogits: &[f32], grads: &mut [Vec<f32>]) {
    let spec = &model.spec;
    let (b, t, u, e, k) = (cache.batch, cache.t, spec.units, spec.embedding_dim, spec.num_outputs);
    let v = &model.values;
    // Dense: dW += lastᵀ·dy, db += Σ dy, d_last = dy·Wᵀ.
    for row in dlogits.chunks_exact(k) {
        grads[OUTPUT_B].iter_mut().zip(row).for_each(|(g, d)| *g += d);
    }
    let mut dy = PackedB::empty();
    dy.repack(Mat::rows(dlogits, b, k), Precision::F32);
    gemm_ex(Mat::transposed(&cache.last, 2 * u, b), None, &dy, None, Epilogue::None, &mut grads[OUTPUT_W], true);
    let mut d_last = vec![0.0f32; b * 2 * u];
    gemm_ex(Mat::rows(dlogits, b, k), None, &packed_t(&v[OUTPUT_W], 2 * u, k), None, Epilogue::None, &mut d_last, false);

    // The second BiLSTM's outputs are read only at each direction's final state.
    let (mut dh_fwd, mut dh_bwd) = (vec![0.0f32; b * t * u], vec![0.0f32; b * t * u]);
    for (bi, &len) in cache.lens.iter().enumerate() {
        dh_fwd[(bi * t + len.min(t) - 1) * u..][..u].copy_from_slice(&d_last[bi * 2 * u..bi * 2 * u + u]);
        dh_bwd[(bi * t) * u..][..u].copy_from_slice(&d_last[bi * 2 * u + u..(bi + 1) * 2 * u]);
    }
    let mut dx1 = vec![0.0f32; b * t * 2 * u];
    direction_backward(model, cache, 2, &cache.x1, &dh_fwd, grads, (&mut dx1, false));
    direction_backward(model, cache, 3, &cache.x1, &dh_bwd, grads, (&mut dx1, true));
    DropoutMask::at(cache.seed, 2, spec.dropout_second).apply(&mut dx1, 0);

    // Split back into each first-layer direction's output gradient.
    for (dh, half) in [(&mut dh_fwd, 0), (&mut dh_bwd, 1)] {
        for (dst, src) in dh.chunks_exact_mut(u).zip(dx1.chunks_exact(2 * u)) {
            dst.copy_from_slice(&src[half * u..(half + 1) * u]);
        }
    }
    let mut dx0 = vec![0.0f32; b * t * e];
    direction_backward(model, cache, 0, &cache.x0, &dh_fwd, grads, (&mut dx0, false));
    direction_backward(model, cache, 1, &cache.x0, &dh_bwd, grads, (&mut dx0, true));
    if spec.trainable_embeddings {
        DropoutMask::at(cache.seed, 1, spec.dropout_first).apply(&mut dx0, 0);
        let table = &mut grads[EMBEDDING];
        for (&id, g) in cache.ids.iter().zip(dx0.chunks_exact(e)) {
            table[id * e..(id + 1) * e].iter_mut().zip(g).for_each(|(a, v)| *a += v);
        }
    }
}

/// One direction's backward: its weight gradients into `grads`, its input's into `dx`.
fn direction_backward(
    model: &BiLstmModel,
    cache: &BiLstmCache,
    k: usize,
    x: &[f32],
    dh: &[f32],
    grads: &mut [Vec<f32>],
    dx: (&mut [f32], bool),
) {
    let s = direction(k);
    let u = model.spec.units;
    let d = model.values[s.wx].len() / (4 * u);
    let (wx_t, wh_t) = (packed_t(&model.values[s.wx], d, 4 * u), packed_t(&model.values[s.wh], u, 4 * u));
    let steps = Steps { batch: cache.batch, t: cache.t, lens: &cache.lens, reverse: k % 2 == 1 };
    let (mut dwx, mut dwh, mut db) = (std::mem::take(&mut grads[s.wx]), std::mem::take(&mut grads[s.wh]), std::mem::take(&mut grads[s.bx]));
    lstm_backward(x, steps, (&wx_t, &wh_t), u, &cache.directions[k], dh, (&mut dwx, &mut dwh, &mut db), dx);
    // The hidden transform's bias adds to the same pre-activation: the same gradient.
    grads[s.bh].iter_mut().zip(&db).for_each(|(g, v)| *g += v);
    (grads[s.wx], grads[s.wh], grads[s.bx]) = (dwx, dwh, db);
}

pub struct BiLstmLearner<'a> {
    model: BiLstmModel,
    /// `model`'s weights packed; repacked before the first forward pass after each change.
    packs: BiLstmPacks,
    stale: bool,
    trained: Trained,
    cache: BiLstmCache,
    plan: &'a TrainPlan,
    train: Split<'a>,
    val: Split<'a>,
    pad_id: u32,
    num_classes: usize,
}

impl<'a> BiLstmLearner<'a> {
    pub fn new(model: BiLstmModel, plan: &'a TrainPlan, (train, val): (Split<'a>, Split<'a>), pad_id: u32, num_classes: usize) -> Self {
        // A frozen embedding table is neither updated nor given moments.
        let slots: Vec<usize> = (0..model.values.len()).filter(|&i| i != EMBEDDING || model.spec.trainable_embeddings).collect();
        let trained = Trained::new(&model.values, slots, FILES);
        Self { trained, packs: model.pack(), stale: false, cache: BiLstmCache::default(), plan, train, val, pad_id, num_classes, model }
    }

    /// Brings the packs up to date with the weights.
    fn refresh(&mut self) {
        if std::mem::take(&mut self.stale) {
            self.packs = self.model.pack();
        }
    }

    pub fn finish(self) -> BiLstmModel {
        self.model
    }
}

impl Learner for BiLstmLearner<'_> {
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let batch = TokenBatch::pad(idx.iter().map(|&i| &self.train.encodings[i]), Padding::Longest, self.pad_id);
        let seed = step_seed(self.plan.seed, step);
        self.refresh();
        let logits = self.model.forward(&self.packs, &batch, Some(seed), &mut self.cache)?;
        let k = self.model.spec.num_outputs;
        let (loss, dlogits) = loss_and_grad(&logits, k, targets, self.plan.loss_terms());
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step, loss });
        }
        self.trained.zero_grads();
        bilstm_backward(&self.model, &self.cache, &dlogits, &mut self.trained.grads);
        self.trained.update(&mut self.model.values, &self.model.decay, self.plan, step, lr);
        self.stale = true;
        Ok((loss, logits.chunks(k).map(<[f32]>::to_vec).collect()))
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let (val, bs, pad) = (self.val, self.plan.eval_batch_size, self.pad_id);
        self.refresh();
        let (model, packs) = (&self.model, &self.packs);
        let logits = run_batched_tokens::<_, TrainError>(val.encodings, bs, pad, |batch, _| Ok(model.logits(packs, batch)?))?;
        Ok(EvalReport::from_logits(&logits, val.targets, self.num_classes, self.plan.threshold as f32))
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        self.trained.save(checkpoints, state, &self.model.names, &self.model.values)
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        self.stale = true;
        self.trained.load(checkpoints, &self.model.names, &mut self.model.values)
    }

    fn keep_best(&mut self) {
        self.trained.keep_best(&self.model.values);
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        self.stale = true;
        self.trained.restore_best(&mut self.model.values)
    }
}
