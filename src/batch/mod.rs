//! Batch jobs over files: score or embed every row of a JSONL, CSV/TSV or Parquet file into
//! JSONL (plain or Vertex AI's shape), CSV/TSV, Parquet or `.npy`, streaming with bounded memory,
//! resumable, and split across machines by shards.

mod error;
mod input;
mod job;
mod output;
mod scorers;

pub use error::BatchError;
pub use input::{InputColumns, InputRow, InputRows, TableFormat};
pub use job::{JobPlan, JobReport, Scorer, Shard, run_job};
pub use output::{Outcome, OutputFormat, OutputKind};
pub use scorers::{EmbedScorer, PredictScorer};
