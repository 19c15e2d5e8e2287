//! `bertkit train`'s command line: every flag (each also an environment variable where it names a
//! path or a switch), the validated training plan the flags make, with the defaults of what is
//! trained (fine-tuning, a head on frozen features, or the BiLSTM), and the flags' checks and
//! engine choices that need neither the checkpoint nor the data.

use std::path::PathBuf;

use bertkit::DeviceSpec;
use bertkit::model::Pooling;
use bertkit::predict::Engine;
use bertkit::train::{LrScheduler, Monitor, TrainPlan, check_accumulation};
use bertkit_kernels::Precision;
use clap::{Args, ValueEnum};

use super::PreprocessArgs;
use super::data_args::DataArgs;
use super::train_bilstm::BiLstmArgs;

/// What `--arch` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchFlag {
    /// A BERT-family checkpoint (--model) with a classification head.
    Bert,
    /// The GloVe + BiLSTM baseline (--glove).
    Bilstm,
}

#[derive(Args, Debug)]
pub struct TrainCmd {
    /// bert (fine-tune or feature-extract a checkpoint) or bilstm (the GloVe baseline).
    #[arg(long, env = "BERTKIT_ARCH", value_enum, default_value = "bert")]
    pub(super) arch: ArchFlag,
    /// Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json or
    /// vocab.txt); required for --arch bert.
    #[arg(long, env = "BERTKIT_MODEL")]
    pub(super) model: Option<PathBuf>,
    #[command(flatten)]
    pub(super) bilstm: BiLstmArgs,
    #[command(flatten)]
    pub(super) data: DataArgs,
    #[command(flatten)]
    pub(super) pre: PreprocessArgs,
    /// Output folder: the exported model, history.json and training.png.
    #[arg(long, env = "BERTKIT_OUT")]
    pub(super) out: PathBuf,
    /// Test data evaluated after training (same format as --data).
    #[arg(long, env = "BERTKIT_TEST")]
    pub(super) test: Option<PathBuf>,
    /// Fraction of --data held out for validation.
    #[arg(long, env = "BERTKIT_VALIDATION_SPLIT", default_value_t = 0.2)]
    pub(super) validation_split: f64,
    /// Validate on this data (same format and columns as --data; a GLUE-style dev set) instead
    /// of a split of --data, which then trains whole.
    #[arg(long, env = "BERTKIT_VALIDATION_DATA", conflicts_with = "validation_split")]
    pub(super) validation_data: Option<PathBuf>,
    #[arg(long, env = "BERTKIT_SEED", default_value_t = 42)]
    pub(super) seed: u64,
    /// Default 3 (bert) / 5 (bilstm).
    #[arg(long, env = "BERTKIT_EPOCHS")]
    pub(super) epochs: Option<usize>,
    /// Train exactly N optimizer steps instead of whole epochs (transformers' max_steps): the
    /// last epoch ends at step N.
    #[arg(long, env = "BERTKIT_MAX_STEPS", value_parser = super::at_least_one, conflicts_with = "epochs")]
    pub(super) max_steps: Option<usize>,
    /// Examples per forward and backward pass. Default 32 (bert) / 100 (bilstm).
    #[arg(long, env = "BERTKIT_BATCH_SIZE")]
    pub(super) batch_size: Option<usize>,
    /// Add up the gradients of N batches for each optimizer step (transformers'
    /// gradient_accumulation_steps): steps of N × --batch-size examples, holding one batch's
    /// activations at a time. Fine-tuning on the kernels.
    #[arg(long, default_value_t = 1, value_parser = super::at_least_one, env = "BERTKIT_GRADIENT_ACCUMULATION_STEPS")]
    pub(super) gradient_accumulation_steps: usize,
    /// Peak learning rate. Default 3e-5 (bert, AdamW with warm-up and decay) / 1e-3 (bilstm,
    /// constant like Keras' Adam).
    #[arg(long = "lr", env = "BERTKIT_LR")]
    pub(super) learning_rate: Option<f64>,
    /// Default 0.1 (bert) / 0 (bilstm).
    #[arg(long, env = "BERTKIT_WARMUP_RATIO")]
    pub(super) warmup_ratio: Option<f64>,
    /// Warm up for exactly N optimizer steps instead of a ratio (transformers' warmup_steps).
    #[arg(long, env = "BERTKIT_WARMUP_STEPS", conflicts_with = "warmup_ratio")]
    pub(super) warmup_steps: Option<usize>,
    /// The rate after warm-up (transformers' lr_scheduler_type): linear (decay to 0), cosine (a
    /// half cosine to 0) or constant (held at --lr). Default linear (bert) / constant (bilstm,
    /// --freeze-encoder).
    #[arg(long, env = "BERTKIT_LR_SCHEDULER")]
    pub(super) lr_scheduler: Option<LrScheduler>,
    /// Decoupled weight decay. Default 0.01 (bert) / 0 (bilstm: plain Adam).
    #[arg(long, env = "BERTKIT_WEIGHT_DECAY")]
    pub(super) weight_decay: Option<f64>,
    /// Default 1e-6 (bert) / 1e-7 (bilstm, Keras).
    #[arg(long, env = "BERTKIT_ADAM_EPSILON")]
    pub(super) adam_epsilon: Option<f64>,
    /// Global gradient-norm clip; 0 turns clipping off. Default 1.0 (both; Keras' chapter does
    /// not clip, but the BiLSTM diverged without it).
    #[arg(long, env = "BERTKIT_MAX_GRAD_NORM")]
    pub(super) max_grad_norm: Option<f64>,
    /// Train only the head on cached features of the frozen encoder (feature extraction). Its
    /// defaults fit a probe: mean pooling, standardised features, lr 1e-3 held constant, up to
    /// 100 epochs with --patience 5 (each epoch costs only the head).
    #[arg(long, env = "BERTKIT_FREEZE_ENCODER")]
    pub(super) freeze_encoder: bool,
    /// With --freeze-encoder: train the head on the raw pooled features, not standardised ones.
    #[arg(long, env = "BERTKIT_RAW_FEATURES")]
    pub(super) raw_features: bool,
    /// pooler (the checkpoint's tanh pooler), cls or mean. Default: what the family's
    /// transformers classifier reads (pooler for BERT/ALBERT, the first token otherwise); mean
    /// with --freeze-encoder (a pooler trained for another task is a poor fixed feature).
    #[arg(long, env = "BERTKIT_POOLING")]
    pub(super) pooling: Option<Pooling>,
    /// A hidden dense layer of this size in the head (0: none). Default: the family's
    /// transformers head (none for BERT/ALBERT; hidden_size for DistilBERT, RoBERTa, ELECTRA).
    #[arg(long, env = "BERTKIT_HEAD_HIDDEN")]
    pub(super) head_hidden: Option<usize>,
    /// The head's dropout probability, in [0, 1) (transformers' `classifier_dropout` role; 0.1
    /// as Keras' TF Hub BERT tutorial and `hidden_dropout_prob` use).
    #[arg(long, default_value_t = 0.1, value_parser = super::dropout_probability, env = "BERTKIT_DROPOUT")]
    pub(super) dropout: f64,
    #[arg(long, env = "BERTKIT_EVAL_BATCH_SIZE", default_value_t = 64)]
    pub(super) eval_batch_size: usize,
    /// Checkpoint every N steps too (one is always written at each epoch end).
    #[arg(long, env = "BERTKIT_CHECKPOINT_EVERY")]
    pub(super) checkpoint_every: Option<usize>,
    /// Also evaluate every N optimizer steps (an evaluation always ends each epoch); each
    /// evaluation can become the best weights and counts for --patience.
    #[arg(long, env = "BERTKIT_EVAL_EVERY")]
    pub(super) eval_every: Option<usize>,
    /// The validation metric that picks the exported weights and drives --patience: val_loss
    /// (lower is better), val_accuracy, val_f1 or val_auc (ROC AUC); multi-label: val_accuracy is
    /// subset accuracy, val_f1 (or val_macro_f1) macro F1.
    #[arg(long, default_value = "val_loss", env = "BERTKIT_MONITOR")]
    pub(super) monitor: Monitor,
    /// Weigh each class's examples in the training loss (Keras' class_weight): `balanced`
    /// (n_examples / (n_classes × the class's examples), scikit-learn's) or NAME=WEIGHT pairs
    /// like neg=1,pos=3 (a class not named keeps 1). Single-label data; validation losses stay
    /// unweighted.
    #[arg(long, env = "BERTKIT_CLASS_WEIGHT", value_parser = super::class_weight::parse)]
    pub(super) class_weight: Option<super::class_weight::ClassWeightFlag>,
    /// Label smoothing of the training loss, in [0, 1): a softmax's targets become 1 - s + s/K and
    /// s/K (PyTorch's CrossEntropyLoss(label_smoothing), transformers' label_smoothing_factor),
    /// a sigmoid's y(1 - s) + s/2 (Keras'). Validation losses are not smoothed.
    #[arg(long, default_value_t = 0.0, env = "BERTKIT_LABEL_SMOOTHING")]
    pub(super) label_smoothing: f64,
    /// Binary and multi-label tasks: the probability at which the positive class (each label)
    /// counts as predicted, for the metrics and as the exported model's default. Refused for
    /// more than two classes (a softmax picks its top class).
    #[arg(long, default_value_t = 0.5, env = "BERTKIT_THRESHOLD")]
    pub(super) threshold: f64,
    /// Stop after N evaluations in a row without improvement (Keras' EarlyStopping patience).
    /// Default: train every epoch.
    #[arg(long, env = "BERTKIT_PATIENCE")]
    pub(super) patience: Option<usize>,
    /// The smallest change of the monitored metric that counts as an improvement.
    #[arg(long, default_value_t = 0.0, env = "BERTKIT_MIN_DELTA")]
    pub(super) min_delta: f64,
    /// Export the last step's weights instead of the best evaluation's (the default, like Keras'
    /// restore_best_weights=True and transformers' load_best_model_at_end).
    #[arg(long, env = "BERTKIT_LAST_WEIGHTS")]
    pub(super) last_weights: bool,
    /// Continue from the checkpoint in OUT.run/ (same flags required). Without one the run starts
    /// from the first step and says so, so a preemptible job can pass it on every start.
    #[arg(long, env = "BERTKIT_RESUME")]
    pub(super) resume: bool,
    /// Use only the first N training examples after the split (quick runs).
    #[arg(long, env = "BERTKIT_MAX_TRAIN", value_parser = super::at_least_one)]
    pub(super) max_train: Option<usize>,
    /// Use only the first N validation examples.
    #[arg(long, env = "BERTKIT_MAX_VAL", value_parser = super::at_least_one)]
    pub(super) max_val: Option<usize>,
    /// Print N training examples with their labels.
    #[arg(long, env = "BERTKIT_SHOW_SAMPLES", default_value_t = 0)]
    pub(super) show_samples: usize,
    #[arg(long, default_value = "cpu", env = "BERTKIT_DEVICE")]
    pub(super) device: DeviceSpec,
    /// Fine-tuning implementation: burn (autodiff, any device), kernels (hand-written backward
    /// pass on the CPU kernels, fp32), kernels-bf16 (the same with bf16 GEMM operands and fp32
    /// accumulation, like PyTorch's bf16 autocast), or auto: kernels-bf16 where bf16 was
    /// measured faster (AMX tiles; AMD with AVX512-BF16), kernels on every other CPU, for every
    /// BERT-family checkpoint and the BiLSTM; burn with --device cuda.
    #[arg(long, env = "BERTKIT_ENGINE", default_value = "auto")]
    pub(super) engine: Engine,
    /// Also store the encoder's int8 weights in the export (`model.int8.safetensors`, as
    /// `bertkit quantize` does), so `--precision int8` reads them rather than quantizing at load.
    #[arg(long, env = "BERTKIT_SAVE_INT8")]
    pub(super) save_int8: bool,
    /// No progress output.
    #[arg(long, env = "BERTKIT_QUIET")]
    pub(super) quiet: bool,
    /// For tests: after the first checkpoint at or past step N, wait to be killed (the resume
    /// tests kill a run at a known point this way).
    #[arg(long, hide = true, env = "BERTKIT_HALT_AFTER_STEP")]
    pub(super) halt_after_step: Option<usize>,
}

impl TrainCmd {
    /// The validated settings. Defaults differ by what is trained: fine-tuning a checkpoint
    /// (BERT's recipe), a head on frozen features (a probe: Keras' Adam rate, many cheap epochs
    /// stopped early, standardised features), or the BiLSTM (the chapter's Keras settings).
    pub(super) fn plan(&self) -> TrainPlan {
        let bert = self.arch == ArchFlag::Bert;
        let frozen = bert && self.freeze_encoder;
        let pick = |v: Option<f64>, b: f64, l: f64| v.unwrap_or(if bert && !frozen { b } else { l });
        let clip = pick(self.max_grad_norm, 1.0, 1.0);
        TrainPlan {
            epochs: self.epochs.unwrap_or(if frozen { 100 } else if bert { 3 } else { 5 }),
            max_steps: self.max_steps,
            batch_size: self.batch_size.unwrap_or(if bert { 32 } else { 100 }),
            gradient_accumulation_steps: self.gradient_accumulation_steps,
            learning_rate: pick(self.learning_rate, 3e-5, 1e-3),
            // --warmup-steps replaces the ratio (clap refuses both).
            warmup_ratio: if self.warmup_steps.is_some() { 0.0 } else { pick(self.warmup_ratio, 0.1, 0.0) },
            warmup_steps: self.warmup_steps,
            weight_decay: pick(self.weight_decay, 0.01, 0.0),
            adam_epsilon: pick(self.adam_epsilon, 1e-6, 1e-7),
            max_grad_norm: (clip > 0.0).then_some(clip),
            seed: self.seed,
            freeze_encoder: self.freeze_encoder,
            eval_batch_size: self.eval_batch_size,
            checkpoint_every: self.checkpoint_every,
            lr_scheduler: self.lr_scheduler.unwrap_or(if bert && !frozen { LrScheduler::Linear } else { LrScheduler::Constant }),
            eval_every: self.eval_every,
            monitor: self.monitor,
            patience: self.patience.or(frozen.then_some(5)),
            min_delta: self.min_delta,
            restore_best: !self.last_weights,
            standardize_features: frozen && !self.raw_features,
            threshold: self.threshold,
            // Resolved against the training split's classes once it is loaded.
            class_weights: None,
            label_smoothing: self.label_smoothing,
        }
    }

    /// The flags' checks that need neither the checkpoint nor the data, so a run they refuse
    /// reads nothing (`--model` is checked as the checkpoint opens, which is next), and the
    /// kernels precision the run then trains (or computes frozen features) with, or `None` for
    /// burn.
    pub(super) fn checked_engine(&self, plan: &TrainPlan) -> anyhow::Result<Option<Precision>> {
        let precision = self.arch_engine()?;
        // The trainers refuse it too, but only once the data is loaded.
        check_accumulation(plan, self.arch == ArchFlag::Bilstm, precision.is_some())?;
        Ok(precision)
    }

    fn arch_engine(&self) -> anyhow::Result<Option<Precision>> {
        match self.arch {
            ArchFlag::Bert if self.freeze_encoder => Ok(self.feature_engine()),
            ArchFlag::Bert => self.training_engine(),
            ArchFlag::Bilstm => {
                // Refused before training, not after it: the BiLSTM has no int8 path to store for.
                anyhow::ensure!(
                    !self.save_int8,
                    "--save-int8 stores a BERT-family encoder's int8 weights; the BiLSTM baseline runs in fp32 (drop --save-int8)"
                );
                anyhow::ensure!(self.data.pair_column.is_none(), "the BiLSTM baseline reads single texts; --pair-column needs --arch bert");
                self.bilstm.check()?;
                // The baseline's GEMMs are small: fp32 on whichever kernels engine is chosen.
                Ok(self.training_engine()?.map(|_| Precision::F32))
            }
        }
    }

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
