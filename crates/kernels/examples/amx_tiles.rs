//! The AMX tile kernel alone, on one thread, reading B from the two bf16 layouts
//! (`pack::PairLayout`): rows of 48 pairs (a tile row every 192 bytes) or contiguous 16 × 16
//! tiles (every 64 bytes). Row-major A read in place, 32 × k per slab, as in the encoder. Then the
//! cost of operands off a 64-byte line: C stored 16 bytes off (where a stack array of floats may
//! land), and A, B and C all 32 bytes off.
//! `cargo run --release -p bertkit-kernels --example amx_tiles`
use std::time::Instant;

use bertkit_kernels::amx;

/// `len` values from `f`, starting `skew` bytes past a 64-byte boundary (the rest of the
/// allocation is slack).
struct Skewed<T> {
    v: Vec<T>,
    at: usize,
}

impl<T: Copy + Default> Skewed<T> {
    fn new(len: usize, skew: usize, f: impl Fn(usize) -> T) -> Self {
        let size = std::mem::size_of::<T>();
        let mut v = vec![T::default(); len + 128 / size];
        let at = v.as_ptr().align_offset(64) + skew / size;
        v[at..at + len].iter_mut().enumerate().for_each(|(i, x)| *x = f(i));
        Self { v, at }
    }
    fn ptr(&self, i: usize) -> *const T {
        self.v[self.at + i..].as_ptr()
    }
    fn ptr_mut(&mut self) -> *mut T {
        self.v[self.at..].as_mut_ptr()
    }
}

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
        let len = ((2 * panels).div_ceil(3) * (k / 2) * NR).max(panels * 16 * k);
        let reps = (1 << 28) / (32 * 32 * k * slabs * panels) + 1;
        let cases = [
            ("rows of 48 pairs", true, 0, 0),
            ("contiguous tiles", false, 0, 0),
            ("tiles, C 16 B off a line", false, 0, 16),
            ("tiles, all 32 B off", false, 32, 32),
        ];
        for (name, rows, skew, c_skew) in cases {
            let a = Skewed::new(slabs * 32 * k, skew, |i| bits(i, 7));
            let b = Skewed::new(len, skew, |i| u32::from(bits(i, 5)) * 0x1_0001);
            let mut c = Skewed::new(32 * 32, c_skew, |_| 0f32);
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
                                (a.ptr(s * 32 * k), k),
                                ([b.ptr(halves[0]), b.ptr(halves[1])], ldb, step),
                                (c.ptr_mut(), 32),
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
