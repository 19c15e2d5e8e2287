//! Bad counts, probabilities and optimizer settings on the command line get a clear error naming
//! the flag or setting, before anything is written: never a panic, a silent clamp, or a run that
//! measures or trains nothing.

mod common;

use std::process::Command;

use common::cli::{FIXTURE, run, run_at, train, trained, two_class_csv};

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
