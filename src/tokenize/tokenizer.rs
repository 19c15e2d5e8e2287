//! Loads a checkpoint's tokenizer (`tokenizer.json`, or a bare WordPiece `vocab.txt`) and encodes
//! single texts and sentence pairs under an [`EncodePlan`].

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    AddedToken, EncodeInput, Encoding, PostProcessor, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use super::truncation::head_tail_split;
use super::{EncodePlan, TokenizeError, Truncation, TruncationSide};

/// One encoded input before padding: `[CLS] a [SEP] (b [SEP])`, already truncated to the plan's
/// sequence length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A checkpoint's tokenizer configured for one [`EncodePlan`].
///
/// Whatever padding or truncation the checkpoint's `tokenizer.json` carries is switched off: the
/// plan decides, so a file saved with `"padding": {"Fixed": 128}` cannot leak pads into the
/// unpadded encodings that dynamic-length batching relies on.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    plan: EncodePlan,
    pad_id: u32,
    /// Special tokens the post-processor adds to a single text, e.g. 2 for `[CLS] a [SEP]`.
    specials_single: usize,
    source: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("source", &self.source)
            .field("plan", &self.plan)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json`, or builds a BERT WordPiece tokenizer from `dir/vocab.txt`
    /// (+ `do_lower_case` etc. from `dir/tokenizer_config.json`).
    pub fn from_dir(dir: &Path, plan: EncodePlan) -> Result<Self, TokenizeError> {
        let json = dir.join("tokenizer.json");
        let vocab = dir.join("vocab.txt");
        let (inner, source) = if json.is_file() {
            let tok = Tokenizer::from_file(&json)
                .map_err(|e| TokenizeError::Load { path: json.clone(), reason: e.to_string() })?;
            (tok, json)
        } else if vocab.is_file() {
            (wordpiece_from_vocab(dir, &vocab)?, vocab)
        } else {
            return Err(TokenizeError::NoTokenizerFiles { dir: dir.to_path_buf() });
        };
        Self::from_tokenizer(inner, plan, source)
    }

    /// Wraps an already built tokenizer (its padding and truncation are replaced by `plan`).
    pub fn from_tokenizer(
        mut inner: Tokenizer,
        plan: EncodePlan,
        source: PathBuf,
    ) -> Result<Self, TokenizeError> {
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .or_else(|| inner.token_to_id("<pad>"))
            .unwrap_or(0);
        let specials_single = inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
        if plan.seq_len <= specials_single {
            return Err(TokenizeError::SeqLenTooShort {
                seq_len: plan.seq_len,
                specials: specials_single,
            });
        }
        let truncation = match plan.truncation {
            Truncation::HeadTail => None,
            t => Some(TruncationParams {
                max_length: plan.seq_len,
                strategy: match t {
                    Truncation::OnlyFirst => TruncationStrategy::OnlyFirst,
                    Truncation::OnlySecond => TruncationStrategy::OnlySecond,
                    _ => TruncationStrategy::LongestFirst,
                },
                stride: 0,
                direction: match plan.side {
                    TruncationSide::Right => TruncationDirection::Right,
                    TruncationSide::Left => TruncationDirection::Left,
                },
            }),
        };
        inner.with_padding(None);
        inner
            .with_truncation(truncation)
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        Ok(Self { inner, plan, pad_id, specials_single, source })
    }

    pub fn plan(&self) -> EncodePlan {
        self.plan
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The file the tokenizer came from (`tokenizer.json` or `vocab.txt`).
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// One past the largest id the tokenizer can produce (added tokens included): the rows an
    /// embedding table needs. Not [`Self::vocab_size`], which counts entries and misses gaps.
    pub fn id_count(&self) -> usize {
        self.inner.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Encodes one text, or a sentence pair, with special tokens and truncation, no padding.
    pub fn encode(&self, text: &str, pair: Option<&str>) -> Result<Encoded, TokenizeError> {
        match (self.plan.truncation, pair) {
            (Truncation::OnlySecond, None) => return Err(TokenizeError::NeedsPair("only_second")),
            (Truncation::HeadTail, Some(_)) => return Err(TokenizeError::HeadTailPair),
            _ => {}
        }
        let input: EncodeInput = match pair {
            Some(b) => (text, b).into(),
            None => text.into(),
        };
        let enc = self
            .inner
            .encode_fast(input, true)
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        if self.plan.truncation == Truncation::HeadTail && enc.len() > self.plan.seq_len {
            return Ok(self.cut_middle(&enc));
        }
        Ok(Encoded { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
    }

    /// Encodes many single texts on all cores; an error names the text's index.
    pub fn encode_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Encoded>, TokenizeError> {
        self.encode_all_pairs(texts, None::<&[&str]>)
    }

    /// Encodes many texts, each with its second text when `pairs` is given (same length as
    /// `texts`), on all cores; an error names the text's index.
    pub fn encode_all_pairs<S: AsRef<str> + Sync, P: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        pairs: Option<&[P]>,
    ) -> Result<Vec<Encoded>, TokenizeError> {
        if let Some(p) = pairs
            && p.len() != texts.len()
        {
            return Err(TokenizeError::PairCount { texts: texts.len(), pairs: p.len() });
        }
        texts
            .par_iter()
            .enumerate()
            .map(|(index, t)| {
                let pair = pairs.map(|p| p[index].as_ref());
                self.encode(t.as_ref(), pair)
                    .map_err(|source| TokenizeError::AtText { index, source: Box::new(source) })
            })
            .collect()
    }

    /// Head+tail truncation of a single text: the special tokens at both ends stay, the content
    /// between them keeps its first quarter and last three quarters.
    fn cut_middle(&self, enc: &Encoding) -> Encoded {
        let special = enc.get_special_tokens_mask();
        let front = special.iter().take_while(|&&s| s == 1).count();
        let back = special.iter().rev().take_while(|&&s| s == 1).count();
        let n = enc.len();
        let content = n.saturating_sub(front + back);
        let budget = self.plan.seq_len.saturating_sub(self.specials_single.max(front + back));
        let (head, tail) = head_tail_split(content, budget);
        let keep = |v: &[u32]| -> Vec<u32> {
            let mut out = Vec::with_capacity(self.plan.seq_len);
            out.extend_from_slice(&v[..front + head]);
            out.extend_from_slice(&v[n - back - tail..]);
            out
        };
        Encoded { ids: keep(enc.get_ids()), type_ids: keep(enc.get_type_ids()) }
    }
}

/// The subset of `tokenizer_config.json` a vocab-only BERT folder needs.
#[derive(Deserialize)]
struct BertTokenizerConfig {
    #[serde(default = "yes")]
    do_lower_case: bool,
    #[serde(default)]
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    tokenize_chinese_chars: bool,
    #[serde(default = "unk")]
    unk_token: String,
    #[serde(default = "sep")]
    sep_token: String,
    #[serde(default = "cls")]
    cls_token: String,
    #[serde(default = "pad")]
    pad_token: String,
    #[serde(default = "mask")]
    mask_token: String,
}

fn yes() -> bool {
    true
}
fn unk() -> String {
    "[UNK]".into()
}
fn sep() -> String {
    "[SEP]".into()
}
fn cls() -> String {
    "[CLS]".into()
}
fn pad() -> String {
    "[PAD]".into()
}
fn mask() -> String {
    "[MASK]".into()
}

/// Builds what transformers' `BertTokenizerFast` converts a `vocab.txt` into: BertNormalizer,
/// BertPreTokenizer, WordPiece (`##`, 100 chars per word), `[CLS] a [SEP] b [SEP]`.
fn wordpiece_from_vocab(dir: &Path, vocab: &Path) -> Result<Tokenizer, TokenizeError> {
    let cfg_path = dir.join("tokenizer_config.json");
    let cfg: BertTokenizerConfig = if cfg_path.is_file() {
        let text = fs::read_to_string(&cfg_path)
            .map_err(|source| TokenizeError::Io { path: cfg_path.clone(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| TokenizeError::BadConfig { path: cfg_path.clone(), reason: e.to_string() })?
    } else {
        serde_json::from_str("{}").map_err(|e| TokenizeError::BadConfig {
            path: cfg_path.clone(),
            reason: e.to_string(),
        })?
    };
    let load_err = |reason: String| TokenizeError::Load { path: vocab.to_path_buf(), reason };
    let vocab_str = vocab.to_str().ok_or_else(|| load_err("path is not UTF-8".into()))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token(cfg.unk_token.clone())
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    let id = |tok: &str| {
        model_token_id(&model, tok).ok_or_else(|| load_err(format!("`{tok}` is not in the vocabulary")))
    };
    let (sep_id, cls_id) = (id(&cfg.sep_token)?, id(&cfg.cls_token)?);
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(
        true,
        cfg.tokenize_chinese_chars,
        cfg.strip_accents,
        cfg.do_lower_case,
    )))
    .map_err(|e| load_err(e.to_string()))?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new(
        (cfg.sep_token.clone(), sep_id),
        (cfg.cls_token.clone(), cls_id),
    )));
    tok.with_decoder(Some(WordPieceDecoder::default()));
    // Like BertTokenizerFast: the special tokens are matched whole, before normalisation.
    let specials: Vec<AddedToken> =
        [&cfg.pad_token, &cfg.unk_token, &cfg.cls_token, &cfg.sep_token, &cfg.mask_token]
            .into_iter()
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
    tok.add_special_tokens(specials)
        .map_err(|e| load_err(e.to_string()))?;
    Ok(tok)
}

fn model_token_id(model: &WordPiece, token: &str) -> Option<u32> {
    use tokenizers::Model;
    model.token_to_id(token)
}
