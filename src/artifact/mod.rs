//! The exported model folder: a Hugging Face `*ForSequenceClassification`-style checkpoint (or the
//! BiLSTM baseline's weights and vocabulary) plus `bertkit.json`, written atomically and reloaded
//! to identical scores.

mod bundle;
mod error;
mod int8;
mod meta;
mod swap;

pub use bundle::{ClassifierBundle, save_classifier};
pub use error::ArtifactError;
pub use int8::{INT8_FILE, Int8Summary, load_int8, save_int8};
pub use meta::{Arch, META_FILE, ModelMeta};
pub use swap::recover;
