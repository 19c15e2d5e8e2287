//! The classifier's training forward pass on the kernels, keeping what [`backward`](super::backward)
//! reads. Mirrors [`BertClassifier::forward`] in training mode:
//! transformers' `BertEmbeddings`, `BertLayer` (post-LN) and the head, with dropout wherever
//! they have it; the gradients are PyTorch autograd's for the same graph.

use bertkit_kernels::attention_train::{AttentionShape, attention_forward};
use bertkit_kernels::grad::{Activation as FfnActivation, DropoutMask, activation_into, layer_norm_train};
use bertkit_kernels::{Epilogue, Mat, PackedB, Precision, gemm_ex, to_bf16_bits};

use crate::model::fast::{BertModel, DenseSlots, Layout, NormSlots, Params};
use crate::model::{Activation, Family, HeadActivation, ModelConfig, Pooling};
use crate::tokenize::TokenBatch;

/// What the network needs besides the parameters.
#[derive(Clone, Debug)]
pub struct NetSpec {
    pub config: ModelConfig,
    pub pooling: Pooling,
    pub head_activation: HeadActivation,
    pub head_dropout: f32,
    /// Dropout on the head's input too (not in DistilBERT's `pre_classifier` head).
    pub head_input_dropout: bool,
    pub precision: Precision,
}

impl NetSpec {
    /// Dropout after the attention's output projection (DistilBERT's `MultiHeadSelfAttention`
    /// has none).
    pub(super) fn attention_output_dropout(&self) -> f64 {
        if self.config.family == Family::DistilBert { 0.0 } else { self.config.hidden_dropout_prob }
    }

    /// Dropout on the head's input.
    pub(super) fn head_input_p(&self) -> f64 {
        if self.head_input_dropout { f64::from(self.head_dropout) } else { 0.0 }
    }

    /// The feed-forward activation (`hidden_act`) as the kernels differentiate it.
    pub(super) fn ffn_activation(&self) -> FfnActivation {
        match self.config.activation {
            Activation::Gelu => FfnActivation::Gelu,
            Activation::GeluTanh => FfnActivation::GeluTanh,
            Activation::Relu => FfnActivation::Relu,
        }
    }

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
}

/// A right-padded batch as row indices into the embedding tables.
pub struct Rows {
    pub batch: usize,
    pub t: usize,
    pub ids: Vec<usize>,
    pub positions: Vec<usize>,
    pub types: Vec<usize>,
    /// Real tokens per text.
    pub lens: Vec<usize>,
}

impl Rows {
    pub fn new(batch: &TokenBatch, cfg: &ModelConfig) -> Self {
        let (b, t) = (batch.batch_size, batch.seq_len.max(1));
        let clamp = |v: i64, n: usize| (v.max(0) as usize).min(n.saturating_sub(1));
        let ids: Vec<usize> = batch.input_word_ids.iter().map(|&v| clamp(v, cfg.vocab_size)).collect();
        let types: Vec<usize> = batch.input_type_ids.iter().map(|&v| clamp(v, cfg.type_vocab_size)).collect();
        let lens: Vec<usize> = batch.input_mask.chunks(t).map(|m| m.iter().filter(|&&v| v != 0).count()).collect();
        let mut positions = Vec::with_capacity(b * t);
        for row in batch.input_word_ids.chunks(t) {
            cfg.position_ids(row, &mut positions);
        }
        Self { batch: b, t, ids, positions, types, lens }
    }

    pub(super) fn rows(&self) -> usize {
        self.batch * self.t
    }
}

/// One encoder layer's saved activations.
#[derive(Default)]
pub(super) struct LayerCache {
    /// bf16 copies of the four GEMM inputs (input, context, `a`, GELU output) when in bf16.
    pub(super) x_bits: Vec<u16>,
    pub(super) ctx_bits: Vec<u16>,
    pub(super) a_bits: Vec<u16>,
    pub(super) inter_bits: Vec<u16>,
    pub(super) qkv: Vec<f32>,
    pub(super) probs: Vec<f32>,
    pub(super) ctx: Vec<f32>,
    pub(super) attn_xhat: Vec<f32>,
    pub(super) attn_rstd: Vec<f32>,
    /// Post-attention LayerNorm output: the FFN's input and residual.
    pub(super) a: Vec<f32>,
    pub(super) inter_pre: Vec<f32>,
    pub(super) inter: Vec<f32>,
    pub(super) out_xhat: Vec<f32>,
    pub(super) out_rstd: Vec<f32>,
}

/// Everything the backward pass reads; kept between steps so its buffers are reused.
#[derive(Default)]
pub struct Cache {
    /// The embeddings after LayerNorm and dropout `[B·T, E]`, when a projection follows them
    /// (otherwise they are `xs[0]` and this holds a spare buffer).
    pub(super) emb: Vec<f32>,
    pub(super) emb_xhat: Vec<f32>,
    pub(super) emb_rstd: Vec<f32>,
    /// `xs[l]` is layer `l`'s input `[B·T, H]`; the last is the encoder's output.
    pub(super) xs: Vec<Vec<f32>>,
    pub(super) layers: Vec<LayerCache>,
    /// `[B, H]`: the `[CLS]` rows (pooler/cls pooling) or the means.
    pub(super) pooled_in: Vec<f32>,
    /// `[B, H]`: tanh output of the pooler, when used.
    pub(super) pooler_out: Vec<f32>,
    /// The head's input after dropout, its hidden layer's pre-activation and output after
    /// activation and dropout.
    pub(super) head_in: Vec<f32>,
    pub(super) hidden_pre: Vec<f32>,
    pub(super) hidden_out: Vec<f32>,
    /// Dropout seed of this step, `None` in evaluation.
    pub(super) seed: Option<u64>,
    pub(super) packs: Packs,
    pub(super) grads: Grads,
}

pub(super) const HEAD_SITE: u64 = 1 << 20;

pub(super) fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// Packed operands reused from step to step: fresh multi-megabyte buffers every GEMM cost more in
/// page faults (the kernel zeroing each new page) than the packing itself.
pub struct Packs {
    w: PackedB,
    pub(super) wt: PackedB,
    pub(super) dy: PackedB,
    pub(super) dy_bits: Vec<u16>,
}

impl Default for Packs {
    fn default() -> Self {
        Self { w: PackedB::empty(), wt: PackedB::empty(), dy: PackedB::empty(), dy_bits: Vec::new() }
    }
}

/// The backward pass's gradient buffers, kept for the next step for the same reason.
#[derive(Default)]
pub(super) struct Grads {
    pub(super) d: Vec<f32>,
    pub(super) branch: Vec<f32>,
    pub(super) qkv: Vec<f32>,
    pub(super) ctx: Vec<f32>,
    pub(super) tmp: Vec<f32>,
}

/// Whether GEMM operands are converted to bf16 (requested and the CPU multiplies bf16).
pub(super) fn uses_bf16(prec: Precision) -> bool {
    prec == Precision::Bf16 && bertkit_kernels::isa().bf16()
}

/// `x` as bf16 bits in `bits` when the GEMMs run in bf16: converted once, read by the forward
/// GEMM and again (transposed) by the weight gradient's.
pub(super) fn convert<'a>(x: &[f32], prec: Precision, bits: &'a mut Vec<u16>) -> Option<&'a [u16]> {
    uses_bf16(prec).then(|| {
        to_bf16_bits(x, bits);
        &bits[..]
    })
}

/// `y` `[rows, out]` = `x` · W + b (`x_bits`: `x` in bf16, see [`convert`]).
#[allow(clippy::too_many_arguments)]
fn dense(p: &Params, s: DenseSlots, x: &[f32], x_bits: Option<&[u16]>, rows: usize, prec: Precision, pack: &mut PackedB, y: &mut Vec<f32>) {
    resize(y, rows * s.d_out);
    pack.repack(Mat::rows(&p.values[s.w], s.d_in, s.d_out), prec);
    gemm_ex(Mat::rows(x, rows, s.d_in), x_bits, pack, Some(&p.values[s.b]), Epilogue::None, y, false);
}

fn norm_train(p: &Params, s: NormSlots, x: &mut [f32], xhat: &mut Vec<f32>, rstd: &mut Vec<f32>, width: usize, eps: f32) {
    resize(xhat, x.len());
    resize(rstd, x.len() / width);
    layer_norm_train(x, xhat, rstd, width, &p.values[s.gamma], &p.values[s.beta], eps);
}

pub(super) fn activate(act: HeadActivation, x: &mut [f32]) {
    match act {
        HeadActivation::Relu => bertkit_kernels::ops::relu(x),
        HeadActivation::Tanh => bertkit_kernels::ops::tanh(x),
        HeadActivation::Gelu => bertkit_kernels::ops::gelu_par(x),
    }
}

/// Logits `[B, K]` of `rows`. With `seed` (training) dropout is on and its masks derive from
/// the seed; `cache` receives what [`backward`] needs.
pub fn forward(p: &Params, spec: &NetSpec, rows: &Rows, seed: Option<u64>, cache: &mut Cache) -> Vec<f32> {
    let cfg = &spec.config;
    let lay: &Layout = &p.layout;
    let (n, h, t, b) = (rows.rows(), cfg.hidden_size, rows.t, rows.batch);
    let eps = cfg.layer_norm_eps as f32;
    let prec = spec.precision;
    cache.seed = seed;
    let sequence = cfg.layer_sequence();
    cache.xs.resize_with(sequence.len() + 1, Vec::new);
    cache.layers.resize_with(sequence.len(), LayerCache::default);

    // Embeddings: LayerNorm(word + position + type), then dropout, at the embedding width `e`;
    // ELECTRA's `embeddings_project` then maps them to the hidden width.
    let e = cfg.embedding_size;
    let mut x = std::mem::take(&mut cache.emb);
    resize(&mut x, n * e);
    let (word, pos) = (&p.values[lay.word], &p.values[lay.position]);
    for (r, dst) in x.chunks_exact_mut(e).enumerate() {
        let (w, q) = (&word[rows.ids[r] * e..][..e], &pos[rows.positions[r] * e..][..e]);
        dst.iter_mut().zip(w).zip(q).for_each(|((d, a), b)| *d = a + b);
        if let Some(tt) = lay.token_type {
            let ty = &p.values[tt][rows.types[r] * e..][..e];
            dst.iter_mut().zip(ty).for_each(|(d, v)| *d += v);
        }
    }
    norm_train(p, lay.emb_norm, &mut x, &mut cache.emb_xhat, &mut cache.emb_rstd, e, eps);
    DropoutMask::at(seed, 0, cfg.hidden_dropout_prob).apply(&mut x, 0);
    match lay.projection {
        Some(ps) => {
            dense(p, ps, &x, None, n, Precision::F32, &mut cache.packs.w, &mut cache.xs[0]);
            cache.emb = x;
        }
        None => {
            cache.emb = std::mem::replace(&mut cache.xs[0], x);
        }
    }

    let shape = AttentionShape { t, heads: cfg.num_attention_heads, head_dim: cfg.head_dim(), precision: Precision::F32 };
    for (l, &li) in sequence.iter().enumerate() {
        let s = &lay.layers[li];
        let (before, after) = cache.xs.split_at_mut(l + 1);
        let x_in = &before[l];
        let c = &mut cache.layers[l];
        let site0 = 1 + 3 * l as u64;
        let xb = convert(x_in, prec, &mut c.x_bits);
        dense(p, s.qkv, x_in, xb, n, prec, &mut cache.packs.w, &mut c.qkv);
        resize(&mut c.ctx, n * h);
        resize(&mut c.probs, b * shape.probs_per_text());
        attention_forward(&c.qkv, &rows.lens, shape, DropoutMask::at(seed, site0, cfg.attention_probs_dropout_prob), &mut c.ctx, &mut c.probs);
        let mut a = std::mem::take(&mut c.a);
        let cb = convert(&c.ctx, prec, &mut c.ctx_bits);
        dense(p, s.attn_out, &c.ctx, cb, n, prec, &mut cache.packs.w, &mut a);
        DropoutMask::at(seed, site0 + 1, spec.attention_output_dropout()).apply(&mut a, 0);
        a.iter_mut().zip(x_in).for_each(|(v, r)| *v += r);
        norm_train(p, s.attn_norm, &mut a, &mut c.attn_xhat, &mut c.attn_rstd, h, eps);
        let ab = convert(&a, prec, &mut c.a_bits);
        dense(p, s.ffn_in, &a, ab, n, prec, &mut cache.packs.w, &mut c.inter_pre);
        activation_into(spec.ffn_activation(), &c.inter_pre, &mut c.inter);
        let out = &mut after[0];
        let ib = convert(&c.inter, prec, &mut c.inter_bits);
        dense(p, s.ffn_out, &c.inter, ib, n, prec, &mut cache.packs.w, out);
        DropoutMask::at(seed, site0 + 2, cfg.hidden_dropout_prob).apply(out, 0);
        out.iter_mut().zip(&a).for_each(|(v, r)| *v += r);
        norm_train(p, s.out_norm, out, &mut c.out_xhat, &mut c.out_rstd, h, eps);
        c.a = a;
    }

    // Pooling.
    let seq = &cache.xs[sequence.len()];
    let pooled = &mut cache.pooled_in;
    pooled.clear();
    for bi in 0..b {
        let text = &seq[bi * t * h..(bi + 1) * t * h];
        if spec.pooling == Pooling::Mean {
            let len = rows.lens[bi].max(1);
            let mut m = vec![0.0f32; h];
            for row in text.chunks_exact(h).take(len) {
                m.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            pooled.extend(m.iter().map(|v| v / len as f32));
        } else {
            pooled.extend_from_slice(&text[..h]);
        }
    }
    if let (Pooling::Pooler, Some(ps)) = (spec.pooling, lay.pooler) {
        dense(p, ps, &cache.pooled_in, None, b, Precision::F32, &mut cache.packs.w, &mut cache.pooler_out);
        bertkit_kernels::ops::tanh(&mut cache.pooler_out);
    }

    // The head's input: the pooler's output or the pooled states.
    let mut head_in = std::mem::take(&mut cache.head_in);
    head_in.clear();
    head_in.extend_from_slice(match (spec.pooling, lay.pooler) {
        (Pooling::Pooler, Some(_)) => &cache.pooler_out,
        _ => &cache.pooled_in,
    });
    cache.head_in = head_in;
    head_forward(p, spec, b, seed, cache)
}

/// The head on `cache.head_in` (`[B, H]` pooled features, consumed: dropout is applied in
/// place): dropout → [dense → activation → dropout] → dense, keeping what
/// [`head_backward`](super::backward::head_backward) reads. Logits `[B, K]`.
pub(super) fn head_forward(p: &Params, spec: &NetSpec, b: usize, seed: Option<u64>, cache: &mut Cache) -> Vec<f32> {
    let lay = &p.layout;
    cache.seed = seed;
    DropoutMask::at(seed, HEAD_SITE, spec.head_input_p()).apply(&mut cache.head_in, 0);
    let mut logits = Vec::new();
    let last_in = if let Some(hs) = lay.head_hidden {
        dense(p, hs, &cache.head_in, None, b, Precision::F32, &mut cache.packs.w, &mut cache.hidden_pre);
        cache.hidden_out.clear();
        cache.hidden_out.extend_from_slice(&cache.hidden_pre);
        activate(spec.head_activation, &mut cache.hidden_out);
        DropoutMask::at(seed, HEAD_SITE + 1, f64::from(spec.head_dropout)).apply(&mut cache.hidden_out, 0);
        &cache.hidden_out
    } else {
        &cache.head_in
    };
    dense(p, lay.head_out, last_in, None, b, Precision::F32, &mut cache.packs.w, &mut logits);
    logits
}

impl Cache {
    /// The head's hidden activation before its dropout (what the activation's derivative
    /// needs for tanh): recomputed, it is a `[B, hidden]` matrix.
    pub(super) fn hidden_out_pre_dropout(&self, spec: &NetSpec) -> Vec<f32> {
        let mut y = self.hidden_pre.clone();
        activate(spec.head_activation, &mut y);
        y
    }
}
