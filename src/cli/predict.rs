//! `bertkit predict`: scores texts with an exported model, printed like the seed's
//! `print_my_examples` (`input: ... : score: 0.999521`) or as JSON, or every row of a file into
//! another (`--input`/`--output`: the batch job).

use std::path::PathBuf;

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::artifact::ClassifierBundle;
use bertkit::batch::{PredictScorer, run_job};
use bertkit::predict::{Engine, Predictor};
use clap::Args;

use super::args::say_note;
use super::job_args::{JobArgs, print_report};

#[derive(Args, Debug)]
pub struct PredictCmd {
    /// A folder written by `bertkit train`.
    #[arg(long, env = "BERTKIT_MODEL")]
    model: PathBuf,
    /// Print JSON: {"predictions": [...]}.
    #[arg(long, env = "BERTKIT_JSON")]
    json: bool,
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    device: DeviceSpec,
    /// auto (the kernels on the CPU, in bf16 where measured faster: AMX, AMD with AVX512-BF16;
    /// burn with --device cuda), burn, kernels, kernels-bf16 or kernels-int8 (opt-in;
    /// `--precision int8` says the same).
    #[arg(long, alias = "precision", default_value = "auto", env = "BERTKIT_ENGINE")]
    engine: Engine,
    /// Binary and multi-label models: the probability at which the positive class (each
    /// label) is predicted (default: the model's, set at training). A softmax model refuses one.
    #[arg(long, value_parser = super::probability, env = "BERTKIT_THRESHOLD")]
    threshold: Option<f32>,
    /// The second text of a sentence pair, once per text in order (models trained with
    /// --pair-column).
    #[arg(long = "pair", env = "BERTKIT_PAIR")]
    pairs: Vec<String>,
    #[command(flatten)]
    job: JobArgs,
    /// Texts to score (or --input FILE).
    #[arg(required_unless_present = "input", conflicts_with = "input")]
    texts: Vec<String>,
}

impl PredictCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let device = self.device;
        let bundle = ClassifierBundle::load(&self.model)
            .with_context(|| format!("loading {}", self.model.display()))?;
        let binary = bundle.meta.is_binary();
        let mut predictor = Predictor::with_engine(bundle, device, self.engine.resolve(self.device))?;
        say_note(predictor.engine_note());
        if let Some(t) = self.threshold {
            predictor.set_threshold(t).with_context(|| format!("--threshold {t} with {}", self.model.display()))?;
        }
        if let Some(plan) = self.job.plan(false)? {
            anyhow::ensure!(
                predictor.text_pairs() == plan.columns.pair.is_some(),
                "{} scores {}: {}",
                self.model.display(),
                if predictor.text_pairs() { "sentence pairs" } else { "single texts" },
                if predictor.text_pairs() { "name the second text's column with --pair-column" } else { "drop --pair-column" }
            );
            predictor.set_batch_size(self.job.batch_size);
            let model = std::fs::canonicalize(&self.model).unwrap_or_else(|_| self.model.clone());
            let identity = serde_json::json!({ "dir": model, "engine": predictor.engine_name() });
            let mut scorer = PredictScorer::new(predictor, identity);
            let report = run_job(&plan, &mut scorer).with_context(|| format!("scoring {}", plan.input.display()))?;
            print_report(&plan, &report);
            return Ok(());
        }
        let pairs = (!self.pairs.is_empty()).then_some(&self.pairs[..]);
        if let Some(p) = pairs {
            anyhow::ensure!(p.len() == self.texts.len(), "{} texts but {} --pair values: give one --pair per text", self.texts.len(), p.len());
        }
        let preds = predictor.predict_pairs(&self.texts, pairs)?;
        if self.json {
            let out: Vec<serde_json::Value> = self
                .texts
                .iter()
                .zip(&preds)
                .enumerate()
                .map(|(i, (t, p))| {
                    let mut v = match &p.labels {
                        Some(labels) => serde_json::json!({"input": t, "labels": labels, "scores": p.scores}),
                        None => serde_json::json!({"input": t, "label": p.label, "score": p.score, "scores": p.scores}),
                    };
                    if let Some(pair) = pairs {
                        v["input_pair"] = serde_json::json!(pair[i]);
                    }
                    v
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "predictions": out }))?);
            return Ok(());
        }
        for (t, p) in self.texts.iter().zip(&preds) {
            let probs: Vec<String> =
                predictor.class_names().iter().zip(&p.scores).map(|(c, s)| format!("{c}={s:.4}")).collect();
            match &p.labels {
                Some(labels) => println!("input: {t:<30} : labels: [{}] [{}]", labels.join(", "), probs.join(" ")),
                None if binary => println!("input: {t:<30} : score: {:.6}", p.score),
                None => println!("input: {t:<30} : label: {} ({:.6}) [{}]", p.label, p.score, probs.join(" ")),
            }
        }
        Ok(())
    }
}
