//! The int8 weights an export may keep beside its fp32 ones (`model.int8.safetensors`, written by
//! `bertkit quantize` or `bertkit train --save-int8`), read by `--precision int8` instead of
//! quantizing at load.
//!
//! The fp32 `model.safetensors` stays the model: transformers loads it, and bertkit's other
//! precisions read it. This file holds only what int8 inference packs: each encoder layer's dense
//! weights (fused QKV, attention output, both feed-forward weights) as bertkit keeps them, `[in,
//! out]`, under the weight store's names (`layer.0.qkv.weight`, I8), with one fp32 scale per
//! output column (`layer.0.qkv.weight_scale`). The values come from the one quantization
//! function int8 inference uses at load, so a stored file scores exactly as quantizing at load
//! does. The header records the SHA-256 of the `model.safetensors` it was made from: a file left
//! over from an earlier model is refused by name rather than silently scoring with old weights.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::model::LoadError;
use crate::model::fast::{Int8Store, Params};

/// The file's name inside an export folder.
pub const INT8_FILE: &str = "model.int8.safetensors";
/// The fp32 weights it is derived from.
const SOURCE_FILE: &str = "model.safetensors";
/// `format` in the header: the layout above. A later layout gets a new value.
const FORMAT: &str = "bertkit-int8-v1";

/// What [`save_int8`] wrote.
#[derive(Debug)]
pub struct Int8Summary {
    pub path: PathBuf,
    /// Dense weights stored.
    pub weights: usize,
    /// Their size in fp32 and as stored (int8 values + fp32 scales), in bytes.
    pub fp32_bytes: usize,
    pub int8_bytes: usize,
}

/// Quantizes the encoder layers' dense weights of `params` (the model stored in `dir`) and writes
/// them to `dir/model.int8.safetensors`, replacing any earlier one atomically (a temporary file
/// renamed into place).
pub fn save_int8(dir: &Path, params: &Params) -> Result<Int8Summary, LoadError> {
    let digest = source_digest(dir)?;
    let store = Int8Store::quantize(params);
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let (mut fp32_bytes, mut int8_bytes) = (0, 0);
    for (s, w) in store.iter() {
        let name = &params.names[s.w];
        tensors.push((name.clone(), Dtype::I8, vec![w.k, w.n], w.values.iter().map(|&v| v as u8).collect()));
        tensors.push((scale_name(name), Dtype::F32, vec![w.n], w.scale.iter().flat_map(|x| x.to_le_bytes()).collect()));
        fp32_bytes += 4 * w.k * w.n;
        int8_bytes += w.k * w.n + 4 * w.n;
    }
    let path = dir.join(INT8_FILE);
    let bad = |reason: String| LoadError::BadSafetensors { path: path.clone(), reason };
    let mut views = Vec::with_capacity(tensors.len());
    for (name, dtype, shape, bytes) in &tensors {
        views.push((name.as_str(), TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| bad(e.to_string()))?));
    }
    let header = HashMap::from([("format".to_string(), FORMAT.to_string()), ("source_sha256".to_string(), digest)]);
    let bytes = safetensors::serialize(views, Some(header)).map_err(|e| bad(e.to_string()))?;
    write_atomically(&path, &bytes)?;
    Ok(Int8Summary { path, weights: tensors.len() / 2, fp32_bytes, int8_bytes })
}

/// The stored int8 weights of the model in `dir`, checked against `params` (its layout and
/// shapes) and against `dir/model.safetensors` (the digest): `None` when the export has none.
pub fn load_int8(dir: &Path, params: &Params) -> Result<Option<Int8Store>, LoadError> {
    let path = dir.join(INT8_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = fs::read(&path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
    let bad = |reason: String| LoadError::BadSafetensors { path: path.clone(), reason };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let info = header.metadata().clone().unwrap_or_default();
    let format = info.get("format").map_or("none", String::as_str);
    if format != FORMAT {
        return Err(bad(format!("header format `{format}`, expected `{FORMAT}` (rerun `bertkit quantize`)")));
    }
    let recorded = info.get("source_sha256").ok_or_else(|| bad("the header has no `source_sha256`".into()))?;
    if *recorded != source_digest(dir)? {
        return Err(LoadError::StaleInt8 { path, fp32: dir.join(SOURCE_FILE) });
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let read = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>, LoadError> {
        let view = st.tensor(name).map_err(|_| LoadError::MissingTensor { name: name.to_string(), path: path.clone() })?;
        if view.shape() != shape {
            let (expected, found) = (shape.to_vec(), view.shape().to_vec());
            return Err(LoadError::TensorShape { name: name.to_string(), path: path.clone(), expected, found });
        }
        if view.dtype() != dtype {
            return Err(bad(format!("tensor `{name}` has dtype {:?}, expected {dtype:?}", view.dtype())));
        }
        Ok(view.data().to_vec())
    };
    let store = Int8Store::build(&params.layout, |s| {
        let name = &params.names[s.w];
        let values = read(name, Dtype::I8, &[s.d_in, s.d_out])?.into_iter().map(|b| b as i8).collect();
        let scale = read(&scale_name(name), Dtype::F32, &[s.d_out])?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let w = bertkit_kernels::Int8Weight { k: s.d_in, n: s.d_out, values, scale };
        w.validate().map_err(|source| LoadError::BadInt8 { name: name.clone(), path: path.clone(), source })?;
        Ok::<_, LoadError>(w)
    })?;
    Ok(Some(store))
}

fn scale_name(weight: &str) -> String {
    format!("{weight}_scale")
}

/// The hex SHA-256 of `dir/model.safetensors`.
fn source_digest(dir: &Path) -> Result<String, LoadError> {
    let path = dir.join(SOURCE_FILE);
    if !path.is_file() {
        return Err(LoadError::MissingFile { path });
    }
    let bytes = fs::read(&path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `bytes` to a sibling temporary file, syncs it and renames it over `path`: a reader
/// sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let tmp = path.with_extension("safetensors.tmp");
    let io = |source| LoadError::Io { path: tmp.clone(), source };
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })
}
