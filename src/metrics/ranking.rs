//! Threshold-free ranking scores of a model's outputs: ROC AUC (scikit-learn's `roc_auc_score`)
//! and average precision (`average_precision_score`), for the positive class of a binary task,
//! and as macro averages one-vs-rest over classes (`multi_class="ovr"`) or over labels.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::data::Target;

/// ROC AUC and average precision of one task's validation or test outputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankingScores {
    pub roc_auc: f64,
    pub average_precision: f64,
    /// How many classes or labels the macro averages are over (1 for a binary task): those that
    /// have both a true and a false example here, for which the scores are defined.
    pub averaged_over: usize,
    /// How many classes or labels the task has (1 for a binary task).
    pub of: usize,
}

impl RankingScores {
    /// From one row of logits per example: a binary task's positive-class score (its one logit,
    /// or the softmax of its two), each class's softmax probability against the rest, or each
    /// label's logit. `None` when no class or label has both a true and a false example.
    pub fn from_logits(logits: &[Vec<f32>], targets: &[Target], num_classes: usize) -> Option<Self> {
        let multi_label = targets.iter().any(Target::is_multi_label);
        let rows: Vec<Vec<f64>> = logits.iter().map(|row| row_scores(row, multi_label)).collect();
        let columns = columns(targets, num_classes);
        let mut scored = Vec::new();
        for j in columns.clone() {
            let truth: Vec<bool> = targets.iter().map(|t| t.has(j)).collect();
            // A binary task's one logit is its positive class's (`j` is 1 there).
            let score = |r: &Vec<f64>| if r.len() == 1 { r.first() } else { r.get(j) }.copied().unwrap_or(f64::NAN);
            let scores: Vec<f64> = rows.iter().map(score).collect();
            if let (Some(auc), Some(ap)) = (roc_auc(&scores, &truth), average_precision(&scores, &truth)) {
                scored.push((auc, ap));
            }
        }
        let n = scored.len();
        (n > 0).then(|| Self {
            roc_auc: scored.iter().map(|s| s.0).sum::<f64>() / n as f64,
            average_precision: scored.iter().map(|s| s.1).sum::<f64>() / n as f64,
            averaged_over: n,
            of: columns.len(),
        })
    }

    /// Whether [`Self::from_logits`] has a score for these targets: some class or label with
    /// both a true and a false example.
    pub fn defined_for(targets: &[Target], num_classes: usize) -> bool {
        columns(targets, num_classes).any(|j| targets.iter().any(|t| t.has(j)) && targets.iter().any(|t| !t.has(j)))
    }
}

/// The classes or labels scored: the positive class alone for a single-label task of two, else
/// every one.
fn columns(targets: &[Target], num_classes: usize) -> Range<usize> {
    if num_classes == 2 && !targets.iter().any(Target::is_multi_label) { 1..2 } else { 0..num_classes }
}

/// The scores that rank examples, one per output: the logits of labels or of a single binary
/// output (the sigmoid keeps their order), else the softmax probabilities, computed once a row.
fn row_scores(row: &[f32], multi_label: bool) -> Vec<f64> {
    let z = row.iter().map(|&z| f64::from(z));
    if multi_label || row.len() == 1 {
        return z.collect();
    }
    let max = z.clone().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = z.map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Examples in descending score order, grouped by equal score: each group's (true, false) counts.
fn ranked_groups(scores: &[f64], truth: &[bool]) -> Vec<(u64, u64)> {
    let mut order: Vec<usize> = (0..scores.len().min(truth.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<(u64, u64)> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if k == 0 || scores[i] != scores[order[k - 1]] {
            groups.push((0, 0));
        }
        if let Some(g) = groups.last_mut() {
            if truth[i] { g.0 += 1 } else { g.1 += 1 }
        }
    }
    groups
}

/// Area under the ROC curve with ties' points joined by straight lines (scikit-learn's
/// `roc_auc_score`): the chance that a random true example outscores a random false one, a tie
/// counting half. `None` without both kinds of example (scikit-learn raises there).
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let groups = ranked_groups(scores, truth);
    let (pos, neg) = groups.iter().fold((0, 0), |(p, n), g| (p + g.0, n + g.1));
    if pos == 0 || neg == 0 {
        return None;
    }
    let (mut tp, mut area) = (0u64, 0.0);
    for &(t, f) in &groups {
        // A group adds `f` false positives at once, over which the true positives rise from
        // `tp` to `tp + t`: a trapezoid.
        area += f as f64 * (tp as f64 + t as f64 / 2.0);
        tp += t;
    }
    Some(area / (pos as f64 * neg as f64))
}

/// Average precision (scikit-learn's `average_precision_score`): the precision at each distinct
/// score threshold weighted by the recall it adds, `sum (R_n - R_(n-1)) P_n`, with no
/// interpolation. `None` without both kinds of example.
pub fn average_precision(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let groups = ranked_groups(scores, truth);
    let (pos, neg) = groups.iter().fold((0, 0), |(p, n), g| (p + g.0, n + g.1));
    if pos == 0 || neg == 0 {
        return None;
    }
    let (mut tp, mut fp, mut ap) = (0u64, 0u64, 0.0);
    for &(t, f) in &groups {
        tp += t;
        fp += f;
        ap += t as f64 / pos as f64 * (tp as f64 / (tp + fp) as f64);
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn's docs: `roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])` is 0.75 and
    /// `average_precision_score` of the same is 0.8333.
    #[test]
    fn scikit_learn_s_documented_examples() {
        let (scores, truth) = ([0.1, 0.4, 0.35, 0.8], [false, false, true, true]);
        assert_eq!(roc_auc(&scores, &truth), Some(0.75));
        assert!((average_precision(&scores, &truth).unwrap() - 0.833_333_333_333_333_4).abs() < 1e-15);
    }

    /// Ties count half in the AUC (the ROC's diagonal step), and a tied group adds its recall at
    /// the group's precision in AP. Values from scikit-learn 1.9.1 on these inputs.
    #[test]
    fn ties_are_a_single_threshold() {
        let (scores, truth) = ([0.5, 0.5, 0.5, 0.9], [true, false, false, true]);
        // Pairs (pos, neg): 0.9 beats both, 0.5 ties both: (2 + 0.5 + 0.5) / 4.
        assert_eq!(roc_auc(&scores, &truth), Some(0.75));
        // 0.9: recall 0.5 at precision 1; 0.5: recall +0.5 at precision 2/4.
        assert_eq!(average_precision(&scores, &truth), Some(0.75));
        assert_eq!(roc_auc(&[0.3; 4], &truth), Some(0.5));
    }

    #[test]
    fn undefined_without_both_kinds_of_example() {
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(average_precision(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(roc_auc(&[0.2, 0.1], &[true, false]), Some(1.0));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, false]), Some(0.0));
    }

    /// A binary task's one logit and its two-way softmax rank the same way: the positive
    /// class's scores.
    #[test]
    fn a_binary_task_scores_its_positive_class() {
        let targets: Vec<Target> = [0, 0, 1, 1].into_iter().map(Target::Class).collect();
        let one: Vec<Vec<f32>> = [0.1f32, 0.4, 0.35, 0.8].iter().map(|&p| vec![(p / (1.0 - p)).ln()]).collect();
        let two: Vec<Vec<f32>> = one.iter().map(|z| vec![0.0, z[0]]).collect();
        for logits in [&one, &two] {
            let r = RankingScores::from_logits(logits, &targets, 2).unwrap();
            assert_eq!((r.roc_auc, r.averaged_over, r.of), (0.75, 1, 1));
        }
    }

    /// Multi-class: the mean of each class's AUC against the rest on its softmax probability
    /// (`roc_auc_score(y, p, multi_class="ovr")`); a class with no example here is left out of
    /// the mean, and the report says over how many it is.
    #[test]
    fn multi_class_is_the_macro_mean_one_vs_rest() {
        let targets: Vec<Target> = [0, 1, 2, 0].into_iter().map(Target::Class).collect();
        // Softmax rows: p0 = .787 .212 .506 .274; p1 = .107 .576 .186 .452; p2 = .107 .212 .307 .274.
        let logits = vec![vec![2.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![1.0, 0.0, 0.5], vec![0.0, 0.5, 0.0]];
        let r = RankingScores::from_logits(&logits, &targets, 3).unwrap();
        // scikit-learn 1.9.1 gives 0.91667 and, on `label_binarize(y)`, AP 0.94444. Class 0 (rows 0 and 3): .787 beats both others, .274 beats .212 but not .506: 3/4.
        // Classes 1 and 2: their one example has the highest probability: 1 each.
        assert!((r.roc_auc - (0.75 + 1.0 + 1.0) / 3.0).abs() < 1e-12, "{r:?}");
        assert_eq!((r.averaged_over, r.of), (3, 3));
        assert!((r.average_precision - (1.0 / 1.0 * 0.5 + 2.0 / 3.0 * 0.5 + 1.0 + 1.0) / 3.0).abs() < 1e-12, "{r:?}");
        // Without class 2's example, its column has no true example: the mean is over 2 of 3.
        let r = RankingScores::from_logits(&logits[..2], &targets[..2], 3).unwrap();
        assert_eq!((r.roc_auc, r.averaged_over, r.of), (1.0, 2, 3));
    }

    #[test]
    fn multi_label_scores_each_label_by_its_logit() {
        let targets = vec![Target::labels(vec![0, 1]), Target::labels(vec![1]), Target::labels(vec![])];
        let logits = vec![vec![3.0, 1.0], vec![-1.0, 2.0], vec![0.0, -2.0]];
        let r = RankingScores::from_logits(&logits, &targets, 2).unwrap();
        assert_eq!((r.roc_auc, r.average_precision, r.averaged_over, r.of), (1.0, 1.0, 2, 2));
        assert!(RankingScores::defined_for(&targets, 2));
        assert!(!RankingScores::defined_for(&[Target::Class(1), Target::Class(1)], 2));
        assert!(RankingScores::from_logits(&[vec![0.3], vec![0.1]], &[Target::Class(1), Target::Class(1)], 2).is_none());
    }
}
