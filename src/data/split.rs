//! Seeded train/validation split, like Keras' `validation_split` + `seed`: shuffle once with the
//! seed, the first part trains, the rest validates.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{DataError, Dataset};

/// Splits off `validation` (a fraction in [0, 1)) of the examples. ChaCha8 is named explicitly
/// so the split stays the same across `rand` versions.
pub fn split(ds: Dataset, validation: f64, seed: u64) -> Result<(Dataset, Dataset), DataError> {
    if !(0.0..1.0).contains(&validation) {
        return Err(DataError::BadFraction(validation));
    }
    let n = ds.examples.len();
    let n_val = (validation * n as f64).floor() as usize;
    let mut examples = ds.examples;
    examples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let val = examples.split_off(n - n_val);
    let make = |examples| Dataset { examples, class_names: ds.class_names.clone(), source: ds.source.clone(), multi_label: ds.multi_label };
    Ok((make(examples), make(val)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Example;

    fn ds(n: usize) -> Dataset {
        Dataset {
            examples: (0..n).map(|i| Example::single(i.to_string(), i % 2)).collect(),
            class_names: vec!["a".into(), "b".into()],
            source: "x".into(),
            multi_label: false,
        }
    }

    #[test]
    fn splits_80_20_reproducibly() {
        let (t1, v1) = split(ds(25), 0.2, 42).unwrap();
        let (t2, v2) = split(ds(25), 0.2, 42).unwrap();
        assert_eq!((t1.len(), v1.len()), (20, 5));
        assert_eq!(t1.examples, t2.examples);
        assert_eq!(v1.examples, v2.examples);
        let (t3, _) = split(ds(25), 0.2, 7).unwrap();
        assert_ne!(t1.examples, t3.examples);
        let mut all: Vec<String> = t1.texts().into_iter().chain(v1.texts()).map(str::to_string).collect();
        all.sort_by_key(|s| s.parse::<usize>().unwrap());
        assert_eq!(all, (0..25).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn rejects_fractions_outside_zero_one() {
        assert!(split(ds(4), 1.0, 1).is_err());
        assert!(split(ds(4), -0.1, 1).is_err());
        assert_eq!(split(ds(4), 0.0, 1).unwrap().1.len(), 0);
    }
}
