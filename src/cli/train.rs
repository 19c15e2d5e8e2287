//! `bertkit train`: load data, split, fine-tune (or train a head on a frozen encoder, or the
//! BiLSTM baseline), evaluate, and export a reloadable model folder with its history and plot.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bertkit::artifact::{ArtifactError, ModelMeta, save_classifier, save_int8};
use bertkit::data::{Dataset, Target, split};
use bertkit::metrics::{EvalReport, plot_history};
use bertkit::model::{HeadSpec, Pooling, Pretrained, TextClassifier};
use bertkit::model::fast::{BertModel, FastClassifier};
use bertkit::model::run_batched_tokens;
use bertkit::predict::Engine;
use bertkit::tokenize::TextEncoder;
use bertkit::train::{History, Split, TrainRun, train_classifier};
use bertkit_kernels::Precision;

use super::args::say_note;
use super::data_args::{DataArgs, show_samples};
use super::evaluate::print_report;
use super::train_args::{ArchFlag, TrainCmd};

/// A trained model with what its export needs.
pub struct Trained {
    pub model: TextClassifier,
    pub encoder: TextEncoder,
    /// Classes, preprocessing and head; training settings and metrics are added later.
    pub meta: ModelMeta,
    pub train_examples: usize,
    pub val_examples: usize,
}

impl TrainCmd {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut plan = self.plan();
        plan.validate()?;
        let kernels = self.checked_engine(&plan)?;
        let device = self.device;
        // The checkpoint, and --seq-len against it, before the data: reading 25,000 reviews
        // should not end in an error about a flag.
        let pretrained = match self.arch {
            ArchFlag::Bert => Some(self.open_checkpoint()?),
            ArchFlag::Bilstm => None,
        };

        let ds = self.data.load(None)?;
        let classes = ds.class_names.clone();
        let multi_label = ds.multi_label;
        plan.monitor.check(multi_label)?;
        let (mut train, mut val) = self.split_data(ds, &classes, multi_label)?;
        // --max-train and --max-val are at least 1: neither empties its split.
        if let Some(n) = self.max_train {
            train.examples.truncate(n);
        }
        if let Some(n) = self.max_val {
            val.examples.truncate(n);
        }
        show_samples(&train, self.show_samples);
        if let Some(flag) = &self.class_weight {
            let weights = flag.resolve(&train)?;
            let named: Vec<String> = classes.iter().zip(&weights).map(|(c, w)| format!("{c} {w:.4}")).collect();
            println!("Class weights: {}", named.join(", "));
            // Positive and finite: the flag's parser checks given weights, and `balanced`
            // refuses a class without examples.
            plan.class_weights = Some(weights);
        }
        // --test is read now, not after training: a wrong path or an unknown label there ended
        // a finished run with nothing exported.
        let test = match &self.test {
            Some(path) => {
                println!("Test data {}:", path.display());
                Some(self.data_at(path).load(Some((classes.clone(), multi_label)))?)
            }
            None => None,
        };

        let run_dir = run_dir(&self.out);
        let (train_texts, val_texts) = (train.texts(), val.texts());
        let (train_pairs, val_pairs) = (train.pairs(), val.pairs());
        let (train_targets, val_targets) = (train.targets(), val.targets());
        let run = TrainRun {
            plan: &plan,
            num_classes: classes.len(),
            multi_label,
            pad_id: 0,
            run_dir: &run_dir,
            resume: self.resume,
            quiet: self.quiet,
            halt_after_step: self.halt_after_step,
            kernels,
        };
        let (trained, history) = match pretrained {
            Some(pretrained) => self.train_bert(
                pretrained,
                (&train_texts, train_pairs.as_deref(), &train_targets),
                (&val_texts, val_pairs.as_deref(), &val_targets),
                &classes,
                run,
            )?,
            None => {
                println!("Training engine: {}", if kernels.is_some() { "kernels (fp32)" } else { "burn" });
                self.bilstm.train((&train_texts, &train_targets), (&val_texts, &val_targets), &classes, run, self.seed, device)?
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
        if let Some(test) = &test {
            let test_enc = encoder.encode_all_pairs(&test.texts(), test.pairs().as_deref()).context("tokenizing the test data")?;
            let t0 = Instant::now();
            // fp32 kernels where `auto` would serve with the kernels: the same scores as burn's
            // (golden-tested to 1e-4), several times faster on 25,000 reviews.
            let (bs, pad) = (self.eval_batch_size, encoder.pad_id());
            let kernels = Engine::Auto.resolve(self.device).precision().is_some();
            let logits = match &model {
                TextClassifier::Bert(m) if kernels => {
                    let f = FastClassifier::new(m, Precision::F32);
                    run_batched_tokens(&test_enc, bs, pad, |b, _| Ok::<_, anyhow::Error>(f.logits(b)?))?
                }
                TextClassifier::BiLstm(m) if kernels => {
                    let packs = m.pack();
                    run_batched_tokens(&test_enc, bs, pad, |b, _| Ok::<_, anyhow::Error>(m.logits(&packs, b)?))?
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
            "validation_split": self.validation_data.is_none().then_some(self.validation_split),
            "validation_data": self.validation_data,
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
        pretrained: Pretrained,
        train: (&[&str], Option<&[&str]>, &[Target]),
        val: (&[&str], Option<&[&str]>, &[Target]),
        classes: &[String],
        run: TrainRun<'_>,
    ) -> anyhow::Result<(Trained, History)> {
        let (dir, encode) = (pretrained.dir.clone(), pretrained.tokenizer.plan());
        let device = self.device;
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
        let kernels = run.kernels;
        say_note(self.engine.fallback_note());
        // What runs: bf16 asked for on a level without bf16 GEMMs runs in fp32.
        let engine = kernels.map(Precision::on_this_cpu).map_or("burn".to_string(), |p| format!("kernels ({p:?} GEMMs)"));
        if self.freeze_encoder {
            println!("Feature engine: {engine}");
        } else {
            println!("Fine-tuning engine: {engine}");
        }
        let run = TrainRun { pad_id: tok.pad_id(), ..run };
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
    /// The training and validation examples: a seeded split of --data, or all of it and
    /// --validation-data, each shuffled as a split's parts are, so that --max-train and
    /// --max-val take a sample rather than a folder's first class.
    fn split_data(&self, ds: Dataset, classes: &[String], multi_label: bool) -> anyhow::Result<(Dataset, Dataset)> {
        let unit = |ds: &Dataset| if ds.source.is_dir() { "files" } else { "rows" };
        let say = |train: &Dataset, val: &Dataset| {
            println!("Using {} {} for training.", train.len(), unit(train));
            println!("Using {} {} for validation.", val.len(), unit(val));
        };
        if let Some(path) = &self.validation_data {
            println!("Validation data {}:", path.display());
            let (val, _) = split(self.data_at(path).load(Some((classes.to_vec(), multi_label)))?, 0.0, self.seed)?;
            let (train, _) = split(ds, 0.0, self.seed)?;
            say(&train, &val);
            return Ok((train, val));
        }
        let (total, of) = (ds.len(), unit(&ds));
        let fraction = self.validation_split;
        anyhow::ensure!(
            total >= 2,
            "{} holds {total} {of}: training needs at least 2, one to train on and one to validate on (or --validation-data)",
            self.data.data.display()
        );
        let (train, val) = split(ds, fraction, self.seed)?;
        say(&train, &val);
        anyhow::ensure!(!train.is_empty(), "no {of} left to train on: --validation-split {fraction} holds out all {total} of them");
        anyhow::ensure!(
            !val.is_empty(),
            "no {of} to validate on: --validation-split {fraction} of {total} {of} holds out none (it takes whole {of}, rounding \
             down); raise it to at least {:.3}, give more data or --validation-data",
            // Rounded up, so that the fraction printed holds one out.
            (1000.0 / total as f64).ceil() / 1000.0
        );
        Ok((train, val))
    }

    /// --data's format flags, read from `path` (--validation-data, --test).
    fn data_at(&self, path: &std::path::Path) -> DataArgs {
        DataArgs { data: path.to_path_buf(), ..self.data.clone() }
    }

    /// The checkpoint to fine-tune, with its tokenizer set to the preprocessing flags.
    fn open_checkpoint(&self) -> anyhow::Result<Pretrained> {
        let dir = self.model.as_ref().context("--arch bert needs --model DIR (a Hugging Face checkpoint folder)")?;
        let encode = self.pre.plan()?;
        Pretrained::open(dir, encode).with_context(|| format!("opening {}", dir.display()))
    }
}

/// Checkpoints live beside the export (`OUT.run/`) so the atomic export swap never touches them.
pub fn run_dir(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".run");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use bertkit::data::Example;
    use clap::FromArgMatches;

    use super::super::Cli;
    use super::super::command::Command;
    use super::*;

    fn parsed(args: &[&str]) -> TrainCmd {
        let matches = Cli::grammar().try_get_matches_from(args).unwrap();
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Train(cmd) => *cmd,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// Regression: a --validation-data folder or file sorted by class was kept in its order,
    /// so --max-val took its first class only (a real IMDB run validated on 500 `neg` reviews).
    /// It is shuffled as a split's parts are, and all of --data trains.
    #[test]
    fn validation_data_is_shuffled_so_that_max_val_takes_a_sample() {
        let tmp = tempfile::tempdir().unwrap();
        let dev = tmp.path().join("dev.csv");
        let rows: String = (0..12).map(|i| format!("text {i},{}\n", if i < 6 { "neg" } else { "pos" })).collect();
        std::fs::write(&dev, format!("text,label\n{rows}")).unwrap();
        let cmd =
            parsed(&["bertkit", "train", "--model", "m", "--data", "d.csv", "--out", "o", "--validation-data", dev.to_str().unwrap()]);
        let classes = vec!["neg".to_string(), "pos".to_string()];
        let data = Dataset {
            examples: (0..10).map(|i| Example::single(format!("train {i}"), i % 2)).collect(),
            class_names: classes.clone(),
            source: "d.csv".into(),
            multi_label: false,
        };
        let (train, val) = cmd.split_data(data, &classes, false).unwrap();
        assert_eq!((train.len(), val.len()), (10, 12));
        let first: Vec<usize> = val.examples[..6].iter().filter_map(|e| e.target.class()).collect();
        assert!(first.contains(&0) && first.contains(&1), "the first 6 validation examples hold one class: {first:?}");
    }
}
