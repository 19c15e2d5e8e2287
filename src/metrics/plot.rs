//! `training.png`: training vs validation loss (top) and accuracy (bottom) per epoch, like the
//! figure in TensorFlow's "Classify text with BERT".

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::History;

#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    pub path: String,
    pub reason: String,
}

/// DejaVu Sans (Bitstream Vera license, `assets/fonts/`), embedded so plots need no system fonts.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Registering a valid embedded TTF only fails if the bytes are corrupt; then text is
        // simply not drawn.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

pub fn plot_history(history: &History, path: &Path) -> Result<(), PlotError> {
    ensure_font();
    let err = |e: &dyn std::fmt::Display| PlotError { path: path.display().to_string(), reason: e.to_string() };
    if history.epochs.is_empty() {
        return Err(err(&"no epochs to plot"));
    }
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((2, 1));
    let series: [(&str, &str, Vec<f64>, Vec<f64>); 2] = [
        (
            "Training and validation loss",
            "Loss",
            history.epochs.iter().map(|e| e.loss).collect(),
            history.epochs.iter().map(|e| e.val_loss).collect(),
        ),
        (
            "Training and validation accuracy",
            "Accuracy",
            history.epochs.iter().map(|e| e.accuracy).collect(),
            history.epochs.iter().map(|e| e.val_accuracy).collect(),
        ),
    ];
    let last = history.epochs.last().map_or(1, |e| e.epoch).max(2) as f64;
    // The best evaluation (the export's weights) may fall between epoch ends.
    let first = history.best.as_ref().map_or(0.8, |b| (b.epoch - 0.2).min(0.8));
    for (area, (title, ylabel, train, val)) in panels.iter().zip(series) {
        let all = train.iter().chain(&val).copied();
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.1).max(0.01);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(first..last + 0.2, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("Epochs")
            .y_desc(ylabel)
            .x_labels((last as usize).min(20) * 2 + 1)
            // Epochs are whole numbers: label only those ticks.
            .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-6 { format!("{}", x.round() as i64) } else { String::new() })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        let red = RGBColor(214, 39, 40);
        let blue = RGBColor(31, 119, 180);
        let pts = |ys: &[f64]| history.epochs.iter().map(|e| e.epoch as f64).zip(ys.iter().copied()).collect::<Vec<_>>();
        chart
            .draw_series(LineSeries::new(pts(&train), red.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("Training {}", ylabel.to_lowercase()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart.draw_series(pts(&train).into_iter().map(|p| Circle::new(p, 4, red.filled()))).map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(pts(&val), blue.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("Validation {}", ylabel.to_lowercase()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
        chart.draw_series(pts(&val).into_iter().map(|p| Circle::new(p, 4, blue.filled()))).map_err(|e| err(&e))?;
        if let Some(best) = &history.best {
            let green = RGBColor(44, 160, 44);
            let word = if best.restored { "exported" } else { "best" };
            chart
                .draw_series(LineSeries::new([(best.epoch, lo - pad), (best.epoch, hi + pad)], green.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(format!("{word}: step {}, {} {:.4}", best.step, best.monitor, best.value))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BestPoint, EpochRecord};

    fn record(epoch: usize, loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss,
            accuracy: acc,
            val_loss: loss + 0.05,
            val_accuracy: acc - 0.03,
            val_precision: 0.0,
            val_recall: 0.0,
            val_f1: 0.0,
            val_auc: None,
            lr: 0.0,
            seconds: 1.0,
            examples_per_second: 1.0,
        }
    }

    #[test]
    fn writes_a_png_with_both_panels() {
        let h = History {
            epochs: vec![record(1, 0.5, 0.75), record(2, 0.35, 0.85), record(3, 0.3, 0.88)],
            binary: true,
            ..History::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("training.png");
        plot_history(&h, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        if let Ok(keep) = std::env::var("BERTKIT_KEEP_PLOT") {
            std::fs::copy(&path, keep).unwrap();
        }
        assert!(plot_history(&History::default(), &path).is_err());
    }

    #[test]
    fn marks_the_best_evaluation_even_between_epoch_ends() {
        let epochs = vec![record(1, 0.5, 0.75), record(2, 0.35, 0.85), record(3, 0.3, 0.88)];
        let plain = History { epochs, binary: true, ..History::default() };
        let best = BestPoint { monitor: "val_loss".into(), value: 0.33, step: 7, epoch: 0.5, restored: true };
        let marked = History { best: Some(best), ..plain.clone() };
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        plot_history(&plain, &a).unwrap();
        plot_history(&marked, &b).unwrap();
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "the best evaluation left no mark");
        if let Ok(keep) = std::env::var("BERTKIT_KEEP_PLOT") {
            std::fs::copy(&b, keep).unwrap();
        }
    }
}
