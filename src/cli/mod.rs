//! Command-line surface: one subcommand per file.

mod args;
mod embed;
mod preprocess;

use clap::{Parser, Subcommand};

pub use args::{ModelArgs, PreprocessArgs};

#[derive(Parser, Debug)]
#[command(name = "bertkit", version, about = "Fine-tune, evaluate, export and serve BERT text classifiers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tokenize text into input_word_ids / input_mask / input_type_ids.
    Preprocess(preprocess::PreprocessCmd),
    /// Run the pretrained encoder and print pooled_output, sequence_output, encoder_outputs.
    Embed(embed::EmbedCmd),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Preprocess(cmd) => cmd.run(),
        Command::Embed(cmd) => cmd.run(),
    }
}
