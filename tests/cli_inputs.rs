//! Bad counts and probabilities on the command line get a clear error naming the flag, before any
//! file is read: never a panic, a silent clamp, or a run that measures nothing.

use std::process::Command;

/// Runs `bertkit args…` and returns its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bertkit")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Regressions: `bench --batch 0` panicked in `chunks(0)`; `bench --steps 0` and `--single 0`
/// printed rows with nothing timed; `evaluate --batch-size 0` ran with batches of 1;
/// `loadtest --instances 0` sent empty requests; `train --dropout 1.5` trained.
#[test]
fn zero_counts_and_a_dropout_past_one_are_refused_naming_the_flag() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["bench", "--no-peers", "--mode", "infer", "--batch", "0"], "--batch <BATCH>", "must be at least 1, got 0"),
        (&["bench", "--no-peers", "--mode", "infer", "--steps", "0"], "--steps <STEPS>", "must be at least 1, got 0"),
        (&["bench", "--no-peers", "--mode", "latency", "--single", "0"], "--single <SINGLE>", "must be at least 1, got 0"),
        // predict's batch size was checked only for --input jobs: texts on the command line
        // ran with batches of 1.
        (&["predict", "--model", "m", "--batch-size", "0", "text"], "--batch-size <BATCH_SIZE>", "must be at least 1, got 0"),
        (
            &["predict", "--model", "m", "--input", "i.csv", "--output", "o.jsonl", "--chunk-size", "0"],
            "--chunk-size <CHUNK_SIZE>",
            "must be at least 1, got 0",
        ),
        (&["evaluate", "--model", "m", "--data", "d", "--batch-size", "0"], "--batch-size <BATCH_SIZE>", "must be at least 1, got 0"),
        (&["loadtest", "--url", "http://127.0.0.1:9/p", "--instances", "0"], "--instances <INSTANCES>", "must be at least 1, got 0"),
        (
            &["loadtest", "--url", "http://127.0.0.1:9/p", "--concurrency", "1,0"],
            "--concurrency <CONCURRENCY>",
            "must be at least 1, got 0",
        ),
        (
            &["train", "--model", "m", "--data", "d", "--out", "o", "--dropout", "1.5"],
            "--dropout <DROPOUT>",
            "1.5 is not a dropout probability in [0, 1)",
        ),
    ];
    for (args, flag, why) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(why) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
