//! GloVe text vectors (`word v1 … vN` per line): reading them, and building an embedding matrix
//! for a word vocabulary (the baseline's pretrained `Embedding` weights).

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
    #[error("{path}: no vector lines found")]
    Empty { path: PathBuf },
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

/// Writes `tokens[i]` with row `i` of `matrix` (`[tokens.len(), dim]`) per line in GloVe format.
pub fn write_glove(path: &Path, tokens: &[String], matrix: &[f32], dim: usize) -> Result<usize, GloveError> {
    let io = |source| GloveError::Io { path: path.to_path_buf(), source };
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
    }
}
