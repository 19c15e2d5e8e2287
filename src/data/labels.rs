//! A table's rows (`table` reads them from CSV/TSV, JSONL and Parquet) into a dataset: label
//! fields parsed (one class, a delimited set, 0/1 indicator columns, JSON lists), the class names
//! chosen, labels mapped to targets, and malformed rows named by their line or skipped.

use std::collections::BTreeSet;
use std::path::Path;

use super::{DataError, Dataset, Example, LoadOptions, LoadReport, Skipped, Target, is_blank};

/// A row's labels before they are mapped to indices.
#[derive(Debug)]
pub(super) enum RawLabel {
    One(String),
    Set(Vec<String>),
}

/// A row before its labels are mapped to indices.
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) text: String,
    pub(super) pair: Option<String>,
    pub(super) label: RawLabel,
}

/// A row's place in reports: `path:line`.
pub(super) fn location(path: &Path, line: u64) -> String {
    format!("{}:{line}", path.display())
}

/// A malformed row: an error naming its line, or with `--skip-bad-rows` a counted skip.
pub(super) fn malformed(path: &Path, line: u64, reason: String, opts: &LoadOptions, report: &mut LoadReport) -> Result<(), DataError> {
    if opts.skip_bad_rows {
        report.skip(location(path, line), Skipped::BadRow(reason));
        return Ok(());
    }
    Err(DataError::BadRecord { path: path.to_path_buf(), line, reason: format!("{reason} (--skip-bad-rows skips such rows)") })
}

/// A label field's text: one class, or with a delimiter the labels between delimiters.
pub(super) fn parse_label(field: &str, opts: &LoadOptions) -> RawLabel {
    match &opts.label_delimiter {
        Some(d) => RawLabel::Set(field.split(d.as_str()).map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()),
        None => RawLabel::One(field.trim().to_string()),
    }
}

/// A 0/1 indicator of one label (`--label-columns`): 1/0, true/false, 1.0/0.0.
fn indicator(column: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" => Ok(true),
        "0" | "0.0" | "false" => Ok(false),
        other => Err(format!("label column `{column}` holds `{other}`, not 0 or 1")),
    }
}

/// The labels whose indicator columns are on.
pub(super) fn from_indicators<'v>(columns: &[String], values: impl Iterator<Item = Result<&'v str, String>>) -> Result<RawLabel, String> {
    let mut on = Vec::new();
    for (name, value) in columns.iter().zip(values) {
        if indicator(name, value?)? {
            on.push(name.clone());
        }
    }
    Ok(RawLabel::Set(on))
}

/// A JSON label value: a string (split at `--label-delimiter` when given), a number or a
/// boolean, or a list of them (a label set).
pub(super) fn json_label(name: &str, value: Option<&serde_json::Value>, opts: &LoadOptions) -> Result<RawLabel, String> {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(format!("`{name}` holds {other}, not a label")),
    };
    match value {
        Some(Value::Null) | None => Err(format!("no `{name}` field")),
        Some(Value::String(s)) => Ok(parse_label(s, opts)),
        Some(Value::Array(items)) => items.iter().map(scalar).collect::<Result<_, _>>().map(RawLabel::Set),
        Some(other) => scalar(other).map(RawLabel::One),
    }
}

/// The class names: given (`--labels`, a model's), the `--label-columns`, or the sorted unique
/// labels found, numerically when all are integers so that "10" sorts after "9".
fn class_names(rows: &[Row], opts: &LoadOptions) -> Vec<String> {
    if let Some(c) = opts.classes.as_ref().or(opts.columns.label_columns.as_ref()) {
        return c.clone();
    }
    let mut unique: BTreeSet<&str> = BTreeSet::new();
    for row in rows {
        match &row.label {
            RawLabel::One(l) => {
                unique.insert(l.as_str());
            }
            RawLabel::Set(set) => unique.extend(set.iter().map(String::as_str)),
        }
    }
    unique.remove("");
    let mut names: Vec<String> = unique.into_iter().map(str::to_string).collect();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
    }
    names
}

/// Maps labels to indices. Single-label: an empty label, or one outside the classes, is a
/// malformed row. Multi-label: an empty field or list is an example with no labels; an unknown
/// label is malformed. Empty texts are skipped and reported.
pub(super) fn finish(path: &Path, rows: Vec<Row>, mut report: LoadReport, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let multi_label =
        opts.multi_label.unwrap_or_else(|| opts.multi_label_layout() || rows.iter().any(|r| matches!(r.label, RawLabel::Set(_))));
    let class_names = class_names(&rows, opts);
    let index = |label: &str| class_names.iter().position(|c| c == label);
    let unknown = |label: &str| format!("label `{label}` is not one of the classes ({})", class_names.join(", "));
    let mut examples = Vec::with_capacity(rows.len());
    for Row { line, text, pair, label } in rows {
        let target = match (multi_label, label) {
            (false, RawLabel::Set(_)) => {
                Err("a list of labels where one class is expected (the model or the options are single-label)".to_string())
            }
            (false, RawLabel::One(l)) if l.is_empty() => Err("empty label".to_string()),
            (false, RawLabel::One(l)) => index(&l).map(Target::Class).ok_or_else(|| unknown(&l)),
            (true, RawLabel::One(l)) => {
                let set = if l.is_empty() { vec![] } else { vec![l] };
                set.iter().map(|l| index(l).ok_or_else(|| unknown(l))).collect::<Result<_, _>>().map(Target::labels)
            }
            (true, RawLabel::Set(set)) => {
                set.iter().map(|l| index(l).ok_or_else(|| unknown(l))).collect::<Result<_, _>>().map(Target::labels)
            }
        };
        match target {
            Err(why) => malformed(path, line, why, opts, &mut report)?,
            Ok(_) if is_blank(&text) || pair.as_deref().is_some_and(is_blank) => report.skip(location(path, line), Skipped::EmptyText),
            Ok(target) => examples.push(Example { text, pair, target }),
        }
    }
    if examples.is_empty() {
        return Err(DataError::NoExamples { path: path.to_path_buf(), skipped: report.skipped.len() });
    }
    if class_names.len() < 2 {
        return Err(DataError::TooFewClasses { path: path.to_path_buf(), found: class_names });
    }
    Ok((Dataset { examples, class_names, source: path.to_path_buf(), multi_label }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, text: &str, label: RawLabel) -> Row {
        Row { line, text: text.into(), pair: None, label }
    }

    fn one(l: &str) -> RawLabel {
        RawLabel::One(l.into())
    }

    #[test]
    fn label_fields_split_at_the_delimiter_trimmed_without_empty_labels() {
        let opts = LoadOptions { label_delimiter: Some(";".into()), ..Default::default() };
        assert!(matches!(parse_label(" a ; b;;", &opts), RawLabel::Set(s) if s == ["a", "b"]));
        assert!(matches!(parse_label(" a;b ", &LoadOptions::default()), RawLabel::One(l) if l == "a;b"));
    }

    #[test]
    fn indicators_read_one_and_zero_in_their_spellings_and_name_anything_else() {
        for on in ["1", "1.0", "true", " TRUE "] {
            assert_eq!(indicator("sports", on), Ok(true), "{on}");
        }
        for off in ["0", "0.0", "false"] {
            assert_eq!(indicator("sports", off), Ok(false), "{off}");
        }
        assert_eq!(indicator("sports", "yes"), Err("label column `sports` holds `yes`, not 0 or 1".to_string()));
        let columns = ["a".to_string(), "b".to_string(), "c".to_string()];
        let on = from_indicators(&columns, ["1", "0", "true"].into_iter().map(Ok)).unwrap();
        assert!(matches!(on, RawLabel::Set(s) if s == ["a", "c"]));
    }

    #[test]
    fn class_names_sort_integers_numerically_and_names_alphabetically() {
        let opts = LoadOptions::default();
        let rows = [row(1, "x", one("10")), row(2, "y", one("9")), row(3, "z", one("")), row(4, "w", one("10"))];
        assert_eq!(class_names(&rows, &opts), ["9", "10"]);
        let rows = [row(1, "x", one("pos")), row(2, "y", RawLabel::Set(vec!["neg".into(), "mixed".into()]))];
        assert_eq!(class_names(&rows, &opts), ["mixed", "neg", "pos"]);
        let given = LoadOptions { classes: Some(vec!["b".into(), "a".into()]), ..Default::default() };
        assert_eq!(class_names(&rows, &given), ["b", "a"], "given classes keep their order");
    }

    #[test]
    fn finish_maps_labels_to_targets_and_names_the_line_of_a_bad_one() {
        let path = Path::new("t.csv");
        let rows = vec![row(2, "good", one("pos")), row(3, "bad", one("neg")), row(4, "  ", one("pos"))];
        let (ds, report) = finish(path, rows, LoadReport::default(), &LoadOptions::default()).unwrap();
        assert_eq!(ds.class_names, ["neg", "pos"]);
        assert_eq!(ds.targets(), [Target::Class(1), Target::Class(0)]);
        assert_eq!(report.skipped.len(), 1, "the blank text is skipped and reported");

        // An unknown label: an error naming the line and the classes, or with --skip-bad-rows a skip.
        let given = LoadOptions { classes: Some(vec!["neg".into(), "pos".into()]), ..Default::default() };
        let rows = || vec![row(2, "good", one("pos")), row(5, "odd", one("meh"))];
        let err = finish(path, rows(), LoadReport::default(), &given).unwrap_err().to_string();
        assert!(err.contains("line 5") && err.contains("label `meh` is not one of the classes (neg, pos)"), "{err}");
        let skipping = LoadOptions { skip_bad_rows: true, ..given };
        let (ds, report) = finish(path, rows(), LoadReport::default(), &skipping).unwrap();
        assert_eq!((ds.len(), report.skipped.len()), (1, 1));

        // A label set makes the data multi-label; an empty set is an example with no labels.
        let rows = vec![
            row(2, "both", RawLabel::Set(vec!["a".into(), "b".into()])),
            row(3, "none", RawLabel::Set(vec![])),
            row(4, "one", one("b")),
        ];
        let (ds, _) = finish(path, rows, LoadReport::default(), &LoadOptions::default()).unwrap();
        assert!(ds.multi_label);
        assert_eq!(ds.targets(), [Target::labels(vec![0, 1]), Target::labels(vec![]), Target::labels(vec![1])]);
    }
}
