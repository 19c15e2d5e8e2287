//! The AMX tile kernel alone, on one thread, reading B from the two bf16 layouts
//! (`pack::PairLayout`): rows of 48 pairs (a tile row every 192 bytes) or contiguous 16 × 16
//! tiles (every 64 bytes). Row-major A read in place, 32 × k per slab, as in the encoder.
//! `cargo run --release -p bertkit-kernels --example amx_tiles`
use std::time::Instant;

use bertkit_kernels::amx;

fn main() {
    if !amx::usable() {
        println!("this CPU/OS gives no usable AMX-BF16");
        return;
    }
    // SAFETY: AMX is usable (checked above).
    unsafe { amx::configure() };
    const NR: usize = 48;
    // (k, slabs of 32 rows, panels of 32 columns): the encoder's k = 384 with B of 8 and 48
    // panels (256 and 1536 columns), and its k = 1536.
    for (k, slabs, panels) in [(384usize, 4usize, 8usize), (384, 4, 48), (1536, 4, 12)] {
        let steps = k / 32;
        let bits = |i: usize, m: usize| half::bf16::from_f32((i % m) as f32 * 0.1 - 0.2).to_bits();
        let a: Vec<u16> = (0..slabs * 32 * k).map(|i| bits(i, 7)).collect();
        let len = ((2 * panels).div_ceil(3) * (k / 2) * NR).max(panels * 16 * k);
        let b: Vec<u32> = (0..len).map(|i| u32::from(bits(i, 5)) * 0x1_0001).collect();
        let mut c = vec![0f32; 32 * 32];
        let reps = (1 << 28) / (32 * 32 * k * slabs * panels) + 1;
        for (name, rows) in [("rows of 48 pairs", true), ("contiguous tiles", false)] {
            let t0 = Instant::now();
            for _ in 0..reps {
                for p in 0..panels {
                    // Rows: panel p/1.5 of width 48 holds column tiles 2p and 2p+1 at 16-pair
                    // offsets; tiles: panel p is 2 tiles (512 pairs) per k step.
                    let (halves, ldb, step) = if rows {
                        let at = |ct: usize| (ct / 3) * (k / 2) * NR + (ct % 3) * 16;
                        ([at(2 * p), at(2 * p + 1)], NR, 16 * NR)
                    } else {
                        ([p * 16 * k, p * 16 * k + 256], 16, 512)
                    };
                    for s in 0..slabs {
                        // SAFETY: configured above; A has 32 rows of k bf16 from slab s; each B
                        // half has `steps` tiles of 16 rows of 16 pairs at the stride and step
                        // given, inside `b` (sized for the larger layout); C is 32 × 32.
                        unsafe {
                            amx::tile_32x32(
                                steps,
                                (a[s * 32 * k..].as_ptr(), k),
                                ([b[halves[0]..].as_ptr(), b[halves[1]..].as_ptr()], ldb, step),
                                (c.as_mut_ptr(), 32),
                            )
                        };
                    }
                }
            }
            let dt = t0.elapsed().as_secs_f64();
            let flop = 2.0 * (32 * 32 * k * slabs * panels * reps) as f64;
            println!("k = {k:4}, {panels:2} panels, B from {name}: {:6.0} GFLOP/s on one thread", flop / dt / 1e9);
        }
    }
}
