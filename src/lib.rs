//! bertkit: turn a pretrained BERT-family checkpoint into a text classifier, train it, export it
//! and serve it.
//!
//! Data flows through the modules in this order: [`tokenize`] (text → `input_word_ids`,
//! `input_mask`, `input_type_ids`) → [`model`] (the encoder and its heads). Each layer only
//! depends on the ones before it.
//!
//! # Scoring texts with an exported model
//!
//! What `bertkit predict` does, from Rust: load a folder written by `bertkit train` (or
//! `save_classifier`), pick an engine, score.
//!
//! ```no_run
//! use std::num::NonZeroUsize;
//! use std::path::Path;
//!
//! use bertkit::DeviceSpec;
//! use bertkit::artifact::ClassifierBundle;
//! use bertkit::predict::{Engine, Predictor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = ClassifierBundle::load(Path::new("runs/imdb"))?;
//! // `auto`: the CPU kernels, in bf16 where this CPU was measured faster so (int8 only on request).
//! let engine = Engine::Auto.resolve(DeviceSpec::Cpu);
//! let mut predictor = Predictor::with_engine(bundle, DeviceSpec::Cpu, engine)?;
//! if let Some(note) = predictor.engine_note() {
//!     eprintln!("note: {note}"); // what runs differs from what was asked, and why
//! }
//! predictor.set_batch_size(NonZeroUsize::new(64).ok_or("a batch size is at least 1")?);
//! for p in predictor.predict(&["a wonderful film", "two hours I will never get back"])? {
//!     println!("{} {:.3}", p.label, p.score);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Bad input (an empty text, a pair for a single-text model, a batch that does not fit the
//! model's tables) is an error naming it ([`predict::PredictError`]), never a panic or a clamp.
//!
//! # Serving it
//!
//! What `bertkit serve` does: the TF Serving / Vertex AI routes, the Open Inference Protocol,
//! batching, health and metrics, until SIGTERM or Ctrl-C. [`serve::ServeConfig::new`] holds the
//! command's defaults; settings it cannot run with are refused by name before anything binds.
//!
//! ```no_run
//! use bertkit::DeviceSpec;
//! use bertkit::serve::{ServeConfig, serve_blocking};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServeConfig { port: 8501, max_batch_size: 64, ..ServeConfig::new("runs/imdb", "imdb") };
//! serve_blocking(config, DeviceSpec::Cpu)?;
//! # Ok(())
//! # }
//! ```

pub mod artifact;
pub mod batch;
pub mod data;
pub mod device;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod serve;
pub mod tokenize;
pub mod train;

pub use device::{ComputePoolError, DeviceSpec, DeviceSpecError, start_compute_pool};
