//! Packing into the layouts the micro-kernels stream: B (weights) once, in panels of `NR`
//! columns; A (activations) per block, in slivers of `MR` rows. bf16 packs pairs of
//! consecutive `k` into one `u32` (low half = even `k`), the operand layout of `vdpbf16ps`.

use half::bf16;
use rayon::prelude::*;
use crate::aligned::{AlignedVec, Plain};
use crate::bf16_bits::convert_bf16;

/// Rows of A per micro-kernel call.
pub const MR: usize = 8;
/// Columns of B per micro-kernel call (three 16-lane vectors).
pub const NR: usize = 48;

/// Two floats as one bf16 pair (round to nearest even, like `vcvtne2ps2bf16`).
#[cfg(test)]
pub fn pair(lo: f32, hi: f32) -> u32 {
    pair_bits(bf16::from_f32(lo).to_bits(), bf16::from_f32(hi).to_bits())
}

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`. One of the strides is 1:
/// row-major (`cs == 1`) or a transposed view of a row-major matrix (`rs == 1`), which is how
/// the backward pass reads `Wᵀ` and `Xᵀ` without copying them.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major `[rows, cols]` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix data shorter than {rows} × {cols}");
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose of row-major `[cols, rows]` `data`, as a `[rows, cols]` matrix.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix data shorter than {rows} × {cols}");
        Self { data, rows, cols, rs: 1, cs: rows }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Sizes `out` (reusing its allocation: the training path repacks every step) for the panels,
/// `width` columns wide, of a `n`-column B with `depth` rows per panel, zeroed, and fills each
/// panel in parallel: `fill(p, cols, panel)` for panel `p` with `cols` real columns.
fn fill_panels<T: Plain + Send + Sync>(width: usize, n: usize, depth: usize, out: &mut AlignedVec<T>, fill: impl Fn(usize, usize, &mut [T]) + Sync) {
    let panels = n.div_ceil(width);
    out.clear();
    out.resize(panels * depth * width, T::default());
    out.par_chunks_mut((depth * width).max(1)).enumerate().for_each(|(p, panel)| fill(p, width.min(n - p * width), panel));
}

/// `b` `[k, n]` → panels `[n/width][k][width]` (zero-padded columns) in `out`, one panel per
/// task: `NR` wide for our AVX-512 micro-kernel, 16 wide for the `gemm` crate's FMA micro-kernels
/// on the AVX2 level (`gemm_crate.rs`), which read them as their packed left operand.
pub fn pack_b_panels(b: Mat<'_>, width: usize, out: &mut AlignedVec<f32>) {
    let k = b.rows;
    fill_panels(width, b.cols, k, out, |p, cols, panel| {
        if b.cs == 1 {
            for kk in 0..k {
                let src = &b.data[kk * b.rs + p * width..][..cols];
                panel[kk * width..kk * width + cols].copy_from_slice(src);
            }
        } else {
            // A transposed view: each of its columns is a contiguous stored row.
            for j in 0..cols {
                let col = p * width + j;
                for kk in 0..k {
                    panel[kk * width + j] = b.at(kk, col);
                }
            }
        }
    });
}

/// One `vdpbf16ps` operand: the bf16s of `k` (low half) and `k + 1` (high half).
#[inline(always)]
fn pair_bits(lo: u16, hi: u16) -> u32 {
    u32::from(lo) | (u32::from(hi) << 16)
}

/// `b` (any `[k, n]` view) → row-major `[k, n]` in `out` (the AVX2 and portable levels' layout).
pub fn pack_b_rows(b: Mat<'_>, out: &mut AlignedVec<f32>) {
    let (k, n) = (b.rows, b.cols);
    out.clear();
    out.resize(k * n, 0.0);
    if b.cs == 1 {
        for (kk, dst) in out.chunks_exact_mut(n.max(1)).enumerate().take(k) {
            dst.copy_from_slice(&b.data[kk * b.rs..kk * b.rs + n]);
        }
    } else {
        // A transposed view: walk the stored rows (the view's columns) contiguously.
        for j in 0..n {
            for kk in 0..k {
                out[kk * n + j] = b.at(kk, j);
            }
        }
    }
}

/// Where bf16 pair `(q, j)` (pair-row `q`, column `j` of the panel) sits in a packed B panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairLayout {
    /// `[n/NR][depth][NR]`: rows of `NR` pairs, what the AVX512-BF16 micro-kernel streams.
    Rows,
    /// `[n/32][depth/16][2][16][16]`: AMX tiles of 16 pair-rows × 16 columns, each contiguous
    /// (1 KiB, loaded at a 64-byte row stride), the two column tiles of one k step side by side.
    /// Measured on a Sapphire Rapids core, the 2 × 2 tile kernel alone ran 20–35 % faster from
    /// contiguous tiles than from `Rows` panels, whose tile rows are 192 bytes apart
    /// (`examples/amx_tiles.rs`, docs/benchmarks.md).
    Tiles,
}

impl PairLayout {
    /// Columns per panel.
    pub fn width(self) -> usize {
        match self {
            PairLayout::Rows => NR,
            PairLayout::Tiles => 2 * TILE,
        }
    }

    /// Index of pair `(q, j)` within its panel.
    #[inline(always)]
    pub fn at(self, q: usize, j: usize) -> usize {
        match self {
            PairLayout::Rows => q * NR + j,
            PairLayout::Tiles => (q / TILE * 2 + j / TILE) * TILE * TILE + (q % TILE) * TILE + j % TILE,
        }
    }
}

/// Rows and columns of one AMX B tile (pair-rows × pairs).
const TILE: usize = 16;

/// `f(j, pair)` for columns `0..cols` of pair-row `q` of a panel, 16 columns at a time: both
/// layouts keep 16 aligned columns of one pair-row contiguous, so the index is computed once per
/// run (per element it kept the tile packer from vectorising: a training step repacks every
/// weight, and each weight gradient packs an activation).
#[inline(always)]
fn for_runs(layout: PairLayout, q: usize, cols: usize, panel: &mut [u32], mut f: impl FnMut(usize, &mut u32)) {
    for j0 in (0..cols).step_by(TILE) {
        let start = layout.at(q, j0);
        for (i, d) in panel[start..start + TILE.min(cols - j0)].iter_mut().enumerate() {
            f(j0 + i, d);
        }
    }
}

/// `b` `[k, n]` → bf16 pair panels in `layout` (zero-padded; `depth ≥ k/2`, a multiple of 16 for
/// `Tiles`) in `out`, one panel per task.
pub fn pack_b_bf16(b: Mat<'_>, depth: usize, layout: PairLayout, out: &mut AlignedVec<u32>) {
    let k = b.rows;
    let kp = k.div_ceil(2);
    assert!(depth >= kp, "panel depth {depth} < {kp} pairs");
    assert!(layout == PairLayout::Rows || depth.is_multiple_of(TILE), "tile panels need whole tiles of depth");
    let width = layout.width();
    fill_panels(width, b.cols, depth, out, |p, cols, panel| {
        if b.rs == 1 && b.cs != 1 {
            // Each column of the view is a contiguous row of the stored matrix: convert it in
            // one vector pass, its consecutive bf16s are already the (even, odd) pairs.
            let mut bits = vec![0u16; 2 * kp];
            for j in 0..cols {
                let col = p * width + j;
                convert_bf16(&b.data[col * b.cs..col * b.cs + k], &mut bits[..k]);
                for q in 0..kp {
                    panel[layout.at(q, j)] = pair_bits(bits[2 * q], bits[2 * q + 1]);
                }
            }
        } else {
            let mut lo = vec![0u16; cols];
            let mut hi = vec![0u16; cols];
            for q in 0..kp {
                let row = |kk: usize, dst: &mut [u16]| {
                    if kk < k && b.cs == 1 {
                        convert_bf16(&b.data[kk * b.rs + p * width..kk * b.rs + p * width + cols], dst);
                    } else {
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = if kk < k { bf16::from_f32(b.at(kk, p * width + j)).to_bits() } else { 0 };
                        }
                    }
                };
                row(2 * q, &mut lo);
                row(2 * q + 1, &mut hi);
                for_runs(layout, q, cols, panel, |j, d| *d = pair_bits(lo[j], hi[j]));
            }
        }
    });
}

/// Rows `r0..r0+mc` and columns `k0..k0+kc` of `a` (`[m, k]`) → slivers `[mc/MR][kc][MR]` in
/// `out` (rows past `m` are zero). The AVX-512 fp32 kernel reads a row-major A in place
/// (`kernel_f32_rows`), so what is packed here is a transposed view (the weight gradients' Xᵀ),
/// whose sliver values of one k are contiguous; any other view is read element by element.
pub fn pack_a_f32(a: Mat<'_>, (r0, mc): (usize, usize), (k0, kc): (usize, usize), out: &mut Vec<f32>) {
    let m = a.rows;
    let slivers = mc.div_ceil(MR);
    out.clear();
    out.resize(slivers * kc * MR, 0.0);
    for s in 0..slivers {
        let rows = MR.min(m.min(r0 + mc).saturating_sub(r0 + s * MR));
        for kk in 0..kc {
            let start = (k0 + kk) * a.cs + (r0 + s * MR) * a.rs;
            let dst = &mut out[(s * kc + kk) * MR..(s * kc + kk) * MR + rows];
            if a.rs == 1 {
                dst.copy_from_slice(&a.data[start..start + rows]);
            } else {
                for (r, d) in dst.iter_mut().enumerate() {
                    *d = a.at(r0 + s * MR + r, k0 + kk);
                }
            }
        }
    }
}

/// Like [`pack_a_f32`] but as bf16 pairs `[mc/MR][kc/2][MR]`; `k0` must be even. With `a_bits`
/// (all of `a.data` already converted, same indexing, see
/// [`to_bf16_bits`](crate::bf16_bits::to_bf16_bits)) only bits are moved.
pub fn pack_a_bf16(a: Mat<'_>, a_bits: Option<&[u16]>, (r0, mc): (usize, usize), (k0, kc): (usize, usize), out: &mut Vec<u32>) {
    let m = a.rows;
    let slivers = mc.div_ceil(MR);
    let kcp = kc.div_ceil(2);
    out.clear();
    out.resize(slivers * kcp * MR, 0);
    let k_end = k0 + kc;
    for s in 0..slivers {
        let rows = MR.min(m.min(r0 + mc).saturating_sub(r0 + s * MR));
        let base = r0 + s * MR;
        match (a_bits, a.cs == 1) {
            (Some(bits), true) => {
                for r in 0..rows {
                    let row = &bits[(base + r) * a.rs..];
                    for q in 0..kcp {
                        let (lo, hi) = (k0 + 2 * q, k0 + 2 * q + 1);
                        let hi = if hi < k_end { row[hi] } else { 0 };
                        out[(s * kcp + q) * MR + r] = pair_bits(row[lo], hi);
                    }
                }
            }
            (Some(bits), false) => {
                // Transposed view: the sliver's MR values of one k are contiguous.
                for q in 0..kcp {
                    let (lo, hi) = (k0 + 2 * q, k0 + 2 * q + 1);
                    let dst = &mut out[(s * kcp + q) * MR..(s * kcp + q) * MR + rows];
                    for (r, d) in dst.iter_mut().enumerate() {
                        let at = |k: usize| bits[(base + r) * a.rs + k * a.cs];
                        *d = pair_bits(at(lo), if hi < k_end { at(hi) } else { 0 });
                    }
                }
            }
            (None, true) => {
                // A row's consecutive floats as bf16 are already its little-endian pairs; convert
                // the row segment in one vector pass, then scatter the pairs into the slivers.
                let mut bits = vec![0u16; 2 * kcp];
                for r in 0..rows {
                    let row = base + r;
                    convert_bf16(&a.data[row * a.rs + k0..row * a.rs + k_end], &mut bits[..kc]);
                    if kc % 2 == 1 {
                        bits[kc] = 0;
                    }
                    for q in 0..kcp {
                        out[(s * kcp + q) * MR + r] = pair_bits(bits[2 * q], bits[2 * q + 1]);
                    }
                }
            }
            (None, false) => {
                // Strided without a converted copy (gemm_ex always supplies one): per element.
                for r in 0..rows {
                    for q in 0..kcp {
                        let (lo, hi) = (k0 + 2 * q, k0 + 2 * q + 1);
                        let b = |k: usize| if k < k_end { bf16::from_f32(a.at(base + r, k)).to_bits() } else { 0 };
                        out[(s * kcp + q) * MR + r] = pair_bits(b(lo), b(hi));
                    }
                }
            }
        }
    }
}

/// `b` `[k, n]` from its bf16 bits (same indexing as `b.data`) → bf16 pair panels, like
/// [`pack_b_bf16`] without converting again.
pub fn pack_b_bf16_bits(b: Mat<'_>, bits: &[u16], depth: usize, layout: PairLayout, out: &mut AlignedVec<u32>) {
    let k = b.rows;
    let kp = k.div_ceil(2);
    assert!(depth >= kp, "panel depth {depth} < {kp} pairs");
    assert!(layout == PairLayout::Rows || depth.is_multiple_of(TILE), "tile panels need whole tiles of depth");
    let width = layout.width();
    fill_panels(width, b.cols, depth, out, |p, cols, panel| {
        for q in 0..kp {
            let at = |kk: usize, j: usize| if kk < k { bits[kk * b.rs + (p * width + j) * b.cs] } else { 0 };
            for_runs(layout, q, cols, panel, |j, d| *d = pair_bits(at(2 * q, j), at(2 * q + 1, j)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_put_the_even_k_in_the_low_half() {
        // Literal bits: 1.0 is 0x3F80 and 2.0 is 0x4000 in bf16.
        assert_eq!(pair(1.0, 2.0), 0x4000_3F80);
    }

    #[test]
    fn tile_panels_put_each_16_by_16_tile_contiguously() {
        // k = 40 (20 pairs: two tiles of depth, the second mostly padding), n = 40 (two panels
        // of 32 columns, the second with 8 real ones): every pair lands where `at` says, tiles
        // of one k step side by side, and the padding is zero.
        let (k, n, depth) = (40, 40, 32);
        let b: Vec<f32> = (0..k * n).map(|i| (i % 251) as f32).collect();
        let mut p = AlignedVec::new();
        pack_b_bf16(Mat::rows(&b, k, n), depth, PairLayout::Tiles, &mut p);
        assert_eq!(p.len(), 2 * depth * 32);
        // Literal positions: pair-row 17 (second tile row 1), column 20 (second column tile,
        // column 4) of panel 0 is at tile (1, 1): 3 · 256 + 1 · 16 + 4.
        assert_eq!(PairLayout::Tiles.at(17, 20), 3 * 256 + 16 + 4);
        assert_eq!(p[3 * 256 + 16 + 4], pair(b[34 * n + 20], b[35 * n + 20]));
        for panel in 0..2 {
            for q in 0..depth {
                for j in 0..32 {
                    let col = panel * 32 + j;
                    let v = |kk: usize| if kk < k && col < n { b[kk * n + col] } else { 0.0 };
                    assert_eq!(p[panel * depth * 32 + PairLayout::Tiles.at(q, j)], pair(v(2 * q), v(2 * q + 1)), "panel {panel} ({q}, {j})");
                }
            }
        }
        // The bits packer lays out the same matrix identically, from a transposed view too.
        let bits: Vec<u16> = b.iter().map(|&x| bf16::from_f32(x).to_bits()).collect();
        let mut q = AlignedVec::new();
        pack_b_bf16_bits(Mat::rows(&b, k, n), &bits, depth, PairLayout::Tiles, &mut q);
        assert_eq!(p[..], q[..]);
        let bt: Vec<f32> = (0..n).flat_map(|j| (0..k).map(move |kk| (kk, j))).map(|(kk, j)| b[kk * n + j]).collect();
        let mut t = AlignedVec::new();
        pack_b_bf16(Mat::transposed(&bt, k, n), depth, PairLayout::Tiles, &mut t);
        assert_eq!(p[..], t[..]);
    }

    #[test]
    fn b_panels_are_zero_padded() {
        let b: Vec<f32> = (0..3 * 50).map(|i| i as f32).collect();
        let mut p = AlignedVec::new();
        pack_b_panels(Mat::rows(&b, 3, 50), NR, &mut p);
        assert_eq!(p.len(), 2 * 3 * NR);
        assert_eq!(p[NR + 1], b[50 + 1]); // k = 1, col 1
        assert_eq!(p[(3 + 2) * NR + 1], b[2 * 50 + 49]); // panel 1, k = 2, col 49
        assert_eq!(p[(3 + 2) * NR + 2], 0.0);
    }
}
