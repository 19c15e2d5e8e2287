//! Row-wise operations of the encoder's inference path: LayerNorm (with the residual add fused),
//! masked multi-head attention, activations. Each body is written once as plain loops (16-lane
//! accumulators so float reductions vectorise) and compiled twice: for AVX-512 and for baseline
//! x86-64, picked at run time.

use rayon::prelude::*;

use crate::gemm::{Isa, gelu_scalar, isa};

/// Instantiates `$body` as an AVX-512 function and a portable one and calls the right one.
macro_rules! dispatch {
    ($name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn imp($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,fma")]
            unsafe fn fast($($arg: $ty),*) {
                imp($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if isa() != Isa::Portable {
                // SAFETY: the CPU has AVX-512 (checked by `isa`); `imp` is safe code.
                return unsafe { fast($($arg),*) };
            }
            imp($($arg),*)
        }
    };
}

const LANES: usize = 16;

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut sq = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            sq[l] += d * d;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    let inv = 1.0 / ((sq.iter().sum::<f32>() + tail) / n + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

dispatch!(layer_norm_serial(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(width) {
        norm_row(row, gamma, beta, eps);
    }
});

dispatch!(add_layer_norm_serial(x: &mut [f32], residual: &[f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for (row, res) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        for (v, r) in row.iter_mut().zip(res) {
            *v += r;
        }
        norm_row(row, gamma, beta, eps);
    }
});

/// Rows per parallel task of the row-wise ops.
const ROWS_PER_TASK: usize = 32;

/// LayerNorm over each `width`-wide row of `x` (transformers' `nn.LayerNorm`, biased variance).
pub fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    x.par_chunks_mut(width * ROWS_PER_TASK).for_each(|c| layer_norm_serial(c, width, gamma, beta, eps));
}

/// `x = LayerNorm(x + residual)`, the post-LN block's "add & norm".
pub fn add_layer_norm(x: &mut [f32], residual: &[f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    x.par_chunks_mut(width * ROWS_PER_TASK)
        .zip(residual.par_chunks(width * ROWS_PER_TASK))
        .for_each(|(c, r)| add_layer_norm_serial(c, r, width, gamma, beta, eps));
}

dispatch!(attention_rows(qkv: &[f32], out: &mut [f32], first_row: usize, lens: &[usize], t: usize, heads: usize, hd: usize) {
    let h = heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut probs = vec![0.0f32; t];
    for (i, out_row) in out.chunks_exact_mut(h).enumerate() {
        let r = first_row + i;
        let (b, _) = (r / t, r % t);
        let len = lens[b].max(1);
        let q_row = &qkv[r * 3 * h..r * 3 * h + h];
        for head in 0..heads {
            let q = &q_row[head * hd..(head + 1) * hd];
            let mut max = f32::NEG_INFINITY;
            for (j, p) in probs.iter_mut().enumerate().take(len) {
                let kr = (b * t + j) * 3 * h + h + head * hd;
                *p = dot(q, &qkv[kr..kr + hd]) * scale;
                max = max.max(*p);
            }
            let mut total = 0.0;
            for p in probs.iter_mut().take(len) {
                *p = (*p - max).exp();
                total += *p;
            }
            let o = &mut out_row[head * hd..(head + 1) * hd];
            o.iter_mut().for_each(|v| *v = 0.0);
            for (j, p) in probs.iter().enumerate().take(len) {
                let w = p / total;
                let vr = (b * t + j) * 3 * h + 2 * h + head * hd;
                for (ov, vv) in o.iter_mut().zip(&qkv[vr..vr + hd]) {
                    *ov += w * vv;
                }
            }
        }
    }
});

/// Multi-head self-attention on a fused projection: `qkv` is `[B·T, 3H]` (queries, keys, values
/// of all heads side by side), `lens[b]` the real tokens of text `b` (right padding: keys past it
/// are masked out, as transformers' additive mask does in effect). Writes the context `[B·T, H]`.
pub fn attention(qkv: &[f32], lens: &[usize], t: usize, heads: usize, hd: usize, out: &mut [f32]) {
    let h = heads * hd;
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * t * h, "out must be [B·T, H]");
    const ROWS: usize = 8;
    out.par_chunks_mut(h * ROWS)
        .enumerate()
        .for_each(|(c, chunk)| attention_rows(qkv, chunk, c * ROWS, lens, t, heads, hd));
}

dispatch!(gelu_tanh_serial(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    for v in x.iter_mut() {
        let u = *v;
        *v = 0.5 * u * (1.0 + (C * (u + 0.044_715 * u * u * u)).tanh());
    }
});

/// tanh-approximated GELU (`gelu_new`), in place.
pub fn gelu_tanh(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(gelu_tanh_serial);
}

/// Exact GELU, in place, on all threads.
pub fn gelu_par(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(crate::gemm::gelu);
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// tanh in place.
pub fn tanh(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
}

/// Scalar exact GELU (for tests and odd sizes).
pub fn gelu_one(x: f32) -> f32 {
    gelu_scalar(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalises_each_row() {
        let mut x: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let (g, b) = (vec![2.0; 20], vec![1.0; 20]);
        layer_norm(&mut x, 20, &g, &b, 1e-12);
        for row in x.chunks(20) {
            let mean: f32 = row.iter().sum::<f32>() / 20.0;
            assert!((mean - 1.0).abs() < 1e-5, "{mean}");
            let var: f32 = row.iter().map(|v| (v - 1.0) * (v - 1.0)).sum::<f32>() / 20.0;
            assert!((var - 4.0).abs() < 1e-3, "{var}");
        }
    }

    #[test]
    fn attention_ignores_padding_and_averages_values() {
        // One head of size 2, T = 3, text 0 has 2 real tokens. Queries are zero, so every real
        // key gets the same weight: the context is the mean of the real values.
        let (t, hd) = (3, 2);
        let mut qkv = vec![0.0f32; 2 * t * 3 * hd];
        for (r, v) in [(0usize, [1.0f32, 2.0]), (1, [3.0, 4.0]), (2, [100.0, 100.0]), (3, [5.0, 5.0]), (4, [7.0, 7.0]), (5, [9.0, 9.0])] {
            qkv[r * 3 * hd + 2 * hd..r * 3 * hd + 3 * hd].copy_from_slice(&v);
        }
        let mut out = vec![0.0; 2 * t * hd];
        attention(&qkv, &[2, 3], t, 1, hd, &mut out);
        assert_eq!(&out[..2], &[2.0, 3.0]);
        assert_eq!(&out[6..8], &[7.0, 7.0]);
    }
}
