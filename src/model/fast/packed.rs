//! The weight store's dense weights packed for the kernels' GEMMs. Inference packs once at load;
//! the trainer repacks in place once per optimizer step (reusing the allocations), never per
//! call: validation batches and the step's forward pass all read the same pack.

use bertkit_kernels::{Int8Error, Int8Weight, Mat, PackedB, Precision};

use super::params::{DenseSlots, Layout, Params};

/// Packed `[in, out]` weights, one per dense layer of a [`Params`].
pub struct Packed {
    /// Indexed like [`Params::values`]; empty for tensors that are not dense weights.
    by_slot: Vec<PackedB>,
    /// What the encoder layers' GEMMs were asked for.
    requested: Precision,
    /// Only the head is packed (the frozen-encoder run trains it on cached features).
    head_only: bool,
}

/// Every dense layer of `lay`, and whether it is inside an encoder layer. Only those run at the
/// requested precision: the embedding projection, the pooler and the head are small (or see one
/// row per text) and stay fp32, in training and inference alike.
fn dense_layers(lay: &Layout) -> impl Iterator<Item = (DenseSlots, bool)> + '_ {
    let layers = lay.layers.iter().flat_map(|s| [s.qkv, s.attn_out, s.ffn_in, s.ffn_out]).map(|s| (s, true));
    let others = lay.projection.into_iter().chain(lay.pooler).chain(lay.head_hidden).chain([lay.head_out]).map(|s| (s, false));
    layers.chain(others)
}

/// The dense weights that run in int8 when int8 is asked for: the encoder layers' (the same ones
/// that run in bf16 for bf16).
pub fn int8_slots(lay: &Layout) -> impl Iterator<Item = DenseSlots> + '_ {
    dense_layers(lay).filter(|&(_, in_layer)| in_layer).map(|(s, _)| s)
}

/// Int8 weights quantized ahead of time (an export's `model.int8.safetensors`): one per
/// [`int8_slots`] entry, in that order, so a store is complete by construction.
pub struct Int8Store {
    weights: Vec<(DenseSlots, Int8Weight)>,
}

impl Int8Store {
    /// Asks `get` for every int8 weight of `lay`, in [`int8_slots`] order.
    pub fn build<E>(lay: &Layout, mut get: impl FnMut(DenseSlots) -> Result<Int8Weight, E>) -> Result<Self, E> {
        let weights = int8_slots(lay).map(|s| get(s).map(|w| (s, w))).collect::<Result<_, E>>()?;
        Ok(Self { weights })
    }

    /// Quantizes `p`'s weights now (what `bertkit quantize` stores).
    pub fn quantize(p: &Params) -> Self {
        let weights = int8_slots(&p.layout).map(|s| (s, Int8Weight::quantize(Mat::rows(&p.values[s.w], s.d_in, s.d_out)))).collect();
        Self { weights }
    }

    /// Each weight with its slots.
    pub fn iter(&self) -> impl Iterator<Item = (DenseSlots, &Int8Weight)> {
        self.weights.iter().map(|(s, w)| (*s, w))
    }
}

impl Packed {
    /// Packs like `new(p, Precision::Int8)`, with the encoder layers' int8 weights taken from
    /// `stored` instead of quantized now.
    pub fn with_int8(p: &Params, stored: &Int8Store) -> Result<Self, Int8Error> {
        let by_slot = (0..p.values.len()).map(|_| PackedB::empty()).collect();
        let mut packed = Self { by_slot, requested: Precision::Int8, head_only: false };
        // The rest stays fp32, as `refresh` packs it; the layers' slots come from the store.
        for (s, _) in dense_layers(&p.layout).filter(|&(_, in_layer)| !in_layer) {
            packed.by_slot[s.w].repack(Mat::rows(&p.values[s.w], s.d_in, s.d_out), Precision::F32);
        }
        for (s, w) in stored.iter() {
            if (w.k, w.n) != (s.d_in, s.d_out) {
                return Err(Int8Error::Shape { k: s.d_in, n: s.d_out, values: w.values.len(), scales: w.scale.len() });
            }
            packed.by_slot[s.w] = PackedB::from_int8(w)?;
        }
        Ok(packed)
    }

    /// Packs every dense weight of `p` (`precision` for the encoder layers).
    pub fn new(p: &Params, precision: Precision) -> Self {
        Self::build(p, precision, false)
    }

    /// Packs only the head's dense weights (fp32): the rest must not be read.
    pub fn head(p: &Params) -> Self {
        Self::build(p, Precision::F32, true)
    }

    fn build(p: &Params, requested: Precision, head_only: bool) -> Self {
        let mut packed = Self { by_slot: (0..p.values.len()).map(|_| PackedB::empty()).collect(), requested, head_only };
        packed.refresh(p);
        packed
    }

    /// Repacks from `p`'s current values, into the existing allocations.
    pub fn refresh(&mut self, p: &Params) {
        let lay = &p.layout;
        let head = lay.head_hidden.into_iter().chain([lay.head_out]).map(|s| (s, false));
        let all: Box<dyn Iterator<Item = (DenseSlots, bool)>> = if self.head_only { Box::new(head) } else { Box::new(dense_layers(lay)) };
        for (s, in_layer) in all {
            let precision = if in_layer { self.requested } else { Precision::F32 };
            self.by_slot[s.w].repack(Mat::rows(&p.values[s.w], s.d_in, s.d_out), precision);
        }
    }

    /// The packed weight of `s`.
    pub fn get(&self, s: DenseSlots) -> &PackedB {
        &self.by_slot[s.w]
    }

    /// The precision the encoder layers' GEMMs actually run in (bf16 falls back to fp32 on levels
    /// without bf16 GEMMs).
    pub fn precision(&self, lay: &Layout) -> Precision {
        lay.layers.first().map_or(Precision::F32, |l| self.get(l.qkv).precision())
    }

    /// A copy of `p` without the dense weights this pack holds: what inference keeps (biases,
    /// LayerNorms, embedding tables), so a loaded model is not held twice.
    pub fn strip(p: &Params) -> Params {
        let mut keep: Vec<bool> = vec![true; p.values.len()];
        for (s, _) in dense_layers(&p.layout) {
            keep[s.w] = false;
        }
        let values = p.values.iter().zip(&keep).map(|(v, &k)| if k { v.clone() } else { Vec::new() }).collect();
        Params { values, names: p.names.clone(), decay: p.decay.clone(), layout: p.layout.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fast::NormSlots;

    fn toy() -> Params {
        let dense = |w, b, d_in, d_out| DenseSlots { w, b, d_in, d_out };
        let layout = Layout {
            word: 0,
            position: 1,
            token_type: None,
            emb_norm: NormSlots { gamma: 2, beta: 3 },
            projection: None,
            layers: Vec::new(),
            pooler: None,
            head_hidden: None,
            head_out: dense(4, 5, 2, 3),
        };
        let values = vec![vec![1.0; 4], vec![2.0; 4], vec![1.0; 2], vec![0.0; 2], (0..6).map(|v| v as f32).collect(), vec![0.5; 3]];
        let n = values.len();
        Params { values, names: (0..n).map(|i| format!("t{i}")).collect(), decay: vec![false; n], layout }
    }

    #[test]
    fn strip_drops_only_the_packed_weights() {
        let p = toy();
        let s = Packed::strip(&p);
        assert!(s.values[4].is_empty(), "the head's weight is packed, so inference need not keep it");
        assert_eq!(s.values[5], vec![0.5; 3], "biases stay");
        assert_eq!(s.values[0], p.values[0], "embedding tables stay");
    }

    #[test]
    fn refresh_follows_the_store() {
        let mut p = toy();
        let mut packed = Packed::new(&p, Precision::F32);
        let out = p.layout.head_out;
        let y = |packed: &Packed| {
            let mut c = vec![0.0; 3];
            bertkit_kernels::gemm(&[1.0, 1.0], 1, packed.get(out), None, bertkit_kernels::Epilogue::None, &mut c);
            c
        };
        assert_eq!(y(&packed), vec![3.0, 5.0, 7.0]);
        p.values[4].iter_mut().for_each(|v| *v *= 2.0);
        assert_eq!(y(&packed), vec![3.0, 5.0, 7.0], "a pack is a copy: it changes only when refreshed");
        packed.refresh(&p);
        assert_eq!(y(&packed), vec![6.0, 10.0, 14.0]);
    }
}
