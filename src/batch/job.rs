//! The batch job: stream the input in chunks of rows, score each chunk (length-sorted batches
//! inside it), write it as one finished part, merge the parts in input order at the end. Memory
//! holds one chunk; a killed job resumes at its first missing part; `--shard K/N` takes every
//! N-th chunk so that N machines split a corpus.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::output::{merge, record};
use super::{BatchError, InputColumns, InputRow, InputRows, Outcome, OutputFormat, OutputKind};

/// Which of N machines this is: chunk c belongs to shard `c % count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = BatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BatchError::BadShard(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse::<u64>().map_err(|_| bad())?, n.trim().parse::<u64>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A validated job.
#[derive(Clone, Debug)]
pub struct JobPlan {
    pub input: PathBuf,
    pub output: PathBuf,
    pub columns: InputColumns,
    /// Rows per chunk: what memory holds, and the unit of resume and sharding.
    pub chunk_size: usize,
    pub shard: Shard,
    pub format: OutputFormat,
    pub resume: bool,
    pub overwrite: bool,
    pub quiet: bool,
}

/// Scores the good rows of one chunk (a classifier, an embedder).
pub trait Scorer {
    /// What the rows will hold.
    fn kind(&self) -> OutputKind;
    /// What must not change between a job and its resumption (model, settings).
    fn identity(&self) -> Value;
    /// One result per input, in order: a row the model cannot take (a tokenizer error) fails
    /// alone.
    fn score(&mut self, inputs: &[(String, Option<String>)]) -> Result<Vec<Result<Outcome, String>>, BatchError>;
}

/// What a finished job did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobReport {
    /// Rows of this shard written to the output.
    pub rows: u64,
    pub failed: u64,
    /// `(line, reason)` of the first failed rows.
    pub first_failures: Vec<(u64, String)>,
    /// Rows of this shard with a line break inside quotes (CSV/TSV), and the first ones' lines:
    /// a quote left open makes the rows after it one text, so the report names them.
    pub spans_lines: u64,
    pub first_spanning: Vec<u64>,
    /// Rows scored by this run (not counting parts a resumed run found done).
    pub scored_now: u64,
    pub seconds: f64,
}

const FIRST_FAILURES: usize = 10;

/// Everything that must match for `--resume` to continue a job, saved as `job.json`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Identity {
    input: PathBuf,
    input_bytes: u64,
    columns: InputColumns,
    chunk_size: usize,
    shard: Shard,
    format: OutputFormat,
    scorer: Value,
}

fn parts_dir(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".parts");
    PathBuf::from(s)
}

fn part_path(dir: &Path, chunk: u64) -> PathBuf {
    dir.join(format!("part-{chunk:08}.jsonl"))
}

fn io_write(path: &Path) -> impl Fn(std::io::Error) -> BatchError + '_ {
    move |source| BatchError::Write { path: path.to_path_buf(), source }
}

/// Creates the parts folder, or checks that the one there belongs to this job.
fn prepare(plan: &JobPlan, identity: &Identity) -> Result<PathBuf, BatchError> {
    let dir = parts_dir(&plan.output);
    let saved = dir.join("job.json");
    if dir.exists() {
        if !plan.resume {
            return Err(BatchError::UnfinishedJob(dir));
        }
        let text = std::fs::read_to_string(&saved).map_err(|source| BatchError::Read { path: saved.clone(), source })?;
        let old: Value = serde_json::from_str(&text).map_err(|e| BatchError::Read { path: saved.clone(), source: e.into() })?;
        let new = serde_json::to_value(identity).unwrap_or_default();
        if let Some(key) = ["input", "input_bytes", "columns", "chunk_size", "shard", "format", "scorer"].iter().find(|k| old[**k] != new[**k]) {
            let why = format!("{key} was {}, now {}", old[*key], new[*key]);
            return Err(BatchError::DifferentJob { parts: dir, why });
        }
        return Ok(dir);
    }
    if plan.output.exists() && !plan.overwrite {
        return Err(BatchError::OutputExists(plan.output.clone()));
    }
    if plan.resume && !plan.quiet {
        // As `train --resume` does: a first start is fine, and said so.
        eprintln!("No unfinished job in {} to resume: starting from the first row", dir.display());
    }
    std::fs::create_dir_all(&dir).map_err(io_write(&dir))?;
    let text = serde_json::to_string_pretty(identity).unwrap_or_default();
    std::fs::write(&saved, text).map_err(io_write(&saved))?;
    Ok(dir)
}

fn progress(total: u64, done: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() });
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} rows {per_sec} ETA {eta} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_position(done);
    bar
}

/// Scores one chunk and writes its part (to a temporary name first: a part file exists only
/// when complete).
fn write_part(rows: &[InputRow], scorer: &mut dyn Scorer, kind: &OutputKind, format: OutputFormat, path: &Path) -> Result<(), BatchError> {
    let inputs: Vec<(String, Option<String>)> = rows.iter().filter_map(|r| r.input.clone().ok()).collect();
    let mut scored = scorer.score(&inputs)?.into_iter();
    let mut text = String::new();
    for row in rows {
        let outcome = match &row.input {
            Ok(_) => scored.next().unwrap_or_else(|| Err("the model returned fewer rows than it was given".into())),
            Err(why) => Err(why.clone()),
        };
        text.push_str(&record(row, &outcome, kind, format).to_string());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io_write(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_write(path))
}

/// Runs the job; the output appears (atomically, by rename) only when every chunk is done.
pub fn run_job(plan: &JobPlan, scorer: &mut dyn Scorer) -> Result<JobReport, BatchError> {
    let t0 = Instant::now();
    let kind = scorer.kind();
    let input_bytes = std::fs::metadata(&plan.input).map_err(|source| BatchError::Read { path: plan.input.clone(), source })?.len();
    let identity = Identity {
        input: std::fs::canonicalize(&plan.input).unwrap_or_else(|_| plan.input.clone()),
        input_bytes,
        columns: plan.columns.clone(),
        chunk_size: plan.chunk_size,
        shard: plan.shard,
        format: plan.format,
        scorer: scorer.identity(),
    };
    let dir = prepare(plan, &identity)?;
    let size = plan.chunk_size.max(1) as u64;
    let total = InputRows::count(&plan.input, &plan.columns)?;
    let chunks = total.div_ceil(size);
    let mine: Vec<u64> = (0..chunks).filter(|c| c % plan.shard.count == plan.shard.index).collect();
    let rows_of = |c: u64| size.min(total - c * size);
    let done: u64 = mine.iter().filter(|&&c| part_path(&dir, c).is_file()).map(|&c| rows_of(c)).sum();
    let bar = progress(mine.iter().map(|&c| rows_of(c)).sum(), done, plan.quiet);

    let mut report = JobReport::default();
    let mut chunk: Vec<InputRow> = Vec::with_capacity(plan.chunk_size);
    let mut current = 0u64;
    let wanted = |c: u64| c % plan.shard.count == plan.shard.index && !part_path(&dir, c).is_file();
    let mut take = wanted(0);
    let flush = |chunk: &mut Vec<InputRow>, c: u64, scorer: &mut dyn Scorer, report: &mut JobReport| -> Result<(), BatchError> {
        if !chunk.is_empty() {
            write_part(chunk, scorer, &kind, plan.format, &part_path(&dir, c))?;
            report.scored_now += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
            chunk.clear();
        }
        Ok(())
    };
    for row in InputRows::open(&plan.input, &plan.columns)? {
        let row = row?;
        let c = row.index / size;
        if c != current {
            flush(&mut chunk, current, scorer, &mut report)?;
            (current, take) = (c, wanted(c));
        }
        if row.spans_lines && c % plan.shard.count == plan.shard.index {
            report.spans_lines += 1;
            if report.first_spanning.len() < FIRST_FAILURES {
                report.first_spanning.push(row.line);
            }
        }
        // Rows of other shards' chunks, and of parts already written, are read and dropped.
        if take {
            chunk.push(row);
        }
    }
    flush(&mut chunk, current, scorer, &mut report)?;
    bar.finish_and_clear();

    let parts: Vec<PathBuf> = mine.iter().map(|&c| part_path(&dir, c)).collect();
    if let Some(missing) = parts.iter().find(|p| !p.is_file()) {
        return Err(BatchError::Model(format!("{} was not written: the input changed while the job ran?", missing.display())));
    }
    count_rows(&parts, &mut report)?;
    let tmp = plan.output.with_extension("partial");
    merge(&parts, report.rows, &tmp, plan.format, &kind)?;
    std::fs::rename(&tmp, &plan.output).map_err(io_write(&plan.output))?;
    std::fs::remove_dir_all(&dir).map_err(io_write(&dir))?;
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// Rows and failures over all parts (a resumed run's earlier parts included).
fn count_rows(parts: &[PathBuf], report: &mut JobReport) -> Result<(), BatchError> {
    for part in parts {
        let text = std::fs::read_to_string(part).map_err(|source| BatchError::Read { path: part.clone(), source })?;
        for line in text.lines() {
            report.rows += 1;
            let v: Value = serde_json::from_str(line).map_err(|e| BatchError::Read { path: part.clone(), source: e.into() })?;
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                report.failed += 1;
                if report.first_failures.len() < FIRST_FAILURES {
                    report.first_failures.push((v["line"].as_u64().unwrap_or(0), e.to_string()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::Prediction;

    /// Scores a text by its length; fails (as a kill would) at call `die_at`; checks that no
    /// call gets more than `chunk` inputs.
    struct Fake {
        calls: usize,
        die_at: Option<usize>,
        chunk: usize,
    }

    impl Scorer for Fake {
        fn kind(&self) -> OutputKind {
            OutputKind::Predictions { class_names: vec!["short".into(), "long".into()], binary: true, multi_label: false }
        }
        fn identity(&self) -> Value {
            serde_json::json!("fake")
        }
        fn score(&mut self, inputs: &[(String, Option<String>)]) -> Result<Vec<Result<Outcome, String>>, BatchError> {
            self.calls += 1;
            if self.die_at == Some(self.calls) {
                return Err(BatchError::Model("killed".into()));
            }
            assert!(inputs.len() <= self.chunk, "{} inputs in one call", inputs.len());
            Ok(inputs
                .iter()
                .map(|(t, _)| {
                    let p = t.len() as f32 / 100.0;
                    Ok(Outcome::Prediction(Prediction { label: if p >= 0.5 { "long" } else { "short" }.into(), score: p, scores: vec![1.0 - p, p], labels: None }))
                })
                .collect())
        }
    }

    fn input(dir: &Path, rows: usize) -> PathBuf {
        let p = dir.join("in.jsonl");
        let mut text = String::new();
        for i in 0..rows {
            // Every 7th row is empty: a failed row with its line.
            let t = if i % 7 == 3 { String::new() } else { "x".repeat(1 + i % 60) };
            text.push_str(&serde_json::json!({ "id": format!("r{i}"), "text": t }).to_string());
            text.push('\n');
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    fn plan(dir: &Path, output: &str, shard: Shard, resume: bool) -> JobPlan {
        JobPlan {
            input: dir.join("in.jsonl"),
            output: dir.join(output),
            columns: InputColumns { text: "text".into(), pair: None, id: Some("id".into()) },
            chunk_size: 10,
            shard,
            format: OutputFormat::of(Path::new(output), false, false).unwrap(),
            resume,
            overwrite: false,
            quiet: true,
        }
    }

    fn fake(die_at: Option<usize>) -> Fake {
        Fake { calls: 0, die_at, chunk: 10 }
    }

    #[test]
    fn every_row_comes_out_once_in_input_order_with_failures_named() {
        let d = tempfile::tempdir().unwrap();
        input(d.path(), 95);
        let report = run_job(&plan(d.path(), "out.jsonl", Shard::default(), false), &mut fake(None)).unwrap();
        assert_eq!((report.rows, report.failed, report.scored_now), (95, 14, 95));
        assert_eq!(report.first_failures[0], (4, "empty text".to_string()));
        let lines: Vec<Value> = std::fs::read_to_string(d.path().join("out.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ids: Vec<String> = lines.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids, (0..95).map(|i| format!("r{i}")).collect::<Vec<_>>());
        assert_eq!(lines[1]["score"].as_f64().unwrap() as f32, 0.02);
        assert!(!parts_dir(&d.path().join("out.jsonl")).exists(), "the parts are removed");
        // A second run refuses to replace the output.
        let err = run_job(&plan(d.path(), "out.jsonl", Shard::default(), false), &mut fake(None)).unwrap_err();
        assert!(err.to_string().contains("--overwrite"), "{err}");
    }

    #[test]
    fn a_killed_job_resumes_without_losing_or_repeating_rows() {
        let d = tempfile::tempdir().unwrap();
        input(d.path(), 95);
        run_job(&plan(d.path(), "whole.jsonl", Shard::default(), false), &mut fake(None)).unwrap();
        // Killed in its 4th chunk: 3 parts are done, no output yet.
        let err = run_job(&plan(d.path(), "out.jsonl", Shard::default(), false), &mut fake(Some(4))).unwrap_err();
        assert!(err.to_string().contains("killed"));
        assert!(!d.path().join("out.jsonl").exists());
        let again = run_job(&plan(d.path(), "out.jsonl", Shard::default(), false), &mut fake(None)).unwrap_err();
        assert!(again.to_string().contains("--resume"), "{again}");
        let mut resumed = fake(None);
        let report = run_job(&plan(d.path(), "out.jsonl", Shard::default(), true), &mut resumed).unwrap();
        assert_eq!((resumed.calls, report.scored_now, report.rows), (7, 65, 95));
        let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap();
        assert_eq!(read("out.jsonl"), read("whole.jsonl"));
        // A different job may not continue these parts.
        run_job(&plan(d.path(), "other.jsonl", Shard::default(), false), &mut fake(Some(2))).unwrap_err();
        let mut other = plan(d.path(), "other.jsonl", Shard::default(), true);
        other.chunk_size = 20;
        let err = run_job(&other, &mut fake(None)).unwrap_err().to_string();
        assert!(err.contains("different job") && err.contains("chunk_size was 10, now 20"), "{err}");
    }

    #[test]
    fn shards_split_the_chunks_and_together_cover_every_row_once() {
        let d = tempfile::tempdir().unwrap();
        input(d.path(), 95);
        run_job(&plan(d.path(), "whole.jsonl", Shard::default(), false), &mut fake(None)).unwrap();
        let mut rows: Vec<String> = Vec::new();
        for k in 0..3 {
            let out = format!("shard{k}.jsonl");
            let report = run_job(&plan(d.path(), &out, Shard { index: k, count: 3 }, false), &mut fake(None)).unwrap();
            // Chunks 0..10 of 10 rows (the last of 5): shard 0 takes 0, 3, 6, 9.
            assert_eq!(report.rows, [35, 30, 30][k as usize]);
            rows.extend(std::fs::read_to_string(d.path().join(out)).unwrap().lines().map(str::to_string));
        }
        let row = |l: &String| serde_json::from_str::<Value>(l).unwrap()["row"].as_u64().unwrap();
        rows.sort_by_key(row);
        let whole: Vec<String> = std::fs::read_to_string(d.path().join("whole.jsonl")).unwrap().lines().map(str::to_string).collect();
        assert_eq!(rows, whole);
    }

    #[test]
    fn shards_parse_from_zero_and_refuse_nonsense() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "a/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
