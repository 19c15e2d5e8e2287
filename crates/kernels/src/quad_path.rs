//! Which kernel computes the int8 quad products (uint8 A × int8 B into int32) at this CPU level:
//! the one table that `quant`'s packing, its products and the tests read, the layout each kernel
//! reads (quads, or 16-bit halves for `vpmaddwd`), and the call into the chosen kernel.

use crate::pack::NR;
use crate::quant::{QUAD, QuantA, QuantB, dot_rows_serial};
use crate::quant_gemm::{ACC_LD, Dequant, SLAB, dequant_rows};

/// Which kernel computes the int8 quad products at this level: the one table that the packing,
/// the products and the tests read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuadPath {
    /// AMX-INT8 tiles (`tdpbusd`).
    Tiles,
    /// AVX512-VNNI `vpdpbusd` on zmm.
    Vnni512,
    /// AVX-VNNI `vpdpbusd` on ymm (the `avx2-vnni` level).
    AvxVnni,
    /// AVX2 without VNNI: `vpmaddwd` on 16-bit halves, which the panels store pre-split.
    Madd,
    /// Plain loops (the portable level).
    Plain,
}

impl QuadPath {
    pub(crate) fn current() -> Self {
        if crate::level::amx_int8() {
            QuadPath::Tiles
        } else if crate::level::vnni() {
            QuadPath::Vnni512
        } else if crate::level::avx_vnni() {
            QuadPath::AvxVnni
        } else if cfg!(target_arch = "x86_64") && crate::level::isa() >= crate::level::Isa::Avx2 {
            QuadPath::Madd
        } else {
            QuadPath::Plain
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            QuadPath::Tiles => "AMX-INT8 tiles",
            QuadPath::Vnni512 => "AVX512-VNNI",
            QuadPath::AvxVnni => "AVX-VNNI",
            QuadPath::Madd => "AVX2 vpmaddwd",
            QuadPath::Plain => "plain loops",
        }
    }

    /// u32s per quad-row of a panel: NR quads, or NR pairs of halves twice.
    pub(crate) fn row_len(self) -> usize {
        if self == QuadPath::Madd { 2 * NR } else { NR }
    }
}

/// The kernel int8 GEMMs run on at this level, by name (`bertkit cpu` prints it).
pub fn int8_kernel() -> &'static str {
    QuadPath::current().name()
}

/// A quad (four int8 k values of one column, k0 in the low byte) as the `vpmaddwd` path reads it:
/// (k0, k2) and (k1, k3), each pair as two sign-extended 16-bit halves (the even k low).
pub(crate) fn halves(quad: u32) -> (u32, u32) {
    let w = |i: usize| u32::from(((quad >> (8 * i)) as u8 as i8) as i16 as u16);
    (w(0) | w(2) << 16, w(1) | w(3) << 16)
}

/// Every quantized row's products with panel `p`, dequantized into `out`: from the kernel's
/// registers on the vector paths, through `acc` (`[rows, ACC_LD]`) where the tiles must store
/// them and in the plain loops. The one pass saves a store and a load of every product:
/// AVX512-VNNI inference gained 7–10 % (`dequant_rows` had been half as long as the products).
pub(crate) fn products_into(qa: &QuantA, b: &QuantB, lda: usize, (p, cols): (usize, usize), acc: &mut [i32], out: Dequant<'_>) {
    let depth = b.depth.min(lda / QUAD);
    let row_len = b.path.row_len();
    assert!(b.data.len() >= (p + 1) * b.depth * row_len, "int8 panel {p} past the packed weight");
    let panel = &b.data[p * b.depth * row_len..(p + 1) * b.depth * row_len];
    #[cfg(target_arch = "x86_64")]
    let a = (&qa.bytes[..], lda);
    match b.path {
        // SAFETY (the three below): `QuadPath::current` chose the path from the CPU's level
        // (AVX-512F/DQ and AVX512-VNNI; AVX2, FMA and AVX-VNNI; AVX2 and FMA); each kernel checks
        // A, the panel and `out` against the rows and columns it touches.
        #[cfg(target_arch = "x86_64")]
        QuadPath::Vnni512 => unsafe { crate::int8_avx512::dot_dequant_vnni(depth, a, panel, out) },
        #[cfg(target_arch = "x86_64")]
        QuadPath::AvxVnni => unsafe { crate::int8_avx2::dot_dequant_avx_vnni(depth, a, panel, out) },
        #[cfg(target_arch = "x86_64")]
        QuadPath::Madd => unsafe { crate::int8_avx2::dot_dequant_avx2(depth, a, panel, out) },
        _ => {
            products(qa, b, lda, (p, cols), acc);
            dequant_rows(acc, out);
        }
    }
}

/// The int32 products of every quantized row with panel `p` into `acc` (`[rows, ACC_LD]`), on
/// the AMX tiles or in the plain loops (the vector paths dequantize as they go: [`products_into`]).
pub(crate) fn products(qa: &QuantA, b: &QuantB, lda: usize, (p, cols): (usize, usize), acc: &mut [i32]) {
    let rows = qa.scale.len();
    assert!(qa.bytes.len() >= rows * lda && acc.len() >= rows * ACC_LD && b.data.len() >= (p + 1) * b.depth * NR, "int8 product shapes");
    #[cfg(target_arch = "x86_64")]
    if b.path == QuadPath::Tiles {
        let panel = &b.data[p * b.depth * NR..(p + 1) * b.depth * NR];
        // Column tiles of 16 in pairs; an odd last tile is paired with itself.
        let col_tiles = cols.div_ceil(16);
        // SAFETY: AMX-INT8 is usable (`level::amx_int8`, which implies `amx::usable`).
        unsafe { crate::amx::configure() };
        for ct in (0..col_tiles).step_by(2) {
            let halves = [panel[ct * 16..].as_ptr(), panel[(ct + 1).min(col_tiles - 1) * 16..].as_ptr()];
            for s in 0..qa.bytes.len() / (SLAB * lda) {
                // SAFETY: the tiles are configured (above); the slab has 32 rows of `lda =
                // 64·(depth/16)` bytes; each half reads `depth` quad-rows of 16 quads at stride
                // NR from column tile ≤ 2 of the panel (ct·16 + 16 ≤ NR); `acc` has 32 rows of
                // ACC_LD from row 32·s, and the store's 32 columns from ct·16 ≤ 32 fit in ACC_LD.
                unsafe {
                    crate::amx::tile_32x32_i8(
                        b.depth / 16,
                        (qa.bytes[s * SLAB * lda..].as_ptr(), lda),
                        (halves, NR, 16 * NR),
                        (acc[s * SLAB * ACC_LD + ct * 16..].as_mut_ptr(), ACC_LD),
                    );
                }
            }
        }
        return;
    }
    // The plain loops read quads: `current` picks the other layouts on x86-64 only.
    dot_rows_serial(qa, b, lda, (p, cols), acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_a_quad_into_sign_extended_even_and_odd_pairs() {
        // k0 = 1, k1 = −1, k2 = 127, k3 = −127 (bytes 0x01, 0xff, 0x7f, 0x81).
        assert_eq!(halves(0x81_7f_ff_01), (0x007f_0001, 0xff81_ffff));
        assert_eq!(halves(0), (0, 0));
    }
}
