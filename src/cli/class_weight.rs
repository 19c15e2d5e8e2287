//! `train --class-weight`: `balanced` (scikit-learn's `compute_class_weight`) or `NAME=WEIGHT`
//! pairs, parsed by clap and resolved into the plan's per-class weights once the training split
//! is known.

use bertkit::data::Dataset;

/// The flag as given; [`ClassWeightFlag::resolve`] turns it into one weight per class.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeightFlag {
    /// `n_examples / (n_classes × n_examples_of_class)` on the training split.
    Balanced,
    /// Named classes' weights; a class not named keeps weight 1.
    Given(Vec<(String, f64)>),
}

/// clap's parser: `balanced`, or `NAME=WEIGHT` pairs separated by commas, each weight a positive
/// number.
pub fn parse(s: &str) -> Result<ClassWeightFlag, String> {
    let s = s.trim();
    if s == "balanced" {
        return Ok(ClassWeightFlag::Balanced);
    }
    let mut given: Vec<(String, f64)> = Vec::new();
    for pair in s.split(',') {
        let Some((name, weight)) = pair.rsplit_once('=') else {
            return Err(format!("`{pair}` is not NAME=WEIGHT: give `balanced` or pairs like neg=1,pos=3"));
        };
        let name = name.trim();
        let value: f64 = weight.trim().parse().map_err(|_| format!("the weight of `{name}`, `{}`, is not a number", weight.trim()))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("the weight of `{name}` must be a positive number, got {value}"));
        }
        if given.iter().any(|(n, _)| n == name) {
            return Err(format!("`{name}` is given twice"));
        }
        given.push((name.to_string(), value));
    }
    Ok(ClassWeightFlag::Given(given))
}

impl ClassWeightFlag {
    /// One weight per class of `train` (its `class_names` order), or an error naming a class
    /// the data does not have, or (balanced) one the training split holds no example of.
    pub fn resolve(&self, train: &Dataset) -> anyhow::Result<Vec<f64>> {
        let classes = &train.class_names;
        anyhow::ensure!(!train.multi_label, "--class-weight is for single-label data: a multi-label run weighs each label's loss alike");
        match self {
            Self::Balanced => {
                let counts = train.counts();
                let n = counts.iter().sum::<usize>() as f64;
                classes
                    .iter()
                    .zip(&counts)
                    .map(|(class, &count)| {
                        anyhow::ensure!(count > 0, "--class-weight balanced: the training split holds no `{class}`, so it has no weight");
                        Ok(n / (classes.len() * count) as f64)
                    })
                    .collect()
            }
            Self::Given(given) => {
                if let Some((name, _)) = given.iter().find(|(name, _)| !classes.contains(name)) {
                    anyhow::bail!("--class-weight names `{name}`, which is not one of the classes ({})", classes.join(", "));
                }
                Ok(classes.iter().map(|c| given.iter().find(|(name, _)| name == c).map_or(1.0, |&(_, w)| w)).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bertkit::data::{Example, Target};

    fn data(labels: &[usize]) -> Dataset {
        Dataset {
            examples: labels.iter().map(|&l| Example::single(format!("text {l}"), l)).collect(),
            class_names: vec!["neg".into(), "neutral".into(), "pos".into()],
            source: "d.csv".into(),
            multi_label: false,
        }
    }

    #[test]
    fn pairs_and_balanced_parse_and_bad_ones_are_named() {
        assert_eq!(parse("balanced"), Ok(ClassWeightFlag::Balanced));
        assert_eq!(parse("neg=1, pos=2.5"), Ok(ClassWeightFlag::Given(vec![("neg".into(), 1.0), ("pos".into(), 2.5)])));
        assert_eq!(parse("a=b=2"), Ok(ClassWeightFlag::Given(vec![("a=b".into(), 2.0)])), "the last = splits: labels may hold one");
        assert!(parse("pos").unwrap_err().contains("`pos` is not NAME=WEIGHT"));
        assert!(parse("pos=x").unwrap_err().contains("the weight of `pos`, `x`, is not a number"));
        assert!(parse("pos=0").unwrap_err().contains("the weight of `pos` must be a positive number, got 0"));
        assert!(parse("pos=-1").unwrap_err().contains("must be a positive number, got -1"));
        assert!(parse("pos=inf").unwrap_err().contains("must be a positive number, got inf"));
        assert!(parse("pos=1,pos=2").unwrap_err().contains("`pos` is given twice"));
    }

    /// scikit-learn: `compute_class_weight("balanced", classes=[0, 1, 2], y=[0, 0, 0, 0, 1, 2])`
    /// is [0.5, 2, 2].
    #[test]
    fn balanced_is_scikit_learns_and_needs_every_class() {
        assert_eq!(ClassWeightFlag::Balanced.resolve(&data(&[0, 0, 0, 0, 1, 2])).unwrap(), [0.5, 2.0, 2.0]);
        let err = ClassWeightFlag::Balanced.resolve(&data(&[0, 2])).unwrap_err().to_string();
        assert!(err.contains("holds no `neutral`"), "{err}");
    }

    #[test]
    fn named_classes_get_their_weight_and_the_rest_one() {
        let given = parse("pos=3").unwrap();
        assert_eq!(given.resolve(&data(&[0, 1, 2])).unwrap(), [1.0, 1.0, 3.0]);
        let err = parse("positive=3").unwrap().resolve(&data(&[0, 1, 2])).unwrap_err().to_string();
        assert!(err.contains("`positive`, which is not one of the classes (neg, neutral, pos)"), "{err}");
        let mut tags = data(&[0, 1]);
        tags.multi_label = true;
        tags.examples[0].target = Target::labels(vec![0, 2]);
        assert!(given.resolve(&tags).unwrap_err().to_string().contains("for single-label data"));
    }
}
