//! `bertkit evaluate --predictions FILE`: one JSON line per evaluated example (its text, true
//! and predicted labels, scores, whether the prediction is right, and its loss), for error
//! analysis: the examples a model gets most confidently wrong are its highest losses (fastai's
//! `plot_top_losses`), often mislabelled data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use bertkit::data::{Dataset, Example, Target};
use bertkit::metrics::example_loss;
use bertkit::predict::{Decision, Prediction};
use serde::Serialize;
use serde_json::{Value, json};

/// Checks a `--predictions` path before any scoring, so that a typo costs nothing: JSON lines
/// only (a `.csv` name holding JSON would mislead whatever reads it), into a folder that exists.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    let jsonl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    anyhow::ensure!(jsonl, "--predictions {}: the predictions are written as JSON lines; name a .jsonl file", path.display());
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    anyhow::ensure!(parent.is_dir(), "--predictions {}: folder {} does not exist", path.display(), parent.display());
    Ok(())
}

/// One example's line, its fields in this order. `predicted` is what `predict` answers for its
/// logits (a label, or a label set); `correct` is the rule the report counts by
/// ([`Target::is_hit`]), so the lines' `correct` count is the report's accuracy times the
/// examples; `loss` is the example's term of the report's loss.
#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pair: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<&'a str>>,
    predicted: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    scores: Vec<f32>,
    correct: bool,
    loss: f64,
}

fn line<'a>(index: usize, example: &'a Example, names: &'a [String], logits: &[f32], predicted: Prediction, threshold: f32) -> Line<'a> {
    let name = |i: &usize| names.get(*i).map_or("?", String::as_str);
    let (label, labels, predicted_json, score) = match &example.target {
        Target::Class(c) => (Some(name(c)), None, json!(predicted.label), Some(predicted.score)),
        Target::Labels(set) => (None, Some(set.iter().map(name).collect()), json!(predicted.labels.unwrap_or_default()), None),
    };
    Line {
        index,
        text: &example.text,
        pair: example.pair.as_deref(),
        label,
        labels,
        predicted: predicted_json,
        score,
        scores: predicted.scores,
        correct: example.target.is_hit(logits, threshold),
        loss: example_loss(logits, &example.target),
    }
}

/// Writes every example's line, in data order, through `PATH.partial` renamed into place, so a
/// failed write never leaves a file that looks complete. `decision` is the model's (at the
/// threshold the report used): it predicts each line and decides its `correct`.
pub fn write(path: &Path, ds: &Dataset, logits: &[Vec<f32>], decision: Decision) -> anyhow::Result<()> {
    let threshold = decision.threshold().unwrap_or(0.5);
    let mut partial = PathBuf::from(path);
    partial.as_mut_os_string().push(".partial");
    let lines = || -> std::io::Result<()> {
        let mut out = BufWriter::new(File::create(&partial)?);
        for (i, (row, example)) in logits.iter().zip(&ds.examples).enumerate() {
            let predicted = decision.predict(row, &ds.class_names);
            serde_json::to_writer(&mut out, &line(i, example, &ds.class_names, row, predicted, threshold))?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    lines().with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jsonl_into_an_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_path(&dir.path().join("p.jsonl")).is_ok());
        assert!(check_path(&dir.path().join("P.JSONL")).is_ok());
        assert!(check_path(Path::new("p.jsonl")).is_ok());
        let csv = check_path(&dir.path().join("p.csv")).unwrap_err().to_string();
        assert!(csv.contains("name a .jsonl file"), "{csv}");
        let missing = check_path(&dir.path().join("nope/p.jsonl")).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }
}
