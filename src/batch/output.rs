//! What a batch job writes: one record per input row, in input order. Chunks are written as JSONL
//! parts first (what `--resume` counts); the finished job merges them into the requested format:
//! JSONL (plain or Vertex AI's `{"instance", "prediction"}`), CSV/TSV, Parquet, or `.npy`
//! (vectors only).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::{Value, json};

use super::{BatchError, InputRow};
use crate::predict::Prediction;

/// The output file's format, from its extension (`vertex`: Vertex AI batch prediction's JSONL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Jsonl,
    Vertex,
    Csv,
    Tsv,
    Parquet,
    Npy,
}

impl OutputFormat {
    /// `vertex` asks for Vertex AI's record shape (a `.jsonl` file).
    pub fn of(path: &Path, vertex: bool, vectors: bool) -> Result<Self, BatchError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let hint = if vectors { ", or .npy for vectors" } else { "" };
        let unknown = || BatchError::UnknownFormat(path.to_path_buf(), "output", hint);
        let format = match ext.as_str() {
            "jsonl" | "ndjson" | "json" if vertex => Self::Vertex,
            "jsonl" | "ndjson" | "json" => Self::Jsonl,
            "csv" if !vertex => Self::Csv,
            "tsv" | "tab" if !vertex => Self::Tsv,
            "parquet" | "pq" if !vertex => Self::Parquet,
            "npy" if vectors && !vertex => Self::Npy,
            _ => return Err(unknown()),
        };
        Ok(format)
    }
}

/// What the rows hold.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OutputKind {
    /// Classifier scores: `multi_label` models answer labels above a threshold; `binary` ones
    /// a single probability in the server's (Vertex) shape.
    Predictions { class_names: Vec<String>, binary: bool, multi_label: bool },
    Vectors { dim: usize },
}

/// A scored row's result.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Prediction(Prediction),
    Vector(Vec<f32>),
}

/// One row's record in the part files (the plain JSONL output's shape; Vertex's for `vertex`).
pub fn record(row: &InputRow, outcome: &Result<Outcome, String>, kind: &OutputKind, format: OutputFormat) -> Value {
    if format == OutputFormat::Vertex {
        let mut instance = json!({});
        if let Ok((text, pair)) = &row.input {
            instance["text"] = json!(text);
            if let Some(p) = pair {
                instance["text_pair"] = json!(p);
            }
        }
        if let Some(id) = &row.id {
            instance["id"] = json!(id);
        }
        return match outcome {
            Ok(o) => json!({ "instance": instance, "prediction": match (o, kind) {
                (Outcome::Prediction(p), OutputKind::Predictions { binary, .. }) => p.instance_json(*binary),
                (Outcome::Prediction(p), OutputKind::Vectors { .. }) => p.instance_json(false),
                (Outcome::Vector(x), _) => json!(x),
            } }),
            Err(e) => json!({ "instance": instance, "error": e, "line": row.line }),
        };
    }
    let mut v = json!({ "row": row.index });
    if let Some(id) = &row.id {
        v["id"] = json!(id);
    }
    match outcome {
        Ok(Outcome::Prediction(p)) => match &p.labels {
            Some(labels) => {
                v["labels"] = json!(labels);
                v["scores"] = json!(p.scores);
            }
            None => {
                v["label"] = json!(p.label);
                v["score"] = json!(p.score);
                v["scores"] = json!(p.scores);
            }
        },
        Ok(Outcome::Vector(x)) => v["vector"] = json!(x),
        Err(e) => {
            v["line"] = json!(row.line);
            v["error"] = json!(e);
        }
    }
    v
}

/// The part files in order, each a JSONL file of records.
/// `rows`: how many records the parts hold (the `.npy` header states it before the data).
pub fn merge(parts: &[PathBuf], rows: u64, out: &Path, format: OutputFormat, kind: &OutputKind) -> Result<(), BatchError> {
    let write_err = |source| BatchError::Write { path: out.to_path_buf(), source };
    let file = File::create(out).map_err(write_err)?;
    match format {
        OutputFormat::Jsonl | OutputFormat::Vertex => {
            let mut w = BufWriter::new(file);
            for part in parts {
                let mut r = File::open(part).map_err(|source| BatchError::Read { path: part.clone(), source })?;
                std::io::copy(&mut r, &mut w).map_err(write_err)?;
            }
            w.flush().map_err(write_err)
        }
        OutputFormat::Csv | OutputFormat::Tsv => {
            let delimiter = if format == OutputFormat::Csv { b',' } else { b'\t' };
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(file);
            let header = table_header(kind);
            let csv_err = |e: csv::Error| BatchError::Csv { path: out.to_path_buf(), reason: e.to_string() };
            w.write_record(&header).map_err(csv_err)?;
            for_each_record(parts, |v| w.write_record(table_row(&v, kind)).map_err(csv_err))?;
            w.flush().map_err(write_err)
        }
        OutputFormat::Npy => {
            let OutputKind::Vectors { dim } = kind else {
                return Err(BatchError::UnknownFormat(out.to_path_buf(), "output", ""));
            };
            let mut w = BufWriter::new(file);
            w.write_all(&crate::data::npy::header(rows, *dim)).map_err(write_err)?;
            for_each_record(parts, |v| {
                // A row that could not be embedded is NaN, so rows stay aligned with the input.
                let x = v["vector"].as_array();
                for j in 0..*dim {
                    let value = x.and_then(|x| x.get(j)).and_then(Value::as_f64).map_or(f32::NAN, |f| f as f32);
                    w.write_all(&value.to_le_bytes()).map_err(write_err)?;
                }
                Ok(())
            })?;
            w.flush().map_err(write_err)
        }
        OutputFormat::Parquet => write_parquet(parts, file, out, kind),
    }
}

fn for_each_record(parts: &[PathBuf], mut f: impl FnMut(Value) -> Result<(), BatchError>) -> Result<(), BatchError> {
    for part in parts {
        let read_err = |source| BatchError::Read { path: part.clone(), source };
        for line in BufReader::new(File::open(part).map_err(read_err)?).lines() {
            let line = line.map_err(read_err)?;
            let v = serde_json::from_str(&line).map_err(|e| BatchError::Read { path: part.clone(), source: e.into() })?;
            f(v)?;
        }
    }
    Ok(())
}

/// Column names of the CSV/TSV and Parquet outputs: `score_<class>` per class (per label).
fn score_columns(kind: &OutputKind) -> Vec<String> {
    match kind {
        OutputKind::Predictions { class_names, .. } => class_names.iter().map(|c| format!("score_{c}")).collect(),
        OutputKind::Vectors { .. } => Vec::new(),
    }
}

fn table_header(kind: &OutputKind) -> Vec<String> {
    let mut h = vec!["row".to_string(), "id".to_string()];
    match kind {
        OutputKind::Predictions { multi_label: true, .. } => h.push("labels".into()),
        OutputKind::Predictions { .. } => h.extend(["label".to_string(), "score".to_string()]),
        OutputKind::Vectors { dim } => h.extend((0..*dim).map(|j| format!("v{j}"))),
    }
    h.extend(score_columns(kind));
    h.push("error".into());
    h
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A record as CSV fields; multi-label labels joined with `;`.
fn table_row(v: &Value, kind: &OutputKind) -> Vec<String> {
    let mut row = vec![text(&v["row"]), text(&v["id"])];
    let scores = |n: usize, key: &str| (0..n).map(|j| text(&v[key][j])).collect::<Vec<_>>();
    match kind {
        OutputKind::Predictions { class_names, multi_label: true, .. } => {
            let labels: Vec<String> = v["labels"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
            row.push(labels.join(";"));
            row.extend(scores(class_names.len(), "scores"));
        }
        OutputKind::Predictions { class_names, .. } => {
            row.extend([text(&v["label"]), text(&v["score"])]);
            row.extend(scores(class_names.len(), "scores"));
        }
        OutputKind::Vectors { dim } => row.extend(scores(*dim, "vector")),
    }
    row.push(text(&v["error"]));
    row
}

/// The Parquet schema: `row`, `id`, the label(s) and score columns (or the vector as a repeated
/// float, which pyarrow reads as `list<float>`), `error`.
fn parquet_schema(kind: &OutputKind) -> String {
    let mut fields = vec!["required int64 row;".to_string(), "optional binary id (UTF8);".to_string()];
    match kind {
        OutputKind::Predictions { multi_label: true, .. } => fields.push("repeated binary labels (UTF8);".into()),
        OutputKind::Predictions { .. } => fields.extend(["optional binary label (UTF8);".to_string(), "optional float score;".to_string()]),
        OutputKind::Vectors { .. } => fields.push("repeated float vector;".into()),
    }
    fields.extend(parquet_score_names(kind).iter().map(|n| format!("optional float {n};")));
    fields.push("optional binary error (UTF8);".into());
    format!("message predictions {{ {} }}", fields.join(" "))
}

/// One row group per part: bounded memory whatever the job's size.
fn write_parquet(parts: &[PathBuf], file: File, out: &Path, kind: &OutputKind) -> Result<(), BatchError> {
    let err = |e: parquet::errors::ParquetError| BatchError::Parquet { path: out.to_path_buf(), reason: e.to_string() };
    let schema = Arc::new(parse_message_type(&parquet_schema(kind)).map_err(err)?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(err)?;
    for part in parts {
        let mut records = Vec::new();
        for_each_record(std::slice::from_ref(part), |v| {
            records.push(v);
            Ok(())
        })?;
        let columns = parquet_columns(&records, kind);
        let mut group = writer.next_row_group().map_err(err)?;
        let mut columns = columns.into_iter();
        while let Some(mut col) = group.next_column().map_err(err)? {
            match columns.next() {
                Some(Column::Long(values)) => col.typed::<Int64Type>().write_batch(&values, None, None).map(drop),
                Some(Column::Str(values, def, rep)) => col.typed::<ByteArrayType>().write_batch(&values, Some(&def), rep.as_deref()).map(drop),
                Some(Column::Float(values, def, rep)) => col.typed::<FloatType>().write_batch(&values, Some(&def), rep.as_deref()).map(drop),
                None => Err(parquet::errors::ParquetError::General("more columns than values".into())),
            }
            .map_err(err)?;
            col.close().map_err(err)?;
        }
        group.close().map_err(err)?;
    }
    writer.close().map_err(err)?;
    Ok(())
}

/// The score columns' Parquet names: `score_<class>` with characters outside letters, digits and
/// `_` replaced by `_` (the schema parser's rule), and a `_<index>` suffix where two collide.
fn parquet_score_names(kind: &OutputKind) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (j, column) in score_columns(kind).iter().enumerate() {
        let clean: String = column.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        names.push(if names.contains(&clean) { format!("{clean}_{j}") } else { clean });
    }
    names
}

/// Values with definition levels (and repetition levels for repeated columns).
enum Column {
    Long(Vec<i64>),
    Str(Vec<ByteArray>, Vec<i16>, Option<Vec<i16>>),
    Float(Vec<f32>, Vec<i16>, Option<Vec<i16>>),
}

fn optional_str(records: &[Value], key: &str) -> Column {
    let present: Vec<Option<String>> = records.iter().map(|v| v.get(key).filter(|x| !x.is_null()).map(text)).collect();
    let def = present.iter().map(|p| i16::from(p.is_some())).collect();
    Column::Str(present.into_iter().flatten().map(|s| ByteArray::from(s.as_str())).collect(), def, None)
}

fn optional_float(records: &[Value], f: impl Fn(&Value) -> Option<f64>) -> Column {
    let present: Vec<Option<f32>> = records.iter().map(|v| f(v).map(|x| x as f32)).collect();
    let def = present.iter().map(|p| i16::from(p.is_some())).collect();
    Column::Float(present.into_iter().flatten().collect(), def, None)
}

/// A repeated column: an empty list is one (def 0, rep 0) entry; element k of a row has rep 0
/// for k = 0 and 1 after.
fn levels(lens: &[usize]) -> (Vec<i16>, Vec<i16>) {
    let (mut def, mut rep) = (Vec::new(), Vec::new());
    for &n in lens {
        if n == 0 {
            def.push(0);
            rep.push(0);
        }
        for k in 0..n {
            def.push(1);
            rep.push(i16::from(k > 0));
        }
    }
    (def, rep)
}

fn parquet_columns(records: &[Value], kind: &OutputKind) -> Vec<Column> {
    let array = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    let mut cols = vec![Column::Long(records.iter().map(|v| v["row"].as_i64().unwrap_or(-1)).collect()), optional_str(records, "id")];
    match kind {
        OutputKind::Predictions { multi_label: true, .. } => {
            let lists: Vec<Vec<Value>> = records.iter().map(|v| array(v, "labels")).collect();
            let (def, rep) = levels(&lists.iter().map(Vec::len).collect::<Vec<_>>());
            let values = lists.iter().flatten().map(|x| ByteArray::from(text(x).as_str())).collect();
            cols.push(Column::Str(values, def, Some(rep)));
        }
        OutputKind::Predictions { .. } => {
            cols.push(optional_str(records, "label"));
            cols.push(optional_float(records, |v| v["score"].as_f64()));
        }
        OutputKind::Vectors { .. } => {
            let lists: Vec<Vec<Value>> = records.iter().map(|v| array(v, "vector")).collect();
            let (def, rep) = levels(&lists.iter().map(Vec::len).collect::<Vec<_>>());
            let values = lists.iter().flatten().map(|x| x.as_f64().unwrap_or(f64::NAN) as f32).collect();
            cols.push(Column::Float(values, def, Some(rep)));
        }
    }
    for j in 0..score_columns(kind).len() {
        cols.push(optional_float(records, |v| v["scores"][j].as_f64()));
    }
    cols.push(optional_str(records, "error"));
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_levels_mark_empty_lists_and_list_starts() {
        assert_eq!(levels(&[2, 0, 1]), (vec![1, 1, 0, 1], vec![0, 1, 0, 0]));
    }

    #[test]
    fn formats_follow_the_extension_and_refuse_what_cannot_hold_the_rows() {
        assert_eq!(OutputFormat::of(Path::new("a.jsonl"), true, false).unwrap(), OutputFormat::Vertex);
        assert_eq!(OutputFormat::of(Path::new("a.PARQUET"), false, false).unwrap(), OutputFormat::Parquet);
        assert!(OutputFormat::of(Path::new("a.npy"), false, false).is_err(), "predictions are not vectors");
        assert_eq!(OutputFormat::of(Path::new("a.npy"), false, true).unwrap(), OutputFormat::Npy);
        assert!(OutputFormat::of(Path::new("a.csv"), true, false).is_err(), "Vertex's shape is JSONL");
    }
}
