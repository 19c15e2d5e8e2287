//! `bertkit evaluate`: loss, accuracy, precision, recall, F1, ROC AUC, average precision and the
//! confusion matrix of an exported model on labelled data (multi-label: micro/macro and
//! per-label scores, subset accuracy, Hamming loss), and optionally each example's prediction.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::artifact::ClassifierBundle;
use bertkit::metrics::{EvalReport, LabelScores, MultiLabelMetrics, RankingScores};
use bertkit::predict::{Engine, Predictor};
use clap::Args;

use super::args::say_note;
use super::data_args::DataArgs;
use super::evaluate_rows;
use super::probability;

#[derive(Args, Debug)]
pub struct EvaluateCmd {
    /// A folder written by `bertkit train`.
    #[arg(long, env = "BERTKIT_MODEL")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Where to write the JSON report (default: MODEL/evaluation.json).
    #[arg(long, env = "BERTKIT_OUTPUT")]
    output: Option<PathBuf>,
    /// Texts scored per batch.
    #[arg(long, default_value = "64", value_parser = super::args::nonzero, env = "BERTKIT_BATCH_SIZE")]
    batch_size: NonZeroUsize,
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    device: DeviceSpec,
    /// auto (the kernels on the CPU, in bf16 where measured faster: AMX, AMD with AVX512-BF16;
    /// burn with --device cuda), burn, kernels, kernels-bf16 or kernels-int8 (opt-in;
    /// `--precision int8` says the same).
    #[arg(long, alias = "precision", default_value = "auto", env = "BERTKIT_ENGINE")]
    engine: Engine,
    /// Binary and multi-label models: the probability at which the positive class (each label)
    /// counts as predicted (default: the model's, set at training). A softmax model refuses one.
    #[arg(long, value_parser = probability, env = "BERTKIT_THRESHOLD")]
    threshold: Option<f32>,
    /// Also write one JSON line per example (.jsonl): its text, true and predicted labels,
    /// scores, `correct` and its loss, in data order (the highest losses are the model's most
    /// confident mistakes).
    #[arg(long, env = "BERTKIT_PREDICTIONS")]
    predictions: Option<PathBuf>,
}

pub fn print_report(r: &EvalReport, classes: &[String]) {
    if let Some(m) = &r.multi_label {
        print_multi_label(r.loss, m, classes);
        print_ranking(r.ranking, "labels");
        return;
    }
    let m = &r.metrics;
    println!("loss: {:.4} - accuracy: {:.4} - precision: {:.4} - recall: {:.4} - f1: {:.4}", r.loss, m.accuracy, m.precision, m.recall, m.f1);
    print_ranking(r.ranking, "classes, one-vs-rest");
    let width = classes.iter().map(String::len).max().unwrap_or(4).max(6);
    println!("Confusion matrix (rows: true, columns: predicted):");
    print!("{:>width$}", "");
    for c in classes {
        print!(" {c:>width$}");
    }
    println!();
    for (c, row) in classes.iter().zip(&r.confusion.counts) {
        print!("{c:>width$}");
        for v in row {
            print!(" {v:>width$}");
        }
        println!();
    }
    // scikit-learn's `classification_report`.
    let width = print_scores(classes, &r.per_class);
    let support: u64 = r.per_class.iter().map(|s| s.support).sum();
    println!("{:>width$} {:>9} {:>9} {:>9.4} {support:>9}", "accuracy", "", "", m.accuracy);
    print_average("macro avg", LabelScores::macro_average(&r.per_class), width);
    print_average("weighted avg", LabelScores::weighted_average(&r.per_class), width);
}

/// ROC AUC and average precision: the positive class's, or their macro mean over `what`.
fn print_ranking(ranking: Option<RankingScores>, what: &str) {
    let Some(k) = ranking else {
        println!("roc auc: undefined (no class here has both examples of it and examples without it)");
        return;
    };
    let over = if k.of > 1 { format!(" (macro over {} of {} {what})", k.averaged_over, k.of) } else { String::new() };
    println!("roc auc: {:.4} - average precision: {:.4}{over}", k.roc_auc, k.average_precision);
}

/// The per-class (or per-label) rows of a `classification_report`; the width of its first
/// column.
fn print_scores(names: &[String], scores: &[LabelScores]) -> usize {
    let width = names.iter().map(String::len).max().unwrap_or(5).max(12);
    println!("{:>width$} {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "f1", "support");
    for (name, s) in names.iter().zip(scores) {
        println!("{name:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}", s.precision, s.recall, s.f1, s.support);
    }
    width
}

fn print_average(name: &str, s: LabelScores, width: usize) {
    println!("{name:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}", s.precision, s.recall, s.f1, s.support);
}

/// scikit-learn's `classification_report` for multi-label data, with subset accuracy and
/// Hamming loss.
fn print_multi_label(loss: f64, m: &MultiLabelMetrics, labels: &[String]) {
    println!(
        "loss: {loss:.4} - subset accuracy: {:.4} - hamming loss: {:.4} - micro f1: {:.4} - macro f1: {:.4} (threshold {})",
        m.subset_accuracy, m.hamming_loss, m.micro_f1, m.macro_f1, m.threshold as f32
    );
    let width = print_scores(labels, &m.per_label);
    let support: u64 = m.per_label.iter().map(|s| s.support).sum();
    println!("{:>width$} {:>9.4} {:>9.4} {:>9.4} {support:>9}", "micro avg", m.micro_precision, m.micro_recall, m.micro_f1);
    print_average("macro avg", LabelScores::macro_average(&m.per_label), width);
    print_average("weighted avg", LabelScores::weighted_average(&m.per_label), width);
}

impl EvaluateCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let device = self.device;
        if let Some(path) = &self.predictions {
            evaluate_rows::check_path(path)?;
        }
        let bundle = ClassifierBundle::load(&self.model)
            .with_context(|| format!("loading {}", self.model.display()))?;
        let classes = bundle.meta.class_names.clone();
        let ds = self.data.load(Some((classes.clone(), bundle.meta.multi_label)))?;
        let mut predictor = Predictor::with_engine(bundle, device, self.engine.resolve(self.device))?;
        predictor.set_batch_size(self.batch_size);
        say_note(predictor.engine_note());
        if let Some(origin) = predictor.int8_origin() {
            println!("{origin}");
        }
        if let Some(t) = self.threshold {
            predictor.set_threshold(t).with_context(|| format!("--threshold {t} with {}", self.model.display()))?;
        }
        let t0 = Instant::now();
        if predictor.text_pairs() && ds.pairs().is_none() {
            anyhow::bail!("{} scores sentence pairs: name the second text's column with --pair-column", self.model.display());
        }
        if !predictor.text_pairs() && ds.pairs().is_some() {
            anyhow::bail!("{} scores single texts: drop --pair-column", self.model.display());
        }
        let tok = predictor.tokenizer();
        let enc = tok.encode_all_pairs(&ds.texts(), ds.pairs().as_deref()).context("tokenizing the evaluation data")?;
        let logits = predictor.logits(&enc)?;
        let threshold = predictor.threshold().unwrap_or(0.5);
        let report = EvalReport::from_logits(&logits, &ds.targets(), classes.len(), threshold);
        let secs = t0.elapsed().as_secs_f64();
        println!("Evaluated {} examples in {secs:.1}s ({:.1} examples/s)", report.examples, report.examples as f64 / secs);
        print_report(&report, &classes);
        let out = self.output.unwrap_or_else(|| self.model.join("evaluation.json"));
        let json = serde_json::json!({ "data": self.data.data, "classes": classes, "report": report, "seconds": secs });
        std::fs::write(&out, serde_json::to_string_pretty(&json)?).with_context(|| format!("writing {}", out.display()))?;
        println!("Wrote {}", out.display());
        if let Some(path) = &self.predictions {
            evaluate_rows::write(path, &ds, &logits, predictor.decision())?;
            println!("Wrote {} ({} examples, one per line)", path.display(), logits.len());
        }
        Ok(())
    }
}
