//! Flags shared by several subcommands, validated into the library's typed plans.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context;
use bertkit::tokenize::{EncodePlan, TextTokenizer, Truncation, TruncationSide};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json or vocab.txt).
    #[arg(long, env = "BERTKIT_MODEL")]
    pub model: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct PreprocessArgs {
    /// Tokens per input, including [CLS] and [SEP].
    #[arg(long, default_value_t = 128, env = "BERTKIT_SEQ_LEN")]
    pub seq_len: usize,
    /// longest_first, only_first, only_second or head_tail.
    #[arg(long, default_value = "longest_first", env = "BERTKIT_TRUNCATION")]
    pub truncation: Truncation,
    /// Which end a truncated segment loses: right (keep the head) or left (keep the tail).
    #[arg(long, default_value = "right", env = "BERTKIT_TRUNCATION_SIDE")]
    pub truncation_side: TruncationSide,
}

impl PreprocessArgs {
    pub fn plan(&self) -> anyhow::Result<EncodePlan> {
        anyhow::ensure!(self.seq_len >= 2, "--seq-len must be at least 2, got {}", self.seq_len);
        Ok(EncodePlan { seq_len: self.seq_len, truncation: self.truncation, side: self.truncation_side })
    }

    pub fn tokenizer(&self, model: &ModelArgs) -> anyhow::Result<TextTokenizer> {
        let plan = self.plan()?;
        TextTokenizer::from_dir(&model.model, plan)
            .with_context(|| format!("loading the tokenizer of {}", model.model.display()))
    }
}

/// Formats the first `n` values like `[101 2023 ...]`.
pub fn head<T: std::fmt::Display>(values: &[T], n: usize) -> String {
    let items: Vec<String> = values.iter().take(n).map(|v| v.to_string()).collect();
    format!("[{}]", items.join(" "))
}

/// Formats the first `n` floats with 6 decimals.
pub fn head_f32(values: &[f32], n: usize) -> String {
    let items: Vec<String> = values.iter().take(n).map(|v| format!("{v:.6}")).collect();
    format!("[{}]", items.join(" "))
}

/// A `--threshold`: a probability strictly between 0 and 1 (0 would predict every label, 1 none).
pub fn probability(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        Ok(p) => Err(format!("{p} is not a probability in (0, 1)")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

/// Prints why what runs is not what was asked for (`Engine::fallback_note`,
/// `Predictor::engine_note`): the run goes on, so it is a note on stderr, not an error.
pub fn say_note(note: Option<String>) {
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
}

/// A count that must be at least 1 (`--batch`, `--steps`, `--instances`...): 0 used to panic
/// (`bench --batch 0`), be clamped to 1 without a word (`evaluate --batch-size 0`) or time nothing.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    nonzero(s).map(NonZeroUsize::get)
}

/// [`at_least_one`] as the type that says so, for a library call that takes a `NonZeroUsize`.
pub fn nonzero(s: &str) -> Result<NonZeroUsize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) => NonZeroUsize::new(n).ok_or_else(|| "must be at least 1, got 0".to_string()),
        Err(e) => Err(format!("`{s}` is not a whole number: {e}")),
    }
}

/// A `--dropout`: a probability in [0, 1) (as `torch.nn.Dropout` and Keras' `Dropout` take; 1
/// would drop every feature). Unchecked, 1.5 trained with a keep scale of −2 without a word.
pub fn dropout_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{p} is not a dropout probability in [0, 1)")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_must_be_probabilities_strictly_inside_zero_one() {
        assert_eq!(probability("0.3"), Ok(0.3));
        assert!(probability("1").unwrap_err().contains("not a probability"));
        assert!(probability("0").is_err() && probability("NaN").is_err());
        assert!(probability("high").unwrap_err().contains("not a number"));
    }

    #[test]
    fn counts_must_be_at_least_one() {
        assert_eq!(at_least_one("1"), Ok(1));
        assert_eq!(at_least_one(" 32 "), Ok(32));
        assert_eq!(at_least_one("0"), Err("must be at least 1, got 0".to_string()));
        assert!(at_least_one("-3").unwrap_err().contains("not a whole number"));
    }

    /// The README promises every flag as a `BERTKIT_*` variable (for containers and CI jobs that
    /// configure through the environment); 57 flags once had none. The exceptions: `serve`'s
    /// routes read Vertex AI's own variables (its container contract sets them), and its
    /// `--name` keeps the `BERTKIT_MODEL_NAME` it was first given (a bare `BERTKIT_NAME` says
    /// less).
    #[test]
    fn every_flag_is_also_an_environment_variable_named_after_it() {
        fn walk(cmd: &clap::Command, path: &str, wrong: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) else { continue };
                let want = match (path, long) {
                    ("bertkit serve", "name") => "BERTKIT_MODEL_NAME".to_string(),
                    ("bertkit serve", "predict-route") => "AIP_PREDICT_ROUTE".to_string(),
                    ("bertkit serve", "health-route") => "AIP_HEALTH_ROUTE".to_string(),
                    _ => format!("BERTKIT_{}", long.to_uppercase().replace('-', "_")),
                };
                let env = arg.get_env().and_then(|e| e.to_str());
                if env != Some(want.as_str()) {
                    wrong.push(format!("{path} --{long}: {env:?}, want {want}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), wrong);
            }
        }
        let mut wrong = Vec::new();
        walk(&super::super::Cli::grammar(), "bertkit", &mut wrong);
        assert!(wrong.is_empty(), "flags without their environment variable:\n{}", wrong.join("\n"));
    }

    /// `--lr -1` used to stop at clap's "unexpected argument '-1'"; now the value reaches the
    /// plan's check, and a text may start with a minus sign.
    #[test]
    fn negative_numbers_are_values_not_flags() {
        let parse = |args: &[&str]| super::super::Cli::grammar().try_get_matches_from(args).map_err(|e| e.to_string());
        let m = parse(&["bertkit", "train", "--data", "d.csv", "--out", "o", "--lr", "-1"]).unwrap();
        assert_eq!(m.subcommand().and_then(|(_, t)| t.get_one::<f64>("learning_rate")), Some(&-1.0));
        let m = parse(&["bertkit", "predict", "--model", "m", "-5", "stars"]).unwrap();
        let texts: Vec<&String> = m.subcommand().and_then(|(_, p)| p.get_many::<String>("texts")).into_iter().flatten().collect();
        assert_eq!(texts, ["-5", "stars"]);
        assert!(parse(&["bertkit", "predict", "--model", "m", "-x"]).unwrap_err().contains("unexpected argument '-x'"));
    }

    #[test]
    fn dropout_1_5_is_refused_not_trained_with() {
        assert_eq!(dropout_probability("0"), Ok(0.0));
        assert_eq!(dropout_probability("0.1"), Ok(0.1));
        for bad in ["1", "1.5", "-0.1", "NaN"] {
            assert!(dropout_probability(bad).unwrap_err().contains("not a dropout probability in [0, 1)"), "{bad}");
        }
        assert!(dropout_probability("lots").unwrap_err().contains("not a number"));
    }
}
