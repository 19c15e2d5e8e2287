//! A right-padded token batch as row indices into the embedding tables, the form every forward
//! pass (inference and training) reads, and the one check that the batch fits those tables.

use crate::model::ModelConfig;
use crate::tokenize::TokenBatch;

/// Why a [`TokenBatch`] cannot be looked up in a model's tables. A batch from
/// [`TokenBatch::pad`] with the checkpoint's own tokenizer always fits (the loader checks the
/// tokenizer against `vocab_size` and the sequence length against the position table); this
/// names the problem when a caller builds the batch by hand, where clamping the id would score
/// another token without a word.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenBatchError {
    #[error("the token batch's {field} holds {len} values, but batch_size × seq_len is {batch_size} × {seq_len}")]
    Shape { field: &'static str, len: usize, batch_size: usize, seq_len: usize },
    #[error("text {text} has no real token (its input_mask is all 0); every text needs at least one")]
    NoRealToken { text: usize },
    #[error(
        "text {text} is not right-padded: its input_mask marks token {token} real after a padding \
         token; the model reads each text's first tokens (padding goes after them, as TokenBatch::pad puts it)"
    )]
    NotRightPadded { text: usize, token: usize },
    #[error("the token batch is {seq_len} tokens long, but the model's position table allows {max}")]
    TooLong { seq_len: usize, max: usize },
    #[error("{field} holds {id} at text {text}, token {token}, outside the model's {rows} rows ({table})")]
    OutOfTable { field: &'static str, id: i64, text: usize, token: usize, rows: usize, table: &'static str },
}

impl TokenBatchError {
    /// Checks that `batch`'s three fields are `batch_size × seq_len` long and that each text's
    /// mask is a run of real tokens then padding: the forward passes take a text's length from
    /// its mask and read its first tokens. Returns those lengths, one per text. (A text of no
    /// tokens passes here: the BiLSTM scores a text with no words, as Keras' masked LSTM does;
    /// [`Rows::new`] refuses one.)
    pub fn check_layout(batch: &TokenBatch) -> Result<Vec<usize>, Self> {
        let (batch_size, seq_len) = (batch.batch_size, batch.seq_len);
        let fields = [
            ("input_word_ids", batch.input_word_ids.len()),
            ("input_mask", batch.input_mask.len()),
            ("input_type_ids", batch.input_type_ids.len()),
        ];
        if let Some((field, len)) = fields.into_iter().find(|&(_, len)| Some(len) != batch_size.checked_mul(seq_len)) {
            return Err(Self::Shape { field, len, batch_size, seq_len });
        }
        let mut lens = Vec::with_capacity(batch_size);
        for (text, mask) in batch.input_mask.chunks(seq_len.max(1)).enumerate() {
            let real = mask.iter().take_while(|&&m| m != 0).count();
            if let Some(after) = mask[real..].iter().position(|&m| m != 0) {
                return Err(Self::NotRightPadded { text, token: real + after });
            }
            lens.push(real);
        }
        Ok(lens)
    }

    /// This error with its text renumbered from its place in the batch to `texts[place]` (the
    /// batch's texts' places in the caller's list, which batching sorts by length).
    pub fn of_texts(self, texts: &[usize]) -> Self {
        let place = |text: usize| texts.get(text).copied().unwrap_or(text);
        match self {
            Self::NoRealToken { text } => Self::NoRealToken { text: place(text) },
            Self::NotRightPadded { text, token } => Self::NotRightPadded { text: place(text), token },
            Self::OutOfTable { field, id, text, token, rows, table } => {
                Self::OutOfTable { field, id, text: place(text), token, rows, table }
            }
            other @ (Self::Shape { .. } | Self::TooLong { .. }) => other,
        }
    }

    /// The batch's word ids as rows of a vocabulary of `vocab_size` rows.
    pub fn word_rows(batch: &TokenBatch, vocab_size: usize) -> Result<Vec<usize>, Self> {
        Self::rows_of(&batch.input_word_ids, batch.seq_len.max(1), vocab_size, "input_word_ids", "vocab_size")
    }

    /// `values` (one of the batch's id fields, `seq_len` per text) as row indices into a table
    /// of `rows` rows.
    pub fn rows_of(values: &[i64], seq_len: usize, rows: usize, field: &'static str, table: &'static str) -> Result<Vec<usize>, Self> {
        values
            .iter()
            .enumerate()
            .map(|(i, &id)| match usize::try_from(id) {
                Ok(row) if row < rows => Ok(row),
                _ => Err(Self::OutOfTable { field, id, text: i / seq_len.max(1), token: i % seq_len.max(1), rows, table }),
            })
            .collect()
    }
}

/// One batch's table rows, `[B·T]` each.
pub struct Rows {
    pub batch: usize,
    pub t: usize,
    pub ids: Vec<usize>,
    pub positions: Vec<usize>,
    pub types: Vec<usize>,
    /// Real tokens per text.
    pub lens: Vec<usize>,
}

impl Rows {
    /// `batch`'s rows in `cfg`'s tables, or which field, text and token do not fit them.
    pub fn new(batch: &TokenBatch, cfg: &ModelConfig) -> Result<Self, TokenBatchError> {
        let lens = TokenBatchError::check_layout(batch)?;
        let max = cfg.max_sequence_length();
        if batch.seq_len > max {
            return Err(TokenBatchError::TooLong { seq_len: batch.seq_len, max });
        }
        let (b, t) = (batch.batch_size, batch.seq_len.max(1));
        let ids = TokenBatchError::word_rows(batch, cfg.vocab_size)?;
        // DistilBERT has no token-type table (type_vocab_size 0) and reads no type ids, as
        // transformers' `DistilBertModel` takes none.
        let types = match cfg.type_vocab_size {
            0 => vec![0; batch.input_type_ids.len()],
            n => TokenBatchError::rows_of(&batch.input_type_ids, t, n, "input_type_ids", "type_vocab_size")?,
        };
        // Every BERT-family tokenizer adds at least `[CLS]`; a text without it has nothing to pool.
        if let Some(text) = (0..b).find(|&i| lens.get(i).is_none_or(|&n| n == 0)) {
            return Err(TokenBatchError::NoRealToken { text });
        }
        let mut positions = Vec::with_capacity(b * t);
        for row in batch.input_word_ids.chunks(t) {
            cfg.position_ids(row, &mut positions);
        }
        Ok(Self { batch: b, t, ids, positions, types, lens })
    }

    /// `B·T`.
    pub fn rows(&self) -> usize {
        self.batch * self.t
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// vocab_size 10, type_vocab_size 2, 6 positions.
    fn config() -> ModelConfig {
        let text = r#"{"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
            "intermediate_size": 8, "max_position_embeddings": 6}"#;
        ModelConfig::from_json(text, Path::new("config.json")).unwrap()
    }

    /// Two texts of three tokens, the second padded after two.
    fn batch(ids: [i64; 6]) -> TokenBatch {
        TokenBatch {
            input_word_ids: ids.to_vec(),
            input_mask: vec![1, 1, 1, 1, 1, 0],
            input_type_ids: vec![0, 0, 1, 0, 0, 0],
            batch_size: 2,
            seq_len: 3,
        }
    }

    #[test]
    fn a_fitting_batch_becomes_its_table_rows() {
        let rows = Rows::new(&batch([2, 5, 3, 2, 9, 0]), &config()).unwrap();
        assert_eq!(rows.ids, [2, 5, 3, 2, 9, 0]);
        assert_eq!(rows.types, [0, 0, 1, 0, 0, 0]);
        assert_eq!(rows.positions, [0, 1, 2, 0, 1, 2]);
        assert_eq!((rows.lens.as_slice(), rows.rows()), (&[3, 2][..], 6));
    }

    #[test]
    fn an_id_past_the_vocabulary_is_refused_not_clamped() {
        let err = Rows::new(&batch([2, 5, 3, 2, 10, 0]), &config()).err();
        let want = TokenBatchError::OutOfTable { field: "input_word_ids", id: 10, text: 1, token: 1, rows: 10, table: "vocab_size" };
        assert_eq!(err, Some(want));
        let err = Rows::new(&batch([-1, 5, 3, 2, 9, 0]), &config()).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("input_word_ids holds -1 at text 0, token 0, outside the model's 10 rows (vocab_size)"));
    }

    #[test]
    fn a_token_type_past_its_table_is_refused() {
        let mut b = batch([2, 5, 3, 2, 9, 0]);
        b.input_type_ids[2] = 2;
        let err = Rows::new(&b, &config()).err();
        let want = TokenBatchError::OutOfTable { field: "input_type_ids", id: 2, text: 0, token: 2, rows: 2, table: "type_vocab_size" };
        assert_eq!(err, Some(want));
    }

    #[test]
    fn an_error_is_renumbered_to_the_callers_texts() {
        let out = |text| TokenBatchError::OutOfTable { field: "input_word_ids", id: 10, text, token: 2, rows: 10, table: "vocab_size" };
        assert_eq!(out(1).of_texts(&[7, 3]), out(3));
        assert_eq!(TokenBatchError::NoRealToken { text: 0 }.of_texts(&[4]), TokenBatchError::NoRealToken { text: 4 });
        let padded = |text| TokenBatchError::NotRightPadded { text, token: 1 };
        assert_eq!(padded(1).of_texts(&[0, 9]), padded(9));
        let long = TokenBatchError::TooLong { seq_len: 7, max: 6 };
        assert_eq!(long.clone().of_texts(&[1, 0]), long);
    }

    #[test]
    fn fields_of_the_wrong_length_are_named() {
        let mut b = batch([2, 5, 3, 2, 9, 0]);
        b.input_mask.pop();
        let err = Rows::new(&b, &config()).err();
        assert_eq!(err, Some(TokenBatchError::Shape { field: "input_mask", len: 5, batch_size: 2, seq_len: 3 }));
    }

    #[test]
    fn a_mask_that_is_not_real_tokens_then_padding_is_refused() {
        let mut b = batch([2, 5, 3, 2, 9, 0]);
        b.input_mask = vec![1, 1, 1, 0, 1, 1];
        assert_eq!(Rows::new(&b, &config()).err(), Some(TokenBatchError::NotRightPadded { text: 1, token: 1 }));
        b.input_mask = vec![1, 0, 0, 0, 0, 0];
        assert_eq!(Rows::new(&b, &config()).err(), Some(TokenBatchError::NoRealToken { text: 1 }));
    }

    #[test]
    fn a_batch_longer_than_the_position_table_or_without_tokens_is_refused() {
        let long = TokenBatch { input_word_ids: vec![1; 7], input_mask: vec![1; 7], input_type_ids: vec![0; 7], batch_size: 1, seq_len: 7 };
        assert_eq!(Rows::new(&long, &config()).err(), Some(TokenBatchError::TooLong { seq_len: 7, max: 6 }));
        let empty = TokenBatch { input_word_ids: vec![], input_mask: vec![], input_type_ids: vec![], batch_size: 2, seq_len: 0 };
        assert_eq!(Rows::new(&empty, &config()).err(), Some(TokenBatchError::NoRealToken { text: 0 }));
        let none = TokenBatch { batch_size: 0, ..empty };
        assert!(Rows::new(&none, &config()).is_ok_and(|r| r.rows() == 0));
    }
}
