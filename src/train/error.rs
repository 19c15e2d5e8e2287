//! Errors that stop a training run (its last checkpoint stays on disk).

use std::path::PathBuf;

use super::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("no training examples")]
    NoData,
    #[error(
        "a warm-up of {warmup} steps leaves no step at the peak rate: this run has {total} ({why}); \
         give fewer --warmup-steps, or more epochs or --max-steps"
    )]
    WarmupTooLong { warmup: usize, total: usize, why: String },
    #[error("the model has {model} outputs, but a run of {classes} classes needs {needed}")]
    Outputs { model: usize, classes: usize, needed: String },
    #[error("the {split} split has {texts} texts but {targets} targets: one per text")]
    SplitLengths { split: &'static str, texts: usize, targets: usize },
    #[error("target {index} of the {split} split is {target}: {why} (this run has {classes})")]
    BadTarget { split: &'static str, index: usize, target: String, why: &'static str, classes: usize },
    #[error("the plan has {given} class weights, but this run has {classes} classes: one weight per class")]
    ClassWeights { given: usize, classes: usize },
    #[error(
        "--monitor val_auc is undefined on this validation data: it needs a class (of two, the positive one) that \
         some validation examples have and others lack; monitor val_loss, or validate on more data"
    )]
    AucUndefined,
    #[error(
        "--threshold {threshold} is for binary and multi-label tasks; this model's {outputs} outputs are one softmax, \
         which predicts its top class"
    )]
    ThresholdForSoftmax { threshold: f64, outputs: usize },
    #[error("class weights are for single-label runs: a multi-label run weighs each label's loss alike")]
    ClassWeightsMultiLabel,
    /// Only the kernels fine-tuning trainer splits a step into micro-batches.
    #[error(
        "--gradient-accumulation-steps is for fine-tuning on the kernels; {trainer} takes each step's examples \
         whole: give --batch-size the examples per step instead"
    )]
    Accumulation { trainer: &'static str },
    /// int8 weights have no gradients to take (per-channel scales fixed at quantization).
    #[error("int8 is for inference (predict, evaluate, serve, bench): fine-tune in fp32 or bf16")]
    Int8Training,
    #[error("loss became {loss} at step {step}; try a lower learning rate")]
    Diverged { step: usize, loss: f64 },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the checkpoint was made with different settings; rerun with the same flags or without --resume.\n  saved: {saved}\n  given: {given}")]
    ResumeMismatch { saved: String, given: String },
    #[error(
        "the checkpoint trained on {saved} examples, but this run has {given}: resume with the same data and split \
         (--data, --validation-split or --validation-data, --max-train), or start again without --resume"
    )]
    ResumeData { saved: usize, given: usize },
    /// A text that does not fit the model's tables, named by its place in its split.
    #[error("the {split} split: {error}")]
    Text { split: &'static str, error: crate::model::fast::TokenBatchError },
    #[error("text {index} of the {split} split is {len} tokens long, but the model's position table allows {max}")]
    TooLong { split: &'static str, index: usize, len: usize, max: usize },
    #[error(transparent)]
    Batch(#[from] crate::model::fast::TokenBatchError),
    #[error("tensor backend: {0}")]
    Backend(String),
    #[error("moving the model between engines: {0}")]
    Model(#[from] crate::model::LoadError),
    #[error(transparent)]
    Device(#[from] crate::DeviceSpecError),
}
