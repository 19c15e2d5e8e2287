//! Errors from loading a tokenizer or encoding text.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("no tokenizer in {dir}: expected tokenizer.json or vocab.txt")]
    NoTokenizerFiles { dir: PathBuf },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load tokenizer from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("invalid {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("sequence length {seq_len} leaves no room for text after {specials} special tokens")]
    SeqLenTooShort { seq_len: usize, specials: usize },
    #[error("truncation `{0}` needs a sentence pair (pass a second text)")]
    NeedsPair(&'static str),
    #[error("head_tail truncation applies to single texts, not sentence pairs; use longest_first")]
    HeadTailPair,
    #[error("text {index}: {source}")]
    AtText {
        index: usize,
        #[source]
        source: Box<TokenizeError>,
    },
    #[error("{texts} texts but {pairs} second texts: a sentence pair needs one of each")]
    PairCount { texts: usize, pairs: usize },
    #[error("the BiLSTM baseline reads single texts; sentence pairs need a BERT-family model")]
    PairsNeedSubwords,
    #[error("cannot tokenize text: {0}")]
    Encode(String),
    #[error("unknown truncation `{0}`: expected longest_first, only_first, only_second or head_tail")]
    UnknownTruncation(String),
    #[error("unknown truncation side `{0}`: expected right (keep the head) or left (keep the tail)")]
    UnknownSide(String),
}
