//! Text → ids for whichever model a folder holds: a checkpoint's subword tokenizer (BERT family)
//! or the BiLSTM baseline's word vocabulary.

use std::sync::Arc;

use rayon::prelude::*;

use super::{Encoded, TextTokenizer, TokenizeError, WordVocab, word_tokens};

// One value per loaded model, moved rarely: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum TextEncoder {
    Subword(TextTokenizer),
    /// Lowercased words; texts keep their first `max_len` words and are post-padded with id 0.
    Words { vocab: Arc<WordVocab>, max_len: usize },
}

impl TextEncoder {
    /// Encodes one text (no pair), truncated to the model's length.
    pub fn encode(&self, text: &str) -> Result<Encoded, TokenizeError> {
        match self {
            Self::Subword(t) => t.encode(text, None),
            Self::Words { vocab, max_len } => Ok(vocab.encode(text, *max_len)),
        }
    }

    /// Encodes many texts on all cores; an error names the text's index.
    pub fn encode_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Encoded>, TokenizeError> {
        match self {
            Self::Subword(t) => t.encode_all(texts),
            Self::Words { vocab, max_len } => Ok(texts.par_iter().map(|t| vocab.encode(t.as_ref(), *max_len)).collect()),
        }
    }

    /// Like [`encode_all`](Self::encode_all), with each text's second text when `pairs` is
    /// given (BERT-family tokenizers only).
    pub fn encode_all_pairs<S: AsRef<str> + Sync, P: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        pairs: Option<&[P]>,
    ) -> Result<Vec<Encoded>, TokenizeError> {
        match (self, pairs) {
            (Self::Subword(t), _) => t.encode_all_pairs(texts, pairs),
            (Self::Words { .. }, None) => self.encode_all(texts),
            (Self::Words { .. }, Some(_)) => Err(TokenizeError::PairsNeedSubwords),
        }
    }

    pub fn pad_id(&self) -> u32 {
        match self {
            Self::Subword(t) => t.pad_id(),
            Self::Words { .. } => WordVocab::PAD_ID,
        }
    }

    /// The most tokens a text keeps.
    pub fn max_len(&self) -> usize {
        match self {
            Self::Subword(t) => t.plan().seq_len,
            Self::Words { max_len, .. } => *max_len,
        }
    }

    /// The subword tokenizer, for callers that need pairs or the raw `tokenizers` object.
    pub fn subword(&self) -> Option<&TextTokenizer> {
        match self {
            Self::Subword(t) => Some(t),
            Self::Words { .. } => None,
        }
    }
}

/// Counts a text's tokens before truncation (for `--on-long-text reject`).
#[derive(Clone)]
pub enum TokenCounter {
    /// The subword tokenizer with truncation and padding off (special tokens included).
    Subword(Box<tokenizers::Tokenizer>),
    Words,
}

impl TokenCounter {
    pub fn for_encoder(encoder: &TextEncoder) -> Self {
        match encoder {
            TextEncoder::Subword(t) => {
                let mut inner = t.inner().clone();
                inner.with_padding(None);
                // Clearing truncation cannot fail (only setting a too-short one can).
                let _ = inner.with_truncation(None);
                Self::Subword(Box::new(inner))
            }
            TextEncoder::Words { .. } => Self::Words,
        }
    }

    /// Tokens of `text` (with its second text, for a pair), special tokens included.
    pub fn count(&self, text: &str, pair: Option<&str>) -> Result<usize, TokenizeError> {
        match (self, pair) {
            (Self::Subword(t), None) => Ok(t.encode_fast(text, true).map_err(|e| TokenizeError::Encode(e.to_string()))?.len()),
            (Self::Subword(t), Some(p)) => {
                Ok(t.encode_fast((text, p), true).map_err(|e| TokenizeError::Encode(e.to_string()))?.len())
            }
            (Self::Words, None) => Ok(word_tokens(text).count()),
            (Self::Words, Some(_)) => Err(TokenizeError::PairsNeedSubwords),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_the_head_and_pad_with_zero() {
        let vocab = Arc::new(WordVocab::build(["good movie", "bad movie"], 1, None));
        let enc = TextEncoder::Words { vocab, max_len: 2 };
        assert_eq!(enc.pad_id(), 0);
        assert_eq!(enc.encode("Good, good MOVIE!").unwrap().ids.len(), 2);
        assert_eq!(TokenCounter::for_encoder(&enc).count("Good, good MOVIE!", None).unwrap(), 3);
        assert_eq!(enc.encode_all(&["bad", "zzz"]).unwrap()[1].ids, [4]);
    }
}
