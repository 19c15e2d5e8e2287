//! Multi-head self-attention of the inference path on a fused QKV projection, per (text, head):
//! in fp32 as register-blocked loops (`attention_f32`), in bf16 on AMX tiles where the CPU has
//! them (`attention_amx`; the entry points on bf16 bits, for an encoder whose GEMMs read and write
//! bits, are `attention_bits.rs`) and elsewhere as two small bf16 GEMMs and a vectorised softmax.

use rayon::prelude::*;

use crate::attention_f32::{HeadRows, Scratch as F32Scratch, head_context as head_context_f32};
use crate::packed_b::Precision;
use crate::attention_bits::{attention_from_bits, attention_reads_bits};
use crate::ops::{softmax_rows, with_taken};

/// One (text, head)'s working buffers, kept per thread between calls: fresh ones per (text, head)
/// made the allocator hand pages back and fault them in again (5 % of an AVX2 inference batch in
/// `clear_page_erms`).
#[derive(Default)]
struct HeadScratch {
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    scores: Vec<f32>,
    /// The head's context `[len, hd]`, the result.
    ctx: Vec<f32>,
    kt_packed: Option<crate::packed_b::PackedB>,
    v_packed: Option<crate::packed_b::PackedB>,
}

thread_local! {
    static HEAD_SCRATCH: std::cell::Cell<HeadScratch> = std::cell::Cell::new(HeadScratch::default());
    static F32_SCRATCH: std::cell::Cell<F32Scratch> = std::cell::Cell::new(F32Scratch::default());
}

/// One (text, head): context rows `[len, hd]` from `len` real tokens, into `sc.ctx`.
fn head_context_into(qkv: &[f32], b: usize, head: usize, len: usize, (t, heads, hd): (usize, usize, usize), precision: Precision, sc: &mut HeadScratch) {
    use crate::gemm::{Epilogue, gemm};
    use crate::packed_b::PackedB;
    use crate::pack::Mat;
    let h = heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let row = |j: usize, part: usize| {
        let start = (b * t + j) * 3 * h + part * h + head * hd;
        &qkv[start..start + hd]
    };
    let HeadScratch { q, kt, v, scores, ctx, kt_packed, v_packed } = sc;
    q.clear();
    v.clear();
    kt.clear();
    kt.resize(hd * len, 0.0);
    for j in 0..len {
        q.extend(row(j, 0).iter().map(|x| x * scale));
        for (d, &x) in row(j, 1).iter().enumerate() {
            kt[d * len + j] = x;
        }
        v.extend_from_slice(row(j, 2));
    }
    let pack = |slot: &mut Option<PackedB>, m: Mat<'_>| {
        match slot {
            Some(p) => p.repack(m, precision),
            None => *slot = Some(PackedB::new(m.data, m.rows, m.cols, precision)),
        }
    };
    // Scores [len, len] = (Q / sqrt(hd)) Kᵀ; only real keys, so no mask is needed.
    pack(kt_packed, Mat::rows(kt, hd, len));
    scores.clear();
    scores.resize(len * len, 0.0);
    if let Some(kp) = kt_packed {
        gemm(q, len, kp, None, Epilogue::None, scores);
    }
    softmax_rows(scores, len);
    pack(v_packed, Mat::rows(v, len, hd));
    ctx.clear();
    ctx.resize(len * hd, 0.0);
    if let Some(vp) = v_packed {
        gemm(scores, len, vp, None, Epilogue::None, ctx);
    }
}

/// Multi-head self-attention on a fused projection: `qkv` is `[B·T, 3H]` (queries, keys, values
/// of all heads side by side), `lens[b]` the real tokens of text `b` (right padding). Real
/// queries attend to real keys only, which is what transformers' additive mask amounts to;
/// padding rows of the context are left at zero (nothing reads them: keys and values come from
/// real tokens only, pooling ignores padding). Each (text, head): in fp32 from AVX2 up, the
/// register-blocked loops of `attention_f32`; in bf16, AMX tiles where the CPU has them; otherwise
/// two small GEMMs with operands in `precision` and a vectorised softmax (softmax and sums in
/// fp32 throughout). Writes the context `[B·T, H]`.
pub fn attention(qkv: &[f32], lens: &[usize], (t, heads, hd): (usize, usize, usize), precision: Precision, out: &mut [f32]) {
    let h = heads * hd;
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * t * h, "out must be [B·T, H]");
    if precision == Precision::Bf16 && attention_reads_bits(hd) {
        // The tiles read bf16: the whole projection is converted once, not per head.
        let mut bits = QKV_BITS.with(|b| b.take());
        crate::bf16_bits::to_bf16_bits(qkv, &mut bits);
        attention_from_bits(&bits, lens, (t, heads, hd), out);
        QKV_BITS.with(|b| b.replace(bits));
        return;
    }
    let by_text = task_per_text(lens);
    // The blocked loops from AVX2 up; the portable level keeps the `gemm` crate's kernels, which
    // pick their own SIMD at run time.
    let blocked = precision == Precision::F32 && crate::level::isa() >= crate::level::Isa::Avx2;
    for_each_head(out, lens, (t, heads, hd), |b, head, len, dst, stride| {
        if blocked {
            if head == 0 && by_text {
                warm(&qkv[b * t * 3 * h..(b * t + len) * 3 * h]);
            }
            let start = b * t * 3 * h + head * hd;
            let rows = HeadRows { q: start, k: start + h, v: start + 2 * h, stride: 3 * h, len, hd, queries: len };
            with_taken(&F32_SCRATCH, |sc| head_context_f32(qkv, rows, sc, dst, stride));
            return;
        }
        with_taken(&HEAD_SCRATCH, |sc| {
            head_context_into(qkv, b, head, len, (t, heads, hd), precision, sc);
            for (j, c) in sc.ctx.chunks_exact(hd).enumerate() {
                dst[j * stride..j * stride + hd].copy_from_slice(c);
            }
        });
    });
}

/// [`attention`] for each text's first query only, over all its real keys: `out` is `[B, H]`,
/// text `b`'s `[CLS]` context in row `b`. What a last layer needs when the caller reads only the
/// `[CLS]` rows of its output (`[CLS]` and pooler pooling): 1/T of the attention. In fp32 at
/// every level, as one-row blocks of `attention_f32` (its loops are correct at the portable level
/// too); a text per task.
pub fn attention_first(qkv: &[f32], lens: &[usize], (t, heads, hd): (usize, usize, usize), out: &mut [f32]) {
    let h = heads * hd;
    assert_eq!(qkv.len(), lens.len() * t * 3 * h, "qkv must be [B·T, 3H]");
    assert_eq!(out.len(), lens.len() * h, "out must be [B, H]");
    out.par_chunks_mut(h).zip(lens.par_iter()).enumerate().for_each(|(b, (dst, &len))| {
        // As `for_each_head`: a text without real tokens attends to its first row.
        let len = len.clamp(1, t);
        with_taken(&F32_SCRATCH, |sc| {
            for head in 0..heads {
                let start = b * t * 3 * h + head * hd;
                let rows = HeadRows { q: start, k: start + h, v: start + 2 * h, stride: 3 * h, len, hd, queries: 1 };
                head_context_f32(qkv, rows, sc, &mut dst[head * hd..], h);
            }
        });
    });
}

/// Reads one value per cache line of `rows`, front to back, so that a text's rows of the
/// projection are in cache before its heads gather their columns. The heads read 128 bytes per
/// token row at a stride of 3H floats (4.6 KB for MiniLM): more than a page apart, which the
/// hardware prefetchers do not follow, so every row was a miss waited for (`perf`: the head's
/// query and key loads, a quarter of the fp32 attention). A front-to-back sweep streams.
fn warm(rows: &[f32]) {
    let mut any = 0.0f32;
    for line in rows.chunks(16) {
        any += line[0];
    }
    std::hint::black_box(any);
}

/// Whether [`for_each_head`] runs a task per text (a text per thread at least) rather than a task
/// per (text, head): the heads of a text then run in order on one thread, head 0 first.
fn task_per_text(lens: &[usize]) -> bool {
    lens.len() >= rayon::current_num_threads()
}

/// Runs `head(b, head, len, dst, stride)` for every (text, head) on all threads: it writes the
/// head's context rows `[len, hd]` at `dst[j·stride..]`. A text per task, writing its rows of
/// `out` `[B·T, H]` in place with its thread's buffers, once there is a text per thread; below
/// that (batch-1 latency) a task per (text, head) into a buffer of its own, placed afterwards.
/// Only the padding rows are zeroed (zeroing all of `out` first was a full extra pass over the
/// context per layer).
pub(crate) fn for_each_head<T: Copy + Default + Send + Sync>(
    out: &mut [T],
    lens: &[usize],
    (t, heads, hd): (usize, usize, usize),
    head: impl Fn(usize, usize, usize, &mut [T], usize) + Sync,
) {
    let h = heads * hd;
    if task_per_text(lens) {
        out.par_chunks_mut(t * h).zip(lens.par_iter()).enumerate().for_each(|(b, (rows, &len))| {
            let len = len.clamp(1, t);
            rows[len * h..].fill(T::default());
            for hh in 0..heads {
                head(b, hh, len, &mut rows[hh * hd..], h);
            }
        });
        return;
    }
    let jobs: Vec<(usize, usize)> = (0..lens.len()).flat_map(|b| (0..heads).map(move |hh| (b, hh))).collect();
    let results: Vec<Vec<T>> = jobs
        .par_iter()
        .map(|&(b, hh)| {
            let len = lens[b].clamp(1, t);
            let mut ctx = vec![T::default(); len * hd];
            head(b, hh, len, &mut ctx, hd);
            ctx
        })
        .collect();
    for (b, &len) in lens.iter().enumerate() {
        out[(b * t + len.clamp(1, t)) * h..(b + 1) * t * h].fill(T::default());
    }
    for (&(b, hh), ctx) in jobs.iter().zip(&results) {
        for (j, c) in ctx.chunks_exact(hd).enumerate() {
            let start = (b * t + j) * h + hh * hd;
            out[start..start + hd].copy_from_slice(c);
        }
    }
}

thread_local! {
    /// The bf16 copy of the fused projection for the AMX attention, kept between calls (a fresh
    /// multi-megabyte buffer per layer costs a page fault per 4 KiB).
    static QKV_BITS: std::cell::Cell<Vec<u16>> = const { std::cell::Cell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

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
        attention(&qkv, &[2, 3], (t, 1, hd), Precision::F32, &mut out);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&out[..2], &[2.0, 3.0]), "{out:?}");
        assert!(close(&out[6..8], &[7.0, 7.0]), "{out:?}");
        assert_eq!(&out[4..6], &[0.0, 0.0], "padding rows stay zero");
    }

    #[test]
    fn first_query_attention_equals_the_full_attentions_first_rows() {
        // Lengths 0 (no real token), short, and the whole window; two heads.
        let (t, heads, hd) = (9, 2, 5);
        let h = heads * hd;
        let lens = [0, 1, 4, 9];
        let qkv: Vec<f32> = (0..lens.len() * t * 3 * h).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 1.3).collect();
        let mut full = vec![0.0; lens.len() * t * h];
        attention(&qkv, &lens, (t, heads, hd), Precision::F32, &mut full);
        let mut first = vec![f32::NAN; lens.len() * h];
        attention_first(&qkv, &lens, (t, heads, hd), &mut first);
        for (b, got) in first.chunks_exact(h).enumerate() {
            let want = &full[b * t * h..b * t * h + h];
            for (c, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() < 1e-5, "{}: text {b} (len {}) column {c}: {g} against {w}", crate::level::test_name(), lens[b]);
            }
        }
    }

    #[test]
    fn bf16_attention_matches_fp32_at_every_length() {
        // On AMX this runs the tile path (padded slabs, padded keys masked by the softmax); on
        // other bf16 levels the generic bf16 GEMMs. Lengths straddle the 32-row slabs.
        if !crate::level::isa().bf16() {
            eprintln!("skipped: {}: level {} has no bf16 GEMM", crate::level::test_name(), crate::level::isa().name());
            return;
        }
        for hd in [32, 64] {
            let (t, heads) = (70, 2);
            let h = heads * hd;
            let lens = [1, 31, 33, 64, 70];
            let qkv: Vec<f32> = (0..lens.len() * t * 3 * h).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.8).collect();
            let (mut want, mut got) = (vec![0.0; lens.len() * t * h], vec![f32::NAN; lens.len() * t * h]);
            attention(&qkv, &lens, (t, heads, hd), Precision::F32, &mut want);
            attention(&qkv, &lens, (t, heads, hd), Precision::Bf16, &mut got);
            let worst = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            // Context values are averages of values in [-0.8, 0.8]: bf16 operands move them ~1e-2.
            assert!(worst < 2e-2, "hd {hd}: bf16 attention differs from fp32 by {worst}");
            assert!(worst > 0.0, "hd {hd}: bf16 attention equals fp32 exactly: bf16 not exercised");
            for (b, &len) in lens.iter().enumerate() {
                assert!(got[(b * t + len) * h..(b + 1) * t * h].iter().all(|&v| v == 0.0), "padding rows of text {b} not zero");
            }
        }
    }

    /// A batch runs a task per text (in place, per-thread buffers) once it has a text per
    /// thread, and a task per (text, head) below that: the two must give the same context.
    #[test]
    fn attention_by_text_and_by_head_agree() {
        let (t, heads, hd) = (40, 3, 32);
        let h = heads * hd;
        let lens = [40, 7, 33, 1];
        assert!(task_per_text(&lens), "the batch must take the per-text path");
        let qkv: Vec<f32> = (0..lens.len() * t * 3 * h).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.8).collect();
        for precision in [Precision::F32, Precision::Bf16] {
            let mut whole = vec![f32::NAN; lens.len() * t * h];
            attention(&qkv, &lens, (t, heads, hd), precision, &mut whole);
            for (b, &len) in lens.iter().enumerate() {
                // One text alone: fewer texts than threads (on 2+ threads), so a task per head.
                let one = &qkv[b * t * 3 * h..(b + 1) * t * 3 * h];
                let mut alone = vec![f32::NAN; t * h];
                attention(one, &[len], (t, heads, hd), precision, &mut alone);
                assert_eq!(&whole[b * t * h..(b + 1) * t * h], &alone[..], "{precision:?}: text {b} differs between the two paths");
            }
        }
    }
}
