//! Which rows of a product are computed ([`RowSet`]: all, or each text's real tokens in a
//! right-padded batch) and their split over rayon's threads (`par_row_blocks`), shared by every
//! GEMM driver.

use std::ops::Range;

use rayon::prelude::*;

/// The rows of a `[m, n]` product to compute. The others are set to zero (or, when the product
/// accumulates, left as they are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSet<'a> {
    All,
    /// Sorted, disjoint, non-empty ranges: what [`RowSet::live_ranges`] builds from a batch.
    Ranges(&'a [Range<usize>]),
}

impl RowSet<'_> {
    /// The real-token rows of a right-padded batch (text `b` at rows `b·t..b·t + lens[b]`) as
    /// ranges, texts without padding merged with their neighbours: in a batch of mostly full
    /// texts the ranges are few and long, so the kernels' row blocks are rarely cut short.
    pub fn live_ranges(lens: &[usize], t: usize) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (b, &len) in lens.iter().enumerate() {
            let r = b * t..b * t + len.min(t);
            if r.is_empty() {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(r),
            }
        }
        ranges
    }

    /// Checks the ranges against `m` rows; panics with the reason (a caller's bug).
    pub(crate) fn check(self, m: usize) {
        if let RowSet::Ranges(ranges) = self {
            let mut end = 0;
            for r in ranges {
                assert!(
                    r.start >= end && r.start < r.end && r.end <= m,
                    "row ranges must be sorted, disjoint, non-empty and within {m} rows: {ranges:?}"
                );
                end = r.end;
            }
        }
    }

    /// Whether row `i` is in the set.
    pub(crate) fn contains(self, i: usize) -> bool {
        match self {
            RowSet::All => true,
            RowSet::Ranges(ranges) => ranges.iter().any(|r| r.contains(&i)),
        }
    }

    /// Sets the rows of `out` (`[m, n]`) outside the set to zero (the caller has checked the set
    /// against `m`).
    pub(crate) fn zero_the_rest<T: Copy + Default>(self, out: &mut [T], n: usize) {
        let RowSet::Ranges(ranges) = self else { return };
        let m = out.len() / n.max(1);
        let mut at = 0;
        for r in ranges.iter().cloned().chain(std::iter::once(m..m)) {
            out[at * n..r.start * n].fill(T::default());
            at = r.end;
        }
    }
}

/// Splits the `[m, n]` output `out` into one share of rows per thread, each a multiple of `unit`
/// rows (the kernel's row block) but the last, and runs `f(first_row, rows_of_out)` on each
/// contiguous piece of a share, the shares in parallel. With [`RowSet::Ranges`] only those rows
/// are passed to `f` (a share may then hold pieces of several ranges, each piece any length);
/// the others are zeroed unless `accumulate`. Any split gives the same values: each row of a
/// product is computed alone.
pub(crate) fn par_row_blocks<T: Send + Copy + Default>(
    out: &mut [T],
    n: usize,
    unit: usize,
    rows: RowSet<'_>,
    accumulate: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if n == 0 || out.is_empty() {
        return;
    }
    let m = out.len() / n;
    let threads = rayon::current_num_threads().max(1);
    let RowSet::Ranges(ranges) = rows else {
        let per = m.div_ceil(threads).div_ceil(unit) * unit;
        out.par_chunks_mut(per * n).enumerate().for_each(|(t, rows)| f(t * per, rows));
        return;
    };
    rows.check(m);
    if !accumulate {
        rows.zero_the_rest(out, n);
    }
    // The live rows in order, cut into equal shares: a share may span several ranges, run one
    // after the other. (Ranges handed to rayon one by one left the two threads of a 2-core
    // machine unevenly loaded: AVX2 inference lost 8 %.)
    let live: usize = ranges.iter().map(|r| r.len()).sum();
    let per = live.div_ceil(threads).div_ceil(unit).max(1) * unit;
    let mut shares: Vec<Vec<(usize, &mut [T])>> = vec![Vec::new()];
    let mut room = per;
    let (mut rest, mut at) = (out, 0);
    for r in ranges {
        let tail = std::mem::take(&mut rest);
        let (_, tail) = tail.split_at_mut((r.start - at) * n);
        let (mut range, tail) = tail.split_at_mut(r.len() * n);
        rest = tail;
        at = r.end;
        let mut r0 = r.start;
        while !range.is_empty() {
            if room == 0 {
                shares.push(Vec::new());
                room = per;
            }
            let take = room.min(range.len() / n);
            let (piece, next) = std::mem::take(&mut range).split_at_mut(take * n);
            if let Some(share) = shares.last_mut() {
                share.push((r0, piece));
            }
            range = next;
            r0 += take;
            room -= take;
        }
    }
    shares.into_par_iter().for_each(|share| share.into_iter().for_each(|(r0, piece)| f(r0, piece)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_ranges_merge_full_texts_and_skip_padding() {
        assert_eq!(RowSet::live_ranges(&[4, 4, 2, 4, 0, 3], 4), vec![0..10, 12..16, 20..23]);
        assert_eq!(RowSet::live_ranges(&[], 4), Vec::<Range<usize>>::new());
        // A length past t (never built by a batch) is held to the text's own rows.
        assert_eq!(RowSet::live_ranges(&[9, 1], 4), vec![0..5]);
    }

    #[test]
    fn blocks_cover_exactly_the_live_rows_and_zero_the_rest() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let ranges = [1..7, 9..10, 12..30];
                let (m, n) = (32, 3);
                let mut out = vec![7u16; m * n];
                par_row_blocks(&mut out, n, 4, RowSet::Ranges(&ranges), false, |r0, rows| {
                    rows.iter_mut().enumerate().for_each(|(i, v)| *v = (r0 + i / n) as u16 + 100);
                });
                for (i, row) in out.chunks(n).enumerate() {
                    let live = ranges.iter().any(|r| r.contains(&i));
                    let want = if live { i as u16 + 100 } else { 0 };
                    assert!(row.iter().all(|&v| v == want), "{threads} threads, row {i}: {row:?}");
                }
                // Accumulating products leave the rows outside the set alone.
                let mut acc = vec![7u16; m * n];
                par_row_blocks(&mut acc, n, 4, RowSet::Ranges(&ranges), true, |_, rows| rows.fill(1));
                assert_eq!(acc[0], 7);
                assert_eq!(acc[7 * n], 7);
                assert_eq!(acc[n], 1);
            });
        }
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// Every GEMM entry point at this level (fp32, bf16, int8; overwriting, accumulating, from and
    /// to bf16 bits) computes the listed rows as the whole product does and zeroes the others.
    #[test]
    fn gemms_on_row_ranges_equal_the_whole_products_rows() {
        use crate::{Epilogue, Mat, PackedB, Precision, gemm_ex, gemm_ex_rows, gemm_from_bits, gemm_to_bits};
        let (m, k, n) = (61, 70, 37);
        let ranges = [0..13, 17..18, 22..58];
        let live = |i: usize| ranges.iter().any(|r| r.contains(&i));
        let (a, b, bias) = (data(m * k, 1), data(k * n, 2), data(n, 3));
        let close = |x: f32, w: f32| (x - w).abs() <= 1e-5 * (1.0 + w.abs());
        for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
            let packed = PackedB::from_mat(Mat::rows(&b, k, n), precision);
            for epilogue in [Epilogue::None, Epilogue::Gelu] {
                let mut whole = vec![0.0; m * n];
                gemm_ex(Mat::rows(&a, m, k), None, &packed, Some(&bias), epilogue, &mut whole, false);
                let mut part = vec![f32::NAN; m * n];
                gemm_ex_rows(Mat::rows(&a, m, k), None, &packed, Some(&bias), epilogue, &mut part, false, RowSet::Ranges(&ranges));
                for (i, (got, want)) in part.chunks(n).zip(whole.chunks(n)).enumerate() {
                    for (&x, &w) in got.iter().zip(want) {
                        let w = if live(i) { w } else { 0.0 };
                        assert!(close(x, w), "{precision:?} {epilogue:?} row {i}: {x} vs {w}");
                    }
                }
            }
            if precision == Precision::Int8 {
                continue; // int8 GEMMs neither accumulate nor read bits (inference only).
            }
            // Accumulating: the listed rows gain the product, the others keep their values.
            let start = data(m * n, 4);
            let mut whole = start.clone();
            gemm_ex(Mat::transposed(&a, m, k), None, &packed, None, Epilogue::None, &mut whole, true);
            let mut part = start.clone();
            gemm_ex_rows(Mat::transposed(&a, m, k), None, &packed, None, Epilogue::None, &mut part, true, RowSet::Ranges(&ranges));
            for (i, ((got, want), before)) in part.chunks(n).zip(whole.chunks(n)).zip(start.chunks(n)).enumerate() {
                let want = if live(i) { want } else { before };
                assert!(got.iter().zip(want).all(|(&x, &w)| close(x, w)), "{precision:?} accumulating, row {i}");
            }
            // Through bf16 bits, out and back in.
            let (mut whole_bits, mut part_bits) = (Vec::new(), vec![u16::MAX; m * n]);
            gemm_to_bits(&a, None, m, &packed, Some(&bias), Epilogue::Gelu, &mut whole_bits, RowSet::All);
            gemm_to_bits(&a, None, m, &packed, Some(&bias), Epilogue::Gelu, &mut part_bits, RowSet::Ranges(&ranges));
            let back = PackedB::from_mat(Mat::rows(&data(n * n, 5), n, n), precision);
            let (mut whole_c, mut part_c) = (vec![0.0; m * n], vec![f32::NAN; m * n]);
            gemm_from_bits(&whole_bits, m, &back, None, Epilogue::None, &mut whole_c, RowSet::All);
            gemm_from_bits(&part_bits, m, &back, None, Epilogue::None, &mut part_c, RowSet::Ranges(&ranges));
            for i in 0..m {
                let row = i * n..(i + 1) * n;
                if live(i) {
                    assert_eq!(part_bits[row.clone()], whole_bits[row.clone()], "{precision:?} bits, row {i}");
                    assert!(part_c[row.clone()].iter().zip(&whole_c[row]).all(|(&x, &w)| close(x, w)), "{precision:?} from bits, row {i}");
                } else {
                    assert!(part_bits[row.clone()].iter().all(|&v| v == 0), "{precision:?} bits, padding row {i}");
                    assert!(part_c[row].iter().all(|&v| v == 0.0), "{precision:?} from bits, padding row {i}");
                }
            }
        }
    }

    #[test]
    fn an_empty_sum_on_row_ranges_writes_the_bias_to_those_rows_only() {
        use crate::{Epilogue, Mat, PackedB, Precision, gemm_ex_rows};
        let packed = PackedB::from_mat(Mat::rows(&[], 0, 2), Precision::F32);
        // Row 1 alone (one range, so a slice of it).
        let ranges = std::slice::from_ref(&(1..2));
        let mut c = vec![5.0f32; 6];
        gemm_ex_rows(Mat::rows(&[], 3, 0), None, &packed, Some(&[1.0, 2.0]), Epilogue::None, &mut c, true, RowSet::Ranges(ranges));
        assert_eq!(c, [5.0, 5.0, 6.0, 7.0, 5.0, 5.0]);
        gemm_ex_rows(Mat::rows(&[], 3, 0), None, &packed, Some(&[1.0, 2.0]), Epilogue::None, &mut c, false, RowSet::Ranges(ranges));
        assert_eq!(c, [0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "sorted, disjoint")]
    fn overlapping_ranges_are_refused() {
        let mut out = vec![0f32; 8];
        par_row_blocks(&mut out, 1, 1, RowSet::Ranges(&[0..4, 3..6]), false, |_, _| {});
    }
}
