//! One (text, head) of self-attention on AMX tiles, for the inference path's bf16 engine:
//! scores = (Q/√d)·Kᵀ and context = P·V as tile products straight from operands laid out for the
//! tiles (no generic packing, no nested threading, per-thread scratch), with the softmax writing
//! P directly as bf16. Queries and keys are padded to whole 32-row slabs with zeros; padded keys
//! get probability 0 (the softmax only spans real keys), padded queries are dropped.

use std::cell::RefCell;

use crate::aligned::AlignedVec;
use crate::amx::{self, TILE_K, TILE_ROWS};
use crate::avx512_ops;

/// Rows (and key columns) per tile-kernel call.
const SLAB: usize = 32;

/// Per-thread operand buffers (each job of a batch reuses them: no allocation per head).
#[derive(Default)]
struct Scratch {
    /// The queries not read in place, `[32·slabs, hd]` bf16: the partial last slab, or all of
    /// them when the rows are off a 64-byte line.
    q: AlignedVec<u16>,
    /// Keys as B pairs: `[hd/2][lp]`, element (p, j) = (K[j][2p], K[j][2p+1]).
    kt: AlignedVec<u32>,
    /// One slab's scores `[32, lp]` fp32.
    s: AlignedVec<f32>,
    /// One slab's probabilities `[32, lp]` bf16.
    p: AlignedVec<u16>,
    /// Values as B pairs: `[lp/2][hd]`, element (q, d) = (V[2q][d], V[2q+1][d]).
    v: AlignedVec<u32>,
    /// One slab's context `[32, hd]` fp32.
    ctx: AlignedVec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Where a head's context rows go: fp32, or bf16 bits for a next GEMM that reads bits.
pub(crate) enum Ctx<'a> {
    F32(&'a mut [f32]),
    Bits(&'a mut [u16]),
}

impl Ctx<'_> {
    fn len(&self) -> usize {
        match self {
            Ctx::F32(o) => o.len(),
            Ctx::Bits(o) => o.len(),
        }
    }
}

/// Whether this path handles heads of `hd` values (whole tiles of k and of output columns).
pub(crate) fn supports(hd: usize) -> bool {
    hd > 0 && hd.is_multiple_of(TILE_K)
}

/// The context rows `[len, hd]` of text `b`, head `head`, from the fused projection as bf16 bits
/// (`bits`: `[B·T, 3H]`, converted once for all heads), written to `out` with row `j` at
/// `out[j·stride..j·stride + hd]` (a text's rows of the whole context, or a buffer of its own).
/// Only call at the AMX level, with `supports(hd)` and `1 ≤ len ≤ t`.
pub(crate) fn head_context(bits: &[u16], b: usize, head: usize, len: usize, (t, heads, hd): (usize, usize, usize), mut out: Ctx<'_>, stride: usize) {
    assert!(supports(hd) && (1..=t).contains(&len), "AMX attention: head size {hd}, length {len} of {t}");
    assert!(stride >= hd && out.len() >= (len - 1) * stride + hd, "AMX attention: output too short");
    let h = heads * hd;
    assert!(bits.len() >= (b * t + len) * 3 * h, "qkv shorter than its batch");
    let row = |j: usize, part: usize| {
        let start = (b * t + j) * 3 * h + part * h + head * hd;
        &bits[start..start + hd]
    };
    let lp = len.next_multiple_of(SLAB);
    let scale = 1.0 / (hd as f32).sqrt();
    SCRATCH.with_borrow_mut(|w| {
        let Scratch { q, kt, s, p, v, ctx } = w;
        // Queries are read in place (row stride 3H) for whole slabs when every row starts on a
        // 64-byte line (see `aligned`); only a partial last slab is copied, with zero rows below
        // it. Otherwise all of them are copied.
        let lined = |x: usize| x.is_multiple_of(64);
        let in_place = lined(bits.as_ptr() as usize + 2 * (b * t * 3 * h + head * hd)) && lined(2 * 3 * h);
        let full = if in_place { len / SLAB * SLAB } else { 0 };
        q.clear();
        q.resize((lp - full) * hd, 0);
        for j in full..len {
            q[(j - full) * hd..(j - full + 1) * hd].copy_from_slice(row(j, 0));
        }
        // Kᵀ as B pairs: a key row's consecutive bf16s are already its (even, odd) pairs, so
        // pair-row `pi` of the tile is the `pi`-th pair of every key: a transpose of the keys'
        // pairs, done 16 keys × 16 pairs at a time in registers.
        kt.clear();
        kt.resize(hd / 2 * lp, 0);
        for j0 in (0..len).step_by(16) {
            for p0 in (0..hd / 2).step_by(16) {
                let rows: [Option<&[u16]>; 16] = std::array::from_fn(|i| (j0 + i < len).then(|| &row(j0 + i, 1)[2 * p0..2 * p0 + 32]));
                // SAFETY: the AMX level implies AVX-512F.
                unsafe { avx512_ops::transpose_pairs16(&rows, &mut kt[p0 * lp + j0..], lp) };
            }
        }
        // V as B pairs: value rows 2q and 2q+1 interleaved element by element (a plain zip the
        // compiler vectorises; an odd last row pairs with the zero row below it).
        v.clear();
        v.resize(lp / 2 * hd, 0);
        let pair = |lo: u16, hi: u16| u32::from(lo) | (u32::from(hi) << 16);
        for (qi, dst) in v.chunks_exact_mut(hd).enumerate().take(len.div_ceil(2)) {
            let lo = row(2 * qi, 2);
            if 2 * qi + 1 < len {
                let hi = row(2 * qi + 1, 2);
                dst.iter_mut().zip(lo.iter().zip(hi)).for_each(|(d, (&a, &b))| *d = pair(a, b));
            } else {
                dst.iter_mut().zip(lo).for_each(|(d, &a)| *d = u32::from(a));
            }
        }
        // One 32-query slab at a time: its scores, probabilities and context stay in L1.
        s.resize(SLAB * lp, 0.0);
        p.resize(SLAB * lp, 0);
        ctx.resize(SLAB * hd, 0.0);
        let ptr = |x: &[u32], at: usize| x[at..].as_ptr();
        let mut inv_sum = [0.0f32; SLAB];
        for i0 in (0..len).step_by(SLAB) {
            let (q_slab, ldq) = if i0 < full { (bits[(b * t + i0) * 3 * h + head * hd..].as_ptr(), 3 * h) } else { (q[(i0 - full) * hd..].as_ptr(), hd) };
            let rows = SLAB.min(len - i0);
            // SAFETY: the AMX level is in use (caller's contract), so the tiles are usable; each
            // call's operands are inside their buffers: 32 query rows of `hd` bf16 (hd/32 steps)
            // at stride `ldq` (in place: rows i0..i0+32 ≤ len of the asserted `bits`; copied:
            // `q` holds whole slabs from `full`); key tiles at columns c0 and c0+16 < lp with hd/2 pair-rows
            // of stride lp; score rows of stride lp in `s` (32 × lp); then P rows of `lp` bf16
            // (lp/32 steps), value tiles at columns c0, c0+16 < hd with lp/2 pair-rows of stride
            // hd, context rows of stride hd in `ctx` (32 × hd).
            unsafe {
                amx::configure();
                for c0 in (0..len).step_by(SLAB) {
                    let halves = [ptr(kt, c0), ptr(kt, c0 + 16)];
                    amx::tile_32x32(hd / TILE_K, (q_slab, ldq), (halves, lp, TILE_ROWS * lp), (s[c0..].as_mut_ptr(), lp));
                }
                // The 1/√d scale is applied to the fp32 scores (inside the softmax), not to the
                // bf16 queries: one rounding fewer. P holds the numerators; each context row is
                // divided by its row's sum on the way out. Padded query rows are left as they are
                // (their context is dropped).
                for (i, inv) in inv_sum.iter_mut().enumerate().take(rows) {
                    *inv = avx512_ops::softmax_numerators_bf16(&s[i * lp..i * lp + len], scale, &mut p[i * lp..(i + 1) * lp]);
                }
                for c0 in (0..hd).step_by(SLAB) {
                    let halves = [ptr(v, c0), ptr(v, c0 + 16)];
                    amx::tile_32x32(lp / TILE_K, (p.as_ptr(), lp), (halves, hd, TILE_ROWS * hd), (ctx[c0..].as_mut_ptr(), hd));
                }
            }
            for (i, (row, &inv)) in ctx.chunks_exact(hd).zip(&inv_sum).take(rows).enumerate() {
                let j = i0 + i;
                match &mut out {
                    Ctx::F32(o) => o[j * stride..j * stride + hd].iter_mut().zip(row).for_each(|(d, &x)| *d = x * inv),
                    // SAFETY: the AMX level implies AVX-512F/BW/VL and AVX512-BF16.
                    Ctx::Bits(o) => unsafe { avx512_ops::scale_to_bf16(row, inv, &mut o[j * stride..j * stride + hd]) },
                }
            }
        }
    })
}
