//! Labelled text: loading (folder per class, CSV/TSV, JSONL, Parquet), problems found while loading, and
//! the seeded train/validation split.

mod blank;
mod dataset;
mod error;
mod folder;
mod labels;
mod loader;
pub mod npy;
mod parquet;
mod split;
mod table;
mod target;

pub use blank::is_blank;
pub use dataset::{Dataset, Example, LoadReport, Skipped};
pub use error::DataError;
pub use loader::{Columns, LoadOptions, load};
pub use parquet::{ParquetRows, open as open_parquet};
pub use split::split;
pub use target::{Target, decided_class, predicted_class, predicted_on};
