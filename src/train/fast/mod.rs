//! Fine-tuning on `bertkit-kernels`: the classifier's forward and backward passes written out
//! by hand (bf16 or fp32 GEMMs, fused attention), a faster alternative to burn's autodiff for
//! the BERT-style encoders.

mod backward;
mod bilstm;
mod head;
mod learner;
mod network;
mod optim;

pub use bilstm::{BiLstmLearner, bilstm_backward};
pub use head::{Features, HeadLearner};
pub use learner::{FastLearner, loss_and_grad};
pub use backward::backward;
pub use network::{Cache, NetSpec, Rows, forward};
