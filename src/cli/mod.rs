//! Command-line surface: one subcommand per file.

mod args;
mod bench;
mod bench_gemm;
mod bench_table;
mod class_weight;
mod command;
mod cpu;
mod data_args;
mod embed;
mod evaluate;
mod evaluate_rows;
mod export_embeddings;
mod job_args;
mod loadtest;
mod predict;
mod preprocess;
mod quantize;
mod serve;
mod train;
mod train_args;
mod train_bilstm;

pub use args::{ModelArgs, PreprocessArgs, at_least_one, dropout_probability, probability};
pub use command::{Cli, run};
