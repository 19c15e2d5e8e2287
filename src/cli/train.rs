//! `bertkit train`: load data, split, fine-tune (or train a head on a frozen encoder), evaluate,
//! and export a reloadable model folder with its history and plot.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::artifact::{ArtifactError, ModelMeta, save_classifier};
use bertkit::data::split;
use bertkit::metrics::{EvalReport, plot_history};
use bertkit::model::{BertClassifier, BertEncoder, Pooling};
use bertkit::predict::run_batched;
use bertkit::train::{Split, TrainPlan, TrainRun, train_classifier};
use clap::Args;

use super::data_args::{DataArgs, show_samples};
use super::evaluate::print_report;
use super::{ModelArgs, PreprocessArgs};

#[derive(Args, Debug)]
pub struct TrainCmd {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    pre: PreprocessArgs,
    /// Output folder: the exported model, history.json and training.png.
    #[arg(long, env = "BERTKIT_OUT")]
    out: PathBuf,
    /// Test data evaluated after training (same format as --data).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Fraction of --data held out for validation.
    #[arg(long, default_value_t = 0.2)]
    validation_split: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long = "lr", default_value_t = 3e-5)]
    learning_rate: f64,
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1e-6)]
    adam_epsilon: f64,
    /// Global gradient-norm clip; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Train only the head on cached features of the frozen encoder (feature extraction).
    #[arg(long)]
    freeze_encoder: bool,
    /// pooler (the checkpoint's tanh pooler), cls or mean. Default: what the family's
    /// transformers classifier reads (pooler for BERT/ALBERT, the first token otherwise).
    #[arg(long)]
    pooling: Option<Pooling>,
    /// A hidden dense layer of this size in the head (0: none). Default: the family's
    /// transformers head (none for BERT/ALBERT; hidden_size for DistilBERT, RoBERTa, ELECTRA).
    #[arg(long)]
    head_hidden: Option<usize>,
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    #[arg(long, default_value_t = 64)]
    eval_batch_size: usize,
    /// Checkpoint every N steps too (one is always written at each epoch end).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Continue from the checkpoint in OUT.run/ (same flags required).
    #[arg(long)]
    resume: bool,
    /// Use only the first N training examples after the split (quick runs).
    #[arg(long)]
    max_train: Option<usize>,
    /// Use only the first N validation examples.
    #[arg(long)]
    max_val: Option<usize>,
    /// Print N training examples with their labels.
    #[arg(long, default_value_t = 0)]
    show_samples: usize,
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    device: DeviceSpec,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

impl TrainCmd {
    fn plan(&self) -> TrainPlan {
        TrainPlan {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            warmup_ratio: self.warmup_ratio,
            weight_decay: self.weight_decay,
            adam_epsilon: self.adam_epsilon,
            max_grad_norm: (self.max_grad_norm > 0.0).then_some(self.max_grad_norm),
            seed: self.seed,
            freeze_encoder: self.freeze_encoder,
            eval_batch_size: self.eval_batch_size,
            checkpoint_every: self.checkpoint_every,
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let plan = self.plan();
        plan.validate()?;
        let encode = self.pre.plan()?;
        let device = self.device.device()?;

        let ds = self.data.load(None)?;
        let classes = ds.class_names.clone();
        let (mut train, mut val) = split(ds, self.validation_split, self.seed)?;
        println!("Using {} files for training.", train.len());
        println!("Using {} files for validation.", val.len());
        if let Some(n) = self.max_train {
            train.examples.truncate(n);
        }
        if let Some(n) = self.max_val {
            val.examples.truncate(n);
        }
        anyhow::ensure!(!train.is_empty() && !val.is_empty(), "need training and validation examples");
        show_samples(&train, self.show_samples);

        let tok = self.pre.tokenizer(&self.model)?;
        let t0 = Instant::now();
        let train_enc = tok.encode_all(&train.texts()).context("tokenizing the training data")?;
        let val_enc = tok.encode_all(&val.texts()).context("tokenizing the validation data")?;
        let truncated = train_enc.iter().filter(|e| e.len() == encode.seq_len).count();
        println!(
            "Tokenized {} + {} texts in {:.1}s ({} of the training texts fill all {} tokens)",
            train_enc.len(),
            val_enc.len(),
            t0.elapsed().as_secs_f64(),
            truncated,
            encode.seq_len
        );

        let encoder = BertEncoder::from_dir(&self.model.model, &device)
            .with_context(|| format!("loading the encoder from {}", self.model.model.display()))?;
        let cfg = &encoder.config;
        anyhow::ensure!(
            encode.seq_len <= cfg.max_sequence_length(),
            "--seq-len {} exceeds the {} positions this {} checkpoint has",
            encode.seq_len,
            cfg.max_sequence_length(),
            cfg.family
        );
        let family = cfg.family;
        let pooling = self.pooling.unwrap_or(Pooling::family_default(family, encoder.pooler.is_some()));
        let head_hidden = match self.head_hidden {
            Some(0) => None,
            Some(h) => Some(h),
            None => family.head_defaults().hidden_layer.then_some(cfg.hidden_size),
        };
        let num_outputs = if classes.len() == 2 { 1 } else { classes.len() };
        let model = BertClassifier::new(encoder, pooling, head_hidden, num_outputs, self.dropout, self.seed)?;
        println!(
            "Model: {} ({family}, {} layers, hidden {}) + {} pooling + {} head, {} outputs; encoder {}",
            self.model.model.display(),
            model.encoder.config.num_hidden_layers,
            model.encoder.hidden_size(),
            pooling,
            head_hidden.map_or("dense".to_string(), |h| format!("dense({h})+{:?}+dense", model.head.spec.activation)),
            num_outputs,
            if self.freeze_encoder { "frozen (feature extraction)" } else { "trainable (fine-tuning)" },
        );

        let run_dir = run_dir(&self.out);
        let (model, history) = train_classifier(
            model,
            Split { encodings: &train_enc, labels: &train.labels() },
            Split { encodings: &val_enc, labels: &val.labels() },
            TrainRun {
                plan: &plan,
                num_classes: classes.len(),
                pad_id: tok.pad_id(),
                run_dir: &run_dir,
                resume: self.resume,
                quiet: self.quiet,
            },
        )?;

        let mut metrics = serde_json::json!({});
        if let Some(last) = history.epochs.last() {
            metrics["validation"] = serde_json::to_value(last)?;
        }
        if let Some(test_path) = &self.test {
            let test_args = DataArgs { data: test_path.clone(), ..self.data.clone() };
            let test = test_args.load(Some(classes.clone()))?;
            let test_enc = tok.encode_all(&test.texts()).context("tokenizing the test data")?;
            let t0 = Instant::now();
            let logits = run_batched(&test_enc, self.eval_batch_size, tok.pad_id(), &device, |i| model.forward(i))
                .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
            let report = EvalReport::from_logits(&logits, &test.labels(), classes.len());
            println!("Test ({} examples, {:.1}s):", report.examples, t0.elapsed().as_secs_f64());
            print_report(&report, &classes);
            metrics["test"] = serde_json::to_value(&report)?;
        }

        let mut meta = ModelMeta::new(classes, encode, pooling, model.head.spec);
        meta.training = serde_json::json!({
            "plan": plan,
            "base_model": self.model.model,
            "data": self.data.data,
            "validation_split": self.validation_split,
            "train_examples": train_enc.len(),
            "validation_examples": val_enc.len(),
            "wall_seconds": started.elapsed().as_secs_f64(),
        });
        meta.metrics = metrics;
        let keras = history.to_keras_json();
        save_classifier(&self.out, &model, &meta, &self.model.model, |dir| {
            let path = dir.join("history.json");
            let text = serde_json::to_string_pretty(&keras).unwrap_or_default();
            std::fs::write(&path, text).map_err(|source| ArtifactError::Write { path, source })?;
            if let Err(e) = plot_history(&history, &dir.join("training.png")) {
                eprintln!("warning: {e}");
            }
            Ok(())
        })
        .with_context(|| format!("exporting the model to {}", self.out.display()))?;
        println!(
            "Saved model to {} (history.json, training.png) in {:.1}s total; checkpoints in {}",
            self.out.display(),
            started.elapsed().as_secs_f64(),
            run_dir.display()
        );
        Ok(())
    }
}

/// Checkpoints live beside the export (`OUT.run/`) so the atomic export swap never touches them.
pub fn run_dir(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".run");
    PathBuf::from(s)
}
