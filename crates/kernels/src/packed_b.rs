//! A GEMM's right-hand matrix (a weight) packed once into the layout this CPU level's kernels
//! read: fp32 panels or slivers, bf16 pairs (panels, or AMX tiles), or int8 quads (`quant`),
//! reusing its allocations when the training path repacks it every step.

use crate::aligned::AlignedVec;
use crate::level::{Isa, isa};
use crate::pack::{Mat, NR, PairLayout, pack_b_bf16, pack_b_bf16_bits, pack_b_panels, pack_b_rows};
use crate::quant::{Int8Error, Int8Weight, QuantB};

/// Arithmetic of the products (accumulation is always fp32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Operands rounded to bf16 (8 mantissa bits), products summed in fp32.
    Bf16,
    /// Inference only: weights int8 per output column, activations uint8 per row (dynamic),
    /// products summed in int32 (`quant`).
    Int8,
}

impl Precision {
    /// What this precision runs as on this CPU's kernels level: bf16 falls back to fp32 on levels
    /// without bf16 GEMMs (AVX2, AVX-512 without BF16, portable); fp32 and int8 run everywhere.
    pub fn on_this_cpu(self) -> Self {
        match self {
            Self::Bf16 if !isa().bf16() => Self::F32,
            other => other,
        }
    }
}

pub(crate) enum Packed {
    /// `[n/NR][k][NR]` panels for our AVX-512 micro-kernel.
    F32(AlignedVec<f32>),
    /// `[n/16][k][16]` slivers for the `gemm` crate's FMA micro-kernels (the AVX2 level).
    Slivers(AlignedVec<f32>),
    /// Plain row-major `[k, n]` for `gemm::gemm` (the portable level).
    Rows(AlignedVec<f32>),
    /// bf16 pairs in `[n/NR][depth][NR]` panels for the AVX512-BF16 micro-kernel.
    Bf16(AlignedVec<u32>),
    /// bf16 pairs in contiguous 16 × 16 AMX tiles (`PairLayout::Tiles`), the AMX level's layout.
    Tiles(AlignedVec<u32>),
    Int8(QuantB),
}

/// A `[k, n]` right-hand matrix packed for the kernels.
pub struct PackedB {
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// Pair-rows per bf16 panel: `k/2` rounded up, and to whole tiles (16) on the AMX level.
    pub(crate) depth: usize,
    pub(crate) data: Packed,
    /// The allocations of the layouts not in use: the training path repacks one `PackedB` in
    /// fp32 (the head) and bf16 (the encoder) every step, and a fresh multi-megabyte buffer costs
    /// a page fault per 4 KiB each time.
    spare_f32: AlignedVec<f32>,
    spare_bf16: AlignedVec<u32>,
}

/// Pair-rows of a bf16 panel for `k`: AMX reads whole 16-pair tiles, zero-padded.
fn bf16_depth(k: usize) -> usize {
    if isa() == Isa::Amx { k.div_ceil(crate::amx::TILE_K) * crate::amx::TILE_ROWS } else { k.div_ceil(2) }
}

/// The bf16 layout of this level's kernel, and the `Packed` variant that says so.
fn bf16_layout() -> (PairLayout, fn(AlignedVec<u32>) -> Packed) {
    if isa() == Isa::Amx { (PairLayout::Tiles, Packed::Tiles) } else { (PairLayout::Rows, Packed::Bf16) }
}

impl PackedB {
    /// Packs `b` (`[k, n]` row-major). `Bf16` becomes `F32` on CPUs without AVX512-BF16.
    pub fn new(b: &[f32], k: usize, n: usize, precision: Precision) -> Self {
        assert_eq!(b.len(), k * n, "B must be k × n");
        Self::from_mat(Mat::rows(b, k, n), precision)
    }

    /// Packs any `[k, n]` view (e.g. the transpose of a weight for the backward pass).
    pub fn from_mat(b: Mat<'_>, precision: Precision) -> Self {
        let mut p = Self::empty();
        p.repack(b, precision);
        p
    }

    /// Like [`repack`](Self::repack) in bf16 from `bits`, `b`'s values already converted (same
    /// indexing as `b.data`); fp32 from `b` on CPUs without AVX512-BF16.
    pub fn repack_bits(&mut self, b: Mat<'_>, bits: &[u16]) {
        if !isa().bf16() {
            return self.repack(b, Precision::F32);
        }
        (self.k, self.n, self.depth) = (b.rows, b.cols, bf16_depth(b.rows));
        let mut v = self.take_bf16();
        let (layout, variant) = bf16_layout();
        pack_b_bf16_bits(b, bits, self.depth, layout, &mut v);
        self.data = variant(v);
    }

    /// Packs int8 values already quantized per column (read from an export), after checking
    /// them: the same pack as `from_mat(b, Precision::Int8)` when `w` is `Int8Weight::quantize(b)`.
    pub fn from_int8(w: &Int8Weight) -> Result<Self, Int8Error> {
        w.validate()?;
        let q = QuantB::pack(w);
        let depth = q.depth;
        Ok(Self { k: w.k, n: w.n, depth, data: Packed::Int8(q), spare_f32: AlignedVec::new(), spare_bf16: AlignedVec::new() })
    }

    /// A placeholder to [`repack`](Self::repack) into.
    pub fn empty() -> Self {
        Self { k: 0, n: 0, depth: 0, data: Packed::F32(AlignedVec::new()), spare_f32: AlignedVec::new(), spare_bf16: AlignedVec::new() }
    }

    /// Packs `b` into this value, reusing its allocations (see `spare_f32`).
    pub fn repack(&mut self, b: Mat<'_>, precision: Precision) {
        (self.k, self.n, self.depth) = (b.rows, b.cols, bf16_depth(b.rows));
        if precision == Precision::Int8 {
            let q = QuantB::new(b);
            self.depth = q.depth;
            self.stash();
            self.data = Packed::Int8(q);
        } else if precision.on_this_cpu() == Precision::Bf16 {
            let mut v = self.take_bf16();
            let (layout, variant) = bf16_layout();
            pack_b_bf16(b, self.depth, layout, &mut v);
            self.data = variant(v);
        } else if isa() >= Isa::Avx512 {
            let mut v = self.take_f32();
            pack_b_panels(b, NR, &mut v);
            self.data = Packed::F32(v);
        } else if isa().avx2_kernels() {
            let mut v = self.take_f32();
            pack_b_panels(b, crate::gemm_crate::SLIVER, &mut v);
            self.data = Packed::Slivers(v);
        } else {
            let mut v = self.take_f32();
            pack_b_rows(b, &mut v);
            self.data = Packed::Rows(v);
        }
    }

    /// Moves the current layout's allocation to its spare slot.
    fn stash(&mut self) {
        match std::mem::replace(&mut self.data, Packed::F32(AlignedVec::new())) {
            Packed::F32(v) | Packed::Slivers(v) | Packed::Rows(v) if v.capacity() > self.spare_f32.capacity() => self.spare_f32 = v,
            Packed::Bf16(v) | Packed::Tiles(v) if v.capacity() > self.spare_bf16.capacity() => self.spare_bf16 = v,
            _ => {}
        }
    }

    fn take_f32(&mut self) -> AlignedVec<f32> {
        self.stash();
        std::mem::take(&mut self.spare_f32)
    }

    fn take_bf16(&mut self) -> AlignedVec<u32> {
        self.stash();
        std::mem::take(&mut self.spare_bf16)
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The precision actually used.
    pub fn precision(&self) -> Precision {
        match self.data {
            Packed::F32(_) | Packed::Slivers(_) | Packed::Rows(_) => Precision::F32,
            Packed::Bf16(_) | Packed::Tiles(_) => Precision::Bf16,
            Packed::Int8(_) => Precision::Int8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a weight is packed as is what [`Precision::on_this_cpu`] says it runs as, at every
    /// level (`BERTKIT_CPU`): the commands' "runs in fp32 here" notes rely on it.
    #[test]
    fn a_packed_weight_runs_in_the_precision_on_this_cpu_says() {
        let b: Vec<f32> = (0..64 * 32).map(|i| (i % 7) as f32 - 3.0).collect();
        for asked in [Precision::F32, Precision::Bf16, Precision::Int8] {
            assert_eq!(PackedB::new(&b, 64, 32, asked).precision(), asked.on_this_cpu(), "{asked:?} at {}", isa().name());
        }
        assert_eq!(Precision::Bf16.on_this_cpu() == Precision::Bf16, isa().bf16());
        assert_eq!(Precision::F32.on_this_cpu(), Precision::F32);
        assert_eq!(Precision::Int8.on_this_cpu(), Precision::Int8);
    }
}
