//! Flags that say where labelled data is and how to read it.

use std::path::PathBuf;

use anyhow::Context;
use bertkit::data::{self, Columns, Dataset, LoadOptions, Target};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// A folder of class sub-folders (aclImdb/train), or a .csv/.tsv/.jsonl/.parquet file.
    #[arg(long, env = "BERTKIT_DATA")]
    pub data: PathBuf,
    /// Text column (CSV/TSV/JSONL).
    #[arg(long, env = "BERTKIT_TEXT_COLUMN", default_value = "text")]
    pub text_column: String,
    /// Label column (CSV/TSV/JSONL).
    #[arg(long, env = "BERTKIT_LABEL_COLUMN", default_value = "label")]
    pub label_column: String,
    /// The second text of each example, for sentence-pair tasks (paraphrase, entailment,
    /// question–answer relevance): tokenized as `[CLS] text [SEP] pair [SEP]` (CSV/TSV/JSONL).
    #[arg(long, env = "BERTKIT_PAIR_COLUMN")]
    pub pair_column: Option<String>,
    /// Sub-folders that are not classes.
    #[arg(long, env = "BERTKIT_IGNORE_FOLDERS", value_delimiter = ',', default_value = "unsup")]
    pub ignore_folders: Vec<String>,
    /// The classes, in label-id order (default: the sorted labels found). A row whose label is
    /// not among them is malformed.
    #[arg(long, value_delimiter = ',', env = "BERTKIT_LABELS")]
    pub labels: Option<Vec<String>>,
    /// Skip malformed table rows (wrong field count, empty or unknown label, broken JSON) and
    /// report them with their line numbers, instead of stopping at the first one.
    #[arg(long, env = "BERTKIT_SKIP_BAD_ROWS")]
    pub skip_bad_rows: bool,
    /// Multi-label data (several labels per text, one sigmoid each). Implied by a JSONL label
    /// list (`"label": ["a", "b"]`), --label-delimiter and --label-columns.
    #[arg(long, env = "BERTKIT_MULTI_LABEL")]
    pub multi_label: bool,
    /// Multi-label: split the label field at this string (`action;comedy`); an empty field is
    /// a text with no labels.
    #[arg(long, env = "BERTKIT_LABEL_DELIMITER")]
    pub label_delimiter: Option<String>,
    /// Multi-label: one 0/1 column per label, named here in label order (replaces
    /// --label-column).
    #[arg(long, value_delimiter = ',', env = "BERTKIT_LABEL_COLUMNS")]
    pub label_columns: Option<Vec<String>>,
}

impl DataArgs {
    /// `model`: the classes of the model being evaluated (they win over --labels) and whether it
    /// is multi-label (the data must then be read the same way).
    pub fn options(&self, model: Option<(Vec<String>, bool)>) -> LoadOptions {
        let (classes, multi_label) = match model {
            Some((classes, multi)) => (Some(classes), Some(multi)),
            None => (self.labels.clone(), self.multi_label.then_some(true)),
        };
        LoadOptions {
            skip_bad_rows: self.skip_bad_rows,
            columns: Columns {
                text: self.text_column.clone(),
                label: self.label_column.clone(),
                pair: self.pair_column.clone(),
                label_columns: self.label_columns.clone(),
            },
            classes,
            ignore_folders: self.ignore_folders.clone(),
            multi_label,
            label_delimiter: self.label_delimiter.clone(),
        }
    }

    /// Loads the data, printing Keras-style counts and a summary of anything skipped.
    pub fn load(&self, model: Option<(Vec<String>, bool)>) -> anyhow::Result<Dataset> {
        // The model's classes win; --labels naming others was ignored without a word.
        if let (Some((classes, _)), Some(labels)) = (&model, &self.labels) {
            anyhow::ensure!(
                labels == classes,
                "--labels {} differs from the model's classes ({}): the data's labels are read as the model's; drop --labels",
                labels.join(","),
                classes.join(", ")
            );
        }
        let training = model.is_none();
        let opts = self.options(model);
        anyhow::ensure!(
            opts.multi_label != Some(false) || (self.label_delimiter.is_none() && self.label_columns.is_none()),
            "this model is single-label: --label-delimiter and --label-columns read multi-label data"
        );
        let (ds, report) = data::load(&self.data, &opts).with_context(|| format!("loading data from {}", self.data.display()))?;
        // Keras' wording for folders; a table holds rows.
        let unit = if ds.source.is_dir() { "files" } else { "rows" };
        if ds.multi_label {
            let counts: Vec<String> = ds.class_names.iter().zip(ds.counts()).map(|(c, n)| format!("{c} {n}")).collect();
            println!("Found {} {unit} with {} labels (multi-label: {}).", ds.len(), ds.num_classes(), counts.join(", "));
        } else {
            println!("Found {} {unit} belonging to {} classes.", ds.len(), ds.num_classes());
        }
        for line in report.summary(3) {
            eprintln!("warning: {line}");
        }
        // Training data: a class --labels declares but no row holds gets an output the model
        // can never learn (data to evaluate on may lack a class).
        if training {
            let empty: Vec<&str> = ds.class_names.iter().zip(ds.counts()).filter(|(_, n)| *n == 0).map(|(c, _)| c.as_str()).collect();
            if !empty.is_empty() {
                eprintln!(
                    "warning: no example in {} holds {}: the model gets an output for it that it cannot learn",
                    self.data.display(),
                    empty.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                );
            }
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
        match &e.target {
            Target::Class(c) => println!("Label : {c} ({})", ds.class_names[*c]),
            Target::Labels(set) => {
                let names: Vec<&str> = set.iter().map(|&j| ds.class_names[j].as_str()).collect();
                println!("Labels: {set:?} ({})", names.join(", "));
            }
        }
    }
}
