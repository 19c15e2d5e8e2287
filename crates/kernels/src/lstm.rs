//! One LSTM direction over a post-padded batch, forward and backward through time, as burn's
//! `Lstm::forward_iter` (and PyTorch's `nn.LSTM`) compute it: gates `i, f, o` = σ, `g` = tanh
//! of `x·Wx + h·Wh + b`; `c = f⊙c' + i⊙g`; `h = o⊙tanh(c)`.
//!
//! A direction reads each text in reading order or, `reverse`, backwards *within its real
//! length* (padding stays at the end), and writes each step's state at the position it read: the
//! states come back in reading order. Padding steps are computed like any other (as burn does)
//! but run after a text's real steps, so no state that is read depends on them, and backward
//! gives them zero gradient as long as the caller passes zero there.

use crate::{Epilogue, Mat, PackedB, Precision, gemm_ex};

/// A batch's geometry: `batch` texts of `t` steps, `lens[b]` real ones each.
#[derive(Clone, Copy)]
pub struct Steps<'a> {
    pub batch: usize,
    pub t: usize,
    pub lens: &'a [usize],
    pub reverse: bool,
}

impl Steps<'_> {
    /// The position (in reading order) that text `b` reads at step `s`.
    pub fn position(&self, b: usize, s: usize) -> usize {
        let len = self.lens[b].min(self.t);
        if self.reverse && s < len { len - 1 - s } else { s }
    }
}

/// One direction's weights: `wx` `[D, 4U]`, `wh` `[U, 4U]` (gate blocks `i, f, o, g` side by
/// side) and the summed biases `[4U]`.
pub struct LstmWeights<'a> {
    pub wx: &'a PackedB,
    pub wh: &'a PackedB,
    pub bias: &'a [f32],
    pub units: usize,
}

/// What the backward pass reads, in step order (`[T, B, ·]`).
#[derive(Default)]
pub struct LstmCache {
    /// Gate activations `i, f, o, g` per step.
    pub gates: Vec<f32>,
    pub c: Vec<f32>,
    pub h: Vec<f32>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Runs one direction over `x` (`[B·T, D]`, row `b·T + t`) into `out` (`[B·T, U]`, reading
/// order), keeping in `cache` what [`lstm_backward`] needs.
pub fn lstm_forward(x: &[f32], steps: Steps<'_>, w: &LstmWeights<'_>, out: &mut Vec<f32>, cache: &mut LstmCache) {
    let (b, t, u) = (steps.batch, steps.t, w.units);
    let g4 = 4 * u;
    let d = w.wx.k();
    // Every step's input contribution in one GEMM (with the biases).
    let mut xw = vec![0.0f32; b * t * g4];
    gemm_ex(Mat::rows(x, b * t, d), None, w.wx, Some(w.bias), Epilogue::None, &mut xw, false);
    out.clear();
    out.resize(b * t * u, 0.0);
    cache.gates.clear();
    cache.gates.resize(t * b * g4, 0.0);
    cache.c.clear();
    cache.c.resize(t * b * u, 0.0);
    cache.h.clear();
    cache.h.resize(t * b * u, 0.0);
    let mut pre = vec![0.0f32; b * g4];
    for s in 0..t {
        if s == 0 {
            pre.iter_mut().for_each(|v| *v = 0.0);
        } else {
            let h_prev = &cache.h[(s - 1) * b * u..s * b * u];
            gemm_ex(Mat::rows(h_prev, b, u), None, w.wh, None, Epilogue::None, &mut pre, false);
        }
        for bi in 0..b {
            let pos = steps.position(bi, s);
            let a = &mut pre[bi * g4..(bi + 1) * g4];
            a.iter_mut().zip(&xw[(bi * t + pos) * g4..][..g4]).for_each(|(v, x)| *v += x);
            let gates = &mut cache.gates[(s * b + bi) * g4..][..g4];
            let (sig, cand) = gates.split_at_mut(3 * u);
            sig.iter_mut().zip(&a[..3 * u]).for_each(|(y, &v)| *y = sigmoid(v));
            cand.iter_mut().zip(&a[3 * u..]).for_each(|(y, &v)| *y = v.tanh());
            let row = (s * b + bi) * u;
            for j in 0..u {
                let c_prev = if s == 0 { 0.0 } else { cache.c[row - b * u + j] };
                let (i, f, o, g) = (sig[j], sig[u + j], sig[2 * u + j], cand[j]);
                let c = f * c_prev + i * g;
                cache.c[row + j] = c;
                cache.h[row + j] = o * c.tanh();
            }
            out[(bi * t + pos) * u..][..u].copy_from_slice(&cache.h[row..row + u]);
        }
    }
}

/// Gradients of one direction. `dh_out` is the loss's gradient with respect to `out` (reading
/// order); `x` and `cache` are the forward call's. Accumulates `dwx` `[D, 4U]`, `dwh` `[U, 4U]`
/// and `dbias` `[4U]`; writes `dx` `[B·T, D]` (added to its contents when `accumulate`).
/// `wx_t` and `wh_t` are the transposed weights `[4U, D]` and `[4U, U]`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    x: &[f32],
    steps: Steps<'_>,
    (wx_t, wh_t): (&PackedB, &PackedB),
    units: usize,
    cache: &LstmCache,
    dh_out: &[f32],
    (dwx, dwh, dbias): (&mut [f32], &mut [f32], &mut [f32]),
    (dx, accumulate): (&mut [f32], bool),
) {
    let (b, t, u) = (steps.batch, steps.t, units);
    if t == 0 {
        return;
    }
    let g4 = 4 * u;
    let d = wx_t.n();
    // Gate pre-activation gradients: in reading order (for the input GEMMs) and in step order
    // (for the recurrent weight's, whose left operand is the previous step's state).
    let mut da = vec![0.0f32; b * t * g4];
    let mut da_steps = vec![0.0f32; t * b * g4];
    let mut dh_next = vec![0.0f32; b * u];
    let mut dc_next = vec![0.0f32; b * u];
    for s in (0..t).rev() {
        for bi in 0..b {
            let pos = steps.position(bi, s);
            let row = (s * b + bi) * u;
            let gates = &cache.gates[(s * b + bi) * g4..][..g4];
            let dst = &mut da_steps[(s * b + bi) * g4..][..g4];
            for j in 0..u {
                let (i, f, o, g) = (gates[j], gates[u + j], gates[2 * u + j], gates[3 * u + j]);
                let c = cache.c[row + j];
                let c_prev = if s == 0 { 0.0 } else { cache.c[row - b * u + j] };
                let tc = c.tanh();
                let dh = dh_out[(bi * t + pos) * u + j] + dh_next[bi * u + j];
                let dc = dc_next[bi * u + j] + dh * o * (1.0 - tc * tc);
                dst[j] = dc * g * i * (1.0 - i);
                dst[u + j] = dc * c_prev * f * (1.0 - f);
                dst[2 * u + j] = dh * tc * o * (1.0 - o);
                dst[3 * u + j] = dc * i * (1.0 - g * g);
                dc_next[bi * u + j] = dc * f;
            }
            da[(bi * t + pos) * g4..][..g4].copy_from_slice(dst);
        }
        let step_da = &da_steps[s * b * g4..(s + 1) * b * g4];
        gemm_ex(Mat::rows(step_da, b, g4), None, wh_t, None, Epilogue::None, &mut dh_next, false);
    }
    // dWh = Σ_s h_{s−1}ᵀ·da_s: the states shifted by one step (zero before the first).
    let mut h_prev = vec![0.0f32; t * b * u];
    h_prev[b * u..].copy_from_slice(&cache.h[..(t - 1) * b * u]);
    let pack = |m: Mat<'_>| {
        let mut p = PackedB::empty();
        p.repack(m, Precision::F32);
        p
    };
    let da_steps_packed = pack(Mat::rows(&da_steps, t * b, g4));
    gemm_ex(Mat::transposed(&h_prev, u, t * b), None, &da_steps_packed, None, Epilogue::None, dwh, true);
    let da_packed = pack(Mat::rows(&da, b * t, g4));
    gemm_ex(Mat::transposed(x, d, b * t), None, &da_packed, None, Epilogue::None, dwx, true);
    for row in da.chunks_exact(g4) {
        dbias.iter_mut().zip(row).for_each(|(acc, v)| *acc += v);
    }
    gemm_ex(Mat::rows(&da, b * t, g4), None, wx_t, None, Epilogue::None, dx, accumulate);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs, input weights, recurrent weights, bias, lengths.
    type Setup = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, [usize; 2]);

    /// A small deterministic batch: 2 texts of lengths 3 and 2 over 3 steps, D = 2, U = 2.
    fn setup() -> Setup {
        let x: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let wx: Vec<f32> = (0..16).map(|i| ((i * 3 % 7) as f32 - 3.0) * 0.2).collect();
        let wh: Vec<f32> = (0..16).map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.15).collect();
        let bias: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) * 0.1).collect();
        (x, wx, wh, bias, [3, 2])
    }

    /// The loss Σ r·h over the real positions, for a fixed `r`.
    fn loss(x: &[f32], wx: &[f32], wh: &[f32], bias: &[f32], lens: &[usize], reverse: bool) -> f64 {
        let (pwx, pwh) = (PackedB::new(wx, 2, 8, Precision::F32), PackedB::new(wh, 2, 8, Precision::F32));
        let w = LstmWeights { wx: &pwx, wh: &pwh, bias, units: 2 };
        let steps = Steps { batch: 2, t: 3, lens, reverse };
        let (mut out, mut cache) = (Vec::new(), LstmCache::default());
        lstm_forward(x, steps, &w, &mut out, &mut cache);
        out.iter().zip(weights_r(lens)).map(|(&h, r)| f64::from(h) * f64::from(r)).sum()
    }

    /// Loss weights: 0 on padding (what no reader of the states sees).
    fn weights_r(lens: &[usize]) -> Vec<f32> {
        (0..12).map(|i| if (i / 2) % 3 < lens[i / 6] { ((i * 11 % 7) as f32 - 3.0) * 0.25 } else { 0.0 }).collect()
    }

    #[test]
    fn reverse_reads_backwards_within_each_length() {
        let s = Steps { batch: 2, t: 4, lens: &[3, 1], reverse: true };
        assert_eq!((0..4).map(|i| s.position(0, i)).collect::<Vec<_>>(), [2, 1, 0, 3]);
        assert_eq!((0..4).map(|i| s.position(1, i)).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    /// Every gradient against central differences of the loss, both directions.
    #[test]
    fn gradients_match_finite_differences() {
        let (x, wx, wh, bias, lens) = setup();
        for reverse in [false, true] {
            let (pwx, pwh) = (PackedB::new(&wx, 2, 8, Precision::F32), PackedB::new(&wh, 2, 8, Precision::F32));
            let w = LstmWeights { wx: &pwx, wh: &pwh, bias: &bias, units: 2 };
            let steps = Steps { batch: 2, t: 3, lens: &lens, reverse };
            let (mut out, mut cache) = (Vec::new(), LstmCache::default());
            lstm_forward(&x, steps, &w, &mut out, &mut cache);
            let transpose = |m: &[f32], rows: usize, cols: usize| {
                let mut p = PackedB::empty();
                p.repack(Mat::transposed(m, cols, rows), Precision::F32);
                p
            };
            let (wx_t, wh_t) = (transpose(&wx, 2, 8), transpose(&wh, 2, 8));
            let (mut dwx, mut dwh, mut db, mut dx) = (vec![0.0; 16], vec![0.0; 16], vec![0.0; 8], vec![0.0; 12]);
            lstm_backward(&x, steps, (&wx_t, &wh_t), 2, &cache, &weights_r(&lens), (&mut dwx, &mut dwh, &mut db), (&mut dx, false));
            let check = |name: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
                for (i, &g) in analytic.iter().enumerate() {
                    let numeric = (perturb(i, 1e-3) - perturb(i, -1e-3)) / 2e-3;
                    assert!((f64::from(g) - numeric).abs() < 1e-3, "reverse {reverse}: d{name}[{i}] {g} vs {numeric}");
                }
            };
            let with = |v: &[f32], i: usize, e: f32| {
                let mut v = v.to_vec();
                v[i] += e;
                v
            };
            check("x", &dx, &|i, e| loss(&with(&x, i, e), &wx, &wh, &bias, &lens, reverse));
            check("wx", &dwx, &|i, e| loss(&x, &with(&wx, i, e), &wh, &bias, &lens, reverse));
            check("wh", &dwh, &|i, e| loss(&x, &wx, &with(&wh, i, e), &bias, &lens, reverse));
            check("bias", &db, &|i, e| loss(&x, &wx, &wh, &with(&bias, i, e), &lens, reverse));
            assert!(dx[10..].iter().all(|&v| v == 0.0), "text 1's padding step got a gradient: {:?}", &dx[10..]);
        }
    }
}
