//! Flags that say where labelled data is and how to read it.

use std::path::PathBuf;

use anyhow::Context;
use bertkit::data::{self, Columns, Dataset, LoadOptions};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// A folder of class sub-folders (aclImdb/train), or a .csv/.tsv/.jsonl file.
    #[arg(long, env = "BERTKIT_DATA")]
    pub data: PathBuf,
    /// Text column (CSV/TSV/JSONL).
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Label column (CSV/TSV/JSONL).
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// The second text of each example, for sentence-pair tasks (paraphrase, entailment,
    /// question–answer relevance): tokenized as `[CLS] text [SEP] pair [SEP]` (CSV/TSV/JSONL).
    #[arg(long, env = "BERTKIT_PAIR_COLUMN")]
    pub pair_column: Option<String>,
    /// Sub-folders that are not classes.
    #[arg(long, value_delimiter = ',', default_value = "unsup")]
    pub ignore_folders: Vec<String>,
    /// The classes, in label-id order (default: the sorted labels found). A row whose label is
    /// not among them is malformed.
    #[arg(long, value_delimiter = ',', env = "BERTKIT_LABELS")]
    pub labels: Option<Vec<String>>,
    /// Skip malformed table rows (wrong field count, empty or unknown label, broken JSON) and
    /// report them with their line numbers, instead of stopping at the first one.
    #[arg(long, env = "BERTKIT_SKIP_BAD_ROWS")]
    pub skip_bad_rows: bool,
}

impl DataArgs {
    /// `classes`: the model's, when evaluating one (they win over --labels).
    pub fn options(&self, classes: Option<Vec<String>>) -> LoadOptions {
        LoadOptions {
            skip_bad_rows: self.skip_bad_rows,
            columns: Columns {
                text: self.text_column.clone(),
                label: self.label_column.clone(),
                pair: self.pair_column.clone(),
            },
            classes: classes.or_else(|| self.labels.clone()),
            ignore_folders: self.ignore_folders.clone(),
        }
    }

    /// Loads the data, printing Keras-style counts and a summary of anything skipped.
    pub fn load(&self, classes: Option<Vec<String>>) -> anyhow::Result<Dataset> {
        let (ds, report) = data::load(&self.data, &self.options(classes))
            .with_context(|| format!("loading data from {}", self.data.display()))?;
        // Keras' wording for folders; a table holds rows.
        let unit = if ds.source.is_dir() { "files" } else { "rows" };
        println!("Found {} {unit} belonging to {} classes.", ds.len(), ds.num_classes());
        for line in report.summary(3) {
            eprintln!("warning: {line}");
        }
        Ok(ds)
    }
}

/// Prints `n` examples like the seed's `for text, label in ...take(1)` loop.
pub fn show_samples(ds: &Dataset, n: usize) {
    for e in ds.examples.iter().take(n) {
        let text: String = e.text.chars().take(400).collect();
        let more = if e.text.chars().count() > 400 { " ..." } else { "" };
        println!("Review: {text}{more}");
        println!("Label : {} ({})", e.label, ds.class_names[e.label]);
    }
}
