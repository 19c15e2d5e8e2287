//! Per-epoch progress: an indicatif bar (loss, accuracy, step time, ETA) on a terminal, plain
//! periodic lines otherwise (background runs writing to a log).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct EpochProgress {
    bar: Option<ProgressBar>,
    total: usize,
    epoch: usize,
    epochs: usize,
    started: Instant,
    last_line: Instant,
    quiet: bool,
}

impl EpochProgress {
    pub fn new(epoch: usize, epochs: usize, total: usize, done: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "Epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar.set_position(done as u64);
            bar
        });
        if bar.is_none() && !quiet {
            eprintln!("Epoch {epoch}/{epochs}: {total} steps");
        }
        let now = Instant::now();
        Self { bar, total, epoch, epochs, started: now, last_line: now, quiet }
    }

    /// After step `done` (1-based within the epoch).
    pub fn step(&mut self, done: usize, loss: f64, acc: f64, step_secs: f64) {
        let msg = format!("loss {loss:.4} acc {acc:.4} {step_secs:.2}s/step");
        match &self.bar {
            Some(bar) => {
                bar.set_message(msg);
                bar.set_position(done as u64);
            }
            None if self.quiet => {}
            None => {
                // Without a terminal: a line every 30 s and at the end.
                if self.last_line.elapsed().as_secs_f64() >= 30.0 || done == self.total {
                    self.last_line = Instant::now();
                    let elapsed = self.started.elapsed().as_secs_f64();
                    eprintln!(
                        "Epoch {}/{} step {done}/{} {msg} elapsed {elapsed:.0}s",
                        self.epoch, self.epochs, self.total
                    );
                }
            }
        }
    }

    pub fn finish(self, summary: &str) {
        match self.bar {
            Some(bar) => bar.finish_with_message(summary.to_string()),
            None if self.quiet => {}
            None => eprintln!("Epoch {}/{}: {summary}", self.epoch, self.epochs),
        }
    }
}
