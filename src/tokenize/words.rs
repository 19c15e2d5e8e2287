//! Word-level tokenization for the GloVe + BiLSTM baseline, after tfds' `Tokenizer` +
//! `TokenTextEncoder`: lowercase, split on (and drop) non-alphanumeric characters (`\W+`), id 0 is
//! padding, words are 1..=n, and n + 1 is the out-of-vocabulary id.

use std::collections::HashMap;
use std::path::Path;

use super::{Encoded, TokenizeError};

/// Lowercased alphanumeric runs of `text` (`_` counts as a word character, as in `\w`).
pub fn word_tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordVocab {
    /// Index `i` holds the word with id `i + 1`.
    words: Vec<String>,
    index: HashMap<String, u32>,
}

impl WordVocab {
    pub const PAD_ID: u32 = 0;

    /// Words seen at least `min_count` times in `texts`, most frequent first (ties alphabetical,
    /// so the ids do not depend on hash order), at most `max_words` of them.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>, min_count: usize, max_words: Option<usize>) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in texts {
            for w in word_tokens(t) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut words: Vec<(String, usize)> = counts.into_iter().filter(|(_, c)| *c >= min_count.max(1)).collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(max) = max_words {
            words.truncate(max);
        }
        Self::from_words(words.into_iter().map(|(w, _)| w).collect())
    }

    pub fn from_words(words: Vec<String>) -> Self {
        let index = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32 + 1)).collect();
        Self { words, index }
    }

    /// Words in the vocabulary (without padding and OOV).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Rows of the embedding matrix: padding + words + OOV.
    pub fn vocab_size(&self) -> usize {
        self.words.len() + 2
    }

    pub fn oov_id(&self) -> u32 {
        self.words.len() as u32 + 1
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    pub fn id(&self, word: &str) -> u32 {
        self.index.get(word).copied().unwrap_or(self.oov_id())
    }

    /// Ids of the first `max_len` words of `text` (keeps the head; the batch pads after them).
    pub fn encode(&self, text: &str, max_len: usize) -> Encoded {
        let ids: Vec<u32> = word_tokens(text).take(max_len).map(|w| self.id(&w)).collect();
        let type_ids = vec![0; ids.len()];
        Encoded { ids, type_ids }
    }

    /// One word per line, in id order.
    pub fn save(&self, path: &Path) -> Result<(), TokenizeError> {
        let mut text = self.words.join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| TokenizeError::Io { path: path.to_path_buf(), source })
    }

    pub fn load(path: &Path) -> Result<Self, TokenizeError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenizeError::Io { path: path.to_path_buf(), source })?;
        Ok(Self::from_words(text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()))
    }
}

/// The longest text of `texts` in words (the chapter reports it before choosing 150).
pub fn longest_in_words<'a>(texts: impl IntoIterator<Item = &'a str>) -> usize {
    texts.into_iter().map(|t| word_tokens(t).count()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_tfds_and_lowercases() {
        let w: Vec<String> = word_tokens("Hello, World! It's 10/10 <br />caf\u{e9}_x").collect();
        assert_eq!(w, ["hello", "world", "it", "s", "10", "10", "br", "caf\u{e9}_x"]);
    }

    #[test]
    fn vocab_orders_by_frequency_and_maps_unknown_words_to_oov() {
        let v = WordVocab::build(["b a a", "c b a", "d"], 1, None);
        assert_eq!(v.words(), ["a", "b", "c", "d"]);
        assert_eq!(v.vocab_size(), 6);
        let e = v.encode("A b zzz", 10);
        assert_eq!(e.ids, [1, 2, 5]);
        assert_eq!(v.encode("a a a a", 2).ids, [1, 1]);
        let v2 = WordVocab::build(["b a a", "c b a", "d"], 2, None);
        assert_eq!(v2.words(), ["a", "b"]);
        assert_eq!(longest_in_words(["one two", "a b c d"]), 4);
    }

    #[test]
    fn save_and_load_round_trip() {
        let v = WordVocab::build(["x y y"], 1, None);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("words.txt");
        v.save(&p).unwrap();
        assert_eq!(WordVocab::load(&p).unwrap(), v);
    }
}
