//! The one loader: which reader a path needs (a folder per class, CSV/TSV, JSONL, Parquet) and
//! the options every reader takes.

use std::path::Path;

use super::{DataError, Dataset, LoadReport, folder, table};

/// Column names for table formats.
#[derive(Clone, Debug)]
pub struct Columns {
    pub text: String,
    pub label: String,
    /// The second text of each pair (sentence-pair tasks); `None`: single texts.
    pub pair: Option<String>,
    /// Multi-label data laid out as one 0/1 column per label (these names, in label order)
    /// instead of one label column.
    pub label_columns: Option<Vec<String>>,
}

impl Default for Columns {
    fn default() -> Self {
        Self { text: "text".into(), label: "label".into(), pair: None, label_columns: None }
    }
}

/// Where examples come from and how to read them, validated from the command line.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub columns: Columns,
    /// Class names in label-index order; `None` = sorted names found in the data.
    pub classes: Option<Vec<String>>,
    /// Sub-folders that are not classes (IMDB's `unsup`).
    pub ignore_folders: Vec<String>,
    /// Table rows that are malformed (wrong field count, an unknown or empty label, broken
    /// JSON) are skipped and reported with their lines instead of stopping the load.
    pub skip_bad_rows: bool,
    /// `Some(true)`: every row holds a label set; `Some(false)`: one class per row (a label list
    /// is malformed); `None`: multi-label when a row holds a list (JSONL) or the labels are laid
    /// out for it (`label_delimiter`, `label_columns`).
    pub multi_label: Option<bool>,
    /// Several labels in one field, split at this string (`"a;b"`): multi-label.
    pub label_delimiter: Option<String>,
}

impl LoadOptions {
    /// Whether the options alone make the data multi-label.
    pub(super) fn multi_label_layout(&self) -> bool {
        self.multi_label == Some(true) || self.label_delimiter.is_some() || self.columns.label_columns.is_some()
    }
}

/// Loads a dataset from a folder of class sub-folders or a `.csv`/`.tsv`/`.jsonl`/`.parquet` file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    // An empty delimiter split every label into its characters (`pos` → p, o, s).
    if opts.label_delimiter.as_deref() == Some("") {
        return Err(DataError::EmptyLabelDelimiter);
    }
    if path.is_dir() {
        if let Some(column) = &opts.columns.pair {
            return Err(DataError::PairsNeedATable { path: path.to_path_buf(), column: column.clone() });
        }
        if opts.multi_label_layout() {
            return Err(DataError::MultiLabelNeedsATable(path.to_path_buf()));
        }
        return folder::load(path, opts);
    }
    if !path.exists() {
        return Err(DataError::NotFound(path.to_path_buf()));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "csv" => table::load_delimited(path, b',', opts),
        "tsv" | "tab" => table::load_delimited(path, b'\t', opts),
        "jsonl" | "ndjson" | "json" => table::load_jsonl(path, opts),
        "parquet" | "pq" => table::load_parquet(path, opts),
        _ => Err(DataError::UnknownFormat(path.to_path_buf())),
    }
}
