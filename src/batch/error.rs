//! Errors that stop a batch job (a row that cannot be scored is not one: it is reported and the
//! job goes on).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}: unknown {1} format; use .jsonl, .csv, .tsv or .parquet{2}")]
    UnknownFormat(PathBuf, &'static str, &'static str),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{path}: {reason}")]
    Csv { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    #[error("{0} exists; pass --overwrite to replace it")]
    OutputExists(PathBuf),
    #[error("{0} holds the parts of an unfinished job: pass --resume to continue it, or delete the folder to start over")]
    UnfinishedJob(PathBuf),
    #[error("--resume: {parts} was written by a different job ({why}); delete it to start over")]
    DifferentJob { parts: PathBuf, why: String },
    #[error("shard `{0}`: expected K/N with 0 <= K < N (K counts from 0)")]
    BadShard(String),
    #[error("{0}")]
    Model(String),
}
