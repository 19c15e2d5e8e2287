//! `bertkit train`: load data, split, fine-tune (or train a head on a frozen encoder, or the
//! BiLSTM baseline), evaluate, and export a reloadable model folder with its history and plot.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bertkit::DeviceSpec;
use bertkit::artifact::{ArtifactError, ModelMeta, save_classifier, save_int8};
use bertkit::data::{Target, split};
use bertkit::metrics::{EvalReport, plot_history};
use bertkit::model::{HeadSpec, Pooling, Pretrained, TextClassifier};
use bertkit::model::fast::{BertModel, FastClassifier};
use bertkit::model::run_batched_tokens;
use bertkit::predict::Engine;
use bertkit::tokenize::TextEncoder;
use bertkit::train::{History, Monitor, Split, TrainPlan, TrainRun, train_classifier};
use bertkit_kernels::Precision;
use clap::{Args, ValueEnum};

use super::data_args::{DataArgs, show_samples};
use super::evaluate::print_report;
use super::train_bilstm::BiLstmArgs;
use super::PreprocessArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchFlag {
    /// A BERT-family checkpoint (--model) with a classification head.
    Bert,
    /// The GloVe + BiLSTM baseline (--glove).
    Bilstm,
}

/// A trained model with what its export needs.
pub struct Trained {
    pub model: TextClassifier,
    pub encoder: TextEncoder,
    /// Classes, preprocessing and head; training settings and metrics are added later.
    pub meta: ModelMeta,
    pub train_examples: usize,
    pub val_examples: usize,
}

#[derive(Args, Debug)]
pub struct TrainCmd {
    /// bert (fine-tune or feature-extract a checkpoint) or bilstm (the GloVe baseline).
    #[arg(long, value_enum, default_value = "bert")]
    arch: ArchFlag,
    /// Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json or
    /// vocab.txt); required for --arch bert.
    #[arg(long, env = "BERTKIT_MODEL")]
    model: Option<PathBuf>,
    #[command(flatten)]
    bilstm: BiLstmArgs,
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
    /// Default 3 (bert) / 5 (bilstm).
    #[arg(long)]
    epochs: Option<usize>,
    /// Default 32 (bert) / 100 (bilstm).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate. Default 3e-5 (bert, AdamW with warm-up and decay) / 1e-3 (bilstm,
    /// constant like Keras' Adam).
    #[arg(long = "lr")]
    learning_rate: Option<f64>,
    /// Default 0.1 (bert) / 0 (bilstm).
    #[arg(long)]
    warmup_ratio: Option<f64>,
    /// Decoupled weight decay. Default 0.01 (bert) / 0 (bilstm: plain Adam).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Default 1e-6 (bert) / 1e-7 (bilstm, Keras).
    #[arg(long)]
    adam_epsilon: Option<f64>,
    /// Global gradient-norm clip; 0 turns clipping off. Default 1.0 (both; Keras' chapter does
    /// not clip, but the BiLSTM diverged without it).
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// Train only the head on cached features of the frozen encoder (feature extraction). Its
    /// defaults fit a probe: mean pooling, standardised features, lr 1e-3 held constant, up to
    /// 100 epochs with --patience 5 (each epoch costs only the head).
    #[arg(long, env = "BERTKIT_FREEZE_ENCODER")]
    freeze_encoder: bool,
    /// With --freeze-encoder: train the head on the raw pooled features, not standardised ones.
    #[arg(long, env = "BERTKIT_RAW_FEATURES")]
    raw_features: bool,
    /// pooler (the checkpoint's tanh pooler), cls or mean. Default: what the family's
    /// transformers classifier reads (pooler for BERT/ALBERT, the first token otherwise); mean
    /// with --freeze-encoder (a pooler trained for another task is a poor fixed feature).
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
    /// Also evaluate every N optimizer steps (an evaluation always ends each epoch); each
    /// evaluation can become the best weights and counts for --patience.
    #[arg(long, env = "BERTKIT_EVAL_EVERY")]
    eval_every: Option<usize>,
    /// The validation metric that picks the exported weights and drives --patience: val_loss
    /// (lower is better), val_accuracy or val_f1; multi-label: val_accuracy is subset accuracy,
    /// val_f1 (or val_macro_f1) macro F1.
    #[arg(long, default_value = "val_loss", env = "BERTKIT_MONITOR")]
    monitor: Monitor,
    /// Multi-label: the probability at which a label counts as predicted, for the metrics and
    /// as the exported model's default.
    #[arg(long, default_value_t = 0.5, env = "BERTKIT_THRESHOLD")]
    threshold: f64,
    /// Stop after N evaluations in a row without improvement (Keras' EarlyStopping patience).
    /// Default: train every epoch.
    #[arg(long, env = "BERTKIT_PATIENCE")]
    patience: Option<usize>,
    /// The smallest change of the monitored metric that counts as an improvement.
    #[arg(long, default_value_t = 0.0, env = "BERTKIT_MIN_DELTA")]
    min_delta: f64,
    /// Export the last step's weights instead of the best evaluation's (the default, like Keras'
    /// restore_best_weights=True and transformers' load_best_model_at_end).
    #[arg(long, env = "BERTKIT_LAST_WEIGHTS")]
    last_weights: bool,
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
    /// Fine-tuning implementation: burn (autodiff, any device), kernels (hand-written backward
    /// pass on the CPU kernels, fp32), kernels-bf16 (the same with bf16 GEMM operands and fp32
    /// accumulation, like PyTorch's bf16 autocast), or auto: kernels-bf16 where bf16 was
    /// measured faster (AMX tiles; AMD with AVX512-BF16), kernels on every other CPU, for every
    /// BERT-family checkpoint and the BiLSTM; burn with --device cuda.
    #[arg(long, default_value = "auto")]
    engine: Engine,
    /// Also store the encoder's int8 weights in the export (`model.int8.safetensors`, as
    /// `bertkit quantize` does), so `--precision int8` reads them rather than quantizing at load.
    #[arg(long, env = "BERTKIT_SAVE_INT8")]
    save_int8: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

impl TrainCmd {
    /// The validated settings. Defaults differ by what is trained: fine-tuning a checkpoint
    /// (BERT's recipe), a head on frozen features (a probe: Keras' Adam rate, many cheap epochs
    /// stopped early, standardised features), or the BiLSTM (the chapter's Keras settings).
    fn plan(&self) -> TrainPlan {
        let bert = self.arch == ArchFlag::Bert;
        let frozen = bert && self.freeze_encoder;
        let pick = |v: Option<f64>, b: f64, l: f64| v.unwrap_or(if bert && !frozen { b } else { l });
        let clip = pick(self.max_grad_norm, 1.0, 1.0);
        TrainPlan {
            epochs: self.epochs.unwrap_or(if frozen { 100 } else if bert { 3 } else { 5 }),
            batch_size: self.batch_size.unwrap_or(if bert { 32 } else { 100 }),
            learning_rate: pick(self.learning_rate, 3e-5, 1e-3),
            warmup_ratio: pick(self.warmup_ratio, 0.1, 0.0),
            weight_decay: pick(self.weight_decay, 0.01, 0.0),
            adam_epsilon: pick(self.adam_epsilon, 1e-6, 1e-7),
            max_grad_norm: (clip > 0.0).then_some(clip),
            seed: self.seed,
            freeze_encoder: self.freeze_encoder,
            eval_batch_size: self.eval_batch_size,
            checkpoint_every: self.checkpoint_every,
            constant_lr: !bert || frozen,
            eval_every: self.eval_every,
            monitor: self.monitor,
            patience: self.patience.or(frozen.then_some(5)),
            min_delta: self.min_delta,
            restore_best: !self.last_weights,
            standardize_features: frozen && !self.raw_features,
            threshold: self.threshold,
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let plan = self.plan();
        plan.validate()?;
        // Refused before training, not after it: the BiLSTM has no int8 path to store for.
        anyhow::ensure!(
            !(self.save_int8 && self.arch != ArchFlag::Bert),
            "--save-int8 stores a BERT-family encoder's int8 weights; the BiLSTM baseline runs in fp32 (drop --save-int8)"
        );
        let device = self.device;

        let ds = self.data.load(None)?;
        let classes = ds.class_names.clone();
        let multi_label = ds.multi_label;
        plan.monitor.check(multi_label)?;
        let (mut train, mut val) = split(ds, self.validation_split, self.seed)?;
        let unit = if train.source.is_dir() { "files" } else { "rows" };
        println!("Using {} {unit} for training.", train.len());
        println!("Using {} {unit} for validation.", val.len());
        if let Some(n) = self.max_train {
            train.examples.truncate(n);
        }
        if let Some(n) = self.max_val {
            val.examples.truncate(n);
        }
        anyhow::ensure!(!train.is_empty() && !val.is_empty(), "need training and validation examples");
        show_samples(&train, self.show_samples);

        let run_dir = run_dir(&self.out);
        let (train_texts, val_texts) = (train.texts(), val.texts());
        let (train_pairs, val_pairs) = (train.pairs(), val.pairs());
        anyhow::ensure!(
            train_pairs.is_none() || self.arch == ArchFlag::Bert,
            "the BiLSTM baseline reads single texts; --pair-column needs --arch bert"
        );
        let (train_targets, val_targets) = (train.targets(), val.targets());
        let run = TrainRun {
            plan: &plan,
            num_classes: classes.len(),
            multi_label,
            pad_id: 0,
            run_dir: &run_dir,
            resume: self.resume,
            quiet: self.quiet,
            kernels: None,
        };
        let (trained, history) = match self.arch {
            ArchFlag::Bert => self.train_bert(
                (&train_texts, train_pairs.as_deref(), &train_targets),
                (&val_texts, val_pairs.as_deref(), &val_targets),
                &classes,
                run,
            )?,
            ArchFlag::Bilstm => {
                // The baseline's GEMMs are small: fp32 on whichever kernels engine is chosen.
                let kernels = self.training_engine()?.map(|_| Precision::F32);
                println!("Training engine: {}", if kernels.is_some() { "kernels (fp32)" } else { "burn" });
                self.bilstm.train((&train_texts, &train_targets), (&val_texts, &val_targets), &classes, TrainRun { kernels, ..run }, self.seed, device)?
            }
        };
        let Trained { model, encoder, mut meta, train_examples, val_examples } = trained;
        meta.multi_label = multi_label;
        meta.threshold = plan.threshold as f32;

        let mut metrics = serde_json::json!({});
        if let Some(last) = history.epochs.last() {
            metrics["validation"] = serde_json::to_value(last)?;
        }
        // Which evaluation's weights the export holds (`restored`), and its scores.
        if let Some(best) = &history.best {
            metrics["best"] = serde_json::to_value(best)?;
            let point = history.evaluations.iter().find(|e| e.step == best.step);
            metrics["best_evaluation"] = serde_json::to_value(point)?;
        }
        if let Some(test_path) = &self.test {
            let test_args = DataArgs { data: test_path.clone(), ..self.data.clone() };
            let test = test_args.load(Some((classes.clone(), multi_label)))?;
            let test_enc = encoder.encode_all_pairs(&test.texts(), test.pairs().as_deref()).context("tokenizing the test data")?;
            let t0 = Instant::now();
            // fp32 kernels where `auto` would serve with the kernels: the same scores as burn's
            // (golden-tested to 1e-4), several times faster on 25,000 reviews.
            let (bs, pad) = (self.eval_batch_size, encoder.pad_id());
            let kernels = Engine::Auto.resolve(self.device).precision().is_some();
            let logits = match &model {
                TextClassifier::Bert(m) if kernels => {
                    let f = FastClassifier::new(m, Precision::F32);
                    run_batched_tokens(&test_enc, bs, pad, |b| Ok::<_, anyhow::Error>(f.logits(b)))?
                }
                TextClassifier::BiLstm(m) if kernels => {
                    let packs = m.pack();
                    run_batched_tokens(&test_enc, bs, pad, |b| Ok::<_, anyhow::Error>(m.logits(&packs, b)))?
                }
                #[cfg(feature = "burn")]
                _ => {
                    let burn_device = device.device()?;
                    let burn = model.to_burn(&burn_device)?;
                    bertkit::model::run_batched(&test_enc, bs, pad, &burn_device, |i| burn.forward(i))
                        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?
                }
                #[cfg(not(feature = "burn"))]
                _ => anyhow::bail!("scoring --test on {device} needs burn: {}", bertkit::DeviceSpecError::BurnNotBuilt),
            };
            let report = EvalReport::from_logits(&logits, &test.targets(), classes.len(), meta.threshold);
            println!("Test ({} examples, {:.1}s):", report.examples, t0.elapsed().as_secs_f64());
            print_report(&report, &classes);
            metrics["test"] = serde_json::to_value(&report)?;
        }

        meta.training = serde_json::json!({
            "arch": meta.arch,
            "plan": plan,
            "base_model": self.model,
            "glove": meta.bilstm.and(self.bilstm_glove()),
            "data": self.data.data,
            "validation_split": self.validation_split,
            "train_examples": train_examples,
            "validation_examples": val_examples,
            "wall_seconds": started.elapsed().as_secs_f64(),
        });
        meta.metrics = metrics;
        let keras = history.to_keras_json();
        save_classifier(&self.out, &model, &meta, &encoder, |dir| {
            let path = dir.join("history.json");
            let text = serde_json::to_string_pretty(&keras).unwrap_or_default();
            std::fs::write(&path, text).map_err(|source| ArtifactError::Write { path, source })?;
            if let Err(e) = plot_history(&history, &dir.join("training.png")) {
                eprintln!("warning: {e}");
            }
            // In the staging folder, next to the model.safetensors it is derived from: the
            // swap publishes both at once.
            if let (true, TextClassifier::Bert(m)) = (self.save_int8, &model) {
                save_int8(dir, &m.params)?;
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

    fn bilstm_glove(&self) -> Option<PathBuf> {
        self.bilstm.glove_path()
    }

    /// Tokenizes with the checkpoint's tokenizer, builds encoder + head and trains them.
    fn train_bert(
        &self,
        train: (&[&str], Option<&[&str]>, &[Target]),
        val: (&[&str], Option<&[&str]>, &[Target]),
        classes: &[String],
        run: TrainRun<'_>,
    ) -> anyhow::Result<(Trained, History)> {
        let dir = self.model.clone().context("--arch bert needs --model DIR (a Hugging Face checkpoint folder)")?;
        let encode = self.pre.plan()?;
        let device = self.device;
        let pretrained = Pretrained::open(&dir, encode).with_context(|| format!("opening {}", dir.display()))?;
        let tok = &pretrained.tokenizer;
        let t0 = Instant::now();
        let train_enc = tok.encode_all_pairs(train.0, train.1).context("tokenizing the training data")?;
        let val_enc = tok.encode_all_pairs(val.0, val.1).context("tokenizing the validation data")?;
        let truncated = train_enc.iter().filter(|e| e.len() == encode.seq_len).count();
        println!(
            "Tokenized {} + {} texts in {:.1}s ({} of the training texts fill all {} tokens)",
            train_enc.len(),
            val_enc.len(),
            t0.elapsed().as_secs_f64(),
            truncated,
            encode.seq_len
        );

        let cfg = &pretrained.config;
        let family = cfg.family;
        let has_pooler = pretrained.has_pooler()?;
        let pooling = match (self.pooling, self.freeze_encoder) {
            (Some(p), _) => p,
            (None, true) => Pooling::Mean,
            (None, false) => Pooling::family_default(family, has_pooler),
        };
        let head_hidden = match self.head_hidden {
            Some(0) => None,
            Some(h) => Some(h),
            None => family.head_defaults().hidden_layer.then_some(cfg.hidden_size),
        };
        let num_outputs = run.num_outputs();
        let head = HeadSpec {
            hidden_size: head_hidden,
            ..HeadSpec::family_default(family, cfg.hidden_size, num_outputs, self.dropout)
        };
        let model = BertModel::with_new_head(&pretrained, pooling, head, self.seed)
            .with_context(|| format!("loading the encoder from {}", dir.display()))?;
        println!(
            "Model: {} ({family}, {} layers, hidden {}) + {} pooling + {} head, {} outputs; encoder {}",
            dir.display(),
            model.config.num_hidden_layers,
            model.hidden_size(),
            pooling,
            head_hidden.map_or("dense".to_string(), |h| format!("dense({h})+{:?}+dense", model.head.activation)),
            num_outputs,
            if self.freeze_encoder { "frozen (feature extraction)" } else { "trainable (fine-tuning)" },
        );
        let kernels = if self.freeze_encoder { self.feature_engine() } else { self.training_engine()? };
        let engine = kernels.map_or("burn".to_string(), |p| format!("kernels ({p:?} GEMMs)"));
        if self.freeze_encoder {
            println!("Feature engine: {engine}");
        } else {
            println!("Fine-tuning engine: {engine}");
        }
        let run = TrainRun { pad_id: tok.pad_id(), kernels, ..run };
        let (model, history) = train_classifier(
            model,
            Split { encodings: &train_enc, targets: train.2 },
            Split { encodings: &val_enc, targets: val.2 },
            run,
            device,
        )?;
        let mut meta = ModelMeta::new(classes.to_vec(), encode, pooling, model.head);
        meta.text_pairs = train.1.is_some();
        let trained = Trained {
            model: TextClassifier::Bert(model),
            encoder: TextEncoder::Subword(pretrained.tokenizer),
            meta,
            train_examples: train_enc.len(),
            val_examples: val_enc.len(),
        };
        Ok((trained, history))
    }
}

impl TrainCmd {
    /// The engine that computes frozen features: inference only, so every family runs on the
    /// kernels (`auto` picks as `predict` does).
    fn feature_engine(&self) -> Option<Precision> {
        match self.engine {
            Engine::Auto => Engine::Auto.resolve(self.device),
            other => other,
        }
        .precision()
    }

    /// The kernels precision to fine-tune with, or `None` for burn.
    fn training_engine(&self) -> anyhow::Result<Option<Precision>> {
        let engine = match self.engine {
            // bf16 operands where they were measured faster than fp32 on this kind of CPU (AMX
            // tiles; AVX512-BF16 on AMD), as PyTorch's autocast would use them.
            Engine::Auto => Engine::Auto.resolve(self.device),
            other => other,
        };
        anyhow::ensure!(
            engine != Engine::KernelsInt8,
            "--engine kernels-int8 is for inference (predict, evaluate, serve, bench); fine-tune with kernels or kernels-bf16"
        );
        anyhow::ensure!(
            engine.precision().is_none() || self.device == DeviceSpec::Cpu,
            "--engine {engine} runs on the CPU; use --engine burn with --device {}",
            self.device
        );
        Ok(engine.precision())
    }
}

/// Checkpoints live beside the export (`OUT.run/`) so the atomic export swap never touches them.
pub fn run_dir(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".run");
    PathBuf::from(s)
}
