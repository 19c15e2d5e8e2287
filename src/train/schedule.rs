//! Learning rate: linear warm-up, then linear decay to 0 (transformers'
//! `get_linear_schedule_with_warmup`, TF official's `WarmUp` + `PolynomialDecay(power=1)`), a
//! half cosine to 0 (`get_cosine_schedule_with_warmup` with `num_cycles = 0.5`), or the peak held
//! (`get_constant_schedule_with_warmup`; Keras' `Adam` with a fixed rate when there is no warm-up).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// What the rate does after warm-up: transformers' `lr_scheduler_type` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduler {
    #[default]
    Linear,
    Cosine,
    Constant,
}

impl LrScheduler {
    pub const NAMES: &'static str = "linear, cosine or constant";

    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Cosine => "cosine",
            Self::Constant => "constant",
        }
    }

    /// Reads a plan's `lr_scheduler`, or the `constant_lr: true|false` that checkpoints made
    /// before the scheduler had a name hold in its place (`constant` / `linear`).
    pub fn from_plan<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Named(LrScheduler),
            ConstantLr(bool),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Named(s) => s,
            Stored::ConstantLr(true) => Self::Constant,
            Stored::ConstantLr(false) => Self::Linear,
        })
    }
}

impl fmt::Display for LrScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown learning-rate scheduler `{0}`: use {names}", names = LrScheduler::NAMES)]
pub struct UnknownScheduler(String);

impl FromStr for LrScheduler {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Linear, Self::Cosine, Self::Constant].into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownScheduler(s.into()))
    }
}

/// The rate at every optimizer step of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub kind: LrScheduler,
}

impl Schedule {
    /// `warmup_ratio` of `total_steps` (rounded up, as transformers' `get_warmup_steps`) warm up.
    pub fn new(peak: f64, warmup_ratio: f64, total_steps: usize, kind: LrScheduler) -> Self {
        let warmup_steps = (warmup_ratio * total_steps as f64).ceil() as usize;
        Self { peak, warmup_steps, total_steps, kind }
    }

    /// A warm-up of exactly `steps` (transformers' `warmup_steps`, which replaces the ratio).
    pub fn with_warmup_steps(mut self, steps: usize) -> Self {
        self.warmup_steps = steps;
        self
    }

    /// Learning rate for the optimizer step that follows `step` completed steps.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let left = self.total_steps.saturating_sub(step) as f64 / decay_steps;
        match self.kind {
            LrScheduler::Constant => self.peak,
            LrScheduler::Linear => self.peak * left,
            // transformers: 0.5 * (1 + cos(pi * progress)), progress = 1 - left.
            LrScheduler::Cosine => self.peak * 0.5 * (1.0 + (std::f64::consts::PI * (1.0 - left)).cos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_schedule_stays_at_the_peak_after_warm_up() {
        let s = Schedule::new(1e-3, 0.0, 100, LrScheduler::Constant);
        assert_eq!((s.lr(0), s.lr(99)), (1e-3, 1e-3));
        let w = Schedule::new(1.0, 0.1, 100, LrScheduler::Constant);
        assert_eq!((w.lr(5), w.lr(50)), (0.5, 1.0));
    }

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = Schedule::new(1e-4, 0.1, 100, LrScheduler::Linear);
        assert_eq!(s.warmup_steps, 10);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 5e-5).abs() < 1e-12);
        assert!((s.lr(10) - 1e-4).abs() < 1e-12);
        assert!((s.lr(55) - 5e-5).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
        assert_eq!(s.lr(150), 0.0);
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let s = Schedule::new(2e-5, 0.0, 4, LrScheduler::Linear);
        assert_eq!(s.lr(0), 2e-5);
    }

    /// transformers' `get_cosine_schedule_with_warmup(opt, 10, 110)` at lr 1: the values its
    /// `lr_lambda` gives at these steps.
    #[test]
    fn cosine_follows_a_half_cosine_from_the_peak_to_zero() {
        let s = Schedule::new(1.0, 0.0, 110, LrScheduler::Cosine).with_warmup_steps(10);
        assert_eq!(s.lr(5), 0.5);
        assert_eq!(s.lr(10), 1.0);
        // progress 0.25, 0.5, 0.75: 0.5 * (1 + cos(pi p)).
        for (step, want) in [(35, 0.853_553_390_593_273_8), (60, 0.5), (85, 0.146_446_609_406_726_24)] {
            assert!((s.lr(step) - want).abs() < 1e-12, "step {step}: {} vs {want}", s.lr(step));
        }
        assert!(s.lr(110).abs() < 1e-15);
        // Cosine stays above linear through the first half of the decay, below it after.
        let l = Schedule { kind: LrScheduler::Linear, ..s };
        assert!(s.lr(35) > l.lr(35) && s.lr(85) < l.lr(85));
    }

    #[test]
    fn warmup_steps_replace_the_ratio() {
        let s = Schedule::new(1.0, 0.5, 100, LrScheduler::Linear).with_warmup_steps(4);
        assert_eq!((s.warmup_steps, s.lr(2), s.lr(4)), (4, 0.5, 1.0));
    }

    #[test]
    fn scheduler_names_parse_and_unknown_ones_list_the_choices() {
        assert_eq!("cosine".parse::<LrScheduler>().ok(), Some(LrScheduler::Cosine));
        let err = "cosine_with_restarts".parse::<LrScheduler>().unwrap_err().to_string();
        assert_eq!(err, "unknown learning-rate scheduler `cosine_with_restarts`: use linear, cosine or constant");
    }

    /// Checkpoints written before `lr_scheduler` existed say `constant_lr`.
    #[test]
    fn a_plan_s_old_constant_lr_flag_reads_as_a_scheduler() {
        #[derive(Deserialize)]
        struct P {
            #[serde(default, alias = "constant_lr", deserialize_with = "LrScheduler::from_plan")]
            lr_scheduler: LrScheduler,
        }
        let read = |s: &str| serde_json::from_str::<P>(s).map(|p| p.lr_scheduler).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"constant_lr": true}"#), Ok(LrScheduler::Constant));
        assert_eq!(read(r#"{"constant_lr": false}"#), Ok(LrScheduler::Linear));
        assert_eq!(read(r#"{"lr_scheduler": "cosine"}"#), Ok(LrScheduler::Cosine));
        assert_eq!(read("{}"), Ok(LrScheduler::Linear));
        assert!(read(r#"{"lr_scheduler": "step"}"#).is_err());
    }
}
