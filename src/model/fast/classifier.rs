//! Pooling and the classification head on top of [`encode`]: the whole classifier's forward pass
//! (mirrors transformers' `<Family>ForSequenceClassification`), for inference and training. The
//! head's dropout sites and what it keeps are what `train::fast::backward` differentiates.

use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::{Epilogue, Precision, RowSet};

use super::cache::Cache;
use super::encoder::{Mode, Weights, dense, encode};
use super::{BertModel, Rows};
use crate::model::{HeadActivation, ModelConfig, Pooling};

/// The first dropout site of the head (the encoder's are below it).
pub const HEAD_SITE: u64 = 1 << 20;

/// What the network needs besides the parameters.
#[derive(Clone, Debug)]
pub struct NetSpec {
    pub config: ModelConfig,
    pub pooling: Pooling,
    pub head_activation: HeadActivation,
    pub head_dropout: f32,
    /// Dropout on the head's input too (not in DistilBERT's `pre_classifier` head).
    pub head_input_dropout: bool,
    /// The encoder layers' GEMM precision.
    pub precision: Precision,
}

impl NetSpec {
    pub fn of(model: &BertModel, precision: Precision) -> Self {
        Self {
            config: model.config.clone(),
            pooling: model.pooling,
            head_activation: model.head.activation,
            head_dropout: model.head.dropout as f32,
            head_input_dropout: model.head_input_dropout(),
            precision,
        }
    }

    /// Dropout on the head's input.
    pub fn head_input_p(&self) -> f64 {
        if self.head_input_dropout { f64::from(self.head_dropout) } else { 0.0 }
    }
}

/// The head's hidden activation, in place.
pub fn activate(act: HeadActivation, x: &mut [f32]) {
    match act {
        HeadActivation::Relu => bertkit_kernels::ops::relu(x),
        HeadActivation::Tanh => bertkit_kernels::ops::tanh(x),
        HeadActivation::Gelu => bertkit_kernels::ops::gelu_par(x),
    }
}

/// Pools the encoder's output into `cache.pooled_in` (`[B, H]`: the `[CLS]` rows, or the means
/// over real tokens) and, for `Pooling::Pooler` with a pooler, `cache.pooler_out` =
/// tanh(dense(`[CLS]`)) (transformers' `BertPooler`). Returns the features: the pooler's output
/// or the pooled states. A missing pooler (loading rules it out) falls back to `[CLS]`.
pub fn pool<'c>(w: Weights<'_>, h: usize, rows: &Rows, pooling: Pooling, cache: &'c mut Cache) -> &'c [f32] {
    // After `Mode::EvalFirst` the output holds the `[CLS]` rows alone, which `Mode::eval_for`
    // asks for only when the pooling reads nothing else.
    let (b, t) = (rows.batch, if cache.first_rows { 1 } else { rows.t });
    debug_assert!(!(cache.first_rows && pooling == Pooling::Mean), "mean pooling needs every row");
    let seq = &cache.xs[cache.out];
    let pooled = &mut cache.pooled_in;
    pooled.clear();
    for bi in 0..b {
        let text = &seq[bi * t * h..(bi + 1) * t * h];
        if pooling == Pooling::Mean {
            let len = rows.lens[bi].max(1);
            let start = pooled.len();
            pooled.resize(start + h, 0.0);
            for row in text.chunks_exact(h).take(len) {
                pooled[start..].iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            pooled[start..].iter_mut().for_each(|v| *v /= len as f32);
        } else {
            pooled.extend_from_slice(&text[..h]);
        }
    }
    match (pooling, w.params.layout.pooler) {
        (Pooling::Pooler, Some(ps)) => {
            dense(w, ps, (&cache.pooled_in, None), b, Epilogue::None, &mut cache.pooler_out, RowSet::All);
            bertkit_kernels::ops::tanh(&mut cache.pooler_out);
            &cache.pooler_out
        }
        _ => &cache.pooled_in,
    }
}

/// Logits `[B, K]` of `rows`: encoder, pooling, head. In training mode `cache` keeps what the
/// backward pass reads.
pub fn forward(w: Weights<'_>, spec: &NetSpec, rows: &Rows, mode: Mode, cache: &mut Cache) -> Vec<f32> {
    encode(w, &spec.config, rows, mode, cache);
    let features = pool(w, spec.config.hidden_size, rows, spec.pooling, cache).to_vec();
    cache.head_in = features;
    head_forward(w, spec, rows.batch, mode.seed(), cache)
}

/// The head on `cache.head_in` (`[B, H]` features, consumed: dropout is applied in place):
/// dropout → [dense → activation → dropout] → dense, keeping what the head's backward reads.
/// `seed`: training, dropout on. Logits `[B, K]`.
pub fn head_forward(w: Weights<'_>, spec: &NetSpec, b: usize, seed: Option<u64>, cache: &mut Cache) -> Vec<f32> {
    let lay = &w.params.layout;
    cache.seed = seed;
    DropoutMask::at(seed, HEAD_SITE, spec.head_input_p()).apply(&mut cache.head_in, 0);
    let mut logits = Vec::new();
    let last_in = if let Some(hs) = lay.head_hidden {
        dense(w, hs, (&cache.head_in, None), b, Epilogue::None, &mut cache.hidden_pre, RowSet::All);
        cache.hidden_out.clear();
        cache.hidden_out.extend_from_slice(&cache.hidden_pre);
        activate(spec.head_activation, &mut cache.hidden_out);
        DropoutMask::at(seed, HEAD_SITE + 1, f64::from(spec.head_dropout)).apply(&mut cache.hidden_out, 0);
        &cache.hidden_out
    } else {
        &cache.head_in
    };
    dense(w, lay.head_out, (last_in, None), b, Epilogue::None, &mut logits, RowSet::All);
    logits
}

impl Cache {
    /// The head's hidden activation before its dropout (what the activation's derivative needs
    /// for tanh): recomputed, it is a `[B, hidden]` matrix.
    pub fn hidden_out_pre_dropout(&self, spec: &NetSpec) -> Vec<f32> {
        let mut y = self.hidden_pre.clone();
        activate(spec.head_activation, &mut y);
        y
    }
}
