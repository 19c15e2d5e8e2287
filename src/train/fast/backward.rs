//! The classifier's backward pass on the kernels: from the logits' gradient back through the
//! head, pooling, every encoder layer and the embeddings, into gradients of the flat parameters
//! (PyTorch autograd's for the same graph: `tests/golden_grads.rs`), reading what the forward
//! pass ([`forward`](crate::model::fast::forward) in training mode) kept.

use bertkit_kernels::attention_train::{AttentionShape, attention_backward, attention_backward_first};
use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::grad::{activation_backward, col_sums, gelu_backward, layer_norm_backward};
use bertkit_kernels::{Epilogue, Mat, Precision, RowSet, gemm_ex, gemm_ex_rows};

use crate::model::fast::{
    BackwardBuffers, Cache, DenseSlots, GradPacks, HEAD_SITE, NetSpec, NormSlots, Params, Rows, attention_output_dropout, convert,
    drop_rows, ffn_activation, real_rows, uses_bf16,
};
use crate::model::{HeadActivation, Pooling};

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// The backward of [`dense`](crate::model::fast::dense): `dW += xᵀ·dy`, `db += Σ dy`, and `dx (+)= dy·Wᵀ` when wanted,
/// for the rows of `dx` in `live` (the padding rows' `dy` is zero: their `dx` is zero too).
#[allow(clippy::too_many_arguments)]
fn dense_backward(
    p: &Params,
    s: DenseSlots,
    (x, x_bits): (&[f32], Option<&[u16]>),
    rows: usize,
    dy: &[f32],
    grads: &mut [Vec<f32>],
    dx: Option<(&mut [f32], bool, RowSet<'_>)>,
    prec: Precision,
    packs: &mut GradPacks,
) {
    col_sums(dy, s.d_out, &mut grads[s.b]);
    let dy_bits = convert(dy, prec, &mut packs.dy_bits);
    let dy_mat = Mat::rows(dy, rows, s.d_out);
    match dy_bits {
        Some(bits) => packs.dy.repack_bits(dy_mat, bits),
        None => packs.dy.repack(dy_mat, prec),
    }
    gemm_ex(Mat::transposed(x, s.d_in, rows), x_bits, &packs.dy, None, Epilogue::None, &mut grads[s.w], true);
    if let Some((dx, accumulate, live)) = dx {
        packs.wt.repack(Mat::transposed(&p.values[s.w], s.d_out, s.d_in), prec);
        gemm_ex_rows(dy_mat, dy_bits, &packs.wt, None, Epilogue::None, dx, accumulate, live);
    }
}

fn norm_backward(p: &Params, s: NormSlots, d: &mut [f32], xhat: &[f32], rstd: &[f32], width: usize, grads: &mut [Vec<f32>]) {
    let (mut dg, mut db) = (std::mem::take(&mut grads[s.gamma]), std::mem::take(&mut grads[s.beta]));
    layer_norm_backward(d, xhat, rstd, width, &p.values[s.gamma], &mut dg, &mut db);
    grads[s.gamma] = dg;
    grads[s.beta] = db;
}

/// `dy ← dy · act'(·)` from the pre-activation and the activation's output.
fn activate_backward(act: HeadActivation, pre: &[f32], out: &[f32], dy: &mut [f32]) {
    match act {
        HeadActivation::Relu => dy.iter_mut().zip(pre).for_each(|(d, &x)| *d = if x > 0.0 { *d } else { 0.0 }),
        HeadActivation::Tanh => dy.iter_mut().zip(out).for_each(|(d, &y)| *d *= 1.0 - y * y),
        HeadActivation::Gelu => gelu_backward(pre, dy),
    }
}

/// The head's backward from `dlogits` `[B, K]` (gradients into `grads`, accumulated): the
/// gradient of its input features `[B, H]`. Tiny: fp32, fresh buffers.
pub(super) fn head_backward(p: &Params, spec: &NetSpec, b: usize, c: &Cache, dlogits: &[f32], grads: &mut [Vec<f32>], packs: &mut GradPacks) -> Vec<f32> {
    let lay = &p.layout;
    let seed = c.seed;
    let f32s = Precision::F32;
    let mut d_in = vec![0.0f32; b * lay.head_out.d_in];
    if let Some(hs) = lay.head_hidden {
        dense_backward(p, lay.head_out, (&c.hidden_out, None), b, dlogits, grads, Some((&mut d_in, false, RowSet::All)), f32s, packs);
        DropoutMask::at(seed, HEAD_SITE + 1, f64::from(spec.head_dropout)).apply(&mut d_in, 0);
        activate_backward(spec.head_activation, &c.hidden_pre, &c.hidden_out_pre_dropout(spec), &mut d_in);
        let mut d_feat = vec![0.0f32; b * hs.d_in];
        dense_backward(p, hs, (&c.head_in, None), b, &d_in, grads, Some((&mut d_feat, false, RowSet::All)), f32s, packs);
        d_in = d_feat;
    } else {
        dense_backward(p, lay.head_out, (&c.head_in, None), b, dlogits, grads, Some((&mut d_in, false, RowSet::All)), f32s, packs);
    }
    DropoutMask::at(seed, HEAD_SITE, spec.head_input_p()).apply(&mut d_in, 0);
    d_in
}

/// Gradients of the loss into `grads` (accumulated; the caller zeroes them) from `dlogits`
/// `[B, K]`, using the cache of the training-mode [`forward`](crate::model::fast::forward) call on the same `rows`.
pub fn backward(p: &Params, spec: &NetSpec, rows: &Rows, cache: &mut Cache, dlogits: &[f32], grads: &mut [Vec<f32>]) {
    let cfg = &spec.config;
    let lay = &p.layout;
    let (n, h, t, b) = (rows.rows(), cfg.hidden_size, rows.t, rows.batch);
    let prec = spec.precision;
    let seed = cache.seed;
    // Taken out for the pass (and put back) so the rest of the cache can be read meanwhile.
    let mut work = std::mem::take(&mut cache.backward);
    let BackwardBuffers { packs, d, branch, qkv, ctx, tmp } = &mut work;
    let c = &*cache;

    let mut d_pooled = head_backward(p, spec, b, c, dlogits, grads, packs);
    if let (Pooling::Pooler, Some(ps)) = (spec.pooling, lay.pooler) {
        d_pooled.iter_mut().zip(&c.pooler_out).for_each(|(d, y)| *d *= 1.0 - y * y);
        let mut d_cls = vec![0.0f32; b * h];
        dense_backward(p, ps, (&c.pooled_in, None), b, &d_pooled, grads, Some((&mut d_cls, false, RowSet::All)), Precision::F32, packs);
        d_pooled = d_cls;
    }

    // Pooling back to the sequence: to each text's first row, or (`Mode::TrainFirst`) to the
    // last layer's `[B, H]` output itself.
    let first_rows = c.first_rows;
    d.clear();
    d.resize(if first_rows { b * h } else { n * h }, 0.0);
    for bi in 0..b {
        let g = &d_pooled[bi * h..(bi + 1) * h];
        if spec.pooling == Pooling::Mean {
            let len = rows.lens[bi].max(1);
            for ti in 0..len {
                let row = &mut d[(bi * t + ti) * h..(bi * t + ti + 1) * h];
                row.iter_mut().zip(g).for_each(|(a, v)| *a = v / len as f32);
            }
        } else {
            let row = if first_rows { bi } else { bi * t };
            d[row * h..(row + 1) * h].copy_from_slice(g);
        }
    }
    let last = cfg.layer_sequence().len().saturating_sub(1);

    let shape = AttentionShape { t, heads: cfg.num_attention_heads, head_dim: cfg.head_dim(), precision: Precision::F32 };
    // The input gradients of the `B·T` rows for the real tokens alone (as the forward pass).
    let ranges = RowSet::live_ranges(&rows.lens, t);
    let all_live = real_rows(&ranges);
    resize(branch, n * cfg.intermediate_size);
    resize(qkv, n * 3 * h);
    resize(ctx, n * h);
    for (l, &li) in cfg.layer_sequence().iter().enumerate().rev() {
        // A shared layer (ALBERT) is met once per depth: its gradients add up over them.
        let s = &lay.layers[li];
        let lc = &c.layers[l];
        let site0 = 1 + 3 * l as u64;
        // The `[CLS]`-only last layer (`Mode::TrainFirst`): everything after its projection on
        // `B` rows, then its attention for the first query (see `encoder::layer_first`).
        let first_of = (first_rows && l == last).then_some(t);
        let (m, live) = if first_of.is_some() { (b, RowSet::All) } else { (n, all_live) };
        // out = LN(dropout(ffn_out(act(ffn_in(a)))) + a)
        norm_backward(p, s.out_norm, d, &lc.out_xhat, &lc.out_rstd, h, grads);
        tmp.clear();
        tmp.extend_from_slice(d);
        drop_rows(DropoutMask::at(seed, site0 + 2, cfg.hidden_dropout_prob), tmp, h, first_of);
        let branch = &mut branch[..m * cfg.intermediate_size];
        dense_backward(
            p,
            s.ffn_out,
            (&lc.inter, uses_bf16(prec).then_some(&lc.inter_bits[..])),
            m,
            tmp,
            grads,
            Some((&mut branch[..], false, live)),
            prec,
            packs,
        );
        activation_backward(ffn_activation(cfg), &lc.inter_pre, &mut branch[..]);
        // The residual path into `a` plus the FFN's input gradient.
        dense_backward(
            p,
            s.ffn_in,
            (&lc.a, uses_bf16(prec).then_some(&lc.a_bits[..])),
            m,
            &branch[..],
            grads,
            Some((d, true, live)),
            prec,
            packs,
        );
        // a = LN(dropout(attn_out(ctx)) + x_in)
        norm_backward(p, s.attn_norm, d, &lc.attn_xhat, &lc.attn_rstd, h, grads);
        tmp.clear();
        tmp.extend_from_slice(d);
        drop_rows(DropoutMask::at(seed, site0 + 1, attention_output_dropout(cfg)), tmp, h, first_of);
        let ctx = &mut ctx[..m * h];
        dense_backward(p, s.attn_out, (&lc.ctx, uses_bf16(prec).then_some(&lc.ctx_bits[..])), m, tmp, grads, Some((&mut ctx[..], false, live)), prec, packs);
        let attn_mask = DropoutMask::at(seed, site0, cfg.attention_probs_dropout_prob);
        if first_of.is_some() {
            attention_backward_first(&lc.qkv, &rows.lens, shape, attn_mask, &lc.probs, &ctx[..], &mut qkv[..]);
            // The residual's gradient, `[B, H]`, back to the first rows of the layer's input.
            tmp.clear();
            tmp.extend_from_slice(d);
            d.clear();
            d.resize(n * h, 0.0);
            for (bi, g) in tmp.chunks_exact(h).enumerate() {
                d[bi * t * h..bi * t * h + h].copy_from_slice(g);
            }
        } else {
            attention_backward(&lc.qkv, &rows.lens, shape, attn_mask, &lc.probs, &ctx[..], &mut qkv[..]);
        }
        dense_backward(p, s.qkv, (&c.xs[l], uses_bf16(prec).then_some(&lc.x_bits[..])), n, &qkv[..], grads, Some((d, true, all_live)), prec, packs);
    }

    // Embeddings (through the projection first, if any), at the embedding width `e`.
    let e = cfg.embedding_size;
    let d = match lay.projection {
        Some(ps) => {
            let mut d_emb = vec![0.0f32; n * e];
            dense_backward(p, ps, (&c.emb, None), n, d, grads, Some((&mut d_emb, false, RowSet::All)), Precision::F32, packs);
            *tmp = d_emb;
            &mut *tmp
        }
        None => d,
    };
    DropoutMask::at(seed, 0, cfg.hidden_dropout_prob).apply(d, 0);
    norm_backward(p, lay.emb_norm, d, &c.emb_xhat, &c.emb_rstd, e, grads);
    for (r, g) in d.chunks_exact(e).enumerate() {
        let add = |dst: &mut [f32]| dst.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        add(&mut grads[lay.word][rows.ids[r] * e..][..e]);
        add(&mut grads[lay.position][rows.positions[r] * e..][..e]);
        if let Some(tt) = lay.token_type {
            add(&mut grads[tt][rows.types[r] * e..][..e]);
        }
    }
    cache.backward = work;
}
