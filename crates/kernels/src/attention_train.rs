//! Multi-head self-attention for training: the forward pass keeps each head's softmax
//! probabilities and applies attention dropout; the backward pass turns the context gradient
//! into gradients of the fused query/key/value projection (the math of PyTorch's eager
//! `scaled_dot_product_attention` backward, done per text and head with small GEMMs).

use rayon::prelude::*;

use crate::gemm::{Epilogue, gemm, gemm_ex};
use crate::packed_b::{PackedB, Precision};
use crate::dropout::DropoutMask;
use crate::ops::{softmax_rows, with_taken};
use crate::pack::Mat;

/// The shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    /// Padded sequence length.
    pub t: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Operands of the small GEMMs (products summed in fp32 either way; softmax in fp32).
    pub precision: Precision,
}

impl AttentionShape {
    fn h(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Floats [`attention_forward`] stores per text (`heads · t · t`).
    pub fn probs_per_text(&self) -> usize {
        self.heads * self.t * self.t
    }

    /// Floats [`attention_forward_first`] stores per text (`heads · t`).
    pub fn first_probs_per_text(&self) -> usize {
        self.heads * self.t
    }
}

/// One (text, head)'s working buffers, kept per thread between calls: fresh ones for every
/// (text, head) of every layer made the allocator hand pages back and fault them in again.
struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    dc: Vec<f32>,
    dropped: Vec<f32>,
    ctx: Vec<f32>,
    ds: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    packs: [PackedB; 4],
}

impl Default for Scratch {
    fn default() -> Self {
        let v = Vec::new;
        Self {
            q: v(),
            k: v(),
            v: v(),
            dc: v(),
            dropped: v(),
            ctx: v(),
            ds: v(),
            dq: v(),
            dk: v(),
            packs: [PackedB::empty(), PackedB::empty(), PackedB::empty(), PackedB::empty()],
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// `v` cleared and zero-filled to `n` values.
fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    v
}

/// One head's row `j` of a text's fused projection `[t, 3H]`: `part` 0 query, 1 key, 2 value.
fn head_row(qkv: &[f32], s: AttentionShape, head: usize, j: usize, part: usize) -> &[f32] {
    let (h, hd) = (s.h(), s.head_dim);
    &qkv[j * 3 * h + part * h + head * hd..][..hd]
}

/// One head's query (scaled), key and value rows `[len, hd]` gathered from a text's fused
/// projection `[t, 3H]` into `w.q`, `w.k`, `w.v`.
fn gather(qkv: &[f32], s: AttentionShape, head: usize, len: usize, w: &mut Scratch) {
    let scale = 1.0 / (s.head_dim as f32).sqrt();
    for part in [&mut w.q, &mut w.k, &mut w.v] {
        part.clear();
    }
    for j in 0..len {
        let row = |p: usize| head_row(qkv, s, head, j, p);
        w.q.extend(row(0).iter().map(|x| x * scale));
        w.k.extend_from_slice(row(1));
        w.v.extend_from_slice(row(2));
    }
}

fn mask_offset(s: AttentionShape, text: usize, head: usize) -> u32 {
    ((text * s.heads + head) * s.t * s.t) as u32
}

/// `qkv` `[B·T, 3H]`, `lens[b]` real tokens of text `b` (right padding). Writes the context
/// `[B·T, H]` (padding rows zero) and each (text, head)'s probabilities `[len, len]` at the start
/// of its `t·t` slot of `probs` (`[B, heads, t, t]`), before dropout.
pub fn attention_forward(qkv: &[f32], lens: &[usize], s: AttentionShape, dropout: DropoutMask, out: &mut [f32], probs: &mut [f32]) {
    let (t, h, hd) = (s.t, s.h(), s.head_dim);
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * t * h, "out must be [B·T, H]");
    assert_eq!(probs.len(), lens.len() * s.probs_per_text(), "probs must be [B, heads, T, T]");
    out.par_chunks_mut(t * h).zip(probs.par_chunks_mut(s.probs_per_text())).enumerate().for_each(|(b, (out, probs))| {
        out.iter_mut().for_each(|v| *v = 0.0);
        let len = lens[b].clamp(1, t);
        let qkv = &qkv[b * t * 3 * h..(b + 1) * t * 3 * h];
        with_taken(&SCRATCH, |w| {
            for head in 0..s.heads {
                gather(qkv, s, head, len, w);
                let p = &mut probs[head * t * t..head * t * t + len * len];
                let [kt, vp, ..] = &mut w.packs;
                // Scores over real keys only: what transformers' additive padding mask amounts to.
                kt.repack(Mat::transposed(&w.k, hd, len), s.precision);
                gemm(&w.q, len, kt, None, Epilogue::None, p);
                softmax_rows(p, len);
                w.dropped.clear();
                w.dropped.extend_from_slice(p);
                dropout.apply_serial(&mut w.dropped, mask_offset(s, b, head));
                vp.repack(Mat::rows(&w.v, len, hd), s.precision);
                let ctx = zeroed(&mut w.ctx, len * hd);
                gemm(&w.dropped, len, vp, None, Epilogue::None, ctx);
                for (j, c) in ctx.chunks_exact(hd).enumerate() {
                    out[j * h + head * hd..j * h + (head + 1) * hd].copy_from_slice(c);
                }
            }
        });
    });
}

/// The gradient of [`attention_forward`]: from the context gradient `dctx` `[B·T, H]` to `dqkv`
/// `[B·T, 3H]` (overwritten; padding rows zero), given the forward's `qkv`, `probs` and mask.
pub fn attention_backward(
    qkv: &[f32],
    lens: &[usize],
    s: AttentionShape,
    dropout: DropoutMask,
    probs: &[f32],
    dctx: &[f32],
    dqkv: &mut [f32],
) {
    let (t, h, hd) = (s.t, s.h(), s.head_dim);
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(dqkv.len(), qkv.len(), "dqkv must be [B·T, 3H]");
    assert_eq!(dctx.len(), lens.len() * t * h, "dctx must be [B·T, H]");
    assert_eq!(probs.len(), lens.len() * s.probs_per_text(), "probs must be [B, heads, T, T]");
    let scale = 1.0 / (hd as f32).sqrt();
    dqkv.par_chunks_mut(t * 3 * h).enumerate().for_each(|(b, dqkv)| {
        dqkv.iter_mut().for_each(|v| *v = 0.0);
        let len = lens[b].clamp(1, t);
        let qkv = &qkv[b * t * 3 * h..(b + 1) * t * 3 * h];
        with_taken(&SCRATCH, |w| {
            for head in 0..s.heads {
                gather(qkv, s, head, len, w);
                w.dc.clear();
                for j in 0..len {
                    let start = (b * t + j) * h + head * hd;
                    w.dc.extend_from_slice(&dctx[start..start + hd]);
                }
                let p = &probs[(b * s.heads + head) * t * t..][..len * len];
                w.dropped.clear();
                w.dropped.extend_from_slice(p);
                dropout.apply_serial(&mut w.dropped, mask_offset(s, b, head));
                let [dc_packed, vt, kp, qp] = &mut w.packs;
                dc_packed.repack(Mat::rows(&w.dc, len, hd), s.precision);
                // dV = P'ᵀ · dC (into `ctx`, the forward's context buffer).
                let dv = zeroed(&mut w.ctx, len * hd);
                gemm_ex(Mat::transposed(&w.dropped, len, len), None, dc_packed, None, Epilogue::None, dv, false);
                // dP' = dC · Vᵀ, then through the dropout: dP = dP' · mask / (1 − p).
                let ds = zeroed(&mut w.ds, len * len);
                vt.repack(Mat::transposed(&w.v, hd, len), s.precision);
                gemm(&w.dc, len, vt, None, Epilogue::None, ds);
                dropout.apply_serial(ds, mask_offset(s, b, head));
                // Softmax backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)).
                for (drow, prow) in ds.chunks_exact_mut(len).zip(p.chunks_exact(len)) {
                    let dot: f32 = drow.iter().zip(prow).map(|(a, b)| a * b).sum();
                    drow.iter_mut().zip(prow).for_each(|(d, p)| *d = p * (*d - dot));
                }
                // S = (Q/√d)·Kᵀ: dQ = dS·K/√d, dK = dSᵀ·(Q/√d).
                kp.repack(Mat::rows(&w.k, len, hd), s.precision);
                let dq = zeroed(&mut w.dq, len * hd);
                gemm(ds, len, kp, None, Epilogue::None, dq);
                qp.repack(Mat::rows(&w.q, len, hd), s.precision);
                let dk = zeroed(&mut w.dk, len * hd);
                gemm_ex(Mat::transposed(ds, len, len), None, qp, None, Epilogue::None, dk, false);
                for j in 0..len {
                    let row = &mut dqkv[j * 3 * h..(j + 1) * 3 * h];
                    let r = j * hd..(j + 1) * hd;
                    row[head * hd..(head + 1) * hd].iter_mut().zip(&dq[r.clone()]).for_each(|(d, g)| *d = g * scale);
                    row[h + head * hd..h + (head + 1) * hd].copy_from_slice(&dk[r.clone()]);
                    row[2 * h + head * hd..2 * h + (head + 1) * hd].copy_from_slice(&dv[r]);
                }
            }
        });
    });
}

/// [`attention_forward`] for each text's first query only (the `[CLS]` row, all that a last
/// layer under `[CLS]` or pooler pooling needs): the context `[B, H]` and each (text, head)'s
/// probabilities `[len]` at the start of its `t` slot of `probs` (`[B, heads, t]`), before
/// dropout. The dropout mask of row 0 of [`attention_forward`]'s: the same values as its first
/// rows. One row of keys per head is a matrix-vector product: plain loops, no GEMM.
pub fn attention_forward_first(qkv: &[f32], lens: &[usize], s: AttentionShape, dropout: DropoutMask, out: &mut [f32], probs: &mut [f32]) {
    let (t, h, hd) = (s.t, s.h(), s.head_dim);
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * h, "out must be [B, H]");
    assert_eq!(probs.len(), lens.len() * s.first_probs_per_text(), "probs must be [B, heads, T]");
    let scale = 1.0 / (hd as f32).sqrt();
    out.par_chunks_mut(h).zip(probs.par_chunks_mut(s.first_probs_per_text())).enumerate().for_each(|(b, (out, probs))| {
        let len = lens[b].clamp(1, t);
        let qkv = &qkv[b * t * 3 * h..(b + 1) * t * 3 * h];
        with_taken(&SCRATCH, |w| {
            for head in 0..s.heads {
                let q = head_row(qkv, s, head, 0, 0);
                let p = &mut probs[head * t..head * t + len];
                for (j, pj) in p.iter_mut().enumerate() {
                    *pj = q.iter().zip(head_row(qkv, s, head, j, 1)).map(|(a, k)| a * k).sum::<f32>() * scale;
                }
                softmax_rows(p, len);
                w.dropped.clear();
                w.dropped.extend_from_slice(p);
                dropout.apply_serial(&mut w.dropped, mask_offset(s, b, head));
                let ctx = &mut out[head * hd..(head + 1) * hd];
                ctx.fill(0.0);
                for (j, &pj) in w.dropped.iter().enumerate() {
                    ctx.iter_mut().zip(head_row(qkv, s, head, j, 2)).for_each(|(c, v)| *c += pj * v);
                }
            }
        });
    });
}

/// The gradient of [`attention_forward_first`]: from the `[CLS]` context gradient `dctx` `[B, H]`
/// to `dqkv` `[B·T, 3H]` (overwritten): the first row's query gradient, and every real row's key
/// and value gradients (what that one query read); zero elsewhere.
pub fn attention_backward_first(
    qkv: &[f32],
    lens: &[usize],
    s: AttentionShape,
    dropout: DropoutMask,
    probs: &[f32],
    dctx: &[f32],
    dqkv: &mut [f32],
) {
    let (t, h, hd) = (s.t, s.h(), s.head_dim);
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(dqkv.len(), qkv.len(), "dqkv must be [B·T, 3H]");
    assert_eq!(dctx.len(), lens.len() * h, "dctx must be [B, H]");
    assert_eq!(probs.len(), lens.len() * s.first_probs_per_text(), "probs must be [B, heads, T]");
    let scale = 1.0 / (hd as f32).sqrt();
    dqkv.par_chunks_mut(t * 3 * h).enumerate().for_each(|(b, dqkv)| {
        dqkv.fill(0.0);
        let len = lens[b].clamp(1, t);
        let qkv = &qkv[b * t * 3 * h..(b + 1) * t * 3 * h];
        with_taken(&SCRATCH, |w| {
            for head in 0..s.heads {
                let dc = &dctx[b * h + head * hd..][..hd];
                let p = &probs[(b * s.heads + head) * t..][..len];
                w.dropped.clear();
                w.dropped.extend_from_slice(p);
                dropout.apply_serial(&mut w.dropped, mask_offset(s, b, head));
                // dV_j = P'_j · dC; dP'_j = dC · V_j, then through the dropout.
                let ds = zeroed(&mut w.ds, len);
                for (j, d) in ds.iter_mut().enumerate() {
                    let dv = &mut dqkv[j * 3 * h + 2 * h + head * hd..][..hd];
                    dv.iter_mut().zip(dc).for_each(|(g, c)| *g = w.dropped[j] * c);
                    *d = dc.iter().zip(head_row(qkv, s, head, j, 2)).map(|(c, v)| c * v).sum();
                }
                dropout.apply_serial(ds, mask_offset(s, b, head));
                // Softmax backward: dS = P ⊙ (dP − dP·P).
                let dot: f32 = ds.iter().zip(p).map(|(a, b)| a * b).sum();
                ds.iter_mut().zip(p).for_each(|(d, p)| *d = p * (*d - dot));
                // S = (q/√d)·Kᵀ: dq = dS·K/√d, dK_j = dS_j·q/√d.
                let q = head_row(qkv, s, head, 0, 0);
                let dq = zeroed(&mut w.dq, hd);
                for (j, &g) in ds.iter().enumerate() {
                    dq.iter_mut().zip(head_row(qkv, s, head, j, 1)).for_each(|(a, k)| *a += g * k);
                    let dk = &mut dqkv[j * 3 * h + h + head * hd..][..hd];
                    dk.iter_mut().zip(q).for_each(|(a, q)| *a = g * q * scale);
                }
                dqkv[head * hd..(head + 1) * hd].iter_mut().zip(dq.iter()).for_each(|(a, g)| *a = g * scale);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_query_forward_equals_the_full_forwards_first_rows() {
        let s = AttentionShape { t: 6, heads: 2, head_dim: 3, precision: Precision::F32 };
        let lens = [6, 2, 0];
        let qkv: Vec<f32> = (0..lens.len() * s.t * 3 * s.h()).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.15).collect();
        for drop in [DropoutMask::new(5, 0.0), DropoutMask::new(5, 0.4)] {
            let mut full = vec![0.0; lens.len() * s.t * s.h()];
            attention_forward(&qkv, &lens, s, drop, &mut full, &mut vec![0.0; lens.len() * s.probs_per_text()]);
            let mut first = vec![f32::NAN; lens.len() * s.h()];
            attention_forward_first(&qkv, &lens, s, drop, &mut first, &mut vec![0.0; lens.len() * s.first_probs_per_text()]);
            for (b, got) in first.chunks_exact(s.h()).enumerate() {
                let want = &full[b * s.t * s.h()..][..s.h()];
                assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5), "p={} text {b}: {got:?} against {want:?}", drop.p);
            }
        }
    }

    /// The backward of the full attention (`first`: false) or of the first query's against
    /// central differences of Σ out·up, with padding, without and with dropout.
    fn check_finite_differences(first: bool) {
        let s = AttentionShape { t: 5, heads: 2, head_dim: 3, precision: Precision::F32 };
        let lens = [5, 3];
        let n = lens.len() * s.t * 3 * s.h();
        let qkv: Vec<f32> = (0..n).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.1).collect();
        let out_rows = if first { lens.len() } else { lens.len() * s.t };
        let up: Vec<f32> = (0..out_rows * s.h()).map(|i| ((i * 17 % 13) as f32 - 6.0) * 0.2).collect();
        let forward = |qkv: &[f32], drop: DropoutMask| {
            let mut out = vec![0.0; up.len()];
            if first {
                let mut probs = vec![0.0; lens.len() * s.first_probs_per_text()];
                attention_forward_first(qkv, &lens, s, drop, &mut out, &mut probs);
                (out, probs)
            } else {
                let mut probs = vec![0.0; lens.len() * s.probs_per_text()];
                attention_forward(qkv, &lens, s, drop, &mut out, &mut probs);
                (out, probs)
            }
        };
        let loss = |qkv: &[f32], drop| forward(qkv, drop).0.iter().zip(&up).map(|(a, b)| f64::from(a * b)).sum::<f64>();
        for drop in [DropoutMask::new(3, 0.0), DropoutMask::new(3, 0.3)] {
            let (_, probs) = forward(&qkv, drop);
            let mut dqkv = vec![f32::NAN; n];
            if first {
                attention_backward_first(&qkv, &lens, s, drop, &probs, &up, &mut dqkv);
            } else {
                attention_backward(&qkv, &lens, s, drop, &probs, &up, &mut dqkv);
            }
            for i in 0..n {
                let hstep = 1e-2f32;
                let (mut a, mut b) = (qkv.clone(), qkv.clone());
                a[i] += hstep;
                b[i] -= hstep;
                let num = (loss(&a, drop) - loss(&b, drop)) / f64::from(2.0 * hstep);
                assert!((f64::from(dqkv[i]) - num).abs() < 2e-3, "first {first}, p={} [{i}]: {} vs {num}", drop.p, dqkv[i]);
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences_with_padding_and_dropout() {
        check_finite_differences(false);
    }

    #[test]
    fn first_query_backward_matches_finite_differences_with_padding_and_dropout() {
        check_finite_differences(true);
    }
}
