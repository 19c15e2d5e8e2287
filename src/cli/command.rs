//! The command line: the subcommands, the grammar every flag shares, and the dispatch.

use std::num::NonZeroUsize;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use super::{bench, cpu, embed, evaluate, export_embeddings, loadtest, predict, preprocess, quantize, serve, train_args};

#[derive(Parser, Debug)]
#[command(name = "bertkit", version, about = "Fine-tune, evaluate, export and serve BERT text classifiers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// CPU threads the kernels use (default: RAYON_NUM_THREADS, else every CPU this process may
    /// use; ONNX Runtime's intra_op_num_threads). `bench` gives its peers the same number.
    #[arg(long, global = true, env = "BERTKIT_THREADS", value_parser = super::args::nonzero)]
    pub threads: Option<NonZeroUsize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tokenize text into input_word_ids / input_mask / input_type_ids.
    Preprocess(preprocess::PreprocessCmd),
    /// Run the pretrained encoder and print pooled_output, sequence_output, encoder_outputs.
    Embed(embed::EmbedCmd),
    /// Fine-tune a classifier (or train a head on a frozen encoder) and export it.
    Train(Box<train_args::TrainCmd>),
    /// Evaluate an exported classifier on labelled data.
    Evaluate(evaluate::EvaluateCmd),
    /// Score texts with an exported classifier.
    Predict(predict::PredictCmd),
    /// Store an exported classifier's int8 weights beside its fp32 ones (`--precision int8` reads them).
    Quantize(quantize::QuantizeCmd),
    /// Serve an exported classifier over HTTP (TF Serving / Vertex AI predict API).
    Serve(serve::ServeCmd),
    /// Load-test a prediction server on this machine.
    Loadtest(loadtest::LoadtestCmd),
    /// Benchmark bertkit against PyTorch / ONNX Runtime side by side.
    Bench(bench::BenchCmd),
    /// Show the CPU, its instruction sets and the kernels level in use (`BERTKIT_CPU` caps it).
    Cpu(cpu::CpuCmd),
    /// Write a checkpoint's word embedding table as a GloVe-format text file.
    ExportEmbeddings(export_embeddings::ExportEmbeddingsCmd),
}

impl Cli {
    /// The command line's grammar. Every subcommand takes negative numbers as values (`--lr -1`,
    /// a text "-5"), so that a negative value reaches the check that names its flag and rule
    /// ("learning rate must be a positive number, got -1") instead of clap's "unexpected
    /// argument '-1'". A switch's environment variable takes what containers write for one
    /// (`BERTKIT_QUIET=1`, `yes`, `on`; `0`, `no`, `off`), not only `true`/`false`.
    pub fn grammar() -> clap::Command {
        Self::command().mut_subcommands(|c| {
            c.allow_negative_numbers(true).mut_args(|a| match a.get_action() {
                clap::ArgAction::SetTrue => a.value_parser(clap::builder::BoolishValueParser::new()),
                _ => a,
            })
        })
    }

    /// Parses this process's arguments (and `BERTKIT_*` variables); exits with clap's message
    /// on a bad one.
    pub fn from_env() -> Self {
        Self::from_arg_matches(&Self::grammar().get_matches()).unwrap_or_else(|e| e.exit())
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Preprocess(cmd) => cmd.run(),
        Command::Embed(cmd) => cmd.run(),
        Command::Train(cmd) => cmd.run(),
        Command::Evaluate(cmd) => cmd.run(),
        Command::Predict(cmd) => cmd.run(),
        Command::Quantize(cmd) => cmd.run(),
        Command::Serve(cmd) => cmd.run(),
        Command::Loadtest(cmd) => cmd.run(),
        Command::Bench(cmd) => cmd.run(),
        Command::Cpu(cmd) => cmd.run(),
        Command::ExportEmbeddings(cmd) => cmd.run(),
    }
}
