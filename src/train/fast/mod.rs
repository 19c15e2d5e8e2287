//! Training on `bertkit-kernels`: the classifier's backward pass written out by hand (its forward
//! pass is the model's own, in training mode), the BiLSTM's, the learners and their optimizer
//! state.

mod backward;
mod bilstm;
mod head;
mod learner;
mod optim;

pub use bilstm::{BiLstmLearner, bilstm_backward};
pub use head::{Features, HeadLearner};
pub use learner::{FastLearner, loss_and_grad};
pub use backward::backward;
