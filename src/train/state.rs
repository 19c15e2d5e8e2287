//! Training checkpoints for `--resume`: each learner's weights and optimizer state (safetensors
//! for the kernels' learners; burnpack files for burn's, which keep parameter ids so the
//! optimizer's moments find their parameters again) plus `state.json` with
//! the position in the run. Written to a temp folder and renamed, so a kill mid-write leaves the
//! previous checkpoint intact.

use std::fs;
use std::path::{Path, PathBuf};

#[cfg(feature = "burn")]
use burn::module::Module;
#[cfg(feature = "burn")]
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::{BestState, History, TrainError, TrainPlan};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub plan: TrainPlan,
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub next_batch: usize,
    pub global_step: usize,
    /// Running sums of the epoch in progress (for its mean loss/accuracy).
    pub loss_sum: f64,
    pub correct: u64,
    pub seen: u64,
    pub epoch_seconds: f64,
    pub history: History,
    /// Early stopping's count and the best evaluation (absent in older checkpoints).
    #[serde(default)]
    pub best: BestState,
    /// The training split's size: a resume on other data is refused (absent in older
    /// checkpoints, which are trusted as before).
    #[serde(default)]
    pub train_examples: Option<usize>,
}

pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    pub fn new(run_dir: &Path) -> Self {
        Self { dir: run_dir.join("checkpoint") }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut s = self.dir.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }

    /// The complete checkpoint to resume from, if any (the `.old` one survives a kill between
    /// the two renames of `save`).
    fn existing(&self) -> Option<PathBuf> {
        [self.dir.clone(), self.sibling(".old")].into_iter().find(|d| d.join("state.json").is_file())
    }

    pub fn exists(&self) -> bool {
        self.existing().is_some()
    }

    /// Model, optimizer and (when one was kept) the best evaluation's weights (burn's learner).
    #[cfg(feature = "burn")]
    pub fn save<M: Module + Clone>(
        &self,
        model: &M,
        optim: &ModuleOptimizer,
        best: Option<&M>,
        state: &RunState,
    ) -> Result<(), TrainError> {
        self.save_with(state, |tmp| {
            model
                .clone()
                .save_file(tmp.join("model.bpk"))
                .map_err(|e| TrainError::Checkpoint(format!("saving model: {e:?}")))?;
            if let Some(b) = best {
                b.clone()
                    .save_file(tmp.join("best.bpk"))
                    .map_err(|e| TrainError::Checkpoint(format!("saving the best weights: {e:?}")))?;
            }
            optim
                .save(tmp.join("optim.bpk"))
                .map_err(|e| TrainError::Checkpoint(format!("saving optimizer: {e:?}")))
        })
    }

    /// Writes a checkpoint: `write` fills a fresh temp folder with the learner's files, then
    /// `state.json` is added and the folder replaces the previous checkpoint.
    pub fn save_with(&self, state: &RunState, write: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
        let tmp = self.sibling(".tmp");
        let old = self.sibling(".old");
        let io = |p: &Path| {
            let path = p.to_path_buf();
            move |source| TrainError::Io { path, source }
        };
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        write(&tmp)?;
        let json = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        fs::write(tmp.join("state.json"), json).map_err(io(&tmp))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        if self.dir.exists() {
            fs::rename(&self.dir, &old).map_err(io(&self.dir))?;
        }
        fs::rename(&tmp, &self.dir).map_err(io(&self.dir))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }

    /// The folder of the complete checkpoint and its run position.
    pub fn load_state(&self) -> Result<(PathBuf, RunState), TrainError> {
        let dir = self
            .existing()
            .ok_or_else(|| TrainError::Checkpoint(format!("no checkpoint in {}", self.dir.display())))?;
        let text = fs::read_to_string(dir.join("state.json"))
            .map_err(|source| TrainError::Io { path: dir.join("state.json"), source })?;
        let state: RunState = serde_json::from_str(&text)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", dir.join("state.json").display())))?;
        Ok((dir, state))
    }

    /// Loads model weights, optimizer state, the best weights (if saved) and the run position
    /// into the freshly built `model`/`optim` (same structure as when saved).
    #[cfg(feature = "burn")]
    pub fn load<M: Module + Clone>(
        &self,
        model: M,
        optim: ModuleOptimizer,
    ) -> Result<(M, ModuleOptimizer, Option<M>, RunState), TrainError> {
        let (dir, state) = self.load_state()?;
        if !dir.join("model.bpk").is_file() {
            return Err(TrainError::Checkpoint(format!(
                "{} has no model.bpk: it was written by the kernels trainer; resume with --engine kernels-bf16 (or kernels)",
                dir.display()
            )));
        }
        let best = match dir.join("best.bpk") {
            p if p.is_file() => Some(
                model
                    .clone()
                    .try_load_file(&p)
                    .map_err(|e| TrainError::Checkpoint(format!("loading {}: {e:?}", p.display())))?,
            ),
            _ => None,
        };
        let model = model
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| TrainError::Checkpoint(format!("loading {}: {e:?}", dir.join("model.bpk").display())))?;
        let optim = optim
            .load(dir.join("optim.bpk"))
            .map_err(|e| TrainError::Checkpoint(format!("loading {}: {e:?}", dir.join("optim.bpk").display())))?;
        Ok((model, optim, best, state))
    }
}
