//! The classifier's training forward pass (keeping what the backward pass reads) and its
//! backward pass, on the kernels. Mirrors [`BertClassifier::forward`] in training mode:
//! transformers' `BertEmbeddings`, `BertLayer` (post-LN) and the head, with dropout wherever
//! they have it; the gradients are PyTorch autograd's for the same graph.

use bertkit_kernels::attention_train::{AttentionShape, attention_backward, attention_forward};
use bertkit_kernels::grad::{DropoutMask, col_sums, gelu_backward, layer_norm_backward, layer_norm_train};
use bertkit_kernels::{Epilogue, Mat, PackedB, Precision, gemm_ex, to_bf16_bits};

use super::params::{DenseSlots, Layout, NormSlots, Params};
use crate::model::{BertClassifier, Family, HeadActivation, ModelConfig, Pooling};
use crate::tokenize::TokenBatch;

/// What the network needs besides the parameters.
#[derive(Clone, Debug)]
pub struct NetSpec {
    pub config: ModelConfig,
    pub pooling: Pooling,
    pub head_activation: HeadActivation,
    pub head_dropout: f32,
    pub precision: Precision,
}

impl NetSpec {
    pub fn of(model: &BertClassifier, precision: Precision) -> Self {
        Self {
            config: model.encoder.config.clone(),
            pooling: model.pooling,
            head_activation: model.head.spec.activation,
            head_dropout: model.head.spec.dropout as f32,
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
        let pad = cfg.pad_token_id;
        let mut positions = Vec::with_capacity(b * t);
        for row in ids.chunks(t) {
            let mut real = 0;
            for (ti, &id) in row.iter().enumerate() {
                // RoBERTa counts non-pad tokens from pad+1 (create_position_ids_from_input_ids).
                let p = if cfg.family == Family::Roberta {
                    if id != pad {
                        real += 1;
                        pad + real
                    } else {
                        pad
                    }
                } else {
                    ti
                };
                positions.push(p.min(cfg.max_position_embeddings - 1));
            }
        }
        Self { batch: b, t, ids, positions, types, lens }
    }

    fn rows(&self) -> usize {
        self.batch * self.t
    }
}

/// One encoder layer's saved activations.
#[derive(Default)]
struct LayerCache {
    /// bf16 copies of the four GEMM inputs (input, context, `a`, GELU output) when in bf16.
    x_bits: Vec<u16>,
    ctx_bits: Vec<u16>,
    a_bits: Vec<u16>,
    inter_bits: Vec<u16>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    ctx: Vec<f32>,
    attn_xhat: Vec<f32>,
    attn_rstd: Vec<f32>,
    /// Post-attention LayerNorm output: the FFN's input and residual.
    a: Vec<f32>,
    inter_pre: Vec<f32>,
    inter: Vec<f32>,
    out_xhat: Vec<f32>,
    out_rstd: Vec<f32>,
}

/// Everything the backward pass reads; kept between steps so its buffers are reused.
#[derive(Default)]
pub struct Cache {
    emb_xhat: Vec<f32>,
    emb_rstd: Vec<f32>,
    /// `xs[l]` is layer `l`'s input `[B·T, H]`; the last is the encoder's output.
    xs: Vec<Vec<f32>>,
    layers: Vec<LayerCache>,
    /// `[B, H]`: the `[CLS]` rows (pooler/cls pooling) or the means.
    pooled_in: Vec<f32>,
    /// `[B, H]`: tanh output of the pooler, when used.
    pooler_out: Vec<f32>,
    /// The head's input after dropout, its hidden layer's pre-activation and output after
    /// activation and dropout.
    head_in: Vec<f32>,
    hidden_pre: Vec<f32>,
    hidden_out: Vec<f32>,
    /// Dropout seed of this step, `None` in evaluation.
    seed: Option<u64>,
    packs: Packs,
    grads: Grads,
}

/// Dropout sites: one mask seed per place dropout is applied in a step.
fn site(seed: u64, site: u64) -> u64 {
    let mut z = seed ^ site.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const HEAD_SITE: u64 = 1 << 20;

fn mask(seed: Option<u64>, id: u64, p: f64) -> DropoutMask {
    match seed {
        Some(s) => DropoutMask::new(site(s, id), p as f32),
        None => DropoutMask::new(0, 0.0),
    }
}

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// Packed operands reused from step to step: fresh multi-megabyte buffers every GEMM cost more in
/// page faults (the kernel zeroing each new page) than the packing itself.
pub struct Packs {
    w: PackedB,
    wt: PackedB,
    dy: PackedB,
    dy_bits: Vec<u16>,
}

impl Default for Packs {
    fn default() -> Self {
        Self { w: PackedB::empty(), wt: PackedB::empty(), dy: PackedB::empty(), dy_bits: Vec::new() }
    }
}

/// The backward pass's gradient buffers, kept for the next step for the same reason.
#[derive(Default)]
struct Grads {
    d: Vec<f32>,
    branch: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
}

/// Whether GEMM operands are converted to bf16 (requested and the CPU multiplies bf16).
fn uses_bf16(prec: Precision) -> bool {
    prec == Precision::Bf16 && bertkit_kernels::isa() == bertkit_kernels::Isa::Avx512Bf16
}

/// `x` as bf16 bits in `bits` when the GEMMs run in bf16: converted once, read by the forward
/// GEMM and again (transposed) by the weight gradient's.
fn convert<'a>(x: &[f32], prec: Precision, bits: &'a mut Vec<u16>) -> Option<&'a [u16]> {
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

/// The backward of [`dense`]: `dW += xᵀ·dy`, `db += Σ dy`, and `dx (+)= dy·Wᵀ` when wanted.
#[allow(clippy::too_many_arguments)]
fn dense_backward(
    p: &Params,
    s: DenseSlots,
    (x, x_bits): (&[f32], Option<&[u16]>),
    rows: usize,
    dy: &[f32],
    grads: &mut [Vec<f32>],
    dx: Option<(&mut [f32], bool)>,
    prec: Precision,
    packs: &mut Packs,
) {
    col_sums(dy, s.d_out, &mut grads[s.b]);
    let dy_bits = convert(dy, prec, &mut packs.dy_bits);
    let dy_mat = Mat::rows(dy, rows, s.d_out);
    match dy_bits {
        Some(bits) => packs.dy.repack_bits(dy_mat, bits),
        None => packs.dy.repack(dy_mat, prec),
    }
    gemm_ex(Mat::transposed(x, s.d_in, rows), x_bits, &packs.dy, None, Epilogue::None, &mut grads[s.w], true);
    if let Some((dx, accumulate)) = dx {
        packs.wt.repack(Mat::transposed(&p.values[s.w], s.d_out, s.d_in), prec);
        gemm_ex(dy_mat, dy_bits, &packs.wt, None, Epilogue::None, dx, accumulate);
    }
}

fn norm_train(p: &Params, s: NormSlots, x: &mut [f32], xhat: &mut Vec<f32>, rstd: &mut Vec<f32>, width: usize, eps: f32) {
    resize(xhat, x.len());
    resize(rstd, x.len() / width);
    layer_norm_train(x, xhat, rstd, width, &p.values[s.gamma], &p.values[s.beta], eps);
}

fn norm_backward(p: &Params, s: NormSlots, d: &mut [f32], xhat: &[f32], rstd: &[f32], width: usize, grads: &mut [Vec<f32>]) {
    let (mut dg, mut db) = (std::mem::take(&mut grads[s.gamma]), std::mem::take(&mut grads[s.beta]));
    layer_norm_backward(d, xhat, rstd, width, &p.values[s.gamma], &mut dg, &mut db);
    grads[s.gamma] = dg;
    grads[s.beta] = db;
}

fn activate(act: HeadActivation, x: &mut [f32]) {
    match act {
        HeadActivation::Relu => bertkit_kernels::ops::relu(x),
        HeadActivation::Tanh => bertkit_kernels::ops::tanh(x),
        HeadActivation::Gelu => bertkit_kernels::ops::gelu_par(x),
    }
}

/// `dy ← dy · act'(·)` from the pre-activation and the activation's output.
fn activate_backward(act: HeadActivation, pre: &[f32], out: &[f32], dy: &mut [f32]) {
    match act {
        HeadActivation::Relu => dy.iter_mut().zip(pre).for_each(|(d, &x)| *d = if x > 0.0 { *d } else { 0.0 }),
        HeadActivation::Tanh => dy.iter_mut().zip(out).for_each(|(d, &y)| *d *= 1.0 - y * y),
        HeadActivation::Gelu => gelu_backward(pre, dy),
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
    cache.xs.resize_with(cfg.num_hidden_layers + 1, Vec::new);
    cache.layers.resize_with(cfg.num_hidden_layers, LayerCache::default);

    // Embeddings: LayerNorm(word + position + type), then dropout.
    let mut x = std::mem::take(&mut cache.xs[0]);
    resize(&mut x, n * h);
    let (word, pos) = (&p.values[lay.word], &p.values[lay.position]);
    for (r, dst) in x.chunks_exact_mut(h).enumerate() {
        let (w, q) = (&word[rows.ids[r] * h..][..h], &pos[rows.positions[r] * h..][..h]);
        dst.iter_mut().zip(w).zip(q).for_each(|((d, a), b)| *d = a + b);
        if let Some(tt) = lay.token_type {
            let ty = &p.values[tt][rows.types[r] * h..][..h];
            dst.iter_mut().zip(ty).for_each(|(d, v)| *d += v);
        }
    }
    norm_train(p, lay.emb_norm, &mut x, &mut cache.emb_xhat, &mut cache.emb_rstd, h, eps);
    mask(seed, 0, cfg.hidden_dropout_prob).apply(&mut x, 0);
    cache.xs[0] = x;

    let shape = AttentionShape { t, heads: cfg.num_attention_heads, head_dim: cfg.head_dim(), precision: Precision::F32 };
    for (l, s) in lay.layers.iter().enumerate() {
        let (before, after) = cache.xs.split_at_mut(l + 1);
        let x_in = &before[l];
        let c = &mut cache.layers[l];
        let site0 = 1 + 3 * l as u64;
        let xb = convert(x_in, prec, &mut c.x_bits);
        dense(p, s.qkv, x_in, xb, n, prec, &mut cache.packs.w, &mut c.qkv);
        resize(&mut c.ctx, n * h);
        resize(&mut c.probs, b * shape.probs_per_text());
        attention_forward(&c.qkv, &rows.lens, shape, mask(seed, site0, cfg.attention_probs_dropout_prob), &mut c.ctx, &mut c.probs);
        let mut a = std::mem::take(&mut c.a);
        let cb = convert(&c.ctx, prec, &mut c.ctx_bits);
        dense(p, s.attn_out, &c.ctx, cb, n, prec, &mut cache.packs.w, &mut a);
        mask(seed, site0 + 1, cfg.hidden_dropout_prob).apply(&mut a, 0);
        a.iter_mut().zip(x_in).for_each(|(v, r)| *v += r);
        norm_train(p, s.attn_norm, &mut a, &mut c.attn_xhat, &mut c.attn_rstd, h, eps);
        let ab = convert(&a, prec, &mut c.a_bits);
        dense(p, s.ffn_in, &a, ab, n, prec, &mut cache.packs.w, &mut c.inter_pre);
        bertkit_kernels::grad::gelu_into(&c.inter_pre, &mut c.inter);
        let out = &mut after[0];
        let ib = convert(&c.inter, prec, &mut c.inter_bits);
        dense(p, s.ffn_out, &c.inter, ib, n, prec, &mut cache.packs.w, out);
        mask(seed, site0 + 2, cfg.hidden_dropout_prob).apply(out, 0);
        out.iter_mut().zip(&a).for_each(|(v, r)| *v += r);
        norm_train(p, s.out_norm, out, &mut c.out_xhat, &mut c.out_rstd, h, eps);
        c.a = a;
    }

    // Pooling.
    let seq = &cache.xs[cfg.num_hidden_layers];
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
    let features = match (spec.pooling, lay.pooler) {
        (Pooling::Pooler, Some(ps)) => {
            dense(p, ps, &cache.pooled_in, None, b, Precision::F32, &mut cache.packs.w, &mut cache.pooler_out);
            bertkit_kernels::ops::tanh(&mut cache.pooler_out);
            &cache.pooler_out
        }
        _ => &cache.pooled_in,
    };

    // Head: dropout → [dense → activation → dropout] → dense.
    cache.head_in.clear();
    cache.head_in.extend_from_slice(features);
    mask(seed, HEAD_SITE, f64::from(spec.head_dropout)).apply(&mut cache.head_in, 0);
    let mut logits = Vec::new();
    let last_in = if let Some(hs) = lay.head_hidden {
        dense(p, hs, &cache.head_in, None, b, Precision::F32, &mut cache.packs.w, &mut cache.hidden_pre);
        cache.hidden_out.clear();
        cache.hidden_out.extend_from_slice(&cache.hidden_pre);
        activate(spec.head_activation, &mut cache.hidden_out);
        mask(seed, HEAD_SITE + 1, f64::from(spec.head_dropout)).apply(&mut cache.hidden_out, 0);
        &cache.hidden_out
    } else {
        &cache.head_in
    };
    dense(p, lay.head_out, last_in, None, b, Precision::F32, &mut cache.packs.w, &mut logits);
    logits
}

/// Gradients of the loss into `grads` (accumulated; the caller zeroes them) from `dlogits`
/// `[B, K]`, using the cache of the [`forward`] call on the same `rows`.
pub fn backward(p: &Params, spec: &NetSpec, rows: &Rows, cache: &mut Cache, dlogits: &[f32], grads: &mut [Vec<f32>]) {
    let cfg = &spec.config;
    let lay = &p.layout;
    let (n, h, t, b) = (rows.rows(), cfg.hidden_size, rows.t, rows.batch);
    let prec = spec.precision;
    let seed = cache.seed;
    let hidden_out_pre_dropout = cache.hidden_out_pre_dropout(spec);
    // Taken out for the pass (and put back) so the rest of the cache can be read meanwhile.
    let (mut packs_owned, mut work_owned) = (std::mem::take(&mut cache.packs), std::mem::take(&mut cache.grads));
    let (packs, work) = (&mut packs_owned, &mut work_owned);
    let c = &*cache;

    // Head (tiny: fp32, fresh buffers).
    let f32s = Precision::F32;
    let mut d_in = vec![0.0f32; b * lay.head_out.d_in];
    if let Some(hs) = lay.head_hidden {
        dense_backward(p, lay.head_out, (&c.hidden_out, None), b, dlogits, grads, Some((&mut d_in, false)), f32s, packs);
        mask(seed, HEAD_SITE + 1, f64::from(spec.head_dropout)).apply(&mut d_in, 0);
        activate_backward(spec.head_activation, &c.hidden_pre, &hidden_out_pre_dropout, &mut d_in);
        let mut d_feat = vec![0.0f32; b * hs.d_in];
        dense_backward(p, hs, (&c.head_in, None), b, &d_in, grads, Some((&mut d_feat, false)), f32s, packs);
        d_in = d_feat;
    } else {
        dense_backward(p, lay.head_out, (&c.head_in, None), b, dlogits, grads, Some((&mut d_in, false)), f32s, packs);
    }
    mask(seed, HEAD_SITE, f64::from(spec.head_dropout)).apply(&mut d_in, 0);
    let mut d_pooled = d_in;
    if let (Pooling::Pooler, Some(ps)) = (spec.pooling, lay.pooler) {
        d_pooled.iter_mut().zip(&c.pooler_out).for_each(|(d, y)| *d *= 1.0 - y * y);
        let mut d_cls = vec![0.0f32; b * h];
        dense_backward(p, ps, (&c.pooled_in, None), b, &d_pooled, grads, Some((&mut d_cls, false)), f32s, packs);
        d_pooled = d_cls;
    }

    // Pooling back to the sequence.
    let d = &mut work.d;
    d.clear();
    d.resize(n * h, 0.0);
    for bi in 0..b {
        let g = &d_pooled[bi * h..(bi + 1) * h];
        if spec.pooling == Pooling::Mean {
            let len = rows.lens[bi].max(1);
            for ti in 0..len {
                let row = &mut d[(bi * t + ti) * h..(bi * t + ti + 1) * h];
                row.iter_mut().zip(g).for_each(|(a, v)| *a = v / len as f32);
            }
        } else {
            d[bi * t * h..bi * t * h + h].copy_from_slice(g);
        }
    }

    let shape = AttentionShape { t, heads: cfg.num_attention_heads, head_dim: cfg.head_dim(), precision: Precision::F32 };
    resize(&mut work.branch, n * cfg.intermediate_size);
    resize(&mut work.qkv, n * 3 * h);
    resize(&mut work.ctx, n * h);
    for (l, s) in lay.layers.iter().enumerate().rev() {
        let lc = &c.layers[l];
        let site0 = 1 + 3 * l as u64;
        // out = LN(dropout(ffn_out(gelu(ffn_in(a)))) + a)
        norm_backward(p, s.out_norm, d, &lc.out_xhat, &lc.out_rstd, h, grads);
        work.tmp.clear();
        work.tmp.extend_from_slice(d);
        mask(seed, site0 + 2, cfg.hidden_dropout_prob).apply(&mut work.tmp, 0);
        dense_backward(p, s.ffn_out, (&lc.inter, uses_bf16(prec).then_some(&lc.inter_bits[..])), n, &work.tmp, grads, Some((&mut work.branch, false)), prec, packs);
        gelu_backward(&lc.inter_pre, &mut work.branch);
        // The residual path into `a` plus the FFN's input gradient.
        dense_backward(p, s.ffn_in, (&lc.a, uses_bf16(prec).then_some(&lc.a_bits[..])), n, &work.branch, grads, Some((d, true)), prec, packs);
        // a = LN(dropout(attn_out(ctx)) + x_in)
        norm_backward(p, s.attn_norm, d, &lc.attn_xhat, &lc.attn_rstd, h, grads);
        work.tmp.clear();
        work.tmp.extend_from_slice(d);
        mask(seed, site0 + 1, cfg.hidden_dropout_prob).apply(&mut work.tmp, 0);
        dense_backward(p, s.attn_out, (&lc.ctx, uses_bf16(prec).then_some(&lc.ctx_bits[..])), n, &work.tmp, grads, Some((&mut work.ctx, false)), prec, packs);
        let attn_mask = mask(seed, site0, cfg.attention_probs_dropout_prob);
        attention_backward(&lc.qkv, &rows.lens, shape, attn_mask, &lc.probs, &work.ctx, &mut work.qkv);
        dense_backward(p, s.qkv, (&c.xs[l], uses_bf16(prec).then_some(&lc.x_bits[..])), n, &work.qkv, grads, Some((d, true)), prec, packs);
    }

    // Embeddings.
    mask(seed, 0, cfg.hidden_dropout_prob).apply(d, 0);
    norm_backward(p, lay.emb_norm, d, &c.emb_xhat, &c.emb_rstd, h, grads);
    for (r, g) in d.chunks_exact(h).enumerate() {
        let add = |dst: &mut [f32]| dst.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        add(&mut grads[lay.word][rows.ids[r] * h..][..h]);
        add(&mut grads[lay.position][rows.positions[r] * h..][..h]);
        if let Some(tt) = lay.token_type {
            add(&mut grads[tt][rows.types[r] * h..][..h]);
        }
    }
    cache.packs = packs_owned;
    cache.grads = work_owned;
}

impl Cache {
    /// The head's hidden activation before its dropout (what the activation's derivative
    /// needs for tanh): recomputed, it is a `[B, hidden]` matrix.
    fn hidden_out_pre_dropout(&self, spec: &NetSpec) -> Vec<f32> {
        let mut y = self.hidden_pre.clone();
        activate(spec.head_activation, &mut y);
        y
    }
}
