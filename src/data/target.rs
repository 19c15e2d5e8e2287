//! What an example is labelled with: one class (single-label tasks, binary or multi-class) or a
//! set of labels (multi-label tasks: tags, toxicity categories), and the decision rule that turns
//! a row of logits into the same shape.

/// The label of one example. Indices point into the dataset's `class_names`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Exactly one class.
    Class(usize),
    /// Any number of labels, none included (sorted, without repeats).
    Labels(Vec<usize>),
}

impl Target {
    /// A label set from indices in any order, repeats dropped.
    pub fn labels(mut idx: Vec<usize>) -> Self {
        idx.sort_unstable();
        idx.dedup();
        Self::Labels(idx)
    }

    /// The class of a single-label target.
    pub fn class(&self) -> Option<usize> {
        match self {
            Self::Class(c) => Some(*c),
            Self::Labels(_) => None,
        }
    }

    pub fn is_multi_label(&self) -> bool {
        matches!(self, Self::Labels(_))
    }

    /// Whether label `j` is on (for a class: whether it is that class).
    pub fn has(&self, j: usize) -> bool {
        match self {
            Self::Class(c) => *c == j,
            Self::Labels(set) => set.binary_search(&j).is_ok(),
        }
    }

    /// The training target of output `j` of `outputs` with label smoothing `smoothing`: the
    /// true class's or label's 1 becomes `1 - smoothing + smoothing / K` and every other 0
    /// becomes `smoothing / K`, with K the classes of a softmax (PyTorch's
    /// `CrossEntropyLoss(label_smoothing)`, transformers' `label_smoothing_factor`) or 2 for each
    /// sigmoid (Keras' `BinaryCrossentropy(label_smoothing)`: `y * (1 - s) + 0.5 * s`). A
    /// single binary output is class 1's.
    pub fn smoothed(&self, j: usize, outputs: usize, smoothing: f64) -> f64 {
        let sigmoid = outputs == 1 || self.is_multi_label();
        let on = if outputs == 1 { self.has(1) } else { self.has(j) };
        let k = if sigmoid { 2.0 } else { outputs as f64 };
        f64::from(u8::from(on)) * (1.0 - smoothing) + smoothing / k
    }

    /// Whether a row of logits gets this target right at `threshold`: the class it decides
    /// ([`decided_class`]) for a single-label target; for a label set, exactly the labels whose
    /// sigmoid reaches `threshold` (subset accuracy, scikit-learn's `accuracy_score` on
    /// multi-label data).
    pub fn is_hit(&self, logits: &[f32], threshold: f32) -> bool {
        match self {
            Self::Class(c) => decided_class(logits, threshold) == *c,
            Self::Labels(_) => (0..logits.len()).all(|j| predicted_on(logits[j], threshold) == self.has(j)),
        }
    }
}

/// Whether a multi-label logit turns its label on: `sigmoid(z) >= threshold`.
pub fn predicted_on(logit: f32, threshold: f32) -> bool {
    1.0 / (1.0 + (-logit).exp()) >= threshold
}

/// The class a row of logits decides at `threshold`: a single binary logit is class 1 where
/// its sigmoid reaches `threshold`, compared as logits (`z >= ln(t / (1 - t))`, in f64; exactly
/// `z >= 0` at 0.5, where the f32 sigmoid would round logits just below 0 up to 0.5); the
/// argmax of several (a softmax has no threshold).
pub fn decided_class(logits: &[f32], threshold: f32) -> usize {
    match logits {
        [z] => {
            let t = f64::from(threshold);
            usize::from(f64::from(*z) >= (t / (1.0 - t)).ln())
        }
        _ => logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0,
    }
}

/// Predicted class of one row of logits at the default threshold: `logit >= 0` for a single
/// binary logit, argmax otherwise.
pub fn predicted_class(logits: &[f32]) -> usize {
    decided_class(logits, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_are_sorted_without_repeats() {
        assert_eq!(Target::labels(vec![3, 0, 3]), Target::Labels(vec![0, 3]));
        assert!(Target::labels(vec![2]).has(2) && !Target::labels(vec![2]).has(1));
        assert_eq!(Target::Class(1).class(), Some(1));
        assert_eq!(Target::labels(vec![]).class(), None);
    }

    #[test]
    fn a_label_set_is_hit_only_when_every_label_is_right() {
        let t = Target::labels(vec![0, 2]);
        assert!(t.is_hit(&[1.0, -1.0, 0.5], 0.5));
        assert!(!t.is_hit(&[1.0, 0.1, 0.5], 0.5), "an extra label");
        assert!(!t.is_hit(&[1.0, -1.0, -0.5], 0.5), "a missing label");
        // sigmoid(0.5) = 0.62: on at 0.5, off at 0.7.
        assert!(!t.is_hit(&[1.0, -1.0, 0.5], 0.7));
        assert!(Target::labels(vec![]).is_hit(&[-3.0, -3.0], 0.5));
    }

    #[test]
    fn smoothed_targets_spread_the_smoothing_over_the_classes() {
        // A softmax of 4: 0.9 + 0.1/4 for the class, 0.1/4 for the others; they sum to 1.
        let t = Target::Class(2);
        assert_eq!((t.smoothed(2, 4, 0.1), t.smoothed(0, 4, 0.1)), (0.925, 0.025));
        assert!(((0..4).map(|j| t.smoothed(j, 4, 0.1)).sum::<f64>() - 1.0).abs() < 1e-15);
        // One sigmoid (class 1 is its positive class) and each label: Keras' y(1 - s) + s/2.
        assert_eq!((Target::Class(1).smoothed(0, 1, 0.2), Target::Class(0).smoothed(0, 1, 0.2)), (0.9, 0.1));
        let set = Target::labels(vec![1]);
        assert_eq!((set.smoothed(1, 3, 0.2), set.smoothed(0, 3, 0.2)), (0.9, 0.1));
        assert_eq!((t.smoothed(2, 4, 0.0), t.smoothed(1, 4, 0.0)), (1.0, 0.0));
    }

    #[test]
    fn predicted_class_from_logits() {
        assert_eq!(predicted_class(&[0.3]), 1);
        assert_eq!(predicted_class(&[-0.01]), 0);
        assert_eq!(predicted_class(&[0.1, 2.0, -1.0]), 1);
        assert!(Target::Class(1).is_hit(&[0.1, 2.0, -1.0], 0.5));
    }

    #[test]
    fn a_binary_logit_is_decided_at_the_threshold() {
        // sigmoid(1) = 0.731: positive at 0.5 and 0.7, negative at 0.75.
        assert_eq!([0.5, 0.7, 0.75].map(|t| decided_class(&[1.0], t)), [1, 1, 0]);
        // sigmoid(-1) = 0.269: positive at 0.25 only.
        assert_eq!([0.25, 0.3].map(|t| decided_class(&[-1.0], t)), [1, 0]);
        // At 0.5 the sign decides (`predicted_class` is this rule at 0.5), even within f32's
        // rounding of the sigmoid to 0.5.
        assert_eq!([-1e-9_f32, 0.0, 1e-9, 3.0, -3.0].map(|z| decided_class(&[z], 0.5)), [0, 1, 1, 1, 0]);
        // The boundary itself is positive (`>=`, as for multi-label labels).
        assert_eq!(decided_class(&[(0.8f64 / 0.2).ln() as f32 + 1e-6], 0.8), 1);
        assert!(Target::Class(0).is_hit(&[1.0], 0.75) && !Target::Class(0).is_hit(&[1.0], 0.5));
        // A softmax has no threshold: the argmax at any.
        assert_eq!(decided_class(&[0.1, 2.0, -1.0], 0.99), 1);
    }
}
