//! Feature standardisation for the frozen-encoder head, as scikit-learn's `StandardScaler` does it
//! before a logistic regression: per-dimension mean and standard deviation of the training
//! features, and the fold that moves both into the head's first layer, so the exported head reads
//! raw pooled features and transformers loads it unchanged.

#[cfg(feature = "burn")]
use burn::module::Param;
#[cfg(feature = "burn")]
use burn::tensor::{Tensor, TensorData};

use super::TrainError;
#[cfg(feature = "burn")]
use crate::model::ClassifierHead;
use crate::model::fast::Params;

#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    /// 1/σ; 1 for dimensions that do not vary (scikit-learn's rule for a zero variance).
    pub inv_std: Vec<f32>,
}

impl Standardizer {
    /// Mean and population standard deviation of every column of `rows` (accumulated in f64).
    pub fn fit(rows: &[Vec<f32>]) -> Self {
        let d = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f64;
        let mut sum = vec![0.0f64; d];
        let mut sq = vec![0.0f64; d];
        for r in rows {
            for ((s, q), &x) in sum.iter_mut().zip(sq.iter_mut()).zip(r) {
                *s += f64::from(x);
                *q += f64::from(x) * f64::from(x);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let inv_std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let var = (q / n - m * m).max(0.0);
                if var > 1e-12 { (1.0 / var.sqrt()) as f32 } else { 1.0 }
            })
            .collect();
        Self { mean: mean.into_iter().map(|m| m as f32).collect(), inv_std }
    }

    /// `(x − mean) / σ` in place, row by row.
    pub fn apply(&self, rows: &mut [Vec<f32>]) {
        for r in rows {
            for ((x, m), s) in r.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *x = (*x - m) * s;
            }
        }
    }

    /// Makes the head of `params`, trained on standardised features, take raw ones (the same
    /// fold as `fold_into` on burn's head, here on the weight store).
    pub fn fold_into_params(&self, params: &mut Params) -> Result<(), TrainError> {
        let lay = &params.layout;
        let first = lay.head_hidden.unwrap_or(lay.head_out);
        if self.mean.len() != first.d_in {
            return Err(TrainError::Backend(format!("standardised {} features for a head of {} inputs", self.mean.len(), first.d_in)));
        }
        let mut bias = std::mem::take(&mut params.values[first.b]);
        self.fold_dense(&mut params.values[first.w], &mut bias);
        params.values[first.b] = bias;
        Ok(())
    }

    /// Folds into one dense layer `w` (`[d_in, d_out]`) and its bias: rows divided by σ, the
    /// bias shifted by `(μ/σ)·W`.
    fn fold_dense(&self, w: &mut [f32], b: &mut [f32]) {
        let shift = self.fold_rows(w, b.len());
        b.iter_mut().zip(&shift).for_each(|(b, sh)| *b = (f64::from(*b) - sh) as f32);
    }

    /// Divides the rows of `w` (`[d_in, d_out]`) by σ; returns the bias shift `(μ/σ)·W`.
    fn fold_rows(&self, w: &mut [f32], d_out: usize) -> Vec<f64> {
        // f64 for the bias sums: d_in terms of mixed sign.
        let mut shift = vec![0.0f64; d_out];
        for ((row, m), s) in w.chunks_mut(d_out).zip(&self.mean).zip(&self.inv_std) {
            for (acc, w) in shift.iter_mut().zip(row.iter_mut()) {
                *w *= s;
                *acc += f64::from(*m) * f64::from(*w);
            }
        }
        shift
    }

    /// Makes burn's `head`, trained on standardised features, take raw ones: its first layer computes
    /// `((x − μ)/σ)·W + b = x·(W/σ) + (b − (μ/σ)·W)`, so its weight rows are divided by σ and its
    /// bias absorbs the shift. Exact up to rounding.
    #[cfg(feature = "burn")]
    pub fn fold_into(&self, head: &mut ClassifierHead) -> Result<(), TrainError> {
        let first = head.hidden.as_mut().unwrap_or(&mut head.output);
        let w = first.weight.val();
        let device = w.device();
        let [d_in, d_out] = w.dims();
        if self.mean.len() != d_in {
            return Err(TrainError::Backend(format!("standardised {} features for a head of {d_in} inputs", self.mean.len())));
        }
        let bad = |e: burn::tensor::DataError| TrainError::Backend(format!("reading the head's weights: {e:?}"));
        let mut wv = w.into_data().try_into_vec_as::<f32>().map_err(bad)?;
        let mut bv = match &first.bias {
            Some(b) => b.val().into_data().try_into_vec_as::<f32>().map_err(bad)?,
            None => vec![0.0; d_out],
        };
        self.fold_dense(&mut wv, &mut bv);
        first.weight = Param::from_tensor(Tensor::from_data(TensorData::new(wv, [d_in, d_out]), &device));
        first.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bv, [d_out]), &device)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<f32>> {
        (0..50).map(|i| (0..6).map(|j| ((i * 7 + j * 3) as f32 * 0.37).sin() * (j as f32 + 1.0) + j as f32).collect()).collect()
    }

    #[test]
    fn standardised_columns_have_mean_0_and_std_1_and_constant_ones_stay_finite() {
        let mut r = rows();
        r.iter_mut().for_each(|row| row[5] = 4.0);
        let s = Standardizer::fit(&r);
        assert_eq!(s.inv_std[5], 1.0, "a constant column keeps scale 1");
        s.apply(&mut r);
        for j in 0..5 {
            let m: f32 = r.iter().map(|row| row[j]).sum::<f32>() / 50.0;
            let v: f32 = r.iter().map(|row| (row[j] - m).powi(2)).sum::<f32>() / 50.0;
            assert!(m.abs() < 1e-5 && (v - 1.0).abs() < 1e-4, "column {j}: mean {m}, var {v}");
        }
        assert!(r.iter().all(|row| row[5] == 0.0));
    }

    /// A dense layer folded onto raw features gives what it gave on standardised ones.
    #[test]
    fn the_folded_layer_scores_raw_features_as_the_trained_one_scores_standardised_ones() {
        let (d_in, d_out) = (6, 3);
        let w: Vec<f32> = (0..d_in * d_out).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.4).collect();
        let b = vec![0.3f32, -0.2, 0.1];
        let dense = |x: &[f32], w: &[f32], b: &[f32]| -> Vec<f32> {
            (0..d_out).map(|j| b[j] + (0..d_in).map(|i| x[i] * w[i * d_out + j]).sum::<f32>()).collect()
        };
        let raw = rows();
        let s = Standardizer::fit(&raw);
        let mut standardised = raw.clone();
        s.apply(&mut standardised);
        let (mut wf, mut bf) = (w.clone(), b.clone());
        s.fold_dense(&mut wf, &mut bf);
        let mut worst = 0.0f32;
        for (r, z) in raw.iter().zip(&standardised) {
            let (want, got) = (dense(z, &w, &b), dense(r, &wf, &bf));
            worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
        }
        assert!(worst < 1e-4, "folded layer differs by {worst}");
        assert!(wf != w, "the fold changed nothing");
    }
}
