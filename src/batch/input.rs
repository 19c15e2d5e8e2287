//! The rows of a batch job's input, streamed one at a time from JSONL, CSV/TSV or Parquet: each
//! row's text (and second text), its id, and the line (Parquet: row number) reports name. A row
//! that cannot be scored (not UTF-8, malformed, empty) is a row with the reason, never a stop.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::BatchError;
use crate::data::{ParquetRows, is_blank, open_parquet};

/// A row's text and second text, or why it has none (the row then gets an error record).
type Texts = Result<(String, Option<String>), String>;
/// A row before it is checked: its line (or row number), its id, its texts, and whether it
/// spans lines (a CSV/TSV record with a line break inside quotes).
type RawRow = (u64, Option<String>, Texts, bool);

/// A table format, from the file name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    Jsonl,
    Csv,
    Tsv,
    Parquet,
}

impl TableFormat {
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "tsv" | "tab" => Some(Self::Tsv),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// Which columns hold what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputColumns {
    pub text: String,
    /// The second texts of a sentence-pair model.
    pub pair: Option<String>,
    /// Carried over to the output; without it rows are known by their index.
    pub id: Option<String>,
}

/// One input row. `index` counts data rows from 0 (what shards and the output's `row` use).
#[derive(Clone, Debug, PartialEq)]
pub struct InputRow {
    pub index: u64,
    /// The file line (CSV: where the record starts; Parquet: the row number from 1).
    pub line: u64,
    pub id: Option<String>,
    /// The text and second text, or why the row cannot be scored.
    pub input: Result<(String, Option<String>), String>,
    /// A CSV/TSV record with a line break inside quotes: legitimate in a quoted text, and also
    /// what a quote left open looks like (the rows after it read as its text), so the job's
    /// report names such rows.
    pub spans_lines: bool,
}

enum Rows {
    Jsonl(std::iter::Enumerate<std::io::Split<BufReader<File>>>),
    Delimited(csv::ByteRecordsIntoIter<File>, Vec<String>),
    /// The rows, and how many the footer says there are.
    Parquet(std::iter::Enumerate<ParquetRows>, u64),
}

/// A streaming reader over an input file's rows.
pub struct InputRows {
    rows: Rows,
    columns: InputColumns,
    path: PathBuf,
    next_index: u64,
    /// JSONL has no header: its first object stands for one, so a misspelt column stops the
    /// job at once instead of failing every row.
    checked_fields: bool,
}

fn csv_error(path: &Path, e: &csv::Error) -> BatchError {
    BatchError::Csv { path: path.to_path_buf(), reason: e.to_string() }
}

impl InputRows {
    pub fn open(path: &Path, columns: &InputColumns) -> Result<Self, BatchError> {
        let format = TableFormat::of(path).ok_or_else(|| BatchError::UnknownFormat(path.to_path_buf(), "input", ""))?;
        let open = || File::open(path).map_err(|source| BatchError::Read { path: path.to_path_buf(), source });
        let rows = match format {
            TableFormat::Jsonl => Rows::Jsonl(BufReader::new(open()?).split(b'\n').enumerate()),
            TableFormat::Csv | TableFormat::Tsv => {
                let delimiter = if format == TableFormat::Csv { b',' } else { b'\t' };
                let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(open()?);
                let header: Vec<String> = reader
                    .byte_headers()
                    .map_err(|e| csv_error(path, &e))?
                    .iter()
                    .map(|h| String::from_utf8_lossy(h).trim().to_string())
                    .collect();
                let wanted = std::iter::once(&columns.text).chain(&columns.pair).chain(&columns.id);
                for want in wanted {
                    if !header.contains(want) {
                        return Err(crate::data::DataError::MissingColumn {
                            path: path.to_path_buf(),
                            column: want.clone(),
                            available: header.join(", "),
                        }
                        .into());
                    }
                }
                Rows::Delimited(reader.into_byte_records(), header)
            }
            TableFormat::Parquet => {
                let names: Vec<&str> =
                    std::iter::once(columns.text.as_str()).chain(columns.pair.as_deref()).chain(columns.id.as_deref()).collect();
                let rows = open_parquet(path, &names)?;
                let n = rows.num_rows;
                Rows::Parquet(rows.enumerate(), n)
            }
        };
        Ok(Self { rows, columns: columns.clone(), path: path.to_path_buf(), next_index: 0, checked_fields: false })
    }

    /// Rows in the file, counted by reading it once (CSV: records, so quoted line breaks do not
    /// count twice; Parquet: from the footer), for the progress bar and the shards' sizes.
    pub fn count(path: &Path, columns: &InputColumns) -> Result<u64, BatchError> {
        let mut rows = Self::open(path, columns)?;
        match &mut rows.rows {
            Rows::Parquet(_, n) => Ok(*n),
            Rows::Jsonl(lines) => {
                let mut n = 0;
                for (_, line) in lines {
                    let line = line.map_err(|source| BatchError::Read { path: path.to_path_buf(), source })?;
                    n += u64::from(!line.iter().all(u8::is_ascii_whitespace));
                }
                Ok(n)
            }
            Rows::Delimited(records, _) => {
                let mut n = 0;
                for r in records {
                    r.map_err(|e| csv_error(path, &e))?;
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    /// Text, second text and id from a JSON object (a JSONL line, a Parquet row).
    fn fields_of(&self, object: &Map<String, Value>) -> (Option<String>, Texts) {
        let field = |name: &str| match object.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(format!("no `{name}` field")),
            Some(other) => Ok(other.to_string()),
        };
        let id = self.columns.id.as_deref().and_then(|c| field(c).ok());
        let text = field(&self.columns.text);
        let pair = self.columns.pair.as_deref().map(field).transpose();
        (id, text.and_then(|t| pair.map(|p| (t, p))))
    }

    fn next_row(&mut self) -> Option<Result<RawRow, BatchError>> {
        loop {
            match &mut self.rows {
                Rows::Jsonl(lines) => {
                    let (i, line) = lines.next()?;
                    let bytes = match line {
                        Ok(b) => b,
                        Err(source) => return Some(Err(BatchError::Read { path: self.path.clone(), source })),
                    };
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let line = i as u64 + 1;
                    let parsed = match std::str::from_utf8(&bytes) {
                        Err(_) => Err("not valid UTF-8".to_string()),
                        Ok(s) => match serde_json::from_str::<Value>(s) {
                            Ok(Value::Object(o)) => Ok(o),
                            Ok(_) => Err("a JSON value where an object is expected".to_string()),
                            Err(e) => Err(format!("malformed JSON: {e}")),
                        },
                    };
                    return Some(Ok(match parsed {
                        Ok(object) => {
                            if !self.checked_fields {
                                self.checked_fields = true;
                                let wanted = std::iter::once(&self.columns.text).chain(&self.columns.pair).chain(&self.columns.id);
                                if let Some(missing) = wanted.into_iter().find(|c| !object.contains_key(c.as_str())) {
                                    let available = object.keys().cloned().collect::<Vec<_>>().join(", ");
                                    let error = crate::data::DataError::MissingColumn { path: self.path.clone(), column: missing.clone(), available };
                                    return Some(Err(error.into()));
                                }
                            }
                            let (id, input) = self.fields_of(&object);
                            (line, id, input, false)
                        }
                        Err(why) => (line, None, Err(why), false),
                    }));
                }
                Rows::Parquet(rows, _) => {
                    let (i, row) = rows.next()?;
                    return Some(match row {
                        Ok(object) => {
                            let (id, input) = self.fields_of(&object);
                            Ok((i as u64 + 1, id, input, false))
                        }
                        Err(e) => Err(e.into()),
                    });
                }
                Rows::Delimited(records, header) => {
                    let record = match records.next()? {
                        Ok(r) => r,
                        Err(e) => return Some(Err(csv_error(&self.path, &e))),
                    };
                    let line = record.position().map_or(0, |p| p.line());
                    let spans_lines = record.iter().any(|f| f.contains(&b'\n'));
                    let field = |name: &str| -> Result<String, String> {
                        let i = header.iter().position(|h| h == name).unwrap_or(0);
                        let bytes = record.get(i).ok_or_else(|| format!("no `{name}` field"))?;
                        String::from_utf8(bytes.to_vec()).map_err(|_| "not valid UTF-8".to_string())
                    };
                    // A malformed row keeps its id when the id's field is there, to be found again.
                    let id = self.columns.id.as_deref().and_then(|c| field(c).ok());
                    if record.len() != header.len() {
                        // The same hints as the training loader's (`data::table`).
                        let hint = if spans_lines {
                            "a quoted field runs across lines: is a quote left open?"
                        } else {
                            "quote a text that contains the delimiter"
                        };
                        let why = format!("{} fields where the header has {}; {hint}", record.len(), header.len());
                        return Some(Ok((line, id, Err(why), spans_lines)));
                    }
                    let text = field(&self.columns.text);
                    let pair = self.columns.pair.as_deref().map(field).transpose();
                    return Some(Ok((line, id, text.and_then(|t| pair.map(|p| (t, p))), spans_lines)));
                }
            }
        }
    }
}

impl Iterator for InputRows {
    type Item = Result<InputRow, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.next_row()?;
        let index = self.next_index;
        self.next_index += 1;
        Some(row.map(|(line, id, input, spans_lines)| {
            let input = input.and_then(|(text, pair)| {
                if is_blank(&text) || pair.as_deref().is_some_and(is_blank) {
                    Err("empty text".to_string())
                } else {
                    Ok((text, pair))
                }
            });
            InputRow { index, line, id, input, spans_lines }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(id: Option<&str>) -> InputColumns {
        InputColumns { text: "text".into(), pair: None, id: id.map(str::to_string) }
    }

    #[test]
    fn jsonl_rows_keep_their_lines_and_bad_rows_say_why() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.jsonl");
        let mut bytes = b"{\"id\": 7, \"text\": \"good\"}\n\n{\"text\": \"  \"}\n{oops\n".to_vec();
        bytes.extend_from_slice(b"{\"text\": \"\xff\"}\n{\"id\": \"x\"}\n[1]\n");
        std::fs::write(&p, bytes).unwrap();
        let rows: Vec<InputRow> = InputRows::open(&p, &columns(Some("id"))).unwrap().map(Result::unwrap).collect();
        assert_eq!(InputRows::count(&p, &columns(None)).unwrap(), 6);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0], InputRow { index: 0, line: 1, id: Some("7".into()), input: Ok(("good".into(), None)), spans_lines: false });
        let why: Vec<(u64, u64, String)> = rows[1..].iter().map(|r| (r.index, r.line, r.input.clone().unwrap_err())).collect();
        assert_eq!(why[0], (1, 3, "empty text".into()));
        assert!(why[1].2.starts_with("malformed JSON"));
        assert_eq!((why[2].1, why[2].2.as_str()), (5, "not valid UTF-8"));
        assert_eq!(why[3].2, "no `text` field");
        assert_eq!(rows[4].id.as_deref(), Some("x"));
        assert_eq!(why[4].2, "a JSON value where an object is expected");
    }

    #[test]
    fn csv_and_parquet_rows_with_ids_and_pairs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.csv");
        std::fs::write(&p, "id,text,pair\n1,\"a, quoted\nline\",b\n2,c\n3,d,e\n").unwrap();
        let cols = InputColumns { text: "text".into(), pair: Some("pair".into()), id: Some("id".into()) };
        let rows: Vec<InputRow> = InputRows::open(&p, &cols).unwrap().map(Result::unwrap).collect();
        assert_eq!(InputRows::count(&p, &cols).unwrap(), 3);
        assert_eq!(rows[0].input, Ok(("a, quoted\nline".to_string(), Some("b".to_string()))));
        assert!(rows[0].spans_lines && !rows[1].spans_lines);
        let why = (4, "2 fields where the header has 3; quote a text that contains the delimiter".to_string());
        assert_eq!((rows[1].line, rows[1].input.clone().unwrap_err()), why);
        assert_eq!((rows[2].index, rows[2].id.as_deref()), (2, Some("3")));
        let err = InputRows::open(&p, &InputColumns { text: "review".into(), pair: None, id: None }).err().unwrap().to_string();
        assert!(err.contains("column `review` not found; columns are: id, text, pair"), "{err}");

        let pq = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet/reviews.parquet");
        let rows: Vec<InputRow> = InputRows::open(&pq, &columns(Some("id"))).unwrap().map(Result::unwrap).collect();
        assert_eq!(InputRows::count(&pq, &columns(None)).unwrap(), 4);
        assert_eq!((rows[0].id.as_deref(), rows[0].line), (Some("11"), 1));
        assert_eq!(rows[2].input, Err("no `text` field".to_string()));
        assert!(matches!(InputRows::open(Path::new("x.txt"), &columns(None)), Err(BatchError::UnknownFormat(..))));
    }
}
