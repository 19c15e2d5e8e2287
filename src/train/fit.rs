//! Training with burn's autodiff (fine-tuning on a GPU or for families the kernels trainer does
//! not cover, the frozen-encoder head, the BiLSTM): AdamW with BERT's decay groups, global-norm
//! clipping, and the [`Learner`] that [`run_loop`] drives.

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::run_loop::{Learner, LoopArgs, run_loop, step_seed};
use super::state::{CheckpointDir, RunState};
use super::{History, TrainError, TrainPlan, clip_grad_norm, classification_loss};
use crate::data::Target;
use crate::metrics::EvalReport;

/// What [`fit`] needs besides the model: the loop's arguments and burn's device.
pub struct FitArgs<'a> {
    pub run: LoopArgs<'a>,
    /// Device the model trains on (an autodiff device); re-seeded before every step so dropout
    /// masks depend only on (seed, step) and a resumed run repeats an uninterrupted one.
    pub device: &'a Device,
}

/// AdamW as in BERT's recipe: decoupled decay on weights, none on biases and LayerNorm.
pub fn optimizer(plan: &TrainPlan) -> ModuleOptimizer {
    let cfg = |wd: f64| {
        AdamWConfig::new().with_epsilon(plan.adam_epsilon as f32).with_weight_decay(wd as f32)
    };
    cfg(plan.weight_decay).init().with_group(
        ParamGroup::from_any_predicates(vec!["bias", "layer_norm"]),
        cfg(0.0).build(),
        None,
    )
}

fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>, TrainError> {
    let [_, k] = t.dims();
    let v = t.into_data().try_into_vec_as::<f32>().map_err(|e| TrainError::Backend(format!("{e:?}")))?;
    Ok(v.chunks(k).map(<[f32]>::to_vec).collect())
}

/// Trains `model` (already on `args.device`) with burn's autodiff and AdamW.
/// `forward(model, batch_indices)` returns the batch's logits; `validate(valid_model)` returns
/// the validation report.
pub fn fit<M, F, V>(model: M, args: FitArgs<'_>, forward: F, validate: V) -> Result<(M, History), TrainError>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<2>,
    V: FnMut(&M) -> Result<EvalReport, TrainError>,
{
    let mut learner =
        BurnLearner { model: Some(model), optim: Some(optimizer(args.run.plan)), best: None, forward, validate, args: &args };
    let history = run_loop(&mut learner, args.run)?;
    let model = learner.model.take().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
    Ok((model, history))
}

struct BurnLearner<'a, M, F, V> {
    /// `Option`s because burn's optimizer takes the model by value.
    model: Option<M>,
    optim: Option<ModuleOptimizer>,
    /// The best evaluation's weights (a clone shares tensors until the next step replaces them).
    best: Option<M>,
    forward: F,
    validate: V,
    args: &'a FitArgs<'a>,
}

impl<M, F, V> BurnLearner<'_, M, F, V> {
    fn parts(&mut self) -> Result<(M, ModuleOptimizer), TrainError> {
        match (self.model.take(), self.optim.take()) {
            (Some(m), Some(o)) => Ok((m, o)),
            _ => Err(TrainError::Backend("model lost in a failed step".into())),
        }
    }
}

impl<M, F, V> Learner for BurnLearner<'_, M, F, V>
where
    M: Module + Clone,
    F: Fn(&M, &[usize]) -> Tensor<2>,
    V: FnMut(&M) -> Result<EvalReport, TrainError>,
{
    fn step(&mut self, idx: &[usize], targets: &[Target], step: usize, lr: f64) -> Result<(f64, Vec<Vec<f32>>), TrainError> {
        let plan = self.args.run.plan;
        self.args.device.seed(step_seed(plan.seed, step));
        let model = self.model.as_ref().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
        let logits = (self.forward)(model, idx);
        let loss = classification_loss(logits.clone(), targets, plan.loss_terms());
        let loss_value = f64::from(loss.clone().into_scalar::<f32>());
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged { step, loss: loss_value });
        }
        let predicted = rows(logits.detach())?;
        let grads = loss.backward();
        let mut grads = GradientsParams::from_grads(grads, model);
        if let Some(max) = plan.max_grad_norm {
            clip_grad_norm(&mut grads, model, max);
        }
        let (model, mut optim) = self.parts()?;
        let model = optim.step(lr, model, grads);
        self.model = Some(model);
        self.optim = Some(optim);
        Ok((loss_value, predicted))
    }

    fn validate(&mut self) -> Result<EvalReport, TrainError> {
        let model = self.model.as_ref().ok_or_else(|| TrainError::Backend("model lost in a failed step".into()))?;
        (self.validate)(&model.valid())
    }

    fn save(&self, checkpoints: &CheckpointDir, state: &RunState) -> Result<(), TrainError> {
        match (&self.model, &self.optim) {
            (Some(m), Some(o)) => checkpoints.save(m, o, self.best.as_ref(), state),
            _ => Err(TrainError::Backend("model lost in a failed step".into())),
        }
    }

    fn load(&mut self, checkpoints: &CheckpointDir) -> Result<RunState, TrainError> {
        let (model, optim) = self.parts()?;
        let (m, o, best, s) = checkpoints.load(model, optim)?;
        self.model = Some(m);
        self.optim = Some(o);
        self.best = best;
        Ok(s)
    }

    fn keep_best(&mut self) {
        self.best = self.model.clone();
    }

    fn restore_best(&mut self) -> Result<(), TrainError> {
        let best = self.best.clone().ok_or_else(|| TrainError::Backend("no best weights were kept".into()))?;
        self.model = Some(best);
        Ok(())
    }
}
