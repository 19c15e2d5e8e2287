//! Running the `bertkit` binary from the command-line tests: exit codes with stderr or stdout,
//! and a classifier trained from the tiny BERT fixture.

use std::path::Path;
use std::process::Command;

/// Runs `bertkit args…` and returns its exit code and stderr.
pub fn run(args: &[&str]) -> (Option<i32>, String) {
    run_at(None, args)
}

/// [`run`] with the kernels capped at `level` (`BERTKIT_CPU`).
pub fn run_at(level: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bertkit"));
    if let Some(level) = level {
        cmd.env("BERTKIT_CPU", level);
    }
    let out = cmd.args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `bertkit ARGS` with `env` set: its exit code and stdout.
pub fn run_stdout(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bertkit")).args(args).envs(env.iter().copied()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The BERT fixture checkpoint (64 positions: runs use `--seq-len 32`).
pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/families/bert");

/// A two-class CSV of 10 rows (8 to train on, 2 to validate) in `dir`; its path.
pub fn two_class_csv(dir: &Path) -> String {
    let data = dir.join("d.csv");
    std::fs::write(&data, format!("text,label\n{}", "good film,pos\nbad film,neg\n".repeat(5))).unwrap();
    data.to_str().unwrap().to_string()
}

/// A classifier trained from the fixture on [`two_class_csv`] in `dir`: the data's path and the
/// model folder's.
pub fn trained(dir: &Path) -> (String, String) {
    let (data, out) = (two_class_csv(dir), dir.join("m").to_str().unwrap().to_string());
    let (code, stderr) = train(&data, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    (data, out)
}

/// `bertkit train` of the fixture on `data` into `out` for one epoch, with `extra` flags.
pub fn train(data: &str, out: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["train", "--model", FIXTURE, "--data", data, "--out", out, "--seq-len", "32", "--epochs", "1", "--quiet"];
    args.extend_from_slice(extra);
    run(&args)
}
