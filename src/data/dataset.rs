//! In-memory labelled examples and the report of what was skipped while loading them.

use std::fmt;
use std::path::PathBuf;

use super::Target;

/// One labelled text, or text pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    /// The second text of a sentence-pair task (`--pair-column`).
    pub pair: Option<String>,
    pub target: Target,
}

impl Example {
    /// A single text of class `label`.
    pub fn single(text: impl Into<String>, label: usize) -> Self {
        Self { text: text.into(), pair: None, target: Target::Class(label) }
    }
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// Label index → class name.
    pub class_names: Vec<String>,
    pub source: PathBuf,
    /// Every example holds a label set ([`Target::Labels`]) rather than one class.
    pub multi_label: bool,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Examples per class (multi-label: examples holding each label), in label order.
    pub fn counts(&self) -> Vec<usize> {
        (0..self.class_names.len()).map(|j| self.examples.iter().filter(|e| e.target.has(j)).count()).collect()
    }

    pub fn texts(&self) -> Vec<&str> {
        self.examples.iter().map(|e| e.text.as_str()).collect()
    }

    /// The second texts, when the data holds pairs (every example has one, or none does).
    pub fn pairs(&self) -> Option<Vec<&str>> {
        self.examples.iter().map(|e| e.pair.as_deref()).collect()
    }

    pub fn targets(&self) -> Vec<Target> {
        self.examples.iter().map(|e| e.target.clone()).collect()
    }
}

/// Why an example was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    NotUtf8,
    EmptyText,
    UnknownLabel(String),
    /// A malformed table row (skipped only with `--skip-bad-rows`).
    BadRow(String),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8"),
            Self::EmptyText => f.write_str("empty text"),
            Self::UnknownLabel(l) => write!(f, "unknown label `{l}`"),
            Self::BadRow(why) => f.write_str(why),
        }
    }
}

/// Examples that were skipped, with where they came from (a path, or `file:line`).
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub skipped: Vec<(String, Skipped)>,
    /// Table rows whose quoted text holds line breaks (`file:line` of each): legal CSV, and
    /// also what one unclosed quote does to the rows after it, so the count is always shown.
    pub multiline: Vec<String>,
}

impl LoadReport {
    pub fn skip(&mut self, location: impl Into<String>, why: Skipped) {
        self.skipped.push((location.into(), why));
    }

    pub fn is_clean(&self) -> bool {
        self.skipped.is_empty()
    }

    /// One line per kind of problem: count and the first few locations.
    pub fn summary(&self, first: usize) -> Vec<String> {
        let mut lines = self.skipped_summary(first);
        if !self.multiline.is_empty() {
            let shown: Vec<&str> = self.multiline.iter().take(first).map(String::as_str).collect();
            let more = if self.multiline.len() > first { ", ..." } else { "" };
            lines.push(format!(
                "{} row(s) hold line breaks inside quotes ({}{more}); if that is not intended, a quote is not closed",
                self.multiline.len(),
                shown.join(", ")
            ));
        }
        lines
    }

    fn skipped_summary(&self, first: usize) -> Vec<String> {
        let mut kinds: Vec<String> = Vec::new();
        for (_, why) in &self.skipped {
            let kind = kind_of(why);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
            .into_iter()
            .map(|kind| {
                let hits: Vec<&(String, Skipped)> =
                    self.skipped.iter().filter(|(_, w)| kind_of(w) == kind).collect();
                let shown: Vec<String> =
                    hits.iter().take(first).map(|(loc, why)| format!("{loc} ({why})")).collect();
                let more = if hits.len() > first { ", ..." } else { "" };
                format!("skipped {} example(s), {kind}: {}{more}", hits.len(), shown.join(", "))
            })
            .collect()
    }
}

fn kind_of(why: &Skipped) -> String {
    match why {
        Skipped::UnknownLabel(_) => "unknown label".into(),
        Skipped::BadRow(_) => "malformed row".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_kind_and_shows_the_first_few() {
        let mut r = LoadReport::default();
        for i in 0..5 {
            r.skip(format!("a/{i}.txt"), Skipped::NotUtf8);
        }
        r.skip("b.csv:3", Skipped::UnknownLabel("maybe".into()));
        let s = r.summary(2);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], "skipped 5 example(s), not valid UTF-8: a/0.txt (not valid UTF-8), a/1.txt (not valid UTF-8), ...");
        assert!(s[1].contains("unknown label `maybe`"));
    }
}
