//! The kernels model packed once for inference: [`FastEncoder`] (the encoder alone: `embed`,
//! embedding jobs) and [`FastClassifier`] (encoder, pooling and head: predict, evaluate, serve,
//! bench, the frozen-encoder features). Both run the one forward pass in evaluation mode.

use std::sync::Mutex;

use bertkit_kernels::{Int8Error, Precision};

use super::cache::Cache;
use super::classifier::{NetSpec, forward, pool};
use super::encoder::{Mode, Weights, encode};
use super::{BertModel, Int8Store, Packed, Params, Rows, TokenBatchError};
use crate::model::{ModelConfig, Pooling};
use crate::tokenize::TokenBatch;

/// What [`FastEncoder::forward`] returns, row-major.
pub struct FastOutput {
    pub batch: usize,
    pub seq_len: usize,
    /// `[B·T, H]`: the last layer's states.
    pub sequence: Vec<f32>,
    /// `[B, H]`, when the checkpoint has a pooler.
    pub pooled: Option<Vec<f32>>,
    /// Every depth's output `[B·T, H]` (the last equals `sequence`), from
    /// [`FastEncoder::forward_all`] only.
    pub hidden_states: Vec<Vec<f32>>,
}

/// A store packed for inference, with the buffers its calls reuse.
struct Packing {
    /// The store without the dense weights (those live in `packed` only).
    params: Params,
    packed: Packed,
    /// A batch of 32 × 128 needs ~60 MB of activations; fresh ones cost the kernel zeroing
    /// every page again (10 % of inference time).
    scratch: Mutex<Cache>,
}

impl Packing {
    fn new(params: &Params, precision: Precision) -> Self {
        Self::of(Packed::new(params, precision), params)
    }

    fn of(packed: Packed, params: &Params) -> Self {
        Self { packed, params: Packed::strip(params), scratch: Mutex::new(Cache::default()) }
    }

    /// Runs `f` with the weights and a cache: the kept one, or a fresh one while another call
    /// holds it (or after a call panicked and poisoned the lock).
    fn run<R>(&self, f: impl FnOnce(Weights<'_>, &mut Cache) -> R) -> R {
        let mut cache = self.scratch.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        let r = f(Weights { params: &self.params, packed: &self.packed }, &mut cache);
        if let Ok(mut c) = self.scratch.lock() {
            *c = cache;
        }
        r
    }

    fn precision(&self) -> Precision {
        self.packed.precision(&self.params.layout)
    }
}

/// The encoder alone, packed once.
pub struct FastEncoder {
    inner: Packing,
    config: ModelConfig,
}

impl FastEncoder {
    /// Packs `params`' encoder once (`precision` for the layers' GEMM operands).
    pub fn new(params: &Params, config: &ModelConfig, precision: Precision) -> Self {
        Self { inner: Packing::new(params, precision), config: config.clone() }
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Runs the encoder on a right-padded batch (refused, naming the place, where the batch
    /// does not fit the model's tables: [`Rows::new`]).
    pub fn forward(&self, batch: &TokenBatch) -> Result<FastOutput, TokenBatchError> {
        self.run(batch, false)
    }

    /// [`Self::forward`], keeping every depth's output too (TF Hub's `encoder_outputs`).
    pub fn forward_all(&self, batch: &TokenBatch) -> Result<FastOutput, TokenBatchError> {
        self.run(batch, true)
    }

    /// Pooled text vectors `[B, H]` (`pooling` as burn's `Pooling::apply`).
    pub fn features(&self, batch: &TokenBatch, pooling: Pooling) -> Result<Vec<f32>, TokenBatchError> {
        let rows = Rows::new(batch, &self.config)?;
        Ok(self.inner.run(|w, cache| {
            encode(w, &self.config, &rows, Mode::eval_for(pooling), cache);
            pool(w, self.config.hidden_size, &rows, pooling, cache).to_vec()
        }))
    }

    fn run(&self, batch: &TokenBatch, states: bool) -> Result<FastOutput, TokenBatchError> {
        let rows = Rows::new(batch, &self.config)?;
        Ok(self.inner.run(|w, cache| {
            encode(w, &self.config, &rows, Mode::Eval { states }, cache);
            let pooled = w.params.layout.pooler.map(|_| pool(w, self.config.hidden_size, &rows, Pooling::Pooler, cache).to_vec());
            let out = cache.out;
            FastOutput {
                batch: batch.batch_size,
                seq_len: batch.seq_len,
                sequence: std::mem::take(&mut cache.xs[out]),
                pooled,
                hidden_states: std::mem::take(&mut cache.states),
            }
        }))
    }
}

/// Encoder, pooling and head, packed once.
pub struct FastClassifier {
    inner: Packing,
    spec: NetSpec,
}

impl FastClassifier {
    /// Packs `model` once for inference (`precision` for the encoder layers' GEMM operands; the
    /// projection, pooler and head stay fp32).
    pub fn new(model: &BertModel, precision: Precision) -> Self {
        Self { inner: Packing::new(&model.params, precision), spec: NetSpec::of(model, precision) }
    }

    /// Packs `model` for int8 inference with the encoder layers' int8 weights from `stored`
    /// (quantized ahead of time) rather than quantized now.
    pub fn with_int8(model: &BertModel, stored: &Int8Store) -> Result<Self, Int8Error> {
        let packed = Packed::with_int8(&model.params, stored)?;
        Ok(Self { inner: Packing::of(packed, &model.params), spec: NetSpec::of(model, Precision::Int8) })
    }

    /// The precision the encoder's GEMMs actually use (bf16 falls back to fp32 on levels without
    /// bf16 GEMMs).
    pub fn precision(&self) -> Precision {
        self.inner.precision()
    }

    /// Pooled text vectors `[B, H]`: the head's input.
    pub fn features(&self, batch: &TokenBatch) -> Result<Vec<f32>, TokenBatchError> {
        let (cfg, pooling) = (&self.spec.config, self.spec.pooling);
        let rows = Rows::new(batch, cfg)?;
        Ok(self.inner.run(|w, cache| {
            encode(w, cfg, &rows, Mode::eval_for(pooling), cache);
            pool(w, cfg.hidden_size, &rows, pooling, cache).to_vec()
        }))
    }

    /// Logits, one row per text.
    pub fn logits(&self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>, TokenBatchError> {
        let rows = Rows::new(batch, &self.spec.config)?;
        let y = self.inner.run(|w, cache| forward(w, &self.spec, &rows, Mode::eval_for(self.spec.pooling), cache));
        let k = self.inner.params.layout.head_out.d_out.max(1);
        Ok(y.chunks(k).map(<[f32]>::to_vec).collect())
    }
}
