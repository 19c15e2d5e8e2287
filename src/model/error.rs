//! Errors from loading a checkpoint folder: every message names the file or tensor at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path} not found (a Hugging Face checkpoint folder needs config.json and model.safetensors)")]
    MissingFile { path: PathBuf },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("{path} is not a valid safetensors file: {reason}")]
    BadSafetensors { path: PathBuf, reason: String },
    #[error("tensor `{name}` is missing from {path}")]
    MissingTensor { name: String, path: PathBuf },
    #[error("tensor `{name}` in {path} has shape {found:?}, expected {expected:?} from config.json")]
    TensorShape { name: String, path: PathBuf, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` in {path} has dtype {dtype}; bertkit reads F32, F16 and BF16")]
    TensorDtype { name: String, path: PathBuf, dtype: String },
    #[error("cannot load the tokenizer of {dir}")]
    Tokenizer {
        dir: PathBuf,
        #[source]
        source: crate::tokenize::TokenizeError,
    },
    #[error(
        "the tokenizer {tokenizer} produces ids up to {last}, but {config} has vocab_size = {vocab_size}: \
         the checkpoint's embedding table has no row for the ids above; use the tokenizer the \
         checkpoint was trained with",
        last = ids - 1
    )]
    VocabTooLarge { tokenizer: PathBuf, ids: usize, vocab_size: usize, config: PathBuf },
    #[error("sequence length {seq_len} is longer than the {max} tokens {config} allows ({why}); use --seq-len {max} or less")]
    SeqLenTooLong { seq_len: usize, max: usize, why: String, config: PathBuf },
    #[error(
        "{path} was made from another {fp32}: its int8 weights are not this model's; \
         rerun `bertkit quantize --model DIR` or delete it (int8 then quantizes at load)"
    )]
    StaleInt8 { path: PathBuf, fp32: PathBuf },
    #[error("invalid int8 weight `{name}` in {path}")]
    BadInt8 {
        name: String,
        path: PathBuf,
        #[source]
        source: bertkit_kernels::Int8Error,
    },
    #[error(transparent)]
    Device(#[from] crate::DeviceSpecError),
    #[error("unsupported model_type `{found}` in {path}; supported: {supported}")]
    UnsupportedModel { found: String, path: PathBuf, supported: String },
}
