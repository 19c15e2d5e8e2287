//! The AMX-BF16 GEMM driver: a task's rows of A converted once per row block into row-major
//! bf16 (k padded to whole tiles) unless the tiles can read them in place, then for each 32-row
//! slab and each 32-column panel of B (two contiguous tiles per k step, `PairLayout::Tiles`) one
//! tile kernel over all of k (no k-blocks: the tiles accumulate the whole sum), finished by the
//! AVX-512 epilogue (accumulate, bias, GELU) on the way into C.
//!
//! When B fits in L2, slabs outside, panels inside: the slab (32 × k bf16, 24 KiB at k = 384)
//! stays in L1 while B streams from L2. Measured on a Sapphire Rapids core against panels outside
//! (each panel reused by the block's slabs): the encoder's QKV, output and second feed-forward
//! GEMMs took 8–20 % less time, the GELU one the same. A larger B keeps panels outside.

use crate::aligned::AlignedVec;
use crate::amx::{self, TILE_ROWS};
use crate::gemm::Epilogue;
use crate::bf16_bits::convert_bf16;
use crate::pack::{Mat, PairLayout};
use crate::x86::{self, Tile};

/// Rows per A block converted at a time (when A is not read in place): `MC` × k bf16, 384 KiB
/// at k = 1536; with panels outside, the block stays in L2 while they pass.
const MC: usize = 128;
/// The largest B (bytes) walked slabs outside panels: most of a 2 MiB L2.
const B_IN_L2: usize = 3 << 19;
/// Rows per tile kernel call (two A tiles), and columns (two B tiles).
const SLAB: usize = 2 * TILE_ROWS;
/// Pairs per B tile (16 pair-rows × 16 columns).
const TILE_PAIRS: usize = TILE_ROWS * TILE_ROWS;

/// B as the AMX kernel reads it: `[n/32][depth/16][2][16][16]` bf16 pairs (`PairLayout::Tiles`),
/// `depth` a multiple of 16.
pub(crate) struct Panels<'a> {
    pub data: &'a [u32],
    pub depth: usize,
    pub n: usize,
}

/// Where a task's rows of the product go: fp32 C (`+=` when accumulating), or bf16 bits for a
/// product that only feeds the next GEMM.
pub(crate) enum Out<'a> {
    F32 { c: &'a mut [f32], accumulate: bool },
    Bf16(&'a mut [u16]),
}

/// Rows `r0..r0+rows` of `a · b` into `out` (`[rows, n]`), as `gemm_rows` does for the
/// AVX-512 kernels. `a_bits`, when given, is `a.data` as bf16 bits (it must be, for views that
/// are not row-major).
pub(crate) fn gemm_rows(
    (a, a_bits): (Mat<'_>, Option<&[u16]>),
    b: &Panels<'_>,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    (r0, rows): (usize, usize),
    mut out: Out<'_>,
) {
    let (k, n, depth) = (a.cols, b.n, b.depth);
    assert!(depth % TILE_ROWS == 0 && 2 * depth >= k && k > 0, "B panels of depth {depth} cannot hold k = {k}");
    let width = PairLayout::Tiles.width();
    assert!(b.data.len() >= n.div_ceil(width) * depth * width, "B panels shorter than n × depth");
    let out_len = match &out {
        Out::F32 { c, .. } => c.len(),
        Out::Bf16(c) => c.len(),
    };
    assert!(out_len >= rows * n, "C rows out of bounds");
    // The A block's row stride: k padded to whole tiles (2 bf16 per pair-row of B).
    let lda = 2 * depth;
    let steps = depth / TILE_ROWS;
    // The converted A block is kept per thread: a fresh 100–400 KiB buffer per call cost a page
    // fault per 4 KiB (the allocator hands large blocks back to the OS).
    let mut block = BLOCK.with(|b| b.take());
    let mut product = Product([0.0; SLAB * SLAB]);
    // SAFETY: this level is only selected when `amx::usable()` returned true.
    unsafe { amx::configure() };
    // Row-major bf16 bits whose k fills whole tiles are read by the tiles in place: only a
    // partial last slab is copied (with zero rows below it). In place only if every row starts
    // on a 64-byte line (see `aligned`): otherwise copying them costs less than reading them.
    let in_place = match a_bits {
        Some(bits) if a.cs == 1 && k == lda && (bits.as_ptr() as usize).is_multiple_of(64) && (a.rs * 2).is_multiple_of(64) => Some(bits),
        _ => None,
    };
    // Slabs outside panels when all of B fits in L2 with room to spare (every B of the encoder's
    // forward pass and of its input gradients): each slab stays in L1 while B streams from L2.
    // A larger B (the weight gradients', k = batch rows) would stream from L3 once per slab:
    // then panels outside, each reused by the block's slabs.
    let slabs_outside = depth * n.next_multiple_of(width) * 4 <= B_IN_L2;
    for m0 in (0..rows).step_by(MC) {
        let mc = MC.min(rows - m0);
        let slabs = mc.div_ceil(SLAB);
        let direct = if in_place.is_some() { mc / SLAB } else { 0 };
        if let Some(bits) = in_place.filter(|_| direct > 0) {
            assert!(bits.len() >= (r0 + m0 + direct * SLAB - 1) * a.rs + k, "A bits shorter than their rows");
        }
        let copied = mc - direct * SLAB;
        block.resize((slabs - direct) * SLAB * lda, 0);
        convert_rows(a, a_bits, r0 + m0 + direct * SLAB, copied, lda, &mut block);
        // Only the padding needs zeros (the rest was just written): k past the end, rows past mc.
        for r in 0..(slabs - direct) * SLAB {
            let from = if r < copied { r * lda + k } else { r * lda };
            block[from..(r + 1) * lda].fill(0);
        }
        let panels = n.div_ceil(width);
        let mut product_of = |s: usize, panel: usize| {
            let (slab, ld) = match in_place {
                Some(bits) if s < direct => (bits[(r0 + m0 + s * SLAB) * a.rs..].as_ptr(), a.rs),
                _ => (block[(s - direct) * SLAB * lda..].as_ptr(), lda),
            };
            let tile_rows = SLAB.min(mc - s * SLAB);
            let j0 = panel * width;
            let cols = width.min(n - j0);
            let first = b.data[panel * depth * width..].as_ptr();
            // SAFETY: the panel holds `depth · width` pairs (asserted above): the second tile
            // starts one tile into it.
            let halves = [first, unsafe { first.add(TILE_PAIRS) }];
            let c_off = (m0 + s * SLAB) * n + j0;
            assert!((tile_rows - 1) * n + cols <= out_len - c_off, "tile out of bounds");
            // SAFETY: AMX is configured on this thread (above); the slab has 32 rows of stride
            // `ld` holding `lda = 32·steps` bf16 each (in place: asserted on `bits` above;
            // copied: `block` was sized to whole slabs); the panel has `steps` pairs of
            // contiguous 16 × 16 tiles (asserted on `b.data` above), read at 16 pairs per
            // row and 2 tiles per step; `product` has 32 rows of 32 floats.
            unsafe { amx::tile_32x32(steps, (slab, ld), (halves, TILE_ROWS, 2 * TILE_PAIRS), (product.0.as_mut_ptr(), SLAB)) };
            let bias = bias.map_or(std::ptr::null(), |bb| bb[j0..j0 + cols].as_ptr());
            finish(&product.0, Job { c_off, ldc: n, rows: tile_rows, cols, bias }, epilogue, &mut out);
        };
        if slabs_outside {
            for s in 0..slabs {
                for panel in 0..panels {
                    product_of(s, panel);
                }
            }
        } else {
            for panel in 0..panels {
                for s in 0..slabs {
                    product_of(s, panel);
                }
            }
        }
    }
    BLOCK.with(|b| b.replace(block));
}

/// One 32 × 32 fp32 tile product, on a 64-byte boundary so that each of its rows is one cache
/// line. On the stack it was 16-byte aligned in three calls of four, and a tile row straddling
/// two lines costs `tilestored` 29 cycles per tile instead of 12 (one Sapphire Rapids core,
/// `--example amx_tiles`), and the epilogue's loads a split each.
#[repr(C, align(64))]
struct Product([f32; SLAB * SLAB]);

/// Where a stored 32 × 32 product goes: `rows` × `cols` of the output from `c_off` at row stride
/// `ldc` (bounds asserted by the driver), with `cols` bias values at `bias` (or null).
#[derive(Clone, Copy)]
struct Job {
    c_off: usize,
    ldc: usize,
    rows: usize,
    cols: usize,
    bias: *const f32,
}

/// The epilogue of one product: accumulate, bias and GELU into fp32 C, or bias and GELU into bits.
fn finish(product: &[f32; SLAB * SLAB], job: Job, epilogue: Epilogue, out: &mut Out<'_>) {
    let Job { c_off, ldc, rows, cols, bias } = job;
    match out {
        Out::F32 { c, accumulate } => {
            let tile = Tile { c: c[c_off..].as_mut_ptr(), ldc, rows, cols, first: !*accumulate, last: true, bias, epilogue };
            // SAFETY: the AMX level implies AVX-512F/DQ; the driver asserted that rows × cols at
            // stride `ldc` from `c_off` lie inside C, and `bias` has `cols` values.
            unsafe { x86::finish_avx512(&product[..rows * SLAB], SLAB, &tile) };
        }
        Out::Bf16(c) => {
            // SAFETY: the AMX level implies AVX-512F/DQ/BW/VL and AVX512-BF16; bounds as above.
            unsafe { x86::finish_bf16(&product[..rows * SLAB], SLAB, (rows, cols), bias, epilogue == Epilogue::Gelu, c[c_off..].as_mut_ptr(), ldc) };
        }
    }
}

thread_local! {
    static BLOCK: std::cell::Cell<AlignedVec<u16>> = std::cell::Cell::new(AlignedVec::new());
}

/// Rows `row0..row0+mc` of `a` into `out` as row-major bf16 with row stride `lda` (columns
/// `0..k` of rows `0..mc`; the caller zeroes the padding).
fn convert_rows(a: Mat<'_>, a_bits: Option<&[u16]>, row0: usize, mc: usize, lda: usize, out: &mut [u16]) {
    let k = a.cols;
    match (a_bits, a.cs == 1) {
        (None, true) => {
            for r in 0..mc {
                let src = &a.data[(row0 + r) * a.rs..(row0 + r) * a.rs + k];
                convert_bf16(src, &mut out[r * lda..r * lda + k]);
            }
        }
        (Some(bits), true) => {
            for r in 0..mc {
                out[r * lda..r * lda + k].copy_from_slice(&bits[(row0 + r) * a.rs..(row0 + r) * a.rs + k]);
            }
        }
        (Some(bits), false) if a.rs == 1 => {
            // A transposed view (the weight gradients' Xᵀ): one k's rows are contiguous in
            // memory. Transposed through 16 × 16 blocks so that both the reads and the writes
            // run along memory.
            const B: usize = 16;
            let mut tile = [[0u16; B]; B];
            for kb in (0..k).step_by(B) {
                let kw = B.min(k - kb);
                for rb in (0..mc).step_by(B) {
                    let rw = B.min(mc - rb);
                    for (i, t) in tile.iter_mut().enumerate().take(kw) {
                        let start = (kb + i) * a.cs + row0 + rb;
                        t[..rw].copy_from_slice(&bits[start..start + rw]);
                    }
                    for r in 0..rw {
                        let dst = &mut out[(rb + r) * lda + kb..(rb + r) * lda + kb + kw];
                        for (i, d) in dst.iter_mut().enumerate() {
                            *d = tile[i][r];
                        }
                    }
                }
            }
        }
        (Some(bits), false) => {
            for r in 0..mc {
                for kk in 0..k {
                    out[r * lda + kk] = bits[(row0 + r) * a.rs + kk * a.cs];
                }
            }
        }
        (None, false) => {
            for r in 0..mc {
                for kk in 0..k {
                    out[r * lda + kk] = half::bf16::from_f32(a.data[(row0 + r) * a.rs + kk * a.cs]).to_bits();
                }
            }
        }
    }
}
