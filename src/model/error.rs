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
    #[error("unsupported model_type `{found}` in {path}; supported: {supported}")]
    UnsupportedModel { found: String, path: PathBuf, supported: String },
}
