//! One post-LN encoder layer on the kernels (mirrors transformers' `BertLayer`: attention, then
//! the feed-forward half), in the three ways [`encode`](super::encode) runs it: training,
//! evaluation, and evaluation with the GEMM inputs in bf16 bits. The feed-forward half is shared
//! with the last layer's `[CLS]`-rows-only variant (`first_rows.rs`).

use bertkit_kernels::attention::attention;
use bertkit_kernels::attention_bits::{attention_bits, attention_from_bits, attention_reads_bits};
use bertkit_kernels::attention_train::{AttentionShape, attention_forward};
use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::grad::activation_into;
use bertkit_kernels::ops::{add_layer_norm, add_layer_norm_bits, gelu_tanh, relu};
use bertkit_kernels::{Epilogue, Mat, Precision, RowSet, feed_forward_int8, gemm_from_bits, gemm_to_bits};

use super::Rows;
use super::cache::{LayerCache, resize};
use super::encoder::{Plan, Weights, attention_output_dropout, convert, dense, ffn_activation, norm_train};
use super::first_rows::drop_rows;
use super::params::{DenseSlots, LayerSlots, NormSlots};
use crate::model::{Activation, ModelConfig};

/// How [`layer`] runs: training (the dropout seed and this layer's first dropout site; every
/// activation kept in its cache), evaluation, or evaluation with the GEMM inputs in bf16 bits
/// (the layer's input as bits, and where to write its output's).
pub(super) enum Path<'a> {
    Train { seed: Option<u64>, site0: u64 },
    Eval,
    Bits { x_bits: &'a [u16], out_bits: &'a mut Vec<u16> },
}

/// One post-LN layer: `a = LN(dropout(attn_out(attention(qkv(x)))) + x)`,
/// `out = LN(dropout(ffn_out(act(ffn_in(a)))) + a)`. In evaluation `c` is scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer(
    w: Weights<'_>,
    s: &LayerSlots,
    cfg: &ModelConfig,
    rows: &Rows,
    plan: &Plan,
    (x, out): (&[f32], &mut Vec<f32>),
    c: &mut LayerCache,
    path: Path<'_>,
) {
    let p = w.params;
    let (n, h, b, prec) = (rows.rows(), cfg.hidden_size, rows.batch, plan.prec);
    let (heads, hd) = (cfg.num_attention_heads, cfg.head_dim());
    let dims = (rows.t, heads, hd);
    let norm = |s: NormSlots| (&p.values[s.gamma][..], &p.values[s.beta][..]);
    let bias = |s: DenseSlots| Some(&p.values[s.b][..]);

    // Attention.
    let mut a = std::mem::take(&mut c.a);
    match &path {
        Path::Train { seed, site0 } => {
            let xb = convert(x, prec, &mut c.x_bits);
            dense(w, s.qkv, (x, xb), n, Epilogue::None, &mut c.qkv, plan.live());
            let shape = AttentionShape { t: rows.t, heads, head_dim: hd, precision: Precision::F32 };
            resize(&mut c.ctx, n * h);
            resize(&mut c.probs, b * shape.probs_per_text());
            let mask = DropoutMask::at(*seed, *site0, cfg.attention_probs_dropout_prob);
            attention_forward(&c.qkv, &rows.lens, shape, mask, &mut c.ctx, &mut c.probs);
            let cb = convert(&c.ctx, prec, &mut c.ctx_bits);
            dense(w, s.attn_out, (&c.ctx, cb), n, Epilogue::None, &mut a, plan.live());
        }
        Path::Eval => {
            resize(&mut c.ctx, n * h);
            if plan.attention == Precision::Bf16 && attention_reads_bits(hd) {
                // The int8 engine on AMX: the projection's dequantization writes the bf16 bits the
                // attention's tiles read (the same bits as converting its fp32 output).
                gemm_to_bits(x, None, n, w.packed.get(s.qkv), bias(s.qkv), Epilogue::None, &mut c.qkv_bits, plan.live());
                attention_from_bits(&c.qkv_bits, &rows.lens, dims, &mut c.ctx);
            } else {
                dense(w, s.qkv, (x, None), n, Epilogue::None, &mut c.qkv, plan.live());
                attention(&c.qkv, &rows.lens, dims, plan.attention, &mut c.ctx);
            }
            dense(w, s.attn_out, (&c.ctx, None), n, Epilogue::None, &mut a, plan.live());
        }
        Path::Bits { x_bits, .. } => {
            gemm_to_bits(x, Some(x_bits), n, w.packed.get(s.qkv), bias(s.qkv), Epilogue::None, &mut c.qkv_bits, plan.live());
            attention_bits(&c.qkv_bits, &rows.lens, dims, &mut c.ctx_bits);
            resize(&mut a, n * h);
            gemm_from_bits(&c.ctx_bits, n, w.packed.get(s.attn_out), bias(s.attn_out), Epilogue::None, &mut a, plan.live());
        }
    }
    let (gamma, beta) = norm(s.attn_norm);
    match &path {
        Path::Train { seed, site0 } => {
            DropoutMask::at(*seed, site0 + 1, attention_output_dropout(cfg)).apply(&mut a, 0);
            a.iter_mut().zip(x).for_each(|(v, r)| *v += r);
            norm_train(p, s.attn_norm, &mut a, (&mut c.attn_xhat, &mut c.attn_rstd), h, plan.eps);
        }
        Path::Eval => add_layer_norm(&mut a, x, h, gamma, beta, plan.eps),
        Path::Bits { .. } => add_layer_norm_bits(&mut a, x, h, (gamma, beta), plan.eps, &mut c.a_bits),
    }

    feed_forward(w, s, cfg, n, plan, &a, out, c, path, None);
    c.a = a;
}

/// The feed-forward half of a layer on `n` rows: `out = LN(dropout(ffn_out(act(ffn_in(a)))) + a)`
/// (`first_of`: the rows are texts' first rows, see [`drop_rows`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn feed_forward(
    w: Weights<'_>,
    s: &LayerSlots,
    cfg: &ModelConfig,
    n: usize,
    plan: &Plan,
    a: &[f32],
    out: &mut Vec<f32>,
    c: &mut LayerCache,
    path: Path<'_>,
    first_of: Option<usize>,
) {
    let (p, h, prec) = (w.params, cfg.hidden_size, plan.prec);
    let norm = |s: NormSlots| (&p.values[s.gamma][..], &p.values[s.beta][..]);
    let bias = |s: DenseSlots| Some(&p.values[s.b][..]);
    let a_bits = matches!(path, Path::Bits { .. }).then_some(&c.a_bits[..]);
    // The `[CLS]` rows are all real; over the batch, the padding rows stay zero through the
    // activations (each maps 0 to 0).
    let live = if first_of.is_some() { RowSet::All } else { plan.live() };
    if matches!(path, Path::Train { .. }) {
        let ab = convert(a, prec, &mut c.a_bits);
        dense(w, s.ffn_in, (a, ab), n, Epilogue::None, &mut c.inter_pre, live);
        activation_into(ffn_activation(cfg), &c.inter_pre, &mut c.inter);
        let ib = convert(&c.inter, prec, &mut c.inter_bits);
        dense(w, s.ffn_out, (&c.inter, ib), n, Epilogue::None, out, live);
    } else if plan.inner_in_bf16 {
        gemm_to_bits(a, a_bits, n, w.packed.get(s.ffn_in), bias(s.ffn_in), Epilogue::Gelu, &mut c.inter_bits, live);
        resize(out, n * h);
        gemm_from_bits(&c.inter_bits, n, w.packed.get(s.ffn_out), bias(s.ffn_out), Epilogue::None, out, live);
    } else if cfg.activation == Activation::Gelu && [s.ffn_in, s.ffn_out].iter().all(|&d| w.packed.get(d).precision() == Precision::Int8) {
        // int8 weights: both GEMMs per block of rows, the intermediate rows kept in cache.
        resize(out, n * h);
        let (w_in, w_out) = ((w.packed.get(s.ffn_in), &p.values[s.ffn_in.b][..]), (w.packed.get(s.ffn_out), &p.values[s.ffn_out.b][..]));
        feed_forward_int8(Mat::rows(a, n, s.ffn_in.d_in), w_in, w_out, out, live);
    } else {
        // The erf GELU rides in the GEMM's epilogue; the other activations follow it.
        let epilogue = if cfg.activation == Activation::Gelu { Epilogue::Gelu } else { Epilogue::None };
        dense(w, s.ffn_in, (a, a_bits), n, epilogue, &mut c.inter, live);
        match cfg.activation {
            Activation::Gelu => {}
            Activation::GeluTanh => gelu_tanh(&mut c.inter),
            Activation::Relu => relu(&mut c.inter),
        }
        dense(w, s.ffn_out, (&c.inter, None), n, Epilogue::None, out, live);
    }
    let (gamma, beta) = norm(s.out_norm);
    match path {
        Path::Train { seed, site0 } => {
            drop_rows(DropoutMask::at(seed, site0 + 2, cfg.hidden_dropout_prob), out, h, first_of);
            out.iter_mut().zip(a).for_each(|(v, r)| *v += r);
            norm_train(p, s.out_norm, out, (&mut c.out_xhat, &mut c.out_rstd), h, plan.eps);
        }
        Path::Eval => add_layer_norm(out, a, h, gamma, beta, plan.eps),
        Path::Bits { out_bits, .. } => add_layer_norm_bits(out, a, h, (gamma, beta), plan.eps, out_bits),
    }
}
