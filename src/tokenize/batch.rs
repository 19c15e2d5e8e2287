//! Pads encoded inputs into the rectangular `[batch, seq_len]` arrays an encoder takes.

use super::Encoded;

/// How long the padded rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Every row has exactly this many tokens (like the TF Hub preprocessor's `seq_length`).
    Fixed(usize),
    /// Rows are as long as the longest input in the batch: no work is spent on padding for a
    /// single request, and less for batches of short texts.
    Longest,
}

/// `input_word_ids`, `input_mask` and `input_type_ids`, row-major `[batch_size, seq_len]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBatch {
    pub input_word_ids: Vec<i64>,
    pub input_mask: Vec<i64>,
    pub input_type_ids: Vec<i64>,
    pub batch_size: usize,
    pub seq_len: usize,
}

impl TokenBatch {
    /// Pads (right, with `pad_id`, mask 0, type 0) every encoding to one length. Encodings longer
    /// than a fixed length cannot occur: the tokenizer has already truncated them to the plan.
    pub fn pad<'a, I>(encodings: I, padding: Padding, pad_id: u32) -> Self
    where
        I: IntoIterator<Item = &'a Encoded>,
        I::IntoIter: Clone,
    {
        let encodings = encodings.into_iter();
        let longest = encodings.clone().map(Encoded::len).max().unwrap_or(0);
        let seq_len = match padding {
            Padding::Fixed(n) => n.max(longest),
            Padding::Longest => longest.max(1),
        };
        let batch_size = encodings.clone().count();
        let cells = batch_size * seq_len;
        let mut batch = Self {
            input_word_ids: Vec::with_capacity(cells),
            input_mask: Vec::with_capacity(cells),
            input_type_ids: Vec::with_capacity(cells),
            batch_size,
            seq_len,
        };
        for enc in encodings {
            let pad = seq_len - enc.len();
            batch.input_word_ids.extend(enc.ids.iter().map(|&i| i64::from(i)));
            batch.input_word_ids.extend(std::iter::repeat_n(i64::from(pad_id), pad));
            batch.input_mask.extend(std::iter::repeat_n(1, enc.len()));
            batch.input_mask.extend(std::iter::repeat_n(0, pad));
            batch.input_type_ids.extend(enc.type_ids.iter().map(|&i| i64::from(i)));
            batch.input_type_ids.extend(std::iter::repeat_n(0, pad));
        }
        batch
    }

    /// Row `i` of each array.
    pub fn row(&self, i: usize) -> (&[i64], &[i64], &[i64]) {
        let r = i * self.seq_len..(i + 1) * self.seq_len;
        (&self.input_word_ids[r.clone()], &self.input_mask[r.clone()], &self.input_type_ids[r])
    }

    /// Number of real (unpadded) tokens in row `i`.
    pub fn real_len(&self, i: usize) -> usize {
        self.row(i).1.iter().filter(|&&m| m != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ids: &[u32], types: &[u32]) -> Encoded {
        Encoded { ids: ids.to_vec(), type_ids: types.to_vec() }
    }

    #[test]
    fn pads_fixed_rows_on_the_right() {
        let b = TokenBatch::pad(&[enc(&[101, 7, 102], &[0, 0, 0])], Padding::Fixed(5), 0);
        assert_eq!(b.input_word_ids, vec![101, 7, 102, 0, 0]);
        assert_eq!(b.input_mask, vec![1, 1, 1, 0, 0]);
        assert_eq!(b.input_type_ids, vec![0, 0, 0, 0, 0]);
        assert_eq!((b.batch_size, b.seq_len), (1, 5));
    }

    #[test]
    fn longest_padding_uses_the_longest_row() {
        let b = TokenBatch::pad(
            &[enc(&[101, 102], &[0, 0]), enc(&[101, 5, 102, 6, 102], &[0, 0, 0, 1, 1])],
            Padding::Longest,
            9,
        );
        assert_eq!(b.seq_len, 5);
        assert_eq!(b.row(0).0, &[101, 102, 9, 9, 9]);
        assert_eq!(b.row(1).2, &[0, 0, 0, 1, 1]);
        assert_eq!(b.real_len(0), 2);
    }
}
