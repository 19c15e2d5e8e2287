//! Reads a Hugging Face `model.safetensors` by transformers' tensor names (as flat f32 arrays, or
//! as burn parameters with the `burn` feature), and writes one back.
//!
//! burn-store's `SafetensorsStore` can do this with regex key remaps, but its errors speak of
//! burn's module paths; users need to hear which *checkpoint* tensor is missing or misshapen, and
//! whether the file uses the `bert.` prefix of `BertFor*` heads. A reader over the `safetensors`
//! crate that asks for each tensor by its transformers name gives exactly that in ~150 lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[cfg(feature = "burn")]
use burn::module::Param;
#[cfg(feature = "burn")]
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
#[cfg(feature = "burn")]
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::{Family, LoadError};

/// The bytes of a `model.safetensors` file.
pub struct Checkpoint {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        if !path.is_file() {
            return Err(LoadError::MissingFile { path: path.to_path_buf() });
        }
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
        Ok(Self { path: path.to_path_buf(), bytes })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file's bytes already in memory (`path` names it in errors).
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Self {
        Self { path: path.to_path_buf(), bytes }
    }

    /// The tensors with the encoder's prefix selected: `""` for `BertModel` files, the family's
    /// `bert.`/`roberta.`/… for `*ForSequenceClassification` ones (and bertkit's exports).
    pub fn encoder_tensors(&self, family: Family) -> Result<Tensors<'_>, LoadError> {
        let mut w = self.tensors()?;
        w.select_prefix("embeddings.word_embeddings.weight", &["", family.prefix()])?;
        Ok(w)
    }

    /// Parses the header; tensors are then read on demand.
    pub fn tensors(&self) -> Result<Tensors<'_>, LoadError> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| LoadError::BadSafetensors {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Tensors { st, path: &self.path, prefix: String::new() })
    }

    #[cfg(feature = "burn")]
    /// [`Self::encoder_tensors`] for burn's modules on `device`.
    pub fn encoder_weights(&self, family: Family, device: &Device) -> Result<Weights<'_>, LoadError> {
        Ok(Weights { tensors: self.encoder_tensors(family)?, device: device.clone() })
    }

    #[cfg(feature = "burn")]
    /// [`Self::tensors`] for burn's modules on `device`.
    pub fn weights(&self, device: &Device) -> Result<Weights<'_>, LoadError> {
        Ok(Weights { tensors: self.tensors()?, device: device.clone() })
    }
}

/// Named tensors of one checkpoint, read as f32 arrays by transformers' names.
pub struct Tensors<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    prefix: String,
}

#[cfg(feature = "burn")]
/// [`Tensors`] read as burn parameters on `device`.
pub struct Weights<'a> {
    tensors: Tensors<'a>,
    device: Device,
}

#[cfg(feature = "burn")]
impl<'a> std::ops::Deref for Weights<'a> {
    type Target = Tensors<'a>;

    fn deref(&self) -> &Tensors<'a> {
        &self.tensors
    }
}

#[cfg(feature = "burn")]
impl std::ops::DerefMut for Weights<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tensors
    }
}

impl Tensors<'_> {
    pub fn contains(&self, name: &str) -> bool {
        self.st.tensor(&format!("{}{name}", self.prefix)).is_ok()
    }

    /// Uses the first of `prefixes` under which `probe` exists (e.g. `""` for `BertModel`,
    /// `"bert."` for `BertForSequenceClassification`).
    pub fn select_prefix(&mut self, probe: &str, prefixes: &[&str]) -> Result<&str, LoadError> {
        let found = prefixes.iter().find(|p| self.st.tensor(&format!("{p}{probe}")).is_ok());
        match found {
            Some(p) => {
                self.prefix = (*p).to_string();
                Ok(&self.prefix)
            }
            None => Err(LoadError::MissingTensor {
                name: prefixes.iter().map(|p| format!("{p}{probe}")).collect::<Vec<_>>().join(" or "),
                path: self.path.to_path_buf(),
            }),
        }
    }

    /// Reads `name` (after the prefix) as f32, checking its shape.
    pub fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let full = format!("{}{name}", self.prefix);
        let view = self.st.tensor(&full).map_err(|_| LoadError::MissingTensor {
            name: full.clone(),
            path: self.path.to_path_buf(),
        })?;
        if view.shape() != shape {
            return Err(LoadError::TensorShape {
                name: full,
                path: self.path.to_path_buf(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(LoadError::TensorDtype {
                    name: full,
                    path: self.path.to_path_buf(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok(values)
    }
}

#[cfg(feature = "burn")]
impl Weights<'_> {
    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn param<const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<D>>, LoadError> {
        let values = self.read(name, &shape)?;
        Ok(Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), &self.device)))
    }

    /// A transformers `nn.Linear` (`{name}.weight` `[out, in]`, `{name}.bias` `[out]`) as a burn
    /// `Linear`, whose weight is `[in, out]`: transposed here once, not on every forward.
    pub fn linear(&self, name: &str, d_in: usize, d_out: usize) -> Result<Linear, LoadError> {
        let w = self.read(&format!("{name}.weight"), &[d_out, d_in])?;
        let weight = Tensor::from_data(TensorData::new(transpose(&w, d_out, d_in), [d_in, d_out]), &self.device);
        let bias = self.param(&format!("{name}.bias"), [d_out])?;
        Ok(Linear { weight: Param::from_tensor(weight), bias: Some(bias) })
    }

    /// A transformers `LayerNorm` (`{name}.weight`, `{name}.bias`).
    pub fn layer_norm(&self, name: &str, d: usize, eps: f64) -> Result<LayerNorm, LoadError> {
        let mut ln = LayerNormConfig::new(d).with_epsilon(eps).init(&self.device);
        ln.gamma = self.param(&format!("{name}.weight"), [d])?;
        ln.beta = Some(self.param(&format!("{name}.bias"), [d])?);
        Ok(ln)
    }

    /// A transformers `nn.Embedding` (`{name}.weight` `[n, d]`).
    pub fn embedding(&self, name: &str, n: usize, d: usize) -> Result<Embedding, LoadError> {
        Ok(Embedding { weight: self.param(&format!("{name}.weight"), [n, d])? })
    }
}

/// Collects named tensors under transformers' names and writes them as one safetensors file:
/// the mirror image of `Weights` (with the `burn` feature).
#[derive(Default)]
pub struct WeightsWriter {
    prefix: String,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl WeightsWriter {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string(), tensors: Vec::new() }
    }

    /// Sets the prefix for the tensors added next (e.g. `"bert."`, then `""` for the head).
    pub fn set_prefix(&mut self, prefix: &str) {
        self.prefix = prefix.to_string();
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    #[cfg(feature = "burn")]
    pub fn tensor<const D: usize>(&mut self, name: &str, t: &Tensor<D>) -> Result<(), LoadError> {
        let values = values(t, name)?;
        self.tensors.push((format!("{}{name}", self.prefix), t.dims().to_vec(), values));
        Ok(())
    }

    /// Adds raw f32 `values` of `shape` under `name` (after the prefix).
    pub fn values(&mut self, name: &str, shape: &[usize], values: Vec<f32>) {
        self.tensors.push((format!("{}{name}", self.prefix), shape.to_vec(), values));
    }

    #[cfg(feature = "burn")]
    /// Writes a burn `Linear` (`[in, out]`) as transformers' `{name}.weight` `[out, in]` + bias.
    pub fn linear(&mut self, name: &str, l: &Linear) -> Result<(), LoadError> {
        let w = l.weight.val();
        let [d_in, d_out] = w.dims();
        let values = transpose(&values(&w, name)?, d_in, d_out);
        self.tensors.push((format!("{}{name}.weight", self.prefix), vec![d_out, d_in], values));
        if let Some(b) = &l.bias {
            self.tensor(&format!("{name}.bias"), &b.val())?;
        }
        Ok(())
    }

    #[cfg(feature = "burn")]
    pub fn layer_norm(&mut self, name: &str, ln: &LayerNorm) -> Result<(), LoadError> {
        self.tensor(&format!("{name}.weight"), &ln.gamma.val())?;
        if let Some(b) = &ln.beta {
            self.tensor(&format!("{name}.bias"), &b.val())?;
        }
        Ok(())
    }

    #[cfg(feature = "burn")]
    pub fn embedding(&mut self, name: &str, e: &Embedding) -> Result<(), LoadError> {
        self.tensor(&format!("{name}.weight"), &e.weight.val())
    }

    /// Serialises all tensors (F32, little-endian) with `metadata` in the header.
    pub fn to_bytes(&self, metadata: HashMap<String, String>) -> Result<Vec<u8>, LoadError> {
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::with_capacity(self.tensors.len());
        for ((name, shape, _), b) in self.tensors.iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| {
                LoadError::BadSafetensors { path: name.into(), reason: e.to_string() }
            })?;
            views.push((name.clone(), view));
        }
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| LoadError::BadSafetensors { path: "<export>".into(), reason: e.to_string() })
    }
}

#[cfg(feature = "burn")]
fn values<const D: usize>(t: &Tensor<D>, name: &str) -> Result<Vec<f32>, LoadError> {
    t.to_data().try_to_vec::<f32>().map_err(|e| LoadError::TensorDtype {
        name: name.to_string(),
        path: "<in memory>".into(),
        dtype: format!("{e:?}"),
    })
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_row_major() {
        assert_eq!(transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
