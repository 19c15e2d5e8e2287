//! How a row of logits becomes a prediction: the top class of a softmax, a binary model's
//! positive class where its probability reaches a threshold, or every label of a multi-label
//! model whose probability reaches one.

use super::{PredictError, Prediction};
use crate::artifact::ModelMeta;
use crate::data::decided_class;

/// The decision rule of a model. Binary and multi-label models have a threshold (the model's
/// own, set at training, or one given when it is loaded); a softmax has none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Several outputs, one softmax: the top class.
    TopClass { classes: usize },
    /// One sigmoid output: `class_names[1]` where its probability reaches `threshold`
    /// (Keras' `BinaryAccuracy(threshold)`, scikit-learn's `FixedThresholdClassifier`).
    Binary { threshold: f32 },
    /// One sigmoid per label: every label whose probability reaches `threshold`.
    MultiLabel { threshold: f32 },
}

impl Decision {
    /// The rule an exported model was trained with, at its stored threshold (0.5 in files
    /// written before binary models kept theirs).
    pub fn of(meta: &ModelMeta) -> Self {
        let threshold = meta.threshold;
        if meta.multi_label {
            Self::MultiLabel { threshold }
        } else if meta.is_binary() {
            Self::Binary { threshold }
        } else {
            Self::TopClass { classes: meta.class_names.len() }
        }
    }

    /// The threshold, where the rule has one.
    pub fn threshold(self) -> Option<f32> {
        match self {
            Self::TopClass { .. } => None,
            Self::Binary { threshold } | Self::MultiLabel { threshold } => Some(threshold),
        }
    }

    pub fn is_multi_label(self) -> bool {
        matches!(self, Self::MultiLabel { .. })
    }

    /// One sigmoid output: answered as the positive class's probability (Keras' and the
    /// server's binary shape).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::Binary { .. })
    }

    /// The same rule at `threshold`; a softmax refuses one rather than ignore it.
    pub fn at(self, threshold: f32) -> Result<Self, PredictError> {
        match self {
            Self::TopClass { classes } => Err(PredictError::NoThreshold { classes }),
            Self::Binary { .. } => Ok(Self::Binary { threshold }),
            Self::MultiLabel { .. } => Ok(Self::MultiLabel { threshold }),
        }
    }

    /// A row of logits as a prediction.
    pub fn predict(self, logits: &[f32], class_names: &[String]) -> Prediction {
        match self {
            Self::MultiLabel { threshold } => to_labels(logits, class_names, threshold),
            Self::Binary { threshold } => to_class(logits, class_names, threshold),
            Self::TopClass { .. } => to_class(logits, class_names, 0.5),
        }
    }
}

/// A multi-label prediction: each logit's sigmoid, the labels at or above `threshold`.
pub fn to_labels(logits: &[f32], class_names: &[String], threshold: f32) -> Prediction {
    let name = |i: usize| class_names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let scores: Vec<f32> = logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
    let labels = scores.iter().enumerate().filter(|(_, p)| **p >= threshold).map(|(i, _)| name(i)).collect();
    let best = crate::metrics::predicted_class(logits);
    let score = scores.get(best).copied().unwrap_or(f32::NAN);
    Prediction { label: name(best), score, scores, labels: Some(labels) }
}

/// A single-label prediction: for one logit its sigmoid (the probability of
/// `class_names[1]`) and the class it decides at `threshold`, as `evaluate` counts it; for
/// several, the softmax and its top class (`threshold` unused).
pub fn to_class(logits: &[f32], class_names: &[String], threshold: f32) -> Prediction {
    let name = |i: usize| class_names.get(i).cloned().unwrap_or_else(|| i.to_string());
    if let [z] = logits {
        let p = 1.0 / (1.0 + (-z).exp());
        // Decided on the logit, not on `p >= threshold`: at 0.5 a logit in (-6e-8, 0) has a
        // sigmoid that rounds to 0.5 in f32, and would be called positive here but negative by
        // `evaluate`.
        let label = name(decided_class(logits, threshold));
        return Prediction { label, score: p, scores: vec![1.0 - p, p], labels: None };
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let scores: Vec<f32> = exps.iter().map(|e| e / sum).collect();
    let best = crate::metrics::predicted_class(logits);
    let score = scores.get(best).copied().unwrap_or(f32::NAN);
    Prediction { label: name(best), score, scores, labels: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_logit_is_the_positive_class_probability() {
        let names = names(&["neg", "pos"]);
        let p = to_class(&[2.0], &names, 0.5);
        assert_eq!(p.label, "pos");
        assert!((p.score - 0.880_797).abs() < 1e-5);
        assert!((p.scores[0] + p.scores[1] - 1.0).abs() < 1e-6);
        assert_eq!(to_class(&[-0.1], &names, 0.5).label, "neg");
    }

    #[test]
    fn a_logit_just_below_zero_is_the_negative_class_as_evaluate_counts_it() {
        // Regression: the label came from `sigmoid(z) >= 0.5`, and sigmoid(-1e-9) is 0.5 in
        // f32, so `predict` said "pos" where `evaluate`'s confusion matrix counted "neg".
        let names = names(&["neg", "pos"]);
        for z in [-1e-9_f32, -1e-12, -f32::MIN_POSITIVE] {
            assert_eq!(crate::metrics::predicted_class(&[z]), 0);
            assert_eq!(to_class(&[z], &names, 0.5).label, "neg", "logit {z}");
        }
        assert_eq!(to_class(&[0.0], &names, 0.5).label, "pos");
    }

    #[test]
    fn a_binary_threshold_moves_the_label_not_the_score() {
        // sigmoid(1) = 0.731.
        let (names, binary) = (names(&["neg", "pos"]), Decision::Binary { threshold: 0.5 });
        let strict = binary.at(0.8).unwrap();
        assert_eq!((binary.predict(&[1.0], &names).label, strict.predict(&[1.0], &names).label), ("pos".into(), "neg".into()));
        assert_eq!(binary.predict(&[1.0], &names).scores, strict.predict(&[1.0], &names).scores);
        assert_eq!(strict.threshold(), Some(0.8));
    }

    #[test]
    fn a_softmax_refuses_a_threshold() {
        let top = Decision::TopClass { classes: 3 };
        assert_eq!(top.threshold(), None);
        let err = top.at(0.7).unwrap_err().to_string();
        assert!(err.contains("binary and multi-label") && err.contains("3 classes"), "{err}");
        let names = names(&["a", "b", "c"]);
        assert_eq!(top.predict(&[0.0, 3.0, 1.0], &names).label, "b");
    }

    #[test]
    fn several_logits_get_a_softmax_and_the_top_label() {
        let names = names(&["a", "b", "c"]);
        let p = to_class(&[0.0, 1000.0, 0.0], &names, 0.5);
        assert_eq!((p.label.as_str(), p.score), ("b", 1.0));
        let p = to_class(&[0.0, 0.0, 0.0], &names, 0.5);
        assert!((p.score - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn multi_label_scores_each_label_on_its_own() {
        let names = names(&["a", "b", "c"]);
        // sigmoid: 0.88, 0.62, 0.05 — two labels at 0.5, one at 0.7, none at 0.9.
        let logits = [2.0, 0.5, -3.0];
        let p = to_labels(&logits, &names, 0.5);
        assert_eq!(p.labels.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
        assert!((p.scores[1] - 0.622_459).abs() < 1e-5 && p.scores.iter().sum::<f32>() > 1.0);
        assert_eq!(to_labels(&logits, &names, 0.7).labels.unwrap(), ["a"]);
        assert!(to_labels(&logits, &names, 0.9).labels.unwrap().is_empty());
        assert_eq!((p.label.as_str(), p.score), ("a", p.scores[0]));
        assert_eq!(Decision::MultiLabel { threshold: 0.7 }.predict(&logits, &names), to_labels(&logits, &names, 0.7));
    }
}
