//! The model worker thread behind [`Batcher`](super::Batcher): collects queued requests into one batch, runs the
//! model on it, answers each request with its rows, and rebuilds the model after a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::ServerMetrics;
use super::batcher::{BatcherConfig, Job, Model, Restart, Scored};
use crate::tokenize::Encoded;

/// Longest wait for requests admitted but still being read or tokenized before a batch runs
/// without them (tokenizing a review takes well under a millisecond).
const ADMITTED_WAIT: Duration = Duration::from_millis(5);

/// The model worker thread's state.
pub(super) struct Worker {
    /// The batcher's slots: how many requests are admitted.
    pub(super) slots: Arc<Semaphore>,
    pub(super) model: Model,
    pub(super) restart: Restart,
    pub(super) config: BatcherConfig,
    pub(super) depth: Arc<AtomicUsize>,
    pub(super) alive: Arc<AtomicBool>,
    pub(super) metrics: ServerMetrics,
}

/// The panic's message, for the log and the failed requests.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

impl Worker {
    /// Serves batches from `rx` until every sender is gone.
    pub(super) fn run(mut self, rx: Receiver<Job>) {
        let cfg = self.config;
        // Every slot was taken when the last batch was answered: the server is saturated.
        let mut saturated = false;
        while let Ok(first) = rx.recv() {
            let mut size = self.take(&first);
            let mut jobs = vec![first];
            let start = Instant::now();
            while size < cfg.max_batch_size {
                let now = Instant::now();
                let for_new = (start + cfg.max_wait).saturating_duration_since(now);
                // Requests already admitted (being read or tokenized) are moments from the
                // queue: waiting a little for them beats running without them and making them
                // wait a whole batch. So is a saturated server's next full house: the slots the
                // last batch freed are taken again at once. A lone request waits for nothing.
                let full_house = saturated && jobs.len() < self.config.queue_capacity;
                let for_admitted = if full_house || self.on_the_way(jobs.len()) > 0 {
                    (start + ADMITTED_WAIT).saturating_duration_since(now)
                } else {
                    Duration::ZERO
                };
                match rx.recv_timeout(for_new.max(for_admitted)) {
                    Ok(job) => {
                        size += self.take(&job);
                        jobs.push(job);
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // A request whose client went away or whose deadline passed while it waited is
            // dropped here, before the model spends time on it.
            jobs.retain(|j| !j.reply.is_closed());
            if jobs.is_empty() {
                continue;
            }
            let all: Vec<Encoded> = jobs.iter().flat_map(|j| j.encodings.iter().cloned()).collect();
            let t0 = Instant::now();
            let model = &mut self.model;
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model(&all)));
            let (result, panicked) = match called {
                Ok(r) => (r, false),
                Err(panic) => {
                    // Health says so at once, before the batch's clients hear of the failure.
                    self.alive.store(false, Ordering::SeqCst);
                    self.metrics.model_panic();
                    let what = panic_message(panic.as_ref());
                    tracing::error!(batch = all.len(), "the model panicked: {what}; restarting it");
                    (Err(format!("the model panicked on this batch ({what}); the server restarts its model")), true)
                }
            };
            // A model that answers with the wrong number of rows is a model error for every
            // request in the batch, not a slice out of range in this thread.
            let result = result.and_then(|rows| {
                if rows.len() == all.len() {
                    Ok(rows)
                } else {
                    Err(format!("the model returned {} rows for {} inputs", rows.len(), all.len()))
                }
            });
            self.metrics.batch(all.len(), t0.elapsed());
            saturated = self.slots.available_permits() == 0;
            answer(jobs, &result);
            if panicked {
                self.restart_model();
            }
        }
    }

    /// Admitted requests not yet in the queue nor in the batch being collected (`taken` jobs).
    fn on_the_way(&self, taken: usize) -> usize {
        let admitted = self.config.queue_capacity.saturating_sub(self.slots.available_permits());
        admitted.saturating_sub(taken + self.depth.load(Ordering::SeqCst))
    }

    /// Counts a job out of the queue; its size in instances.
    fn take(&self, job: &Job) -> usize {
        let d = self.depth.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        self.metrics.queue_depth(d);
        job.encodings.len()
    }

    /// Replaces the model with a fresh one, retrying (1 s, doubling to 30 s) until it builds.
    fn restart_model(&mut self) {
        let mut wait = Duration::from_secs(1);
        loop {
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut self.restart));
            match built {
                Ok(Ok(model)) => {
                    // The old model goes only now: its drop may touch what the panic broke.
                    let old = std::mem::replace(&mut self.model, model);
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(old))).is_err() {
                        tracing::warn!("dropping the failed model panicked too");
                    }
                    self.metrics.model_restart();
                    self.alive.store(true, Ordering::SeqCst);
                    tracing::info!("the model worker restarted");
                    return;
                }
                Ok(Err(e)) => tracing::error!("restarting the model failed: {e}; retrying in {} s", wait.as_secs()),
                Err(p) => tracing::error!("restarting the model panicked: {}; retrying in {} s", panic_message(p.as_ref()), wait.as_secs()),
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}

/// Sends each job its rows of `result` (or the batch's error).
fn answer(jobs: Vec<Job>, result: &Scored) {
    let mut offset = 0;
    for job in jobs {
        let n = job.encodings.len();
        let rows = match result {
            Ok(rows) => Ok(rows[offset..offset + n].to_vec()),
            Err(e) => Err(e.clone()),
        };
        offset += n;
        // The slot frees first: a client that sends its next request as soon as this answer
        // arrives finds it free.
        let Job { reply, ticket, .. } = job;
        drop(ticket);
        // The client may have gone away; nothing to do then.
        let _ = reply.send(rows);
    }
}
