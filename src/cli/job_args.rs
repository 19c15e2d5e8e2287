//! Flags of the batch jobs (`predict --input`, `embed --input`), validated into a [`JobPlan`].

use std::num::NonZeroUsize;
use std::path::PathBuf;

use bertkit::batch::{InputColumns, JobPlan, JobReport, OutputFormat, Shard};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct JobArgs {
    /// Score every row of this file (.jsonl, .csv, .tsv or .parquet) instead of texts given on
    /// the command line; needs --output.
    #[arg(long, env = "BERTKIT_INPUT")]
    pub input: Option<PathBuf>,
    /// The batch job's output, one record per input row in input order; the format follows the
    /// extension: .jsonl, .csv, .tsv, .parquet (and .npy for embeddings).
    #[arg(long, requires = "input", env = "BERTKIT_OUTPUT")]
    pub output: Option<PathBuf>,
    /// The input's text column (field).
    #[arg(long, default_value = "text", env = "BERTKIT_TEXT_COLUMN")]
    pub text_column: String,
    /// The input's second-text column, for sentence-pair models.
    #[arg(long, env = "BERTKIT_PAIR_COLUMN")]
    pub pair_column: Option<String>,
    /// An input column copied into every output record (`id`); rows are also numbered (`row`,
    /// from 0, in input order).
    #[arg(long, env = "BERTKIT_ID_COLUMN")]
    pub id_column: Option<String>,
    /// Rows read, scored and written at a time: what memory holds, and the unit that --resume
    /// and --shard count in.
    #[arg(long, default_value_t = 1024, value_parser = super::at_least_one, env = "BERTKIT_CHUNK_SIZE")]
    pub chunk_size: usize,
    /// Score only chunks c with c % N == K (K from 0): run N jobs with K = 0..N-1 on N machines
    /// (a Kubernetes indexed Job's JOB_COMPLETION_INDEX, a Slurm array's task id).
    #[arg(long, env = "BERTKIT_SHARD")]
    pub shard: Option<Shard>,
    /// Write Vertex AI batch prediction's JSONL records: {"instance": ..., "prediction": ...}.
    #[arg(long, env = "BERTKIT_VERTEX")]
    pub vertex: bool,
    /// Continue a killed job from its finished chunks (OUTPUT.parts/), same flags required.
    #[arg(long, env = "BERTKIT_RESUME")]
    pub resume: bool,
    /// Replace an existing output file.
    #[arg(long, env = "BERTKIT_OVERWRITE")]
    pub overwrite: bool,
    /// Texts per model call inside a chunk (shortest first, so batches pad little).
    #[arg(long, default_value = "32", value_parser = super::args::nonzero, env = "BERTKIT_BATCH_SIZE")]
    pub batch_size: NonZeroUsize,
    /// No progress bar.
    #[arg(long, env = "BERTKIT_QUIET")]
    pub quiet: bool,
}

impl JobArgs {
    /// The job, when --input was given. `vectors`: the rows hold embeddings (`.npy` allowed).
    pub fn plan(&self, vectors: bool) -> anyhow::Result<Option<JobPlan>> {
        let Some(input) = &self.input else { return Ok(None) };
        let output = self.output.clone().ok_or_else(|| anyhow::anyhow!("--input needs --output FILE (.jsonl, .csv, .tsv, .parquet)"))?;
        anyhow::ensure!(input != &output, "--output must not be the --input file");
        Ok(Some(JobPlan {
            input: input.clone(),
            format: OutputFormat::of(&output, self.vertex, vectors)?,
            output,
            columns: InputColumns { text: self.text_column.clone(), pair: self.pair_column.clone(), id: self.id_column.clone() },
            chunk_size: self.chunk_size,
            shard: self.shard.unwrap_or_default(),
            resume: self.resume,
            overwrite: self.overwrite,
            quiet: self.quiet,
        }))
    }
}

/// The job's summary on stderr: rows, failures with their lines, speed.
pub fn print_report(plan: &JobPlan, report: &JobReport) {
    eprintln!(
        "Wrote {} rows to {} in {:.1}s ({:.1} rows/s scored now){}",
        report.rows,
        plan.output.display(),
        report.seconds,
        report.scored_now as f64 / report.seconds.max(1e-9),
        if plan.shard.count > 1 { format!(", shard {}", plan.shard) } else { String::new() }
    );
    if report.failed > 0 {
        let lines: Vec<String> = report.first_failures.iter().map(|(line, why)| format!("line {line} ({why})")).collect();
        let more = if report.failed as usize > lines.len() { ", ..." } else { "" };
        eprintln!("warning: {} rows could not be scored (their records hold `error`): {}{more}", report.failed, lines.join(", "));
    }
    if report.spans_lines > 0 {
        let lines: Vec<String> = report.first_spanning.iter().map(|line| format!("line {line}")).collect();
        let more = if report.spans_lines as usize > lines.len() { ", ..." } else { "" };
        eprintln!(
            "warning: {} rows hold line breaks inside quotes ({}{more}); if that is not intended, a quote is not closed and the lines after it were read as one text",
            report.spans_lines,
            lines.join(", ")
        );
    }
}
