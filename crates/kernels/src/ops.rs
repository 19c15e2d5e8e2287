//! Row-wise operations of the encoder's inference path: LayerNorm (with the residual add fused),
//! softmax, activations. Each body is written once as plain loops (16-lane
//! accumulators so float reductions vectorise) and compiled twice: for AVX-512 and for baseline
//! x86-64, picked at run time.

use rayon::prelude::*;

pub(crate) const LANES: usize = 16;

#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// A row's mean and 1/σ (biased variance, as `nn.LayerNorm`).
#[inline(always)]
pub(crate) fn mean_rstd(row: &[f32], eps: f32) -> (f32, f32) {
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
    (mean, 1.0 / ((sq.iter().sum::<f32>() + tail) / n + eps).sqrt())
}

#[inline(always)]
fn norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let (mean, inv) = mean_rstd(row, eps);
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

dispatch!(pub layer_norm_serial(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(width) {
        norm_row(row, gamma, beta, eps);
    }
});

dispatch!(pub add_layer_norm_serial(x: &mut [f32], residual: &[f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
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

/// [`add_layer_norm`], also writing the result as bf16 bits into `bits` (each task converts its
/// rows while they are in cache): for an inference path whose next GEMMs read bf16 (AMX tiles),
/// which then skip converting the fp32 rows themselves. Same values as converting afterwards.
pub fn add_layer_norm_bits(x: &mut [f32], residual: &[f32], width: usize, (gamma, beta): (&[f32], &[f32]), eps: f32, bits: &mut Vec<u16>) {
    bits.resize(x.len(), 0);
    let step = width * ROWS_PER_TASK;
    x.par_chunks_mut(step).zip(residual.par_chunks(step)).zip(bits.par_chunks_mut(step)).for_each(|((c, r), out)| {
        add_layer_norm_serial(c, r, width, gamma, beta, eps);
        crate::bf16_bits::convert_bf16(c, out);
    });
}

/// `a·b + c`, fused where the caller's instantiation has FMA ([`Fused`]), split elsewhere
/// ([`Split`]: on a level without FMA, `f32::mul_add` is a libm call per element). The split form
/// gives the same bits as writing `a * b + c`.
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}
pub(crate) struct Fused;
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}
pub(crate) struct Split;
impl MulAdd for Split {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// e^x for x ≤ 0 (below −87 gives ~0): 2^n · p(r), degree-7 Taylor polynomial on
/// |r| ≤ ln2/2 (relative error < 1e-7). Plain arithmetic, so it vectorises.
#[inline(always)]
pub(crate) fn exp_neg(x: f32) -> f32 {
    exp_neg_with::<Split>(x)
}

/// [`exp_neg`] with its multiply-adds as `M` does them: [`Fused`] halves the polynomial's
/// instructions where the level has FMA (and rounds once per step instead of twice).
#[inline(always)]
pub(crate) fn exp_neg_with<M: MulAdd>(x: f32) -> f32 {
    // Adding 1.5·2^23 rounds x·log2(e) to an integer n (ties to even, as `round_ties_even`) and
    // leaves n in the low mantissa bits, so 2^n is built with integer ops on the bits. A
    // float→int `as` cast saturates, and its range and NaN checks kept every loop over this
    // function scalar, lane by lane (`perf annotate` of the softmax: `vcvttss2si`, `cmova`).
    const SHIFT: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    // x − n·ln2 in two parts (Cody–Waite); split, −n·c + x is x − n·c bit for bit.
    let r = M::mul_add(-n, 1.428_606_8e-6, M::mul_add(-n, 0.693_145_75, x));
    let mut p = 1.0 / 5040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = M::mul_add(p, r, c);
    }
    // n ∈ [−126, 0], so n + 127 is a normal exponent.
    p * f32::from_bits(t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23)
}

/// (erf(x/√2), e^(−x²/2)): erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the
/// exponential shared with it (e^(−z²) for z = x/√2). Plain arithmetic with [`exp_neg`], so loops
/// over it vectorise. The one scalar definition behind GELU ([`gelu_scalar`]) and its
/// derivative (`grad::gelu_grad`); `avx512_ops::gelu512` is the same formula in intrinsics.
#[inline(always)]
pub(crate) fn erf_parts(x: f32) -> (f32, f32) {
    let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let e = exp_neg(-z * z);
    ((1.0 - poly * e).copysign(x), e)
}

/// softmax(scale · x) over one row, in place, for scale > 0 (so max(scale·x) = scale·max(x)).
/// The maximum and the sum in [`LANES`] lanes (a single running value is a chain the compiler
/// keeps scalar); the exponentials and their sum in one pass ([`exp_sum_row`]). The softmax of
/// the training paths and of the GEMM-based attention; `attention_f32` runs the same two passes
/// and applies the 1/sum to its context instead.
#[inline(always)]
pub(crate) fn softmax_row(row: &mut [f32], scale: f32) {
    let inv = 1.0 / exp_sum_row::<Split>(row, row_max(row), scale);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// The largest value of a non-empty row, in [`LANES`] lanes.
#[inline(always)]
pub(crate) fn row_max(row: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    chunks.remainder().iter().chain(m.iter()).fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a })
}

/// `row[j] = e^((row[j] − max)·scale)` in place (`max` ≥ every value, scale > 0), returning
/// their sum: the unnormalised half of a softmax.
#[inline(always)]
pub(crate) fn exp_sum_row<M: MulAdd>(row: &mut [f32], max: f32, scale: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = exp_neg_with::<M>((c[l] - max) * scale);
            acc[l] += c[l];
        }
    }
    let tail = chunks.into_remainder();
    for v in tail.iter_mut() {
        *v = exp_neg_with::<M>((*v - max) * scale);
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

dispatch!(pub softmax_rows(s: &mut [f32], width: usize) {
    for row in s.chunks_exact_mut(width) {
        softmax_row(row, 1.0);
    }
});

/// Runs `f` on the value a thread-local holds, taken out for the call: GEMMs inside `f` may run
/// other rayon tasks on this thread (work stealing while they wait), and such a task then gets a
/// fresh default value instead of finding this one borrowed. The per-thread scratch of the
/// attention passes (here and in `attention_train`).
pub(crate) fn with_taken<T: Default, R>(key: &'static std::thread::LocalKey<std::cell::Cell<T>>, f: impl FnOnce(&mut T) -> R) -> R {
    let mut value = key.with(std::cell::Cell::take);
    let r = f(&mut value);
    key.with(|c| c.set(value));
    r
}

dispatch!(pub gelu_tanh_serial(x: &mut [f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    for v in x.iter_mut() {
        let u = *v;
        *v = 0.5 * u * (1.0 + (C * (u + 0.044_715 * u * u * u)).tanh());
    }
});

/// x·Φ(x) with the same erf approximation as the vector kernel (`erf_parts`);
/// loops over it vectorise.
#[inline(always)]
pub fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_parts(x).0)
}

/// GELU in place, vectorised where the CPU allows.
pub fn gelu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::level::isa() >= crate::level::Isa::Avx512 {
        // SAFETY: AVX-512F/DQ were detected; the kernel stays within the slice (masked tail).
        unsafe { crate::avx512_ops::gelu_slice(x) };
        return;
    }
    gelu_plain(x);
}

dispatch!(gelu_plain(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu_scalar(*v));
});

/// tanh-approximated GELU (`gelu_new`), in place.
pub fn gelu_tanh(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(gelu_tanh_serial);
}

/// Exact GELU, in place, on all threads.
pub fn gelu_par(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(gelu);
}

/// ReLU in place.
pub fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// tanh in place.
pub fn tanh(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
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

    /// The encoder's bf16-bits evaluation path: the LayerNorm writes the bits the next GEMM
    /// reads, exactly what converting its fp32 output gives.
    #[test]
    fn layer_norm_bits_equal_converting_the_fp32_output() {
        let width = 48;
        let x0: Vec<f32> = (0..70 * width).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
        let res: Vec<f32> = (0..70 * width).map(|i| (i * 104_729 % 1000) as f32 / 500.0 - 1.0).collect();
        let (g, b): (Vec<f32>, Vec<f32>) = ((0..width).map(|i| 1.0 + i as f32 / 100.0).collect(), vec![0.1; width]);
        let (mut want, mut got) = (x0.clone(), x0.clone());
        add_layer_norm(&mut want, &res, width, &g, &b, 1e-12);
        let (mut want_bits, mut bits) = (Vec::new(), Vec::new());
        crate::bf16_bits::to_bf16_bits(&want, &mut want_bits);
        add_layer_norm_bits(&mut got, &res, width, (&g, &b), 1e-12, &mut bits);
        assert_eq!(got, want, "the fp32 LayerNorm output");
        assert_eq!(bits, want_bits, "the LayerNorm's bits");
    }

    #[test]
    fn vector_exp_and_softmax_are_accurate() {
        for x in [-87.5f32, -87.0, -80.0, -10.0, -1.0, -0.3, -0.346_573_6, -1.039_720_8, 0.0] {
            assert!((exp_neg(x) - x.exp()).abs() <= 1e-6 * x.exp().max(1e-30), "{x}");
        }
        // The bit trick for 2^n gives the values of the earlier float→int cast, bit for bit.
        let with_cast = |x: f32| {
            let x = x.max(-87.0);
            let n = (x * std::f32::consts::LOG2_E).round_ties_even();
            let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
            let mut p = 1.0 / 5040.0;
            for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
                p = p * r + c;
            }
            p * f32::from_bits(((n as i32 + 127) << 23) as u32)
        };
        for i in 0..200_000 {
            let x = -(i as f32) * 4.5e-4;
            assert_eq!(exp_neg(x).to_bits(), with_cast(x).to_bits(), "{x}");
        }
        // Fused multiply-adds: as accurate against f64 down to the clamp at −87 (literal: e^-1 =
        // 0.36787944).
        for i in 0..193_000 {
            let x = -(i as f32) * 4.5e-4;
            let (got, want) = (f64::from(exp_neg_with::<Fused>(x)), f64::from(x).exp());
            assert!((got - want).abs() <= 2e-7 * want, "{x}: {got} against {want}");
        }
        assert!((exp_neg_with::<Fused>(-1.0) - 0.367_879_44).abs() < 3e-8);
        let mut s: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 5.0).collect();
        let want: Vec<f32> = {
            let m = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = s.iter().map(|v| (v - m).exp()).collect();
            let z: f32 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        };
        softmax_rows(&mut s, 37);
        assert!(s.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
        // With a scale (the attention's 1/√d), against f64.
        let mut row: Vec<f32> = (0..21).map(|i| i as f32 * 0.9 - 4.0).collect();
        softmax_row(&mut row, 0.5);
        let z: f64 = (0..21).map(|i| (f64::from(i as f32 * 0.9 - 4.0) * 0.5).exp()).sum();
        for (i, p) in row.iter().enumerate() {
            let want = (f64::from(i as f32 * 0.9 - 4.0) * 0.5).exp() / z;
            assert!((f64::from(*p) - want).abs() < 1e-7, "{i}: {p} against {want}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        // Reference values of x·Φ(x) (scipy).
        for (x, want) in [(-3.0f32, -0.004_049_7), (-1.0, -0.158_655_25), (0.0, 0.0), (0.5, 0.345_731_14), (2.0, 1.954_5)] {
            assert!((gelu_scalar(x) - want).abs() < 1e-4, "{x}: {} vs {want}", gelu_scalar(x));
            let mut v = vec![x; 19];
            gelu(&mut v);
            assert!(v.iter().all(|g| (g - gelu_scalar(x)).abs() < 1e-6), "{x}: {v:?}");
        }
    }
}
