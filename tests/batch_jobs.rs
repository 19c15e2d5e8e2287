//! The batch jobs through the binary: `predict --input` scores every row of JSONL, CSV and
//! Parquet files exactly as `predict` scores the same texts, in input order with ids and failed
//! rows; `embed --input` writes MiniLM's PyTorch vectors (goldens) to `.npy` and Parquet.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tiny::{write_tiny_bert, write_tiny_reviews};
use common::{assert_close, f32s, golden, model_dir};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

fn bertkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bertkit"))
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "bertkit failed:\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// A tiny three-class classifier trained for one epoch (its scores differ by text).
fn tiny_model(root: &Path) -> std::path::PathBuf {
    let (base, data, out) = (root.join("tiny-bert"), root.join("reviews"), root.join("model"));
    write_tiny_bert(&base);
    write_tiny_reviews(&data, 12, true);
    ok(bertkit()
        .args(["train", "--model", base.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--seq-len", "16", "--quiet"])
        .output()
        .unwrap());
    out
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every row of a Parquet file, as JSON objects.
fn parquet_rows(path: &Path) -> Vec<Value> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    assert!(reader.metadata().num_row_groups() >= 1);
    reader.into_iter().map(|r| r.unwrap().to_json_value()).collect()
}

/// `predict --model MODEL --input INPUT --output OUTPUT extra…`, which must succeed: its stderr.
fn predict_job(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> String {
    ok(bertkit()
        .args(["predict", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap())
}

/// Regression: a quote left open in a CSV made the rest of the file one text, and the job wrote
/// fewer rows without a word. The rows are still read as CSV reads them (a quoted text may hold
/// line breaks), and the report names every row that spans lines.
#[test]
fn a_quote_left_open_in_a_csv_is_named_in_the_jobs_report() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let csv = tmp.path().join("open.csv");
    std::fs::write(&csv, "id,text\n1,good movie\n2,\"bad movie\n3,fine\n4,great\n").unwrap();
    let out = tmp.path().join("open.jsonl");
    let stderr = predict_job(&model, &csv, &out, &["--id-column", "id", "--quiet"]);
    assert!(stderr.contains("Wrote 2 rows"), "{stderr}");
    assert!(stderr.contains("1 rows hold line breaks inside quotes (line 3); if that is not intended, a quote is not closed"), "{stderr}");
    assert_eq!(jsonl(&out).len(), 2);
}

/// `--resume` with nothing to resume runs the whole job, and says so (as `train --resume` does).
#[test]
fn resume_without_an_unfinished_job_starts_from_the_first_row_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"good\"}\n{\"text\": \"bad\"}\n").unwrap();
    let out = tmp.path().join("out.jsonl");
    let stderr = predict_job(&model, &input, &out, &["--resume"]);
    assert!(stderr.contains(&format!("No unfinished job in {}.parts to resume: starting from the first row", out.display())), "{stderr}");
    assert_eq!(jsonl(&out).len(), 2);
}

const TEXTS: [&str; 5] = ["the movie was great", "awful and boring", "", "it was a film", "the plot was fun and good"];

#[test]
fn predict_jobs_score_every_row_like_predict_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let m = model.to_str().unwrap();
    let want: Value = {
        let good: Vec<&str> = TEXTS.iter().copied().filter(|t| !t.is_empty()).collect();
        let out = bertkit().args(["predict", "--json", "--engine", "kernels", "--model", m]).args(&good).output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let want_scores: Vec<Value> = want["predictions"].as_array().unwrap().iter().map(|p| p["scores"].clone()).collect();

    // CSV in (with ids, an empty text and a row with a field too many), JSONL out.
    let csv = tmp.path().join("in.csv");
    let mut text = String::from("id,text\n");
    for (i, t) in TEXTS.iter().enumerate() {
        text.push_str(&format!("id{i},{t}\n"));
    }
    text.push_str("id5,one,two\n");
    std::fs::write(&csv, text).unwrap();
    let out = tmp.path().join("out.jsonl");
    let job = |input: &Path, output: &Path, extra: &[&str]| {
        ok(bertkit()
            .args(["predict", "--engine", "kernels", "--model", m, "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()])
            .args(["--chunk-size", "2", "--quiet"])
            .args(extra)
            .output()
            .unwrap())
    };
    let stderr = job(&csv, &out, &["--id-column", "id"]);
    assert!(stderr.contains("Wrote 6 rows") && stderr.contains("2 rows could not be scored"), "{stderr}");
    assert!(
        stderr.contains("line 4 (empty text)")
            && stderr.contains("line 7 (3 fields where the header has 2; quote a text that contains the delimiter)"),
        "{stderr}"
    );
    assert!(!stderr.contains("inside quotes"), "no row spans lines: {stderr}");
    let rows = jsonl(&out);
    assert_eq!(rows.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), ["id0", "id1", "id2", "id3", "id4", "id5"]);
    let scored: Vec<Value> = rows.iter().filter(|r| r.get("error").is_none()).map(|r| r["scores"].clone()).collect();
    assert_eq!(scored, want_scores, "the job's scores are predict's");
    assert_eq!((rows[2]["row"].as_u64(), rows[2]["error"].as_str()), (Some(2), Some("empty text")));

    // The same rows as JSONL in, Parquet and CSV out.
    let input = tmp.path().join("in.jsonl");
    let lines: Vec<String> = TEXTS.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let pq = tmp.path().join("out.parquet");
    job(&input, &pq, &[]);
    let rows = parquet_rows(&pq);
    assert_eq!(rows.len(), 5);
    let classes = ["neg", "neutral", "pos"];
    let from_columns: Vec<Value> = rows
        .iter()
        .filter(|r| r["error"].is_null())
        .map(|r| Value::Array(classes.iter().map(|c| r[format!("score_{c}")].clone()).collect()))
        .collect();
    let (got, want) = (floats(&from_columns), floats(&want_scores));
    assert!(got.len() == want.len() && got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-6), "{got:?} vs {want:?}");
    assert_eq!(rows[2]["error"], "empty text");
    let csv_out = tmp.path().join("out.csv");
    job(&input, &csv_out, &[]);
    let table = std::fs::read_to_string(&csv_out).unwrap();
    assert!(table.starts_with("row,id,label,score,score_neg,score_neutral,score_pos,error\n"), "{table}");
    assert_eq!(table.lines().count(), 6);

    // Vertex AI's records: the instance and what the server would answer.
    let vertex = tmp.path().join("vertex.jsonl");
    job(&input, &vertex, &["--vertex"]);
    let rows = jsonl(&vertex);
    assert_eq!(rows[0]["instance"]["text"], TEXTS[0]);
    assert_eq!(rows[0]["prediction"]["scores"], want_scores[0]);
    assert_eq!(rows[2]["error"], "empty text");

    // pyarrow's Parquet in, with its int64 ids carried over.
    let fixture = common::root().join("tests/fixtures/parquet/reviews.parquet");
    let from_pq = tmp.path().join("from-parquet.jsonl");
    job(&fixture, &from_pq, &["--id-column", "id"]);
    let rows = jsonl(&from_pq);
    assert_eq!(rows.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), ["11", "12", "13", "14"]);
    assert_eq!(rows[2]["error"], "no `text` field");

    // What cannot work is refused before any scoring.
    let y = tmp.path().join("y.jsonl");
    let (input, out, y) = (input.to_str().unwrap(), out.to_str().unwrap(), y.to_str().unwrap());
    let npy = tmp.path().join("x.npy");
    for (args, why) in [
        (vec!["--input", input, "--output", npy.to_str().unwrap()], "unknown output format"),
        (vec!["--input", input, "--output", out], "--overwrite"),
        (vec!["--input", input, "--output", y, "--shard", "3/3"], "K/N"),
        (vec!["--input", input, "--output", y, "--pair-column", "b"], "drop --pair-column"),
        (vec!["--input", input, "--output", y, "--text-column", "review"], "column `review` not found; columns are: text"),
    ] {
        let e = bertkit().args(["predict", "--model", m]).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&e.stderr);
        assert!(!e.status.success() && stderr.contains(why), "{args:?}: {stderr}");
    }
}

/// The numbers of a list of arrays, in order.
fn floats(rows: &[Value]) -> Vec<f64> {
    rows.iter().flat_map(|v| v.as_array().into_iter().flatten().map(|x| x.as_f64().unwrap_or(f64::NAN))).collect()
}

/// A `.npy` file's `[rows, dim]` f32 values (the header's shape checked).
fn read_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && (10 + len).is_multiple_of(64), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let dims: Vec<usize> = shape.split(',').map(|d| d.trim().parse().unwrap()).collect();
    let values: Vec<f32> = bytes[10 + len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(values.len(), dims[0] * dims[1]);
    (dims[0], dims[1], values)
}

#[test]
fn embed_jobs_write_minilms_pytorch_vectors() {
    let g = golden("minilm_forward.json");
    let text = g["text"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, format!("{}\n{{\"text\": \"\"}}\n{}\n", serde_json::json!({ "text": text }), serde_json::json!({ "text": text }))).unwrap();
    let model = model_dir();
    let embed = |output: &Path, extra: &[&str]| {
        ok(bertkit()
            .args(["embed", "--engine", "kernels", "--model", model.to_str().unwrap(), "--input", input.to_str().unwrap()])
            .args(["--output", output.to_str().unwrap(), "--quiet"])
            .args(extra)
            .output()
            .unwrap())
    };
    // Mean pooling over the real tokens (the default), fp32: PyTorch's values.
    let npy = tmp.path().join("v.npy");
    embed(&npy, &[]);
    let (rows, dim, v) = read_npy(&npy);
    assert_eq!((rows, dim), (3, 384));
    assert_close(&v[..8], &f32s(&g["mean_pooled_real_tokens_first8"]), 1e-4, "mean pooling");
    assert!(v[dim..2 * dim].iter().all(|x| x.is_nan()), "the empty row is NaN, keeping rows aligned");
    assert_eq!(v[..dim], v[2 * dim..]);
    // The pooler, unit length, to Parquet.
    let pq = tmp.path().join("v.parquet");
    embed(&pq, &["--pooling", "pooler", "--normalize"]);
    let rows = parquet_rows(&pq);
    let vector: Vec<f32> = rows[0]["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let pooler = f32s(&g["unpadded_pooler_output_0_first8"]);
    let l2 = g["pooler_output_0_l2"].as_f64().unwrap() as f32;
    assert_close(&vector[..8], &pooler.iter().map(|x| x / l2).collect::<Vec<_>>(), 1e-4, "normalised pooler");
    assert!((vector.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!((rows[1]["vector"].as_array().map(Vec::len), rows[1]["error"].as_str()), (Some(0), Some("empty text")));
}
