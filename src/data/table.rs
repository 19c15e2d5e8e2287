//! CSV/TSV (with a header row), JSONL and Parquet datasets with configurable text and label
//! columns, read into rows (`labels` maps their labels to classes): one class per row, or label
//! sets (a JSONL list, a delimited field, one 0/1 column per label).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::labels::{Row, finish, from_indicators, json_label, location, malformed, parse_label};
use super::{DataError, Dataset, LoadOptions, LoadReport, Skipped};

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
    let text_col = col(&opts.columns.text)?;
    let label_cols: Vec<usize> = match &opts.columns.label_columns {
        Some(cols) => cols.iter().map(|c| col(c)).collect::<Result<_, _>>()?,
        None => vec![col(&opts.columns.label)?],
    };
    let pair_col = opts.columns.pair.as_deref().map(col).transpose()?;
    let mut rows = Vec::new();
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
        let bytes = |i: usize| record.get(i).unwrap_or_default();
        let field = |i: usize| String::from_utf8(bytes(i).to_vec()).map_err(|_| Skipped::NotUtf8);
        let (text, pair) = match (field(text_col), pair_col.map(field).transpose()) {
            (Ok(text), Ok(pair)) => (text, pair),
            (Err(why), _) | (_, Err(why)) => {
                report.skip(location(path, line), why);
                continue;
            }
        };
        let label = match &opts.columns.label_columns {
            Some(cols) => {
                let values = label_cols.iter().map(|&i| std::str::from_utf8(bytes(i)).map_err(|_| "a label field is not valid UTF-8".to_string()));
                from_indicators(cols, values)
            }
            None => field(label_cols[0]).map(|l| parse_label(&l, opts)).map_err(|_| "the label is not valid UTF-8".to_string()),
        };
        match label {
            Ok(label) => rows.push(Row { line, text, pair, label }),
            Err(why) => malformed(path, line, why, opts, &mut report)?,
        }
    }
    finish(path, rows, report, opts)
}

pub fn load_jsonl(path: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let file = File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut rows = Vec::new();
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
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(object)) => json_row(path, line_no, &object, opts, &mut rows, &mut report)?,
            Ok(other) => malformed(path, line_no, format!("a JSON {} where an object is expected", kind(&other)), opts, &mut report)?,
            Err(e) => malformed(path, line_no, format!("malformed JSON: {e}"), opts, &mut report)?,
        }
    }
    finish(path, rows, report, opts)
}

/// A Parquet table with the same columns as a JSONL file's fields (a list column holds label
/// sets); row numbers (from 1) stand for lines in reports.
pub fn load_parquet(path: &Path, opts: &LoadOptions) -> Result<(Dataset, LoadReport), DataError> {
    let c = &opts.columns;
    let mut columns = vec![c.text.as_str()];
    match &c.label_columns {
        Some(cols) => columns.extend(cols.iter().map(String::as_str)),
        None => columns.push(c.label.as_str()),
    }
    columns.extend(c.pair.as_deref());
    let mut rows = Vec::new();
    let mut report = LoadReport::default();
    for (i, object) in super::parquet::open(path, &columns)?.enumerate() {
        json_row(path, i as u64 + 1, &object?, opts, &mut rows, &mut report)?;
    }
    finish(path, rows, report, opts)
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "list",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "object",
    }
}

/// One JSON object (a JSONL line, a Parquet row) as a row, or a malformed one.
fn json_row(
    path: &Path,
    line: u64,
    object: &serde_json::Map<String, serde_json::Value>,
    opts: &LoadOptions,
    rows: &mut Vec<Row>,
    report: &mut LoadReport,
) -> Result<(), DataError> {
    let get = |name: &str| match object.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => Err(format!("no `{name}` field")),
        Some(other) => Ok(other.to_string()),
    };
    let label = match &opts.columns.label_columns {
        Some(cols) => {
            let values: Vec<Result<String, String>> = cols.iter().map(|c| get(c)).collect();
            from_indicators(cols, values.iter().map(|v| v.as_deref().map_err(Clone::clone)))
        }
        None => json_label(&opts.columns.label, object.get(&opts.columns.label), opts),
    };
    let pair = opts.columns.pair.as_deref().map(get).transpose();
    match (get(&opts.columns.text), pair, label) {
        (Ok(text), Ok(pair), Ok(label)) => rows.push(Row { line, text, pair, label }),
        (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => malformed(path, line, why, opts, report)?,
    }
    Ok(())
}

fn csv_err(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line());
    DataError::BadRecord { path: path.to_path_buf(), line, reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Columns, Example, Target};

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
        let columns = Columns { text: "review".into(), label: "stars".into(), ..Default::default() };
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
            columns: Columns { text: "question".into(), pair: Some("answer".into()), ..Default::default() },
            ..skipping()
        };
        let csv = d.path().join("p.csv");
        std::fs::write(&csv, "question,answer,label\nwho?,me,1\nwhy?,,0\nhow?\nwhen?,now,0\n").unwrap();
        let (ds, report) = load_delimited(&csv, b',', &opts).unwrap();
        assert_eq!(ds.examples[0], Example { text: "who?".into(), pair: Some("me".into()), target: Target::Class(1) });
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
        assert!(folder.contains("pair column `answer` needs a .csv, .tsv, .jsonl or .parquet file"), "{folder}");
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
        assert_eq!(ds.targets(), [Target::Class(1), Target::Class(0)]);
        assert!(matches!(&report.skipped[0].1, Skipped::BadRow(r) if r.contains("meh")));
        std::fs::write(&p, "{\"text\": \"a\", \"label\": 1}\n{oops\n").unwrap();
        let err = load_jsonl(&p, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("malformed JSON"), "{err}");
    }

    /// Issue 16's three multi-label layouts load the same label sets.
    #[test]
    fn multi_label_from_a_jsonl_list_a_delimited_field_and_indicator_columns() {
        let d = tempfile::tempdir().unwrap();
        let want = [Target::labels(vec![0, 2]), Target::labels(vec![]), Target::labels(vec![1])];
        let jsonl = d.path().join("m.jsonl");
        std::fs::write(&jsonl, "{\"text\": \"a\", \"labels\": [\"ending\", \"positive\"]}\n{\"text\": \"b\", \"labels\": []}\n{\"text\": \"c\", \"labels\": [\"long\", \"long\"]}\n").unwrap();
        let opts = LoadOptions { columns: Columns { label: "labels".into(), ..Default::default() }, ..Default::default() };
        let (ds, _) = load_jsonl(&jsonl, &opts).unwrap();
        assert!(ds.multi_label);
        assert_eq!(ds.class_names, ["ending", "long", "positive"]);
        assert_eq!(ds.targets(), want);
        assert_eq!(ds.counts(), [1, 1, 1]);

        let csv = d.path().join("m.csv");
        std::fs::write(&csv, "text,tags\na,positive; ending\nb,\nc,long\n").unwrap();
        let opts = LoadOptions {
            columns: Columns { label: "tags".into(), ..Default::default() },
            label_delimiter: Some(";".into()),
            ..Default::default()
        };
        let (ds, _) = load_delimited(&csv, b',', &opts).unwrap();
        assert_eq!((ds.multi_label, ds.targets()), (true, want.to_vec()));

        let tsv = d.path().join("m.tsv");
        std::fs::write(&tsv, "text\tending\tlong\tpositive\na\t1\t0\ttrue\nb\t0\t0\t0\nc\t0\t1\t0\n").unwrap();
        let cols = ["ending", "long", "positive"].map(String::from).to_vec();
        let opts = LoadOptions { columns: Columns { label_columns: Some(cols), ..Default::default() }, ..Default::default() };
        let (ds, _) = load_delimited(&tsv, b'\t', &opts).unwrap();
        assert_eq!((ds.class_names.len(), ds.targets()), (3, want.to_vec()));
    }

    #[test]
    fn multi_label_rows_that_cannot_be_read_are_malformed_with_their_line() {
        let d = tempfile::tempdir().unwrap();
        let tsv = d.path().join("m.tsv");
        std::fs::write(&tsv, "text\ta\tb\nx\t1\t0\ny\t1\tmaybe\n").unwrap();
        let cols = Some(vec!["a".to_string(), "b".to_string()]);
        let opts = LoadOptions { columns: Columns { label_columns: cols, ..Default::default() }, ..Default::default() };
        let err = load_delimited(&tsv, b'\t', &opts).unwrap_err().to_string();
        assert!(err.contains("line 3: label column `b` holds `maybe`, not 0 or 1"), "{err}");

        let jsonl = d.path().join("m.jsonl");
        std::fs::write(&jsonl, "{\"text\": \"a\", \"label\": [\"x\", \"y\"]}\n{\"text\": \"b\", \"label\": [\"x\", [1]]}\n").unwrap();
        let err = load_jsonl(&jsonl, &LoadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("line 2: `label` holds [1], not a label"), "{err}");
        // A single-label model's evaluation data may not hold lists.
        let single = LoadOptions { multi_label: Some(false), skip_bad_rows: true, ..Default::default() };
        std::fs::write(&jsonl, "{\"text\": \"a\", \"label\": [\"x\", \"y\"]}\n{\"text\": \"b\", \"label\": \"x\"}\n{\"text\": \"c\", \"label\": \"y\"}\n").unwrap();
        let (ds, report) = load_jsonl(&jsonl, &single).unwrap();
        assert_eq!(ds.len(), 2);
        assert!(report.skipped[0].1.to_string().contains("a list of labels where one class is expected"));
        // A given label set: labels outside it are malformed, in lists too.
        let given = LoadOptions { classes: Some(vec!["x".into(), "z".into()]), ..Default::default() };
        let err = load_jsonl(&jsonl, &given).unwrap_err().to_string();
        assert!(err.contains("line 1: label `y` is not one of the classes (x, z)"), "{err}");
        // A forced multi-label load reads scalar labels as sets of one.
        let forced = LoadOptions { multi_label: Some(true), classes: Some(vec!["x".into(), "y".into()]), ..Default::default() };
        let (ds, _) = load_jsonl(&jsonl, &forced).unwrap();
        assert_eq!(ds.targets()[1], Target::labels(vec![0]));
        let folder = crate::data::load(d.path(), &forced).unwrap_err().to_string();
        assert!(folder.contains("multi-label data needs a .csv, .tsv, .jsonl or .parquet file"), "{folder}");
    }

    fn fixture() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet/reviews.parquet")
    }

    /// pyarrow's Parquet (tests/fixtures/parquet/make.py): strings, a null text, a list column.
    #[test]
    fn parquet_tables_load_like_jsonl_with_classes_or_label_sets() {
        let (ds, report) = load_parquet(&fixture(), &skipping()).unwrap();
        assert_eq!(ds.texts(), ["the movie was great", "awful and boring", "it was a film with a plot"]);
        assert_eq!(ds.targets(), [1, 0, 0].map(Target::Class));
        assert_eq!(report.skipped[0].1, Skipped::BadRow("no `text` field".into()));
        assert!(report.skipped[0].0.ends_with(":3"), "row numbers stand for lines: {:?}", report.skipped);
        let tags = LoadOptions { columns: Columns { label: "tags".into(), ..Default::default() }, ..skipping() };
        let (ds, _) = load_parquet(&fixture(), &tags).unwrap();
        assert!(ds.multi_label);
        assert_eq!(ds.class_names, ["complaint", "praise", "story"]);
        assert_eq!(ds.targets()[2], Target::labels(vec![1, 2]));
        let err = load_parquet(&fixture(), &LoadOptions { columns: Columns { text: "review".into(), ..Default::default() }, ..Default::default() })
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("column `review` not found; columns are: id, text, label, tags, note"), "{err}");
        let not_parquet = tempfile::NamedTempFile::with_suffix(".parquet").unwrap();
        std::fs::write(not_parquet.path(), "text,label\n").unwrap();
        let err = load_parquet(not_parquet.path(), &LoadOptions::default()).err().unwrap().to_string();
        assert!(err.contains("not a readable Parquet file"), "{err}");
    }
}

