//! One (text, head) of self-attention on AMX tiles, for the inference path's bf16 engine:
//! scores = (Q/√d)·Kᵀ and context = P·V as tile products straight from operands laid out for the
//! tiles (no generic packing, no nested threading, per-thread scratch), with the softmax writing
//! P directly as bf16. Queries and keys are padded to whole 32-row slabs with zeros; padded keys
//! get probability 0 (the softmax only spans real keys), padded queries are dropped.

use std::cell::RefCell;

use crate::amx::{self, TILE_K};
use crate::x86;

/// Rows (and key columns) per tile-kernel call.
const SLAB: usize = 32;

/// Per-thread operand buffers (each job of a batch reuses them: no allocation per head).
#[derive(Default)]
struct Scratch {
    /// Queries `[lp, hd]` bf16.
    q: Vec<u16>,
    /// Keys as B pairs: `[hd/2][lp]`, element (p, j) = (K[j][2p], K[j][2p+1]).
    kt: Vec<u32>,
    /// Scores `[lp, lp]` fp32.
    s: Vec<f32>,
    /// Probabilities `[lp, lp]` bf16.
    p: Vec<u16>,
    /// Values as B pairs: `[lp/2][hd]`, element (q, d) = (V[2q][d], V[2q+1][d]).
    v: Vec<u32>,
    /// Context `[lp, hd]` fp32.
    ctx: Vec<f32>,
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
        q.clear();
        q.resize(lp * hd, 0);
        kt.clear();
        kt.resize(hd / 2 * lp, 0);
        v.clear();
        v.resize(lp / 2 * hd, 0);
        s.resize(lp * lp, 0.0);
        p.resize(lp * lp, 0);
        ctx.resize(lp * hd, 0.0);
        let pair = |lo: u16, hi: u16| u32::from(lo) | (u32::from(hi) << 16);
        for j in 0..len {
            q[j * hd..(j + 1) * hd].copy_from_slice(row(j, 0));
        }
        // Kᵀ as B pairs: a key row's consecutive bf16s are already its (even, odd) pairs, so
        // pair-row `pi` of the tile is the `pi`-th pair of every key. Written one pair-row at a
        // time: stores along memory, reads from the few key rows (L1-resident).
        for (pi, dst) in kt.chunks_exact_mut(lp).enumerate() {
            for (j, d) in dst[..len].iter_mut().enumerate() {
                let k = row(j, 1);
                *d = pair(k[2 * pi], k[2 * pi + 1]);
            }
        }
        // V as B pairs: value rows 2q and 2q+1 interleaved element by element (a plain zip the
        // compiler vectorises; an odd last row pairs with the zero row below it).
        for (qi, dst) in v.chunks_exact_mut(hd).enumerate().take(len.div_ceil(2)) {
            let lo = row(2 * qi, 2);
            if 2 * qi + 1 < len {
                let hi = row(2 * qi + 1, 2);
                dst.iter_mut().zip(lo.iter().zip(hi)).for_each(|(d, (&a, &b))| *d = pair(a, b));
            } else {
                dst.iter_mut().zip(lo).for_each(|(d, &a)| *d = u32::from(a));
            }
        }
        let ptr = |x: &[u32], at: usize| x[at..].as_ptr();
        // SAFETY: the AMX level is in use (caller's contract), so the tiles are usable; each
        // call's operands are inside the buffers sized above: Q slab rows i0..i0+32 of `hd`
        // bf16 (hd/32 steps), key tiles at columns c0 and c0+16 < lp with hd/2 pair-rows of
        // stride lp, score rows i0..i0+32 of stride lp; then P rows of `lp` bf16 (lp/32 steps),
        // value tiles at columns c0, c0+16 < hd with lp/2 pair-rows of stride hd, context rows
        // of stride hd.
        unsafe {
            amx::configure();
            for i0 in (0..len).step_by(SLAB) {
                for c0 in (0..len).step_by(SLAB) {
                    let halves = [ptr(kt, c0), ptr(kt, c0 + 16)];
                    amx::tile_32x32(hd / TILE_K, (q[i0 * hd..].as_ptr(), hd), (halves, lp), (s[i0 * lp + c0..].as_mut_ptr(), lp));
                }
            }
            // The 1/√d scale is applied to the fp32 scores (inside the softmax), not to the
            // bf16 queries: one rounding fewer.
            for i in 0..len {
                x86::softmax_to_bf16(&mut s[i * lp..i * lp + len], scale, &mut p[i * lp..(i + 1) * lp]);
            }
            for i0 in (0..len).step_by(SLAB) {
                for c0 in (0..hd).step_by(SLAB) {
                    let halves = [ptr(v, c0), ptr(v, c0 + 16)];
                    amx::tile_32x32(lp / TILE_K, (p[i0 * lp..].as_ptr(), lp), (halves, hd), (ctx[i0 * hd + c0..].as_mut_ptr(), hd));
                }
            }
        }
        for (j, row) in ctx.chunks_exact(hd).take(len).enumerate() {
            match &mut out {
                Ctx::F32(o) => o[j * stride..j * stride + hd].copy_from_slice(row),
                Ctx::Bits(o) => crate::pack::convert_bf16(row, &mut o[j * stride..j * stride + hd]),
            }
        }
    })
}
