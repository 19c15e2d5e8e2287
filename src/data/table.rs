//! CSV/TSV (with a header row) and JSONL datasets with configurable text and label columns.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{DataError, Dataset, Example, LoadOptions, LoadReport, Skipped, is_blank};

/// Rows as (line, text, pair, label) before labels are mapped to indices.
type Raw = Vec<(u64, String, Option<String>, String)>;

fn location(path: &Path, line: u64) -> String {
    format!("{}:{line}", path.display())
}

/// A malformed row: an error naming its line, or with `--skip-bad-rows` a counted skip.
fn malformed(path: &Path, line: u64, reason: String, opts: &LoadOptions, report: &mut LoadReport) -> Result<(), DataError> {
    if opts.skip_bad_rows {
        report.skip(location(path, line), Skipped::BadRow(reason));
        return Ok(());
    }
    Err(DataError::BadRecord { path: path.to_path_buf(), line, reason: format!("{reason} (--skip-bad-rows skips such rows)") })
}

pub fn load_delimited(path: &Path, delimiter: u8, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    // `flexible`: rows with a wrong field count reach the loop below, which names their line
    // (the csv crate's own error would stop at the first one, even with --skip-bad-rows).
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
        let spans_lines = record.iter().any(|f| f.contains(&b'\n'));
        if record.len() != names.len() {
            let hint = if spans_lines {
                "a quoted field runs across lines: is a quote left open?"
            } else {
                "quote a text that contains the delimiter"
            };
            let reason = format!("{} fields where the header has {} ({hint})", record.len(), names.len());
            malformed(path, line, reason, opts, &mut report)?;
            continue;
        }
        if spans_lines {
            report.multiline.push(location(path, line));
        }
        // Every index is within the record: its length equals the header's.
        let field = |i: usize| String::from_utf8(record.get(i).unwrap_or_default().to_vec()).map_err(|_| Skipped::NotUtf8);
        let pair = pair_col.map(field).transpose();
        match (field(text_col), pair, field(label_col)) {
            (Ok(text), Ok(pair), Ok(label)) => raw.push((line, text, pair, label.trim().to_string())),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => report.skip(location(path, line), why),
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
        let Ok(line) = String::from_utf8(bytes) else {
            report.skip(location(path, line_no), Skipped::NotUtf8);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                malformed(path, line_no, format!("malformed JSON: {e}"), opts, &mut report)?;
                continue;
            }
        };
        let get = |name: &str| match value.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Null) | None => Err(format!("no `{name}` field")),
            Some(other) => Ok(other.to_string()),
        };
        let pair = opts.columns.pair.as_deref().map(get).transpose();
        match (get(&opts.columns.text), pair, get(&opts.columns.label)) {
            (Ok(text), Ok(pair), Ok(label)) => raw.push((line_no, text, pair, label.trim().to_string())),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => malformed(path, line_no, why, opts, &mut report)?,
        }
    }
    finish(path, raw, report, opts)
}

/// Maps labels to indices (given classes, or sorted unique labels, numerically when all are
/// integers so that "10" sorts after "9"). An empty label, or one outside the given classes, is
/// a malformed row; empty texts are skipped and reported.
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
    for (line, text, pair, label) in raw {
        if label.is_empty() {
            malformed(path, line, "empty label".into(), opts, &mut report)?;
        } else if is_blank(&text) || pair.as_deref().is_some_and(is_blank) {
            report.skip(location(path, line), Skipped::EmptyText);
        } else if let Some(idx) = class_names.iter().position(|c| *c == label) {
            examples.push(Example { text, pair, label: idx });
        } else {
            let reason = format!("label `{label}` is not one of the classes ({})", class_names.join(", "));
            malformed(path, line, reason, opts, &mut report)?;
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

    fn skipping() -> LoadOptions {
        LoadOptions { skip_bad_rows: true, ..Default::default() }
    }

    #[test]
    fn csv_with_custom_columns_numeric_labels_and_bad_rows() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        let mut bytes = b"id,review,stars\n1,\"good, really\",10\n2,bad,2\n3,,9\n4,\xff,2\n5,meh,9\n".to_vec();
        bytes.extend_from_slice(b"6,fine\n");
        std::fs::write(&p, bytes).unwrap();
        let columns = Columns { text: "review".into(), label: "stars".into(), pair: None };
        let err = load_delimited(&p, b',', &LoadOptions { columns: columns.clone(), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("line 7: 2 fields where the header has 3") && err.contains("--skip-bad-rows"), "{err}");
        let (ds, report) = load_delimited(&p, b',', &LoadOptions { columns, ..skipping() }).unwrap();
        assert_eq!(ds.class_names, ["2", "9", "10"]);
        assert_eq!(ds.examples[0], Example::single("good, really", 2));
        assert_eq!(ds.len(), 3);
        let why: Vec<String> = report.skipped.iter().map(|(loc, w)| format!("{}: {w}", loc.rsplit(':').next().unwrap())).collect();
        assert_eq!(why, ["5: not valid UTF-8", "7: 2 fields where the header has 3 (quote a text that contains the delimiter)", "4: empty text"]);
    }

    /// Issue 18's cases: one bad quote, an extra field, lines merged by a quote.
    #[test]
    fn malformed_tables_are_errors_naming_the_line_never_silent_loss() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        let mut rows: Vec<String> = (0..30).map(|i| format!("review number {i},{}", ["neg", "pos"][i % 2])).collect();
        // An opened quote never closed: the rest of the file would become one text.
        rows[11] = "\"a bad quote,neg".into();
        std::fs::write(&p, format!("text,label\n{}\n", rows.join("\n"))).unwrap();
        let err = load_delimited(&p, b',', &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 13") && err.contains("is a quote left open?"), "{err}");
        // An unquoted comma in the text: an extra field, not a new class.
        rows[11] = "good movie, really,pos".into();
        std::fs::write(&p, format!("text,label\n{}\n", rows.join("\n"))).unwrap();
        let err = load_delimited(&p, b',', &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 13: 3 fields where the header has 2"), "{err}");
        let (ds, report) = load_delimited(&p, b',', &skipping()).unwrap();
        assert_eq!((ds.len(), ds.class_names.len(), report.skipped.len()), (29, 2, 1));
        // A quote that closes lines later merges rows into one text with a valid field count:
        // legal CSV, so it loads, but the report says which row holds line breaks.
        rows[11] = "\"starts here,neg\nand ends here\",pos".into();
        std::fs::write(&p, format!("text,label\n{}\n", rows.join("\n"))).unwrap();
        let (ds, report) = load_delimited(&p, b',', &LoadOptions::default()).unwrap();
        assert_eq!(ds.len(), 30);
        assert_eq!(report.multiline, [format!("{}:13", p.display())]);
        assert!(report.summary(3).iter().any(|l| l.contains("1 row(s) hold line breaks inside quotes") && l.contains(":13")), "{:?}", report.summary(3));
        // Labels outside --labels are malformed too.
        let only = LoadOptions { classes: Some(vec!["neg".into()]), ..Default::default() };
        let err = load_delimited(&p, b',', &only).unwrap_err().to_string();
        assert!(err.contains("label `pos` is not one of the classes (neg)"), "{err}");
    }

    #[test]
    fn pair_columns_are_read_from_csv_and_jsonl_and_rows_without_one_are_malformed() {
        let d = tempfile::tempdir().unwrap();
        let opts = LoadOptions {
            columns: Columns { text: "question".into(), label: "label".into(), pair: Some("answer".into()) },
            ..skipping()
        };
        let csv = d.path().join("p.csv");
        std::fs::write(&csv, "question,answer,label\nwho?,me,1\nwhy?,,0\nhow?\nwhen?,now,0\n").unwrap();
        let (ds, report) = load_delimited(&csv, b',', &opts).unwrap();
        assert_eq!(ds.examples[0], Example { text: "who?".into(), pair: Some("me".into()), label: 1 });
        assert_eq!(ds.pairs().unwrap(), ["me", "now"]);
        let why: Vec<String> = report.skipped.iter().map(|(_, w)| w.to_string()).collect();
        assert_eq!(why, ["1 fields where the header has 3 (quote a text that contains the delimiter)", "empty text"]);
        let jsonl = d.path().join("p.jsonl");
        std::fs::write(&jsonl, "{\"question\": \"a\", \"answer\": \"b\", \"label\": 0}\n{\"question\": \"c\", \"label\": 1}\n{\"question\": \"d\", \"answer\": \"e\", \"label\": 1}\n").unwrap();
        let (ds, report) = load_jsonl(&jsonl, &opts).unwrap();
        assert_eq!(ds.pairs().unwrap(), ["b", "e"]);
        assert_eq!(report.skipped[0].1, Skipped::BadRow("no `answer` field".into()));
        let strict = LoadOptions { skip_bad_rows: false, ..opts.clone() };
        let err = load_jsonl(&jsonl, &strict).unwrap_err().to_string();
        assert!(err.contains("line 2: no `answer` field"), "{err}");
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
    fn jsonl_unknown_labels_and_malformed_lines_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.jsonl");
        std::fs::write(&p, "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neg\"}\n{\"text\": \"c\", \"label\": \"meh\"}\n").unwrap();
        let opts = LoadOptions { classes: Some(vec!["neg".into(), "pos".into()]), ..Default::default() };
        let err = load_jsonl(&p, &opts).unwrap_err().to_string();
        assert!(err.contains("line 3: label `meh` is not one of the classes (neg, pos)"), "{err}");
        let (ds, report) = load_jsonl(&p, &LoadOptions { skip_bad_rows: true, ..opts }).unwrap();
        assert_eq!(ds.labels(), [1, 0]);
        assert!(matches!(&report.skipped[0].1, Skipped::BadRow(r) if r.contains("meh")));
        std::fs::write(&p, "{\"text\": \"a\", \"label\": 1}\n{oops\n").unwrap();
        let err = load_jsonl(&p, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("malformed JSON"), "{err}");
    }
}
