//! Command-line options that shape a run beyond its data and model: the learning-rate schedule,
//! ranking metrics and monitoring them, per-example predictions, the compute threads, and output
//! into a closed pipe.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::{FIXTURE, run, run_stdout, train, trained, two_class_csv};
/// `--lr-scheduler cosine --warmup-steps 2` follows transformers'
/// `get_cosine_schedule_with_warmup`: 8 steps (8 training rows, batch 4, 4 epochs), each
/// epoch's last rate in `history.json` at steps 1, 3, 5 and 7. A warm-up that leaves no step
/// after it is refused before training.
#[test]
fn lr_scheduler_and_warmup_steps_set_the_rate_at_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let rates = |name: &str, extra: &[&str]| -> (Vec<f64>, serde_json::Value) {
        let out = tmp.path().join(name);
        let mut flags = vec!["--epochs", "4", "--batch-size", "4", "--lr", "1e-3"];
        flags.extend_from_slice(extra);
        let mut args = vec!["train", "--model", FIXTURE, "--data", &data, "--out", out.to_str().unwrap(), "--seq-len", "32", "--quiet"];
        args.extend_from_slice(&flags);
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(0), "{extra:?}: {stderr}");
        let read = |f: &str| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap();
        let lr = read("history.json")["lr"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        (lr, read("bertkit.json")["training"]["plan"].clone())
    };
    let close = |got: &[f64], want: [f64; 4]| got.len() == 4 && got.iter().zip(want).all(|(g, w)| (g - w * 1e-3).abs() < 1e-9);
    let (cosine, plan) = rates("cosine", &["--lr-scheduler", "cosine", "--warmup-steps", "2"]);
    let half_cos = |p: f64| 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
    assert!(close(&cosine, [0.5, half_cos(1.0 / 6.0), half_cos(3.0 / 6.0), half_cos(5.0 / 6.0)]), "{cosine:?}");
    assert_eq!((plan["lr_scheduler"].as_str(), plan["warmup_steps"].as_u64()), (Some("cosine"), Some(2)), "{plan}");
    let (linear, _) = rates("linear", &["--warmup-steps", "2"]);
    assert!(close(&linear, [0.5, 5.0 / 6.0, 3.0 / 6.0, 1.0 / 6.0]), "{linear:?}");
    let (constant, _) = rates("constant", &["--lr-scheduler", "constant", "--warmup-ratio", "0"]);
    assert!(close(&constant, [1.0; 4]), "{constant:?}");

    let out = tmp.path().join("refused");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--batch-size", "4", "--warmup-steps", "2"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a warm-up of 2 steps leaves no step at the peak rate: this run has 2 (2 per epoch x 1 epochs)"), "{stderr}");
    assert!(!out.exists(), "a refused run exported");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--lr-scheduler", "step"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unknown learning-rate scheduler `step`: use linear, cosine or constant"), "{stderr}");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--warmup-steps", "2", "--warmup-ratio", "0.1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// `evaluate` reports ROC AUC and average precision, threshold-free scores that class weights
/// and imbalanced data call for: here checked against the AUC counted pair by pair from
/// `predict`'s own probabilities for the same texts. `--monitor val_auc` picks the best weights
/// by it, and is refused before training where the validation data has one class only.
#[test]
fn evaluate_reports_roc_auc_and_train_can_monitor_it() {
    let tmp = tempfile::tempdir().unwrap();
    let words = ["film", "movie", "story", "plot", "cast", "ending"];
    let rows: Vec<(String, &str)> = (0..24)
        .map(|i| {
            let (tone, label) = if i % 2 == 0 { ("good", "pos") } else { ("bad", "neg") };
            (format!("a {tone} {} with a {} {i}", words[i % 6], words[(i / 6) % 6]), label)
        })
        .collect();
    let csv = |rows: &[(String, &str)]| rows.iter().map(|(t, l)| format!("{t},{l}\n")).collect::<String>();
    let data = tmp.path().join("d.csv");
    std::fs::write(&data, format!("text,label\n{}", csv(&rows))).unwrap();
    let (data, out) = (data.to_str().unwrap(), tmp.path().join("m"));
    let flags = ["--monitor", "val_auc", "--eval-every", "2", "--batch-size", "4", "--lr", "1e-3"];
    let (code, stderr) =
        run(&[&["train", "--model", FIXTURE, "--data", data, "--out", out.to_str().unwrap(), "--seq-len", "32", "--quiet"][..], &flags]
            .concat());
    assert_eq!(code, Some(0), "{stderr}");
    let read = |p: &Path| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
    let history = read(&out.join("history.json"));
    assert_eq!(history["best"]["monitor"], "val_auc", "{history}");
    let evals = history["evaluations"].as_array().unwrap();
    let best = evals.iter().find(|e| e["step"] == history["best"]["step"]).unwrap();
    assert_eq!(best["val_auc"], history["best"]["value"], "{history}");
    assert!(history["val_auc"].as_array().unwrap().iter().all(|v| v.as_f64().is_some_and(|a| (0.0..=1.0).contains(&a))), "{history}");

    let report = tmp.path().join("eval.json");
    let out = out.to_str().unwrap();
    // Each text scored alone, in both commands: a batch's padding can move a score in its last
    // bits, which would turn near-ties between the two commands.
    let (code, stderr) = run(&["evaluate", "--model", out, "--data", data, "--batch-size", "1", "--output", report.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let ranking = read(&report)["report"]["ranking"].clone();
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let mut args = vec!["predict", "--json", "--batch-size", "1", "--model", out];
    args.extend_from_slice(&texts);
    let predict = Command::new(env!("CARGO_BIN_EXE_bertkit")).args(&args).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let p: Vec<f64> = v["predictions"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect();
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, (_, li)) in rows.iter().enumerate() {
        for (j, (_, lj)) in rows.iter().enumerate() {
            if *li == "pos" && *lj == "neg" {
                pairs += 1.0;
                wins += if p[i] > p[j] {
                    1.0
                } else if p[i] == p[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let auc = ranking["roc_auc"].as_f64().unwrap();
    assert!((auc - wins / pairs).abs() < 1e-9, "evaluate's {auc}, pair count {}: {ranking}", wins / pairs);

    // A validation file of one class: no AUC to monitor.
    let one_class = tmp.path().join("neg.csv");
    std::fs::write(&one_class, format!("text,label\n{}", csv(&rows[1..6].iter().step_by(2).cloned().collect::<Vec<_>>()))).unwrap();
    let refused = tmp.path().join("refused");
    let (code, stderr) = train(
        data,
        refused.to_str().unwrap(),
        &["--monitor", "val_auc", "--validation-data", one_class.to_str().unwrap(), "--labels", "neg,pos"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--monitor val_auc is undefined on this validation data"), "{stderr}");
    assert!(!refused.exists() && !tmp.path().join("refused.run").exists(), "a refused run trained");
}

/// Regression: `bertkit evaluate ... | head` panicked ("failed printing to stdout: Broken pipe")
/// with a backtrace once `head` had its lines. Printing into a pipe whose reader has gone now
/// ends the process quietly with 141, as a program that SIGPIPE ends.
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out =
        Command::new(env!("CARGO_BIN_EXE_bertkit")).args(["preprocess", "--model", FIXTURE, "a text"]).stdout(writer).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// `--threads N` (or `BERTKIT_THREADS`, before or after the subcommand) sizes the kernels'
/// thread pool, 0 is refused by name, and the thread count does not move a score: each row's
/// sums run in the same order however the rows are split over the threads.
#[test]
fn threads_size_the_compute_pool_and_leave_scores_alone() {
    let (code, stdout) = run_stdout(&["--threads", "1", "cpu"], &[]);
    assert!(code == Some(0) && stdout.contains(", 1 threads;"), "{stdout}");
    let (code, stdout) = run_stdout(&["cpu", "--threads", "3"], &[]);
    assert!(code == Some(0) && stdout.contains(", 3 threads;"), "{stdout}");
    let (code, stdout) = run_stdout(&["cpu"], &[("BERTKIT_THREADS", "5")]);
    assert!(code == Some(0) && stdout.contains(", 5 threads;"), "{stdout}");
    let (code, stderr) = run(&["cpu", "--threads", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid value '0' for '--threads <THREADS>': must be at least 1, got 0"), "{stderr}");

    let tmp = tempfile::tempdir().unwrap();
    let (_, model) = trained(tmp.path());
    let texts = ["good film", "a bad film with a long plot and a longer ending than most", "bad"];
    let scores = |threads: &str| {
        let (code, stdout) = run_stdout(&[&["predict", "--json", "--threads", threads, "--model", &model][..], &texts].concat(), &[]);
        assert_eq!(code, Some(0), "{stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        v["predictions"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(scores("1"), scores("3"));
}

/// `--label-smoothing 0.5` on one sigmoid trains toward targets 0.75 and 0.25 (Keras'
/// `y(1 - s) + s/2`): the scores settle there instead of running to 1 and 0 as without it, and
/// the training loss stops at the smoothed targets' entropy, H(0.75) = 0.5623, which no model
/// can go below. Validation reports the plain loss. 1.0 is refused by name.
#[test]
fn label_smoothing_holds_the_scores_at_the_smoothed_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let fit = |name: &str, smoothing: &str| -> (Vec<f64>, serde_json::Value) {
        let out = tmp.path().join(name);
        let out = out.to_str().unwrap();
        let flags = ["--epochs", "30", "--lr", "3e-3", "--batch-size", "4", "--last-weights", "--label-smoothing", smoothing];
        let (code, stderr) =
            run(&[&["train", "--model", FIXTURE, "--data", &data, "--out", out, "--seq-len", "32", "--quiet"][..], &flags].concat());
        assert_eq!(code, Some(0), "{stderr}");
        let (code, stdout) = run_stdout(&["predict", "--json", "--model", out, "good film", "bad film"], &[]);
        assert_eq!(code, Some(0), "{stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let scores = v["predictions"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect();
        (scores, serde_json::from_str(&std::fs::read_to_string(Path::new(out).join("history.json")).unwrap()).unwrap())
    };
    let (plain, _) = fit("plain", "0");
    let (smoothed, history) = fit("smoothed", "0.5");
    assert!((smoothed[0] - 0.75).abs() < 0.05 && (smoothed[1] - 0.25).abs() < 0.05, "{smoothed:?}");
    assert!(plain[0] > smoothed[0] + 0.05 && plain[1] < smoothed[1] - 0.05, "plain {plain:?}, smoothed {smoothed:?}");
    let last = |c: &str| history[c].as_array().unwrap().last().unwrap().as_f64().unwrap();
    let entropy = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert!(last("loss") >= entropy - 1e-6 && last("loss") < entropy + 0.02, "training loss {} vs H(0.75) {entropy}", last("loss"));
    assert!(last("val_loss") < entropy, "validation's plain loss {} is not smoothed", last("val_loss"));

    let out = tmp.path().join("refused");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--label-smoothing", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("label smoothing must be in [0, 1), got 1"), "{stderr}");
    assert!(!out.exists());
}

/// `--gradient-accumulation-steps 2 --batch-size 2`: optimizer steps of 4 examples, so 8
/// training rows make 2 steps an epoch (evaluated after each with `--eval-every 1`). The trainers
/// that take a step whole refuse it before reading the data, and 0 is refused by name.
#[test]
fn gradient_accumulation_makes_steps_of_several_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let out = tmp.path().join("acc");
    let (code, stderr) =
        train(&data, out.to_str().unwrap(), &["--batch-size", "2", "--gradient-accumulation-steps", "2", "--eval-every", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let history: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    let steps: Vec<u64> = history["evaluations"].as_array().unwrap().iter().map(|e| e["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2], "{history}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("bertkit.json")).unwrap()).unwrap();
    assert_eq!(meta["training"]["plan"]["gradient_accumulation_steps"], 2);

    let missing = tmp.path().join("no-such-data");
    let missing = missing.to_str().unwrap();
    for (extra, trainer) in
        [(&["--freeze-encoder"][..], "the frozen-encoder head"), (&["--arch", "bilstm", "--embedding-dim", "8"][..], "the BiLSTM baseline")]
    {
        let args = [&["train", "--data", missing, "--out", "x", "--gradient-accumulation-steps", "2"][..], extra].concat();
        let args = if extra[0] == "--arch" { args } else { [&args[..], &["--model", FIXTURE, "--seq-len", "32"]].concat() };
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains(&format!("{trainer} takes each step's examples whole")), "{extra:?}: {stderr}");
    }
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--gradient-accumulation-steps", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'--gradient-accumulation-steps <GRADIENT_ACCUMULATION_STEPS>': must be at least 1, got 0"), "{stderr}");
}

/// `--max-steps 3` at 2 steps an epoch (8 rows, batch 4): a whole epoch, then one that ends at
/// step 3, evaluated there; it replaces `--epochs`, so both together are refused.
#[test]
fn max_steps_trains_exactly_that_many_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let out = tmp.path().join("steps");
    let args = ["train", "--model", FIXTURE, "--data", &data, "--out", out.to_str().unwrap(), "--seq-len", "32", "--quiet"];
    let (code, stderr) = run(&[&args[..], &["--max-steps", "3", "--batch-size", "4"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let history: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    let steps: Vec<u64> = history["evaluations"].as_array().unwrap().iter().map(|e| e["step"].as_u64().unwrap()).collect();
    assert_eq!((steps, history["epoch"].as_array().unwrap().len()), (vec![2, 3], 2), "{history}");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--max-steps", "3"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'--epochs <EPOCHS>' cannot be used with '--max-steps <MAX_STEPS>'"), "{stderr}");
}

/// `evaluate --predictions` writes one line per example, in data order, that agrees with the
/// report and with `predict`: the `correct` lines are the accuracy's count (subset accuracy for
/// a multi-label model), the losses average to the report's loss, and `predicted` is the label
/// `predict` gives the same text. Any name but `.jsonl` is refused before scoring.
#[test]
fn evaluate_writes_each_examples_prediction() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |p: &Path| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
    let lines = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // The report's accuracy is subset accuracy for a multi-label model.
    let check = |rows: &[serde_json::Value], report: &serde_json::Value| {
        let correct = rows.iter().filter(|r| r["correct"] == true).count() as f64;
        let expected = report["metrics"]["accuracy"].as_f64().unwrap() * rows.len() as f64;
        assert!((correct - expected).abs() < 1e-6, "{correct} correct lines, the report's accuracy says {expected}");
        let loss = rows.iter().map(|r| r["loss"].as_f64().unwrap()).sum::<f64>() / rows.len() as f64;
        assert!((loss - report["loss"].as_f64().unwrap()).abs() < 1e-9, "mean line loss {loss}: {report}");
    };

    // Single-label: the training rows and the same two texts with the other label, so that
    // whatever the model learnt, lines of both values of `correct` are checked.
    let (train_data, model) = trained(tmp.path());
    let data = tmp.path().join("eval.csv").to_str().unwrap().to_string();
    std::fs::write(&data, format!("{}good film,neg\nbad film,pos\n", std::fs::read_to_string(&train_data).unwrap())).unwrap();
    let (preds, report) = (tmp.path().join("p.jsonl"), tmp.path().join("eval.json"));
    let args = ["evaluate", "--model", &model, "--data", &data, "--batch-size", "1", "--output", report.to_str().unwrap()];
    let (code, stderr) = run(&[&args[..], &["--predictions", preds.to_str().unwrap()]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let rows = lines(&preds);
    assert!(!tmp.path().join("p.jsonl.partial").exists(), "the staging file is renamed into place");
    let texts: Vec<String> = std::fs::read_to_string(&data).unwrap().lines().skip(1).map(|l| l.to_string()).collect();
    assert_eq!(rows.len(), texts.len());
    let report = read(&report)["report"].clone();
    check(&rows, &report);
    let mut predict = vec!["predict", "--json", "--batch-size", "1", "--model", &model];
    let plain: Vec<&str> = texts.iter().map(|l| l.split(',').next().unwrap()).collect();
    predict.extend_from_slice(&plain);
    let (code, stdout) = run_stdout(&predict, &[]);
    assert_eq!(code, Some(0));
    let predicted = serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["predictions"].clone();
    for (i, (row, line)) in rows.iter().zip(&texts).enumerate() {
        let (text, label) = line.split_once(',').unwrap();
        assert_eq!((row["index"].as_u64(), row["text"].as_str(), row["label"].as_str()), (Some(i as u64), Some(text), Some(label)));
        assert_eq!(row["predicted"], predicted[i]["label"], "line {i}: {row}");
        // The same f32: the line writes it shortest, `predict --json` as an f64.
        let f32_of = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
        assert_eq!(f32_of(&row["score"]), f32_of(&predicted[i]["score"]), "line {i}: {row}");
        assert_eq!(row["correct"], row["label"] == row["predicted"], "line {i}: {row}");
    }
    assert!(rows.iter().any(|r| r["correct"] == true) && rows.iter().any(|r| r["correct"] == false));

    // Multi-label: label sets, decided at the model's threshold.
    let ml = tmp.path().join("ml.jsonl");
    let sets = [r#"["a","b"]"#, r#"["a"]"#, "[]", r#"["b"]"#];
    let body: String = (0..12).map(|i| format!("{{\"text\": \"row {i} of {}\", \"label\": {}}}\n", i % 4, sets[i % 4])).collect();
    std::fs::write(&ml, body).unwrap();
    let ml_model = tmp.path().join("ml-model");
    let (code, stderr) = train(ml.to_str().unwrap(), ml_model.to_str().unwrap(), &["--validation-split", "0.25"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (ml_preds, ml_report) = (tmp.path().join("ml-p.jsonl"), tmp.path().join("ml-eval.json"));
    let (ml, ml_model) = (ml.to_str().unwrap(), ml_model.to_str().unwrap());
    let args = ["evaluate", "--model", ml_model, "--data", ml, "--output", ml_report.to_str().unwrap(), "--predictions"];
    let (code, stderr) = run(&[&args[..], &[ml_preds.to_str().unwrap()]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let rows = lines(&ml_preds);
    assert_eq!(rows.len(), 12);
    check(&rows, &read(&ml_report)["report"]);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["labels"], serde_json::from_str::<serde_json::Value>(sets[i % 4]).unwrap(), "line {i}: {row}");
        assert_eq!(row["correct"], row["labels"] == row["predicted"], "line {i}: {row}");
        assert_eq!(row["scores"].as_array().map(Vec::len), Some(2), "{row}");
    }

    // Refused before any scoring.
    let csv = tmp.path().join("p.csv");
    let (code, stderr) = run(&["evaluate", "--model", &model, "--data", &data, "--predictions", csv.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("name a .jsonl file") && !csv.exists(), "{stderr}");
}

/// A binary model's `--threshold` decides its label in `predict` and `evaluate` alike (the
/// score stays the probability), is stored by `train` as the model's default, and is refused
/// before training for a softmax of three classes, which would have stored it unused.
#[test]
fn a_binary_threshold_decides_predict_and_evaluate_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, model) = trained(tmp.path());
    let texts = ["good film", "bad film"];
    let predict = |extra: &[&str]| -> Vec<(String, f64)> {
        let (code, stdout) = run_stdout(&[&["predict", "--json", "--model", &model][..], extra, &texts].concat(), &[]);
        assert_eq!(code, Some(0), "{stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        v["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["label"].as_str().unwrap().to_string(), p["score"].as_f64().unwrap()))
            .collect()
    };
    let plain = predict(&[]);
    let (lo, hi) = (plain[0].1.min(plain[1].1), plain[0].1.max(plain[1].1));
    assert!(hi - lo > 1e-6, "the two texts score alike: {plain:?}");
    // Between the two probabilities: the higher one is `pos`, the lower `neg`, whatever 0.5 says.
    let mid = ((lo + hi) / 2.0).to_string();
    let at_mid = predict(&["--threshold", &mid]);
    for ((label, p), (_, p0)) in at_mid.iter().zip(&plain) {
        assert_eq!(p, p0, "the threshold moved a score");
        assert_eq!(label, if *p == hi { "pos" } else { "neg" }, "{at_mid:?} at {mid}");
    }
    // evaluate counts the same decisions: its per-example lines equal predict's labels, and its
    // confusion matrix their counts.
    let preds = tmp.path().join("p.jsonl");
    let report = tmp.path().join("e.json");
    let args = ["evaluate", "--model", &model, "--data", &data, "--threshold", &mid, "--output", report.to_str().unwrap()];
    let (code, stderr) = run(&[&args[..], &["--predictions", preds.to_str().unwrap()]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&preds).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = |text: &str| at_mid[texts.iter().position(|t| *t == text).unwrap()].0.clone();
    assert!(lines.iter().all(|l| l["predicted"] == want(l["text"].as_str().unwrap())), "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let counts = &v["report"]["confusion"]["counts"];
    let predicted_pos = counts[0][1].as_u64().unwrap() + counts[1][1].as_u64().unwrap();
    assert_eq!(predicted_pos as usize, lines.iter().filter(|l| l["predicted"] == "pos").count(), "{counts}");
    assert_eq!(predicted_pos, 5, "one of the two texts is pos at {mid}, five rows each: {counts}");

    // train stores its threshold as the model's default.
    let stored = tmp.path().join("stored");
    let (code, stderr) = train(&data, stored.to_str().unwrap(), &["--threshold", &mid]);
    assert_eq!(code, Some(0), "{stderr}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(stored.join("bertkit.json")).unwrap()).unwrap();
    assert_eq!(meta["threshold"].as_f64().map(|t| t as f32), Some(mid.parse::<f64>().unwrap() as f32), "{meta}");

    // Three classes: refused before training.
    let three = tmp.path().join("three.csv");
    std::fs::write(&three, format!("text,label\n{}", "good film,pos\nbad film,neg\nok film,mid\n".repeat(4))).unwrap();
    let refused = tmp.path().join("refused");
    let (code, stderr) = train(three.to_str().unwrap(), refused.to_str().unwrap(), &["--threshold", "0.7"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--threshold 0.7 is for binary and multi-label tasks"), "{stderr}");
    assert!(!refused.exists(), "a refused run exported a model");
}

/// Regression: once binary models had a threshold, the batch job took "has a threshold" for
/// "multi-label", so a binary model's CSV gained a `labels` column and its Vertex records a
/// `{label, score, scores}` object instead of the positive class's probability.
#[test]
fn batch_predictions_of_a_binary_model_keep_the_binary_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, model) = trained(tmp.path());
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"good film\"}\n{\"text\": \"bad film\"}\n").unwrap();
    let job = |out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let args = ["predict", "--model", &model, "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()];
        let (code, stderr) = run(&[&args[..], extra].concat());
        assert_eq!(code, Some(0), "{stderr}");
        std::fs::read_to_string(out).unwrap()
    };
    let csv = job("out.csv", &[]);
    assert!(csv.starts_with("row,id,label,score,score_neg,score_pos,error\n"), "{csv}");
    let vertex = job("vertex.jsonl", &["--vertex"]);
    for line in vertex.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["prediction"].is_f64(), "the positive class's probability: {v}");
    }
}
