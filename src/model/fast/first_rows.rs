//! The last encoder layer for each text's `[CLS]` row alone ([`Mode::EvalFirst`],
//! [`Mode::TrainFirst`]): what `[CLS]` and pooler pooling read. Keys and values still come from
//! every token; the first query's attention, the output projection, the feed-forward and the
//! LayerNorms run on `B` rows instead of `B·T`.
//!
//! [`Mode::EvalFirst`]: super::Mode::EvalFirst
//! [`Mode::TrainFirst`]: super::Mode::TrainFirst

use bertkit_kernels::attention::attention_first;
use bertkit_kernels::attention_train::{AttentionShape, attention_forward_first};
use bertkit_kernels::dropout::DropoutMask;
use bertkit_kernels::ops::add_layer_norm;
use bertkit_kernels::{Epilogue, Precision, RowSet};

use super::Rows;
use super::cache::{LayerCache, resize};
use super::encoder::{Plan, Weights, attention_output_dropout, convert, dense, norm_train};
use super::layer::{Path, feed_forward};
use super::params::LayerSlots;
use crate::model::ModelConfig;

/// The last layer of `Mode::EvalFirst` and `Mode::TrainFirst`: keys and values for every
/// token, then the first query's attention and everything after it on those `B` rows; `out` is
/// `[B, H]`. In evaluation its GEMMs read fp32 (converted inside for bf16 or int8 weights, as
/// every [`dense`] call), the input `x` as the layer before's bits too when it wrote them; in
/// training it keeps what the backward pass reads, as `layer::layer` does.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_first(
    w: Weights<'_>,
    s: &LayerSlots,
    cfg: &ModelConfig,
    rows: &Rows,
    plan: &Plan,
    (x, x_bits, out): (&[f32], Option<&[u16]>, &mut Vec<f32>),
    c: &mut LayerCache,
    path: Path<'_>,
) {
    let p = w.params;
    let (n, h, b, t, prec) = (rows.rows(), cfg.hidden_size, rows.batch, rows.t, plan.prec);
    let (heads, hd) = (cfg.num_attention_heads, cfg.head_dim());
    let train = match path {
        Path::Train { seed, site0 } => Some((seed, site0)),
        _ => None,
    };
    let xb = if train.is_some() { convert(x, prec, &mut c.x_bits) } else { x_bits };
    dense(w, s.qkv, (x, xb), n, Epilogue::None, &mut c.qkv, plan.live());
    resize(&mut c.ctx, b * h);
    let mut a = std::mem::take(&mut c.a);
    match train {
        Some((seed, site0)) => {
            let shape = AttentionShape { t, heads, head_dim: hd, precision: Precision::F32 };
            resize(&mut c.probs, b * shape.first_probs_per_text());
            let mask = DropoutMask::at(seed, site0, cfg.attention_probs_dropout_prob);
            attention_forward_first(&c.qkv, &rows.lens, shape, mask, &mut c.ctx, &mut c.probs);
            let cb = convert(&c.ctx, prec, &mut c.ctx_bits);
            dense(w, s.attn_out, (&c.ctx, cb), b, Epilogue::None, &mut a, RowSet::All);
        }
        None => {
            attention_first(&c.qkv, &rows.lens, (t, heads, hd), &mut c.ctx);
            dense(w, s.attn_out, (&c.ctx, None), b, Epilogue::None, &mut a, RowSet::All);
        }
    }
    // The residual: the input's `[CLS]` rows, gathered into `inter_pre` (the feed-forward below
    // writes it only after they are added).
    let residual = &mut c.inter_pre;
    residual.clear();
    residual.extend(x.chunks_exact(t * h).flat_map(|text| &text[..h]));
    let (gamma, beta) = (&p.values[s.attn_norm.gamma], &p.values[s.attn_norm.beta]);
    match train {
        Some((seed, site0)) => {
            drop_rows(DropoutMask::at(seed, site0 + 1, attention_output_dropout(cfg)), &mut a, h, Some(t));
            a.iter_mut().zip(residual.iter()).for_each(|(v, r)| *v += r);
            norm_train(p, s.attn_norm, &mut a, (&mut c.attn_xhat, &mut c.attn_rstd), h, plan.eps);
        }
        None => add_layer_norm(&mut a, residual, h, gamma, beta, plan.eps),
    }
    let path = match train {
        Some((seed, site0)) => Path::Train { seed, site0 },
        None => Path::Eval,
    };
    feed_forward(w, s, cfg, b, plan, &a, out, c, path, Some(t));
    c.a = a;
}

/// Dropout on `x` `[rows, h]` with the masks of the full `[B·T, H]` layout: every row in order,
/// or (`first_of`: `Some(t)`) row `i` as the first row of `t`-row text `i`, so the `[CLS]`-only
/// last layer drops what the full layer drops in those rows.
pub fn drop_rows(mask: DropoutMask, x: &mut [f32], h: usize, first_of: Option<usize>) {
    match first_of {
        None => mask.apply(x, 0),
        Some(t) => x.chunks_exact_mut(h).enumerate().for_each(|(i, row)| mask.apply_serial(row, (i * t * h) as u32)),
    }
}
