//! Bad counts, probabilities and optimizer settings on the command line get a clear error naming
//! the flag or setting, before anything is written: never a panic, a silent clamp, or a run that
//! measures or trains nothing.

use std::path::Path;
use std::process::Command;

/// Runs `bertkit args…` and returns its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    run_at(None, args)
}

/// [`run`] with the kernels capped at `level` (`BERTKIT_CPU`).
fn run_at(level: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bertkit"));
    if let Some(level) = level {
        cmd.env("BERTKIT_CPU", level);
    }
    let out = cmd.args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `bench --mode` is one of its measurements, checked before anything loads: a misspelt mode
/// was reported after the model and reviews had loaded, and `train-frozen` on the kernels timed
/// burn's step under the kernels' name (or, without burn, was called an unknown mode).
#[test]
fn bench_modes_are_checked_before_anything_loads() {
    let (code, stderr) = run(&["bench", "--no-peers", "--mode", "Infer", "--model", "no-such-model"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'Infer' for '--mode <MODE>'") && stderr.contains("possible values: all, train, train-frozen"),
        "{stderr}"
    );
    let (code, stderr) = run(&["bench", "--no-peers", "--mode", "train-frozen", "--engine", "kernels", "--model", "no-such-model"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--mode train-frozen times burn's frozen-encoder step: use --engine burn"), "{stderr}");
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
        // serve named the three counts together ("max batch size, queue capacity and max
        // instances must be at least 1").
        (&["serve", "--model", "m", "--max-batch-size", "0"], "--max-batch-size <MAX_BATCH_SIZE>", "must be at least 1, got 0"),
        (&["serve", "--model", "m", "--queue-capacity", "0"], "--queue-capacity <QUEUE_CAPACITY>", "must be at least 1, got 0"),
        (&["serve", "--model", "m", "--max-instances", "0"], "--max-instances <MAX_INSTANCES>", "must be at least 1, got 0"),
        (&["serve", "--model", "m", "--max-connections", "0"], "--max-connections <MAX_CONNECTIONS>", "must be at least 1, got 0"),
        (
            &["train", "--model", "m", "--data", "d", "--out", "o", "--dropout", "1.5"],
            "--dropout <DROPOUT>",
            "1.5 is not a dropout probability in [0, 1)",
        ),
        // --max-train 0 and --max-val 0 stopped at "need training and validation examples";
        // the BiLSTM's 0 sizes were named two at a time after the data loaded, and
        // --max-vocab 0 trained on a vocabulary of only the OOV id.
        (
            &["train", "--model", "m", "--data", "d", "--out", "o", "--max-train", "0"],
            "--max-train <MAX_TRAIN>",
            "must be at least 1, got 0",
        ),
        (&["train", "--model", "m", "--data", "d", "--out", "o", "--max-val", "0"], "--max-val <MAX_VAL>", "must be at least 1, got 0"),
        (
            &["train", "--arch", "bilstm", "--data", "d", "--out", "o", "--lstm-units", "0"],
            "--lstm-units <LSTM_UNITS>",
            "must be at least 1, got 0",
        ),
        (&["train", "--arch", "bilstm", "--data", "d", "--out", "o", "--max-len", "0"], "--max-len <MAX_LEN>", "must be at least 1, got 0"),
        (
            &["train", "--arch", "bilstm", "--data", "d", "--out", "o", "--max-vocab", "0"],
            "--max-vocab <MAX_VOCAB>",
            "must be at least 1, got 0",
        ),
        (
            &["train", "--arch", "bilstm", "--data", "d", "--out", "o", "--embedding-dim", "0"],
            "--embedding-dim <EMBEDDING_DIM>",
            "must be at least 1, got 0",
        ),
    ];
    for (args, flag, why) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(why) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The BERT fixture checkpoint (64 positions: runs use `--seq-len 32`).
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/families/bert");

/// A two-class CSV of 10 rows (8 to train on, 2 to validate) in `dir`; its path.
fn two_class_csv(dir: &Path) -> String {
    let data = dir.join("d.csv");
    std::fs::write(&data, format!("text,label\n{}", "good film,pos\nbad film,neg\n".repeat(5))).unwrap();
    data.to_str().unwrap().to_string()
}

/// A classifier trained from the fixture on [`two_class_csv`] in `dir`: the data's path and the
/// model folder's.
fn trained(dir: &Path) -> (String, String) {
    let (data, out) = (two_class_csv(dir), dir.join("m").to_str().unwrap().to_string());
    let (code, stderr) = train(&data, &out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    (data, out)
}

/// `bertkit train` of the fixture on `data` into `out` for one epoch, with `extra` flags.
fn train(data: &str, out: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["train", "--model", FIXTURE, "--data", data, "--out", out, "--seq-len", "32", "--epochs", "1", "--quiet"];
    args.extend_from_slice(extra);
    run(&args)
}

/// Regressions: `train --lr -1` stopped at clap's "unexpected argument '-1'"; `--adam-epsilon 0`
/// trained into NaN and was reported as divergence ("try a lower learning rate");
/// `--label-delimiter ""` split every label into its characters (`pos` → p, o, s) and trained a
/// multi-label model on them. Each is now refused by name before anything is written.
#[test]
fn negative_or_zero_optimizer_settings_and_an_empty_label_delimiter_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (two_class_csv(tmp.path()), tmp.path().join("out"));
    let cases: &[(&[&str], &str)] = &[
        (&["--lr", "-1"], "learning rate must be a positive number, got -1"),
        (&["--weight-decay", "-0.1"], "weight decay must be in [0, 1), got -0.1"),
        (&["--adam-epsilon", "0"], "adam epsilon must be a positive number, got 0"),
        (&["--label-delimiter", ""], "the label delimiter is empty"),
    ];
    for (extra, why) in cases {
        let (code, stderr) = train(&data, out.to_str().unwrap(), extra);
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains(why) && !stderr.contains("panicked"), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?}: the refused run wrote {}", out.display());
    }
}

/// Regression: a `--test` file that was missing, or held a label the training data lacks, was
/// read only after training, and the run ended with that error and nothing exported. It is
/// now read before the first step.
#[test]
fn a_bad_test_file_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let unknown = tmp.path().join("unknown.csv");
    std::fs::write(&unknown, "text,label\ngood film,pos\nso-so film,neutral\n").unwrap();
    let missing = tmp.path().join("missing.csv");
    let cases = [(&missing, "missing.csv does not exist"), (&unknown, "line 3: label `neutral` is not one of the classes (neg, pos)")];
    for (test, why) in cases {
        let out = tmp.path().join("out");
        let (code, stderr) = train(&data, out.to_str().unwrap(), &["--test", test.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(!tmp.path().join("out.run").exists(), "the run trained (and checkpointed) before reading --test: {stderr}");
    }
    let out = tmp.path().join("out");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--test", &data]);
    assert_eq!(code, Some(0), "a good --test file: {stderr}");
    let meta = std::fs::read_to_string(out.join("bertkit.json")).unwrap();
    assert!(meta.contains("\"test\""), "the export holds the test scores: {meta}");
}

/// Settings that neither the checkpoint nor the data can change are refused before either is
/// read (each of these was found after the data loaded, some after tokenizing it); `--seq-len`
/// is checked against the checkpoint before the data loads.
#[test]
fn train_refuses_its_flags_before_reading_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let absent = tmp.path().join("no-such-data");
    let data = absent.to_str().unwrap();
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    let bert = ["train", "--model", FIXTURE, "--data", data, "--out", out];
    let bilstm = ["train", "--arch", "bilstm", "--data", data, "--out", out];
    let cases: &[(&[&str], &[&str], &str)] = &[
        (&bert, &["--seq-len", "65"], "sequence length 65 is longer than the 64 tokens"),
        (&bert, &["--engine", "kernels-int8"], "--engine kernels-int8 is for inference"),
        (&["train", "--data", data, "--out", out], &[], "--arch bert needs --model DIR"),
        (&bilstm, &[], "--arch bilstm needs --glove FILE (or --embedding-dim N for random vectors)"),
        (&bilstm, &["--glove", "no-such-vectors.txt"], "--glove no-such-vectors.txt does not exist"),
        (&bilstm, &["--embedding-dim", "8", "--pair-column", "answer"], "--pair-column needs --arch bert"),
        (&bilstm, &["--embedding-dim", "8", "--save-int8"], "drop --save-int8"),
    ];
    for (args, extra, why) in cases {
        let (code, stderr) = run(&[*args, *extra].concat());
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains(why) && !stderr.contains("no-such-data"), "{extra:?}: {stderr}");
    }
    // What those runs would have read: the data is the next thing checked.
    let (code, stderr) = run(&[&bilstm[..], &["--embedding-dim", "8"]].concat());
    assert!(code == Some(1) && stderr.contains("no-such-data"), "{stderr}");
}

/// A split that leaves nothing to validate on was refused as "need training and validation
/// examples"; it now says why and what fraction would hold one out.
#[test]
fn a_validation_split_that_holds_out_nothing_says_what_would() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("three.csv");
    std::fs::write(&data, "text,label\ngood film,pos\nbad film,neg\ngreat film,pos\n").unwrap();
    let out = tmp.path().join("out");
    let (code, stderr) = train(data.to_str().unwrap(), out.to_str().unwrap(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--validation-split 0.2 of 3 rows holds out none") && stderr.contains("at least 0.334"), "{stderr}");
    let (code, stderr) = train(data.to_str().unwrap(), out.to_str().unwrap(), &["--validation-split", "0.334"]);
    assert_eq!(code, Some(0), "the fraction the error names holds one out: {stderr}");
}

/// `--validation-data` validates on its own file and trains on all of `--data`; its labels are
/// read as the training data's classes (one that the training data lacks is refused before the
/// first step), and it cannot be given with `--validation-split`.
#[test]
fn validation_data_validates_on_its_own_file_and_trains_on_all_of_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let dev = tmp.path().join("dev.csv");
    std::fs::write(&dev, "text,label\ngreat film,pos\ndull film,neg\nfine film,pos\n").unwrap();
    let out = tmp.path().join("out");
    let (code, stderr) = train(&data, out.to_str().unwrap(), &["--validation-data", dev.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("bertkit.json")).unwrap()).unwrap();
    let training = &meta["training"];
    assert_eq!((training["train_examples"].as_u64(), training["validation_examples"].as_u64()), (Some(10), Some(3)), "{training}");
    assert_eq!(training["validation_data"].as_str(), dev.to_str());
    assert!(training["validation_split"].is_null(), "{training}");

    let unknown = tmp.path().join("unknown.csv");
    std::fs::write(&unknown, "text,label\ngreat film,pos\nso-so film,neutral\n").unwrap();
    let refused = tmp.path().join("refused");
    let (code, stderr) = train(&data, refused.to_str().unwrap(), &["--validation-data", unknown.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("line 3: label `neutral` is not one of the classes (neg, pos)"), "{stderr}");
    assert!(!tmp.path().join("refused.run").exists(), "the refused run trained");

    let both = ["--validation-data", dev.to_str().unwrap(), "--validation-split", "0.1"];
    let (code, stderr) = train(&data, refused.to_str().unwrap(), &both);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("'--validation-data <VALIDATION_DATA>' cannot be used with '--validation-split <VALIDATION_SPLIT>'"),
        "{stderr}"
    );
}

/// Regression: `--resume` on other data (another file, split or --max-train) carried on from the
/// checkpoint's step and epoch over examples it had not trained on, without a word; the
/// checkpoint now records its training split's size and such a resume is refused by it.
#[test]
fn a_resume_on_other_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    let (code, stderr) = train(&data, out, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = train(&data, out, &["--resume", "--max-train", "5"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the checkpoint trained on 8 examples, but this run has 5"), "{stderr}");
    let (code, stderr) = train(&data, out, &["--resume"]);
    assert_eq!(code, Some(0), "the same data resumes: {stderr}");
}

/// `--class-weight` weighs each class's examples in the training loss: on data of 8 `neg` to 2
/// `pos`, the same seeded run with `pos` weighted scores `pos` higher than without. `balanced`
/// is scikit-learn's; a class the data lacks and multi-label data are refused by name before
/// training.
#[test]
fn class_weights_move_the_model_toward_the_weighted_class() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("imbalanced.csv");
    let rows: String = (0..8).map(|i| format!("bad film {i},neg\n")).collect();
    std::fs::write(&data, format!("text,label\n{rows}good film,pos\ngreat film,pos\n")).unwrap();
    let data = data.to_str().unwrap();
    let score = |name: &str, extra: &[&str]| -> (f64, String) {
        let out = tmp.path().join(name);
        let steps = ["--lr", "1e-3", "--batch-size", "4", "--epochs", "3", "--last-weights", "--validation-split", "0.2"];
        let train = Command::new(env!("CARGO_BIN_EXE_bertkit"))
            .args(["train", "--model", FIXTURE, "--data", data, "--out", out.to_str().unwrap(), "--seq-len", "32", "--quiet"])
            .args(steps)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&train.stdout).into_owned();
        assert!(train.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&train.stderr));
        let predict = Command::new(env!("CARGO_BIN_EXE_bertkit"))
            .args(["predict", "--json", "--model", out.to_str().unwrap(), "bad film 1", "good film"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
        let scores: Vec<f64> = v["predictions"].as_array().unwrap().iter().map(|p| p["score"].as_f64().unwrap()).collect();
        (scores.iter().sum::<f64>() / scores.len() as f64, stdout)
    };
    let (plain, _) = score("plain", &[]);
    let (weighted, stdout) = score("weighted", &["--class-weight", "pos=20"]);
    assert!(stdout.contains("Class weights: neg 1.0000, pos 20.0000"), "{stdout}");
    assert!(weighted > plain + 0.01, "pos weighted 20x scored {weighted}, unweighted {plain}");
    let (balanced, stdout) = score("balanced", &["--class-weight", "balanced"]);
    // 8 training rows after the 0.2 split; which two are held out decides the counts, so the
    // printed weights are checked against the split's own counts in the unit tests: here, that
    // `pos`, the rarer class, weighs more than `neg`.
    let weights: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Class weights: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .split(", ")
        .map(|w| w.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(weights.len() == 2 && weights[1] > weights[0], "{weights:?}");
    assert!(balanced > plain, "balanced scored {balanced}, unweighted {plain}");

    let out = tmp.path().join("refused");
    let (code, stderr) = train(data, out.to_str().unwrap(), &["--class-weight", "positive=2"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--class-weight names `positive`, which is not one of the classes (neg, pos)"), "{stderr}");
    let tags = tmp.path().join("tags.jsonl");
    std::fs::write(&tags, "{\"text\": \"a\", \"labels\": [\"x\", \"y\"]}\n{\"text\": \"b\", \"labels\": [\"y\"]}\n".repeat(3)).unwrap();
    let (code, stderr) = train(tags.to_str().unwrap(), out.to_str().unwrap(), &["--label-column", "labels", "--class-weight", "balanced"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--class-weight is for single-label data"), "{stderr}");
    assert!(!tmp.path().join("refused.run").exists(), "a refused run trained");
    let (code, stderr) = train(data, out.to_str().unwrap(), &["--class-weight", "pos=0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the weight of `pos` must be a positive number, got 0"), "{stderr}");
}

/// Regression: `evaluate --labels a,b` on a model whose classes are neg, pos ignored --labels
/// without a word (the model's classes win); now it is refused, naming both.
#[test]
fn evaluate_refuses_labels_that_differ_from_the_models_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = trained(tmp.path());
    let (code, stderr) = run(&["evaluate", "--model", &out, "--data", &data, "--labels", "a,b"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--labels a,b differs from the model's classes (neg, pos)"), "{stderr}");
    let (code, stderr) = run(&["evaluate", "--model", &out, "--data", &data, "--labels", "neg,pos"]);
    assert_eq!(code, Some(0), "the model's own classes are fine: {stderr}");
}

/// A class that `--labels` declares but no training row holds got an output the model could
/// never learn, without a word; training now warns, naming it.
#[test]
fn training_warns_of_a_declared_class_that_no_example_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = two_class_csv(tmp.path());
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (code, stderr) = train(&data, &out("three"), &["--labels", "pos,neg,neutral"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("holds `neutral`: the model gets an output for it that it cannot learn"), "{stderr}");
    let (code, stderr) = train(&data, &out("two"), &["--labels", "pos,neg"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("cannot learn"), "every class has examples: {stderr}");
}

/// `--engine kernels-bf16` on a CPU level without bf16 GEMMs ran in fp32 without a word (and
/// `train` printed "Bf16 GEMMs"); predict, evaluate and train now say so (serve logs it). The
/// portable level runs on every CPU.
#[test]
fn an_engine_the_cpu_level_cannot_run_as_asked_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = trained(tmp.path());
    let out = out.as_str();
    let note = "note: --engine kernels-bf16 runs in fp32 here: this CPU's kernels level (portable) has no bf16 GEMMs";
    let (code, stderr) = run_at(Some("portable"), &["predict", "--model", out, "--engine", "kernels-bf16", "good film"]);
    assert!(code == Some(0) && stderr.contains(note), "{stderr}");
    let (code, stderr) = run_at(Some("portable"), &["evaluate", "--model", out, "--data", &data, "--engine", "kernels-bf16"]);
    assert!(code == Some(0) && stderr.contains(note), "{stderr}");
    let fine_tune =
        ["train", "--model", FIXTURE, "--data", &data, "--seq-len", "32", "--epochs", "1", "--quiet", "--engine", "kernels-bf16"];
    let again = tmp.path().join("again");
    let (code, stderr) = run_at(Some("portable"), &[&fine_tune[..], &["--out", again.to_str().unwrap()]].concat());
    assert!(code == Some(0) && stderr.contains(note), "fine-tuning says so too: {stderr}");
    for engine in ["kernels", "auto", "kernels-int8"] {
        let (code, stderr) = run_at(Some("portable"), &["predict", "--model", out, "--engine", engine, "good film"]);
        assert!(code == Some(0) && !stderr.contains("note:"), "{engine} runs as asked: {stderr}");
    }
}

/// A switch's environment variable took only `true`/`false`: `BERTKIT_JSON=1`, what a container
/// manifest usually holds, was refused. It now takes 1/0, yes/no, on/off too, and refuses
/// anything else by name.
#[test]
fn a_switchs_environment_variable_takes_one_and_zero() {
    let preprocess = |value: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_bertkit"))
            .env("BERTKIT_JSON", value)
            .args(["preprocess", "--model", FIXTURE, "--seq-len", "8", "a text"])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for on in ["1", "yes", "on", "true"] {
        let (code, stdout, stderr) = preprocess(on);
        assert!(code == Some(0) && stdout.starts_with('{'), "BERTKIT_JSON={on}: {stdout} {stderr}");
    }
    for off in ["0", "no", "off", "false"] {
        let (code, stdout, stderr) = preprocess(off);
        assert!(code == Some(0) && stdout.starts_with("Keys"), "BERTKIT_JSON={off}: {stdout} {stderr}");
    }
    let (code, _, stderr) = preprocess("maybe");
    assert!(code == Some(2) && stderr.contains("invalid value 'maybe' for '--json'"), "{stderr}");
}

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
