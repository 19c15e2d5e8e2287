//! Errors from writing or reading an exported model folder.

use std::path::PathBuf;

use crate::model::{LoadError, PoolingError};
use crate::tokenize::TokenizeError;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path} not found: is {dir} a folder written by `bertkit train`?")]
    NotAModel { path: PathBuf, dir: PathBuf },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    /// `--threshold` for a model that decides without one (a softmax).
    #[error("--threshold with {0}: {1}")]
    Threshold(PathBuf, String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    #[error(transparent)]
    Pooling(#[from] PoolingError),
}
