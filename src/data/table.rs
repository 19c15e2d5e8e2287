//! CSV/TSV (with a header row) and JSONL datasets with configurable text and label columns.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{DataError, Dataset, Example, LoadOptions, LoadReport, Skipped};

/// Rows as (location, text, pair, label) before labels are mapped to indices.
type Raw = Vec<(String, String, Option<String>, String)>;

pub fn load_delimited(path: &Path, delimiter: u8, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_err(path, e))?;
    let headers = reader.byte_headers().map_err(|e| csv_err(path, e))?.clone();
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let col = |want: &str| {
        names.iter().position(|n| n == want).ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: want.to_string(),
            available: names.join(", "),
        })
    };
    let (text_col, label_col) = (col(&opts.columns.text)?, col(&opts.columns.label)?);
    let pair_col = opts.columns.pair.as_deref().map(col).transpose()?;
    let mut raw = Raw::new();
    let mut report = LoadReport::default();
    for record in reader.byte_records() {
        let record = record.map_err(|e| csv_err(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let loc = format!("{}:{line}", path.display());
        let field = |i: usize, name: &str| match record.get(i) {
            None => Err(Skipped::MissingField(name.to_string())),
            Some(b) => String::from_utf8(b.to_vec()).map_err(|_| Skipped::NotUtf8),
        };
        let pair = match (pair_col, &opts.columns.pair) {
            (Some(i), Some(name)) => field(i, name).map(Some),
            _ => Ok(None),
        };
        match (field(text_col, &opts.columns.text), pair, field(label_col, &opts.columns.label)) {
            (Ok(text), Ok(pair), Ok(label)) => raw.push((loc, text, pair, label.trim().to_string())),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => report.skip(loc, why),
        }
    }
    finish(path, raw, report, opts)
}

pub fn load_jsonl(path: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let file = File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut raw = Raw::new();
    let mut report = LoadReport::default();
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let bytes = line.map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        let loc = format!("{}:{line_no}", path.display());
        let Ok(line) = String::from_utf8(bytes) else {
            report.skip(loc, Skipped::NotUtf8);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| DataError::BadRecord {
            path: path.to_path_buf(),
            line: line_no,
            reason: format!("malformed JSON: {e}"),
        })?;
        let get = |name: &str| match value.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Null) | None => Err(Skipped::MissingField(name.to_string())),
            Some(other) => Ok(other.to_string()),
        };
        let pair = opts.columns.pair.as_deref().map(get).transpose();
        match (get(&opts.columns.text), pair, get(&opts.columns.label)) {
            (Ok(text), Ok(pair), Ok(label)) => raw.push((loc, text, pair, label.trim().to_string())),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => report.skip(loc, why),
        }
    }
    finish(path, raw, report, opts)
}

/// Maps labels to indices (given classes, or sorted unique labels, numerically when all are
/// integers so that "10" sorts after "9"), dropping empty texts and unknown labels.
fn finish(path: &Path, raw: Raw, mut report: LoadReport, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let class_names = match &opts.classes {
        Some(c) => c.clone(),
        None => {
            let unique: BTreeSet<&str> = raw.iter().map(|(_, _, _, l)| l.as_str()).filter(|l| !l.is_empty()).collect();
            let mut names: Vec<String> = unique.into_iter().map(str::to_string).collect();
            if names.iter().all(|n| n.parse::<i64>().is_ok()) {
                names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
            }
            names
        }
    };
    let mut examples = Vec::with_capacity(raw.len());
    for (loc, text, pair, label) in raw {
        if text.trim().is_empty() || pair.as_ref().is_some_and(|p| p.trim().is_empty()) {
            report.skip(loc, Skipped::EmptyText);
        } else if let Some(idx) = class_names.iter().position(|c| *c == label) {
            examples.push(Example { text, pair, label: idx });
        } else {
            report.skip(loc, Skipped::UnknownLabel(label));
        }
    }
    if examples.is_empty() {
        return Err(DataError::NoExamples { path: path.to_path_buf(), skipped: report.skipped.len() });
    }
    if class_names.len() < 2 {
        return Err(DataError::TooFewClasses { path: path.to_path_buf(), found: class_names });
    }
    Ok((Dataset { examples, class_names, source: path.to_path_buf() }, report))
}

fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line());
    DataError::BadRecord { path: path.to_path_buf(), line, reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Columns;

    #[test]
    fn csv_with_custom_columns_numeric_labels_and_bad_rows() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        let mut bytes = b"id,review,stars\n1,\"good, really\",10\n2,bad,2\n3,,9\n4,\xff,2\n5,meh,9\n".to_vec();
        bytes.extend_from_slice(b"6,fine\n");
        std::fs::write(&p, bytes).unwrap();
        let opts = LoadOptions { columns: Columns { text: "review".into(), label: "stars".into(), pair: None }, ..Default::default() };
        let (ds, report) = load_delimited(&p, b',', &opts).unwrap();
        assert_eq!(ds.class_names, ["2", "9", "10"]);
        assert_eq!(ds.examples[0], Example::single("good, really", 2));
        assert_eq!(ds.len(), 3);
        assert_eq!(report.skipped.len(), 3, "{:?}", report.skipped);
    }

    #[test]
    fn pair_columns_are_read_from_csv_and_jsonl_and_rows_without_one_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let opts = LoadOptions {
            columns: Columns { text: "question".into(), label: "label".into(), pair: Some("answer".into()) },
            ..Default::default()
        };
        let csv = d.path().join("p.csv");
        std::fs::write(&csv, "question,answer,label\nwho?,me,1\nwhy?,,0\nhow?\nwhen?,now,0\n").unwrap();
        let (ds, report) = load_delimited(&csv, b',', &opts).unwrap();
        assert_eq!(ds.examples[0], Example { text: "who?".into(), pair: Some("me".into()), label: 1 });
        assert_eq!(ds.pairs().unwrap(), ["me", "now"]);
        let why: Vec<&Skipped> = report.skipped.iter().map(|(_, w)| w).collect();
        assert_eq!(why, [&Skipped::MissingField("answer".into()), &Skipped::EmptyText]);
        let jsonl = d.path().join("p.jsonl");
        std::fs::write(&jsonl, "{\"question\": \"a\", \"answer\": \"b\", \"label\": 0}\n{\"question\": \"c\", \"label\": 1}\n{\"question\": \"d\", \"answer\": \"e\", \"label\": 1}\n").unwrap();
        let (ds, report) = load_jsonl(&jsonl, &opts).unwrap();
        assert_eq!(ds.pairs().unwrap(), ["b", "e"]);
        assert_eq!(report.skipped[0].1, Skipped::MissingField("answer".into()));
        let err = load_delimited(&csv, b',', &LoadOptions { columns: Columns { pair: Some("context".into()), ..opts.columns.clone() }, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("column `context` not found"), "{err}");
        let folder = crate::data::load(d.path(), &opts).unwrap_err().to_string();
        assert!(folder.contains("pair column `answer` needs a .csv, .tsv or .jsonl file"), "{folder}");
    }

    #[test]
    fn missing_column_lists_the_available_ones() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.tsv");
        std::fs::write(&p, "sentence\tlabel\nhi\t1\n").unwrap();
        let err = load_delimited(&p, b'\t', &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("column `text` not found; columns are: sentence, label"), "{err}");
    }

    #[test]
    fn jsonl_unknown_labels_are_skipped_and_malformed_lines_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.jsonl");
        std::fs::write(&p, "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neg\"}\n{\"text\": \"c\", \"label\": \"meh\"}\n").unwrap();
        let opts = LoadOptions { classes: Some(vec!["neg".into(), "pos".into()]), ..Default::default() };
        let (ds, report) = load_jsonl(&p, &opts).unwrap();
        assert_eq!(ds.labels(), [1, 0]);
        assert_eq!(report.skipped[0].1, Skipped::UnknownLabel("meh".into()));
        std::fs::write(&p, "{\"text\": \"a\", \"label\": 1}\n{oops\n").unwrap();
        let err = load_jsonl(&p, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("malformed JSON"), "{err}");
    }
}
