//! Paths shared by the integration tests: the checkpoint the setup fetched and `../shared`.
//! A missing asset fails the test with the command that provides it; nothing is skipped.
#![allow(dead_code)]

pub mod cli;
pub mod families;
pub mod tiny;

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `models/minilm`, fetched by `scripts/assets.sh` (override: `BERTKIT_TEST_MODEL`).
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("BERTKIT_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| root().join("models/minilm"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "checkpoint missing at {}: run ./scripts/assets.sh (the test command does)",
        dir.display()
    );
    dir
}

/// `../shared` beside the project (override: `BERTKIT_SHARED`).
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("BERTKIT_SHARED").map(PathBuf::from).unwrap_or_else(|| root().join("../shared"));
    assert!(dir.join("golden").is_dir(), "shared folder with golden/ missing at {}", dir.display());
    dir
}

pub fn golden(name: &str) -> serde_json::Value {
    let path = shared_dir().join("golden").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("int") as u32).collect()
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tol, "{what}[{i}]: got {a}, expected {e} (tolerance {tol})");
    }
}

/// Fails unless every two rows of `values` (rows of `width`) differ somewhere by more than `gap`:
/// a golden comparison at tolerance `tol` only sees a bug that mixes rows up (every row given row
/// 0's scores, a head that drops its activation) when the rows themselves are far apart.
pub fn assert_rows_differ(values: &[f32], width: usize, gap: f32, what: &str) {
    let rows: Vec<&[f32]> = values.chunks(width).collect();
    for (i, a) in rows.iter().enumerate() {
        for (j, b) in rows.iter().enumerate().skip(i + 1) {
            let d = a.iter().zip(*b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(d > gap, "{what}: golden rows {i} and {j} differ by only {d} (need > {gap})");
        }
    }
}

/// One line in the test output naming what a golden or gradient test ran and at which kernels
/// level (`scripts/test.sh` shows these lines, with the skips, for every level it runs).
pub fn ran(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    eprintln!("ran: {test}: {what} at level {}", bertkit_kernels::isa().name());
}
