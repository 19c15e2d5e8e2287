//! Learning rate: linear warm-up then linear decay to 0 (transformers'
//! `get_linear_schedule_with_warmup`, TF official's `WarmUp` + `PolynomialDecay(power=1)`).

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// `false`: stay at `peak` after warm-up.
    pub decay: bool,
}

impl LinearSchedule {
    /// `warmup_ratio` of `total_steps` (rounded up) warm up.
    pub fn new(peak: f64, warmup_ratio: f64, total_steps: usize) -> Self {
        let warmup_steps = (warmup_ratio * total_steps as f64).ceil() as usize;
        Self { peak, warmup_steps, total_steps, decay: true }
    }

    /// Turns the linear decay off (or on).
    pub fn with_decay(mut self, decay: bool) -> Self {
        self.decay = decay;
        self
    }

    /// Learning rate for the optimizer step that follows `step` completed steps.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * step as f64 / self.warmup_steps.max(1) as f64;
        }
        if !self.decay {
            return self.peak;
        }
        let left = self.total_steps.saturating_sub(step) as f64;
        self.peak * left / self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_schedule_stays_at_the_peak_after_warm_up() {
        let s = LinearSchedule::new(1e-3, 0.0, 100).with_decay(false);
        assert_eq!((s.lr(0), s.lr(99)), (1e-3, 1e-3));
        let w = LinearSchedule::new(1.0, 0.1, 100).with_decay(false);
        assert_eq!((w.lr(5), w.lr(50)), (0.5, 1.0));
    }

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = LinearSchedule::new(1e-4, 0.1, 100);
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
        let s = LinearSchedule::new(2e-5, 0.0, 4);
        assert_eq!(s.lr(0), 2e-5);
    }
}
