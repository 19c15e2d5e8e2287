//! Row-wise operations of the training path and their gradients: LayerNorm that keeps what its
//! backward needs, GELU's derivative, bias gradients, gradient norms and AdamW (dropout, whose
//! backward regenerates the forward's mask, is `dropout.rs`).
//! Written as plain loops that vectorise, compiled for AVX-512 and baseline x86-64 like `ops`.

use rayon::prelude::*;

use crate::ops::{LANES, mean_rstd};

/// Elements per parallel task of the elementwise ops.
const CHUNK: usize = 1 << 14;
/// Rows per parallel task of the row-wise ops.
const ROWS: usize = 32;

dispatch!(pub norm_rows_train(x: &mut [f32], xhat: &mut [f32], rstd: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for ((row, xh), rs) in x.chunks_exact_mut(width).zip(xhat.chunks_exact_mut(width)).zip(rstd.iter_mut()) {
        let (mean, inv) = mean_rstd(row, eps);
        *rs = inv;
        for (((v, h), g), b) in row.iter_mut().zip(xh.iter_mut()).zip(gamma).zip(beta) {
            *h = (*v - mean) * inv;
            *v = *h * g + b;
        }
    }
});

/// LayerNorm of each `width`-wide row of `x` in place (`nn.LayerNorm`, biased variance),
/// keeping the normalised rows `xhat` and `1/σ` per row (`rstd`) for [`layer_norm_backward`].
pub fn layer_norm_train(x: &mut [f32], xhat: &mut [f32], rstd: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    assert!(x.len() == xhat.len() && x.len() == rstd.len() * width, "layer_norm_train: shapes");
    x.par_chunks_mut(width * ROWS)
        .zip(xhat.par_chunks_mut(width * ROWS))
        .zip(rstd.par_chunks_mut(ROWS))
        .for_each(|((x, h), r)| norm_rows_train(x, h, r, width, gamma, beta, eps));
}

dispatch!(pub norm_rows_backward(dy: &mut [f32], xhat: &[f32], rstd: &[f32], width: usize, gamma: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
    let n = width as f32;
    for ((d, xh), &rs) in dy.chunks_exact_mut(width).zip(xhat.chunks_exact(width)).zip(rstd) {
        // g = dy·γ; dx = (g − mean(g) − x̂·mean(g·x̂)) / σ  (PyTorch's layer_norm_backward).
        let (mut sg, mut sgx) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut i = 0;
        while i + LANES <= width {
            for l in 0..LANES {
                let g = d[i + l] * gamma[i + l];
                sg[l] += g;
                sgx[l] += g * xh[i + l];
                dgamma[i + l] += d[i + l] * xh[i + l];
                dbeta[i + l] += d[i + l];
            }
            i += LANES;
        }
        let (mut tg, mut tgx) = (0.0f32, 0.0f32);
        for j in i..width {
            let g = d[j] * gamma[j];
            tg += g;
            tgx += g * xh[j];
            dgamma[j] += d[j] * xh[j];
            dbeta[j] += d[j];
        }
        let mg = (sg.iter().sum::<f32>() + tg) / n;
        let mgx = (sgx.iter().sum::<f32>() + tgx) / n;
        for ((v, x), g) in d.iter_mut().zip(xh).zip(gamma) {
            *v = (*v * g - mg - x * mgx) * rs;
        }
    }
});

/// The gradient of [`layer_norm_train`]: `dy` (`[rows, width]`) becomes `dx` in place;
/// `dgamma`/`dbeta` are accumulated (`+=`).
pub fn layer_norm_backward(dy: &mut [f32], xhat: &[f32], rstd: &[f32], width: usize, gamma: &[f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
    assert!(dy.len() == xhat.len() && dy.len() == rstd.len() * width, "layer_norm_backward: shapes");
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dy
        .par_chunks_mut(width * ROWS * 4)
        .zip(xhat.par_chunks(width * ROWS * 4))
        .zip(rstd.par_chunks(ROWS * 4))
        .map(|((d, h), r)| {
            let (mut dg, mut db) = (vec![0.0f32; width], vec![0.0f32; width]);
            norm_rows_backward(d, h, r, width, gamma, &mut dg, &mut db);
            (dg, db)
        })
        .collect();
    for (dg, db) in partial {
        dgamma.iter_mut().zip(&dg).for_each(|(a, b)| *a += b);
        dbeta.iter_mut().zip(&db).for_each(|(a, b)| *a += b);
    }
}

/// d/dx of x·Φ(x): Φ(x) + x·φ(x), with the same erf approximation as the forward GELU.
#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    // Φ(x) = (1 + erf(x/√2))/2, computed directly to stay finite at 0; the same exponential
    // e^(−x²/2) serves erf and the density φ(x).
    let (erf, e) = crate::ops::erf_parts(x);
    0.5 * (1.0 + erf) + x * INV_SQRT_2PI * e
}

dispatch!(pub gelu_backward_serial(pre: &[f32], dy: &mut [f32]) {
    for (d, &x) in dy.iter_mut().zip(pre) {
        *d *= gelu_grad(x);
    }
});

/// `dy ← dy · GELU'(pre)` in place (exact GELU).
pub fn gelu_backward(pre: &[f32], dy: &mut [f32]) {
    assert_eq!(pre.len(), dy.len(), "gelu_backward: shapes");
    dy.par_chunks_mut(CHUNK).zip(pre.par_chunks(CHUNK)).for_each(|(d, p)| gelu_backward_serial(p, d));
}

dispatch!(pub gelu_to_serial(pre: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(pre) {
        *o = crate::ops::gelu_scalar(x);
    }
});

/// `out = GELU(pre)` (exact), keeping `pre` for the backward pass: one pass that reads `pre` and
/// writes `out` (a copy and then GELU in place read and wrote the whole activation twice).
pub fn gelu_into(pre: &[f32], out: &mut Vec<f32>) {
    out.resize(pre.len(), 0.0);
    out.par_chunks_mut(CHUNK).zip(pre.par_chunks(CHUNK)).for_each(|(o, p)| gelu_to_serial(p, o));
}

/// The feed-forward activations the trainer differentiates (transformers' `hidden_act`:
/// `gelu`, `gelu_new` / `gelu_pytorch_tanh`, `relu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Exact erf GELU.
    Gelu,
    /// tanh-approximated GELU (transformers' `NewGELUActivation`).
    GeluTanh,
    Relu,
}

/// √(2/π) and the cubic coefficient of the tanh GELU.
const TANH_C: f32 = 0.797_884_6;
const TANH_K: f32 = 0.044_715;

/// d/dx of 0.5·x·(1 + tanh(c·(x + k·x³))).
#[inline(always)]
fn gelu_tanh_grad(x: f32) -> f32 {
    let th = (TANH_C * (x + TANH_K * x * x * x)).tanh();
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * TANH_C * (1.0 + 3.0 * TANH_K * x * x)
}

dispatch!(pub gelu_tanh_backward_serial(pre: &[f32], dy: &mut [f32]) {
    for (d, &x) in dy.iter_mut().zip(pre) {
        *d *= gelu_tanh_grad(x);
    }
});

/// `out = act(pre)`, keeping `pre` for the backward pass.
pub fn activation_into(act: Activation, pre: &[f32], out: &mut Vec<f32>) {
    match act {
        Activation::Gelu => gelu_into(pre, out),
        Activation::GeluTanh | Activation::Relu => {
            out.clear();
            out.extend_from_slice(pre);
            if act == Activation::Relu {
                crate::ops::relu(out);
            } else {
                crate::ops::gelu_tanh(out);
            }
        }
    }
}

/// `dy ← dy · act'(pre)` in place.
pub fn activation_backward(act: Activation, pre: &[f32], dy: &mut [f32]) {
    assert_eq!(pre.len(), dy.len(), "activation_backward: shapes");
    match act {
        Activation::Gelu => gelu_backward(pre, dy),
        Activation::GeluTanh => {
            dy.par_chunks_mut(CHUNK).zip(pre.par_chunks(CHUNK)).for_each(|(d, p)| gelu_tanh_backward_serial(p, d));
        }
        // ReLU'(0) = 0, as PyTorch takes it.
        Activation::Relu => dy.iter_mut().zip(pre).for_each(|(d, &x)| *d = if x > 0.0 { *d } else { 0.0 }),
    }
}

dispatch!(pub col_sums_serial(x: &[f32], n: usize, out: &mut [f32]) {
    for row in x.chunks_exact(n) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
});

/// `out[j] += Σ_i x[i, j]` for `x` `[rows, n]` (bias gradients).
pub fn col_sums(x: &[f32], n: usize, out: &mut [f32]) {
    assert_eq!(out.len(), n, "col_sums: out must have n values");
    let partial: Vec<Vec<f32>> = x
        .par_chunks(n * 256)
        .map(|c| {
            let mut o = vec![0.0f32; n];
            col_sums_serial(c, n, &mut o);
            o
        })
        .collect();
    for p in partial {
        out.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
}

dispatch!(pub sum_squares_serial(x: &[f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l] * c[l];
        }
    }
    f64::from(acc.iter().sum::<f32>()) + chunks.remainder().iter().map(|v| f64::from(v * v)).sum::<f64>()
});

/// Σ x² (chunks summed in f64, in order: the same result on every run, which a resumed run
/// needs to repeat an uninterrupted one), for the global gradient norm.
pub fn sum_squares(x: &[f32]) -> f64 {
    let parts: Vec<f64> = x.par_chunks(CHUNK).map(sum_squares_serial).collect();
    parts.iter().sum()
}

/// `x ← x · s` in place.
pub fn scale(x: &mut [f32], s: f32) {
    x.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v *= s));
}

/// One AdamW update's hyper-parameters (`torch.optim.AdamW`, which burn's `AdamW` mirrors).
#[derive(Clone, Copy, Debug)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (0 for biases and LayerNorm).
    pub weight_decay: f32,
    /// 1-based step number (bias correction).
    pub step: i32,
}

dispatch!(pub adamw_serial(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamW) {
    let c1 = 1.0 / (1.0 - h.beta1.powi(h.step));
    let c2 = 1.0 / (1.0 - h.beta2.powi(h.step));
    let decay = 1.0 - h.lr * h.weight_decay;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = h.beta1 * *m + (1.0 - h.beta1) * g;
        *v = h.beta2 * *v + (1.0 - h.beta2) * g * g;
        let update = (*m * c1) / ((*v * c2).sqrt() + h.eps);
        *p = *p * decay - h.lr * update;
    }
});

/// One AdamW step on a parameter tensor with its gradient and moments.
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamW) {
    assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len(), "adamw: shapes");
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| adamw_serial(p, g, m, v, h));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gelu_scalar;

    /// Central differences of a scalar function of `x`.
    fn numeric(x: &[f32], f: impl Fn(&[f32]) -> f64) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-2f32;
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / f64::from(2.0 * h)
            })
            .collect()
    }

    #[test]
    fn layer_norm_backward_matches_finite_differences() {
        let w = 20;
        let x: Vec<f32> = (0..2 * w).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.3).collect();
        let gamma: Vec<f32> = (0..w).map(|i| 0.5 + i as f32 * 0.05).collect();
        let beta = vec![0.1f32; w];
        let up: Vec<f32> = (0..2 * w).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1).collect();
        let loss = |x: &[f32]| {
            let (mut y, mut h, mut r) = (x.to_vec(), vec![0.0; x.len()], vec![0.0; 2]);
            layer_norm_train(&mut y, &mut h, &mut r, w, &gamma, &beta, 1e-5);
            y.iter().zip(&up).map(|(a, b)| f64::from(a * b)).sum::<f64>()
        };
        let (mut y, mut h, mut r) = (x.clone(), vec![0.0; x.len()], vec![0.0; 2]);
        layer_norm_train(&mut y, &mut h, &mut r, w, &gamma, &beta, 1e-5);
        let mut dx = up.clone();
        let (mut dg, mut db) = (vec![0.0; w], vec![0.0; w]);
        layer_norm_backward(&mut dx, &h, &r, w, &gamma, &mut dg, &mut db);
        for (a, n) in dx.iter().zip(numeric(&x, loss)) {
            assert!((f64::from(*a) - n).abs() < 2e-3, "{a} vs {n}");
        }
        let want_db: Vec<f32> = (0..w).map(|j| up[j] + up[w + j]).collect();
        assert!(db.iter().zip(&want_db).all(|(a, b)| (a - b).abs() < 1e-6));
        let want_dg: Vec<f32> = (0..w).map(|j| up[j] * h[j] + up[w + j] * h[w + j]).collect();
        assert!(dg.iter().zip(&want_dg).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    /// Every activation's derivative against central differences of its forward (in f64 steps
    /// around points where the derivative is smooth; ReLU's kink at 0 is left out).
    #[test]
    fn activation_backward_matches_finite_differences_of_activation_into() {
        for act in [Activation::Gelu, Activation::GeluTanh, Activation::Relu] {
            for &x in &[-3.1f32, -1.2, -0.4, 0.3, 0.9, 2.2, 4.5] {
                let h = 1e-2f32;
                let mut hi = Vec::new();
                let mut lo = Vec::new();
                activation_into(act, &[x + h], &mut hi);
                activation_into(act, &[x - h], &mut lo);
                let numeric = (f64::from(hi[0]) - f64::from(lo[0])) / (2.0 * f64::from(h));
                let mut d = [1.0f32];
                activation_backward(act, &[x], &mut d);
                assert!((f64::from(d[0]) - numeric).abs() < 2e-3, "{act:?}'({x}) = {} but differences give {numeric}", d[0]);
            }
        }
        // The tanh form is not the erf one: a swap of the two would pass the test above.
        let (mut t, mut e) = (Vec::new(), Vec::new());
        activation_into(Activation::GeluTanh, &[1.7], &mut t);
        activation_into(Activation::Gelu, &[1.7], &mut e);
        assert!((t[0] - e[0]).abs() > 1e-5, "tanh GELU {} equals the erf GELU {}", t[0], e[0]);
    }

    #[test]
    fn gelu_backward_matches_finite_differences() {
        for x in [-4.0f32, -1.3, -0.2, 0.0, 0.4, 1.7, 5.0] {
            let h = 1e-3f32;
            let n = (f64::from(gelu_scalar(x + h)) - f64::from(gelu_scalar(x - h))) / f64::from(2.0 * h);
            let mut d = vec![1.0f32; 3];
            gelu_backward(&[x; 3], &mut d);
            assert!((f64::from(d[0]) - n).abs() < 2e-3, "{x}: {} vs {n}", d[0]);
        }
    }

    #[test]
    fn adamw_first_step_moves_by_lr_and_decays() {
        let (mut p, g) = (vec![1.0f32, -2.0], vec![0.5f32, -3.0]);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        let h = AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 1 };
        adamw(&mut p, &g, &mut m, &mut v, h);
        // Step 1: m̂ = g, v̂ = g², update = sign(g).
        assert!((p[0] - (1.0 * (1.0 - 0.001) - 0.1)).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] - (-2.0 * (1.0 - 0.001) + 0.1)).abs() < 1e-6, "{}", p[1]);
    }

    #[test]
    fn column_sums_and_norms() {
        let x: Vec<f32> = (0..3000).map(|i| (i % 3) as f32).collect();
        let mut out = vec![1.0f32; 3];
        col_sums(&x, 3, &mut out);
        assert_eq!(out, vec![1.0, 1001.0, 2001.0]);
        assert!((sum_squares(&x) - 5000.0).abs() < 1e-6);
    }
}
