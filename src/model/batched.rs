//! Runs a model over many encoded texts in batches, shortest first, so each batch pads only to
//! its own longest text; results come back in input order.

#[cfg(feature = "burn")]
use burn::tensor::{DataError, Device, Tensor};

#[cfg(feature = "burn")]
use super::EncoderInput;
use crate::tokenize::{Encoded, Padding, TokenBatch};

/// Calls `f` on batches of at most `batch_size` encodings and returns its `[B, K]` outputs as one
/// row per encoding, in the order given.
#[cfg(feature = "burn")]
pub fn run_batched<F>(
    encodings: &[Encoded],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    mut f: F,
) -> Result<Vec<Vec<f32>>, DataError>
where
    F: FnMut(EncoderInput) -> Tensor<2>,
{
    run_batched_tokens(encodings, batch_size, pad_id, |batch, _| tensor_rows(f(EncoderInput::from_batch(batch, device))))
}

/// A `[B, K]` output as `B` rows of `K`.
#[cfg(feature = "burn")]
pub fn tensor_rows(out: Tensor<2>) -> Result<Vec<Vec<f32>>, DataError> {
    let [_, k] = out.dims();
    let values = out.into_data().try_into_vec_as::<f32>()?;
    Ok(values.chunks(k.max(1)).map(<[f32]>::to_vec).collect())
}

/// The same batching for a model that takes padded token arrays directly and returns one row
/// per text (the kernels path). `f` also gets the batch's texts' places in `encodings`, for an
/// error to name the caller's text rather than its place in the sorted batch.
pub fn run_batched_tokens<F, E>(encodings: &[Encoded], batch_size: usize, pad_id: u32, mut f: F) -> Result<Vec<Vec<f32>>, E>
where
    F: FnMut(&TokenBatch, &[usize]) -> Result<Vec<Vec<f32>>, E>,
{
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].len());
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); encodings.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let batch = TokenBatch::pad(chunk.iter().map(|&i| &encodings[i]), Padding::Longest, pad_id);
        for (row, &i) in f(&batch, chunk)?.into_iter().zip(chunk) {
            rows[i] = row;
        }
    }
    Ok(rows)
}
