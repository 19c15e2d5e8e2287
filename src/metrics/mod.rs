//! Classification metrics from logits (threshold-based and ranking), the evaluation report,
//! per-epoch history and PNG training curves.

mod confusion;
mod eval;
mod history;
mod multilabel;
mod plot;
mod ranking;
mod scores;

pub use confusion::{Confusion, Metrics};
pub use crate::data::predicted_class;
pub use eval::{EvalReport, example_loss, smoothed_example_loss};
pub use history::{BestPoint, EpochRecord, EvalPoint, History};
pub use multilabel::MultiLabelMetrics;
pub use ranking::{RankingScores, average_precision, roc_auc};
pub use scores::LabelScores;
pub use plot::{PlotError, plot_history};

