//! Text → `input_word_ids` / `input_mask` / `input_type_ids`, the three inputs every BERT-family
//! encoder takes (named as in the TF Hub preprocessing models), and word ids for the baseline.

mod batch;
mod error;
mod text_encoder;
mod tokenizer;
mod truncation;
mod words;

pub use batch::{Padding, TokenBatch};
pub use error::TokenizeError;
pub use text_encoder::{TextEncoder, TokenCounter};
pub use tokenizer::{Encoded, TextTokenizer};
pub use truncation::{EncodePlan, Truncation, TruncationSide};
pub use words::{WordVocab, longest_in_words, word_tokens};
