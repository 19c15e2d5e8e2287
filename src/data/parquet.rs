//! Parquet tables read row by row through the parquet crate's record API, projected to the
//! columns asked for, each row as a JSON object (the shape the JSONL loader reads), so Parquet and
//! JSONL share one path from a row to an example.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use parquet::schema::types::Type;
use serde_json::{Map, Value};

use super::DataError;

/// The rows of a Parquet file, limited to some columns.
pub struct ParquetRows {
    rows: RowIter<'static>,
    path: PathBuf,
    /// Rows in the file, from its footer.
    pub num_rows: u64,
}

fn bad(path: &Path, e: parquet::errors::ParquetError) -> DataError {
    DataError::BadRecord { path: path.to_path_buf(), line: 0, reason: format!("not a readable Parquet file: {e}") }
}

/// Opens `path` for the `columns` that exist in it; a column asked for that the file lacks is
/// an error listing those it has. Columns are read lazily, a row group at a time.
pub fn open(path: &Path, columns: &[&str]) -> Result<ParquetRows, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(path, e))?;
    let num_rows = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let root = reader.metadata().file_metadata().schema_descr().root_schema_ptr();
    let fields = root.get_fields();
    let mut chosen = Vec::new();
    for &want in columns {
        match fields.iter().find(|f| f.name() == want) {
            Some(f) if !chosen.iter().any(|c: &Arc<Type>| c.name() == want) => chosen.push(Arc::clone(f)),
            Some(_) => {}
            None => {
                let available: Vec<&str> = fields.iter().map(|f| f.name()).collect();
                return Err(DataError::MissingColumn { path: path.to_path_buf(), column: want.to_string(), available: available.join(", ") });
            }
        }
    }
    let projection = Type::group_type_builder(root.name()).with_fields(chosen).build().map_err(|e| bad(path, e))?;
    let rows = RowIter::from_file_into(Box::new(reader)).project(Some(projection)).map_err(|e| bad(path, e))?;
    Ok(ParquetRows { rows, path: path.to_path_buf(), num_rows })
}

/// A field as JSON: strings as they are, binary columns as text when they hold UTF-8 (writers
/// differ in whether they mark text columns as such) and `null` when they do not, lists as arrays.
fn json(field: &Field) -> Value {
    match field {
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data()).map_or(Value::Null, |s| Value::String(s.to_string())),
        other => other.to_json_value(),
    }
}

fn object(row: &Row) -> Map<String, Value> {
    row.get_column_iter().map(|(name, field)| (name.clone(), json(field))).collect()
}

impl Iterator for ParquetRows {
    type Item = Result<Map<String, Value>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        Some(row.map(|r| object(&r)).map_err(|e| bad(&self.path, e)))
    }
}
