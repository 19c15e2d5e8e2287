//! Errors that stop a dataset from loading at all (per-example problems go in `LoadReport`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    #[error("{0}: unknown data format; use a folder of class sub-folders, .csv, .tsv, .jsonl or .parquet")]
    UnknownFormat(PathBuf),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no class sub-folders found (expected e.g. {path}/pos/*.txt and {path}/neg/*.txt)")]
    NoClasses { path: PathBuf },
    #[error("class folder {0} holds no files")]
    EmptyClass(PathBuf),
    #[error("class `{class}` has no usable examples in {path}")]
    ClassWithoutExamples { class: String, path: PathBuf },
    #[error("{path}: column `{column}` not found; columns are: {available}")]
    MissingColumn { path: PathBuf, column: String, available: String },
    #[error("{path}, line {line}: {reason}")]
    BadRecord { path: PathBuf, line: u64, reason: String },
    #[error("{path}: no usable examples ({skipped} skipped)")]
    NoExamples { path: PathBuf, skipped: usize },
    #[error("{path}: need at least 2 classes, found {found:?}")]
    TooFewClasses { path: PathBuf, found: Vec<String> },
    #[error("{path} is a folder of class sub-folders, which holds single texts; the pair column `{column}` needs a .csv, .tsv, .jsonl or .parquet file")]
    PairsNeedATable { path: PathBuf, column: String },
    #[error("{0} is a folder of class sub-folders, one class per text; multi-label data needs a .csv, .tsv, .jsonl or .parquet file")]
    MultiLabelNeedsATable(PathBuf),
    #[error("the label delimiter is empty: give the string between a row's labels, such as `;` or `|`")]
    EmptyLabelDelimiter,
    #[error("validation fraction {0} must be in [0, 1)")]
    BadFraction(f64),
}
