//! The exported model folder: a Hugging Face `BertForSequenceClassification`-style checkpoint plus
//! `bertkit.json`, written atomically and reloaded to identical scores.

mod bundle;
mod error;
mod meta;

pub use bundle::{ClassifierBundle, save_classifier};
pub use error::ArtifactError;
pub use meta::{META_FILE, ModelMeta};
