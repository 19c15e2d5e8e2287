//! How a text (or a sentence pair) longer than the sequence length is cut: the validated plan
//! every encode call follows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TokenizeError;

/// Which tokens to drop when an input is longer than `seq_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// Drop one token at a time from whichever segment is longer (transformers' default).
    #[default]
    LongestFirst,
    /// Only cut the first segment of a pair (or the only segment).
    OnlyFirst,
    /// Only cut the second segment of a pair.
    OnlySecond,
    /// Keep the first quarter and the last three quarters of the token budget of a single long
    /// text, dropping the middle: Sun et al. (2019) "How to Fine-Tune BERT for Text
    /// Classification" found head+tail best on IMDB (128 head + 382 tail tokens of 510).
    HeadTail,
}

impl Truncation {
    pub const ALL: [&'static str; 4] = ["longest_first", "only_first", "only_second", "head_tail"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongestFirst => "longest_first",
            Self::OnlyFirst => "only_first",
            Self::OnlySecond => "only_second",
            Self::HeadTail => "head_tail",
        }
    }
}

impl FromStr for Truncation {
    type Err = TokenizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "longest_first" => Ok(Self::LongestFirst),
            "only_first" => Ok(Self::OnlyFirst),
            "only_second" => Ok(Self::OnlySecond),
            "head_tail" | "head+tail" => Ok(Self::HeadTail),
            _ => Err(TokenizeError::UnknownTruncation(s.to_string())),
        }
    }
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of a segment loses tokens for the strategies that cut one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationSide {
    /// Cut the end: keep the head of the text (transformers' default).
    #[default]
    Right,
    /// Cut the start: keep the tail of the text.
    Left,
}

impl FromStr for TruncationSide {
    type Err = TokenizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "right" | "head" => Ok(Self::Right),
            "left" | "tail" => Ok(Self::Left),
            _ => Err(TokenizeError::UnknownSide(s.to_string())),
        }
    }
}

impl fmt::Display for TruncationSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Right => "right",
            Self::Left => "left",
        })
    }
}

/// The validated preprocessing settings: fixed sequence length and truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodePlan {
    /// Total tokens including special tokens (`[CLS]`, `[SEP]`).
    pub seq_len: usize,
    pub truncation: Truncation,
    #[serde(default)]
    pub side: TruncationSide,
}

impl Default for EncodePlan {
    fn default() -> Self {
        Self { seq_len: 128, truncation: Truncation::LongestFirst, side: TruncationSide::Right }
    }
}

impl EncodePlan {
    pub fn new(seq_len: usize, truncation: Truncation) -> Self {
        Self { seq_len, truncation, side: TruncationSide::Right }
    }
}

/// Cuts the middle out of `n` content tokens so that `budget` remain: returns how many to keep
/// from the head and from the tail.
pub(crate) fn head_tail_split(n: usize, budget: usize) -> (usize, usize) {
    if n <= budget {
        return (n, 0);
    }
    let head = budget / 4;
    (head, budget - head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_strategy_name() {
        for name in Truncation::ALL {
            assert_eq!(name.parse::<Truncation>().unwrap().as_str(), name);
        }
        assert!("middle".parse::<Truncation>().is_err());
        assert_eq!("tail".parse::<TruncationSide>().unwrap(), TruncationSide::Left);
    }

    #[test]
    fn head_tail_keeps_a_quarter_head() {
        assert_eq!(head_tail_split(10, 126), (10, 0));
        assert_eq!(head_tail_split(500, 126), (31, 95));
        assert_eq!(head_tail_split(7, 6), (1, 5));
    }
}
