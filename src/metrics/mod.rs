//! Classification metrics from logits, the evaluation report, and PNG training curves.

mod confusion;
mod eval;
mod plot;


pub use confusion::{Confusion, Metrics, predicted_class};
pub use eval::{EvalReport, example_loss};
pub use plot::{PlotError, plot_history};

