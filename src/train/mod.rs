//! Training (BERT fine-tuning, feature extraction, the BiLSTM baseline): losses, the learning-rate
//! schedule, gradient clipping, the training loop with
//! validation, history, checkpoints and resume.

mod bilstm;
mod burn_engine;
mod classifier;
#[cfg(feature = "burn")]
mod clip;
mod early_stop;
mod error;
pub mod fast;
#[cfg(feature = "burn")]
mod fit;
#[cfg(feature = "burn")]
mod loss;
mod plan;
mod progress;
mod run_loop;
mod schedule;
mod standardize;
mod state;

pub use bilstm::train_bilstm;
pub use classifier::{Split, TrainRun, check_accumulation, train_classifier};
#[cfg(feature = "burn")]
pub use clip::clip_grad_norm;
pub use early_stop::{BestState, Monitor, UnknownMonitor, WrongTask};
pub use error::TrainError;
#[cfg(feature = "burn")]
pub use fit::{FitArgs, fit, optimizer};
pub use run_loop::{Learner, LoopArgs, epoch_order, run_loop, step_seed};
pub use crate::metrics::{BestPoint, EpochRecord, EvalPoint, History};
#[cfg(feature = "burn")]
pub use loss::{bce_with_logits, classification_loss, cross_entropy};
pub use plan::{LossTerms, PlanError, TrainPlan, class_weight};
pub use schedule::{LrScheduler, Schedule, UnknownScheduler};
pub use standardize::Standardizer;
pub use state::{CheckpointDir, RunState};
