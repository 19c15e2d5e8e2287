//! Dynamic batching: requests queue (bounded) for one model worker thread, which takes the first
//! waiting request, keeps collecting for up to `max_wait` or until `max_batch_size` instances,
//! runs them as one batch and answers each request with its rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::ServerMetrics;
use crate::tokenize::Encoded;

/// Runs the model: encodings in, one row of logits per encoding out.
pub type Model = Box<dyn FnMut(&[Encoded]) -> Result<Vec<Vec<f32>>, String> + Send>;

#[derive(Clone, Copy, Debug)]
pub struct BatcherConfig {
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
}

struct Job {
    encodings: Vec<Encoded>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
    /// The request's queue slot, freed when the worker takes the job into a batch.
    ticket: Option<Ticket>,
}

/// A queue slot granted before a request is read or tokenized ([`Batcher::admit`]): a full
/// queue refuses new requests before they cost any CPU.
pub struct Ticket {
    /// Held for its drop, which frees the slot.
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the server is busy: {0} requests already queued; retry later")]
    QueueFull(usize),
    #[error("the model worker stopped")]
    WorkerGone,
}

/// The sending side, shared by all request handlers.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    /// `capacity` slots: requests being read, tokenized or waiting for the worker.
    slots: Arc<Semaphore>,
    metrics: ServerMetrics,
}

impl Batcher {
    /// Starts the worker thread that owns `model`.
    pub fn start(model: Model, config: BatcherConfig, metrics: ServerMetrics) -> Self {
        let (tx, rx) = sync_channel::<Job>(config.queue_capacity);
        let depth = Arc::new(AtomicUsize::new(0));
        let worker_depth = depth.clone();
        let worker_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("bertkit-model".into())
            .spawn(move || worker(model, rx, config, worker_depth, worker_metrics))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the model worker: {e}"));
        let slots = Arc::new(Semaphore::new(config.queue_capacity));
        Self { tx, depth, capacity: config.queue_capacity, slots, metrics }
    }

    /// A queue slot for one request, or `QueueFull` at once (counted as rejected). Take it before
    /// reading and tokenizing the request, so that refused requests cost nothing.
    pub fn admit(&self) -> Result<Ticket, SubmitError> {
        self.slots.clone().try_acquire_owned().map(|slot| Ticket { _slot: slot }).map_err(|_| {
            self.metrics.rejected();
            SubmitError::QueueFull(self.capacity)
        })
    }

    /// Queues `encodings`; resolves with their logits. Never blocks: a full queue is an error.
    pub async fn submit(&self, encodings: Vec<Encoded>) -> Result<Result<Vec<Vec<f32>>, String>, SubmitError> {
        let ticket = self.admit()?;
        self.submit_admitted(ticket, encodings).await
    }

    /// Queues an admitted request's `encodings`; the ticket's slot frees when the worker takes it.
    pub async fn submit_admitted(&self, ticket: Ticket, encodings: Vec<Encoded>) -> Result<Result<Vec<Vec<f32>>, String>, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let depth = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
        match self.tx.try_send(Job { encodings, reply, ticket: Some(ticket) }) {
            Ok(()) => self.metrics.queue_depth(depth),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                return Err(match e {
                    TrySendError::Full(_) => {
                        self.metrics.rejected();
                        SubmitError::QueueFull(self.capacity)
                    }
                    TrySendError::Disconnected(_) => SubmitError::WorkerGone,
                });
            }
        }
        rx.await.map_err(|_| SubmitError::WorkerGone)
    }
}

fn worker(mut model: Model, rx: Receiver<Job>, cfg: BatcherConfig, depth: Arc<AtomicUsize>, metrics: ServerMetrics) {
    let take = |job: &mut Job| {
        let d = depth.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        metrics.queue_depth(d);
        // Out of the queue and into a batch: its slot is free for the next request.
        job.ticket = None;
        job.encodings.len()
    };
    while let Ok(mut first) = rx.recv() {
        let mut size = take(&mut first);
        let mut jobs = vec![first];
        let deadline = Instant::now() + cfg.max_wait;
        while size < cfg.max_batch_size {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(mut job) => {
                    size += take(&mut job);
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // A request whose client went away or whose deadline passed while it waited is dropped
        // here, before the model spends time on it.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let all: Vec<Encoded> = jobs.iter().flat_map(|j| j.encodings.iter().cloned()).collect();
        let t0 = Instant::now();
        // A panic inside the model fails this batch's requests (500) and nothing else: the
        // worker thread lives on, so later batches are scored and health stays true. The
        // model's own scratch buffers recover from a poisoned lock (`FastEncoder::forward`).
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model(&all)));
        let called = called.unwrap_or_else(|panic| {
            metrics.model_panic();
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(batch = all.len(), "the model panicked: {what}");
            Err(format!("the model panicked on this batch ({what}); the server goes on"))
        });
        // A model that answers with the wrong number of rows is a model error for every request in
        // the batch, not a slice out of range in this thread (which would stop the worker).
        let result = called.and_then(|rows| {
            if rows.len() == all.len() {
                Ok(rows)
            } else {
                Err(format!("the model returned {} rows for {} inputs", rows.len(), all.len()))
            }
        });
        metrics.batch(all.len(), t0.elapsed());
        let mut offset = 0;
        for job in jobs {
            let n = job.encodings.len();
            let answer = match &result {
                Ok(rows) => Ok(rows[offset..offset + n].to_vec()),
                Err(e) => Err(e.clone()),
            };
            offset += n;
            // The client may have gone away; nothing to do then.
            let _ = job.reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn enc(n: u32) -> Encoded {
        Encoded { ids: vec![n], type_ids: vec![0] }
    }

    /// A request abandoned while it waits (its deadline passed) never reaches the model.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The gate is held across awaits on purpose: it keeps the model (on the worker thread) busy
    // while the second request waits and gives up.
    #[allow(clippy::await_holding_lock)]
    async fn abandoned_requests_are_dropped_before_the_model_runs() {
        let gate = Arc::new(Mutex::new(()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (g, s) = (gate.clone(), seen.clone());
        let model: Model = Box::new(move |e: &[Encoded]| {
            let _open = g.lock().unwrap();
            s.lock().unwrap().extend(e.iter().map(|x| x.ids[0]));
            Ok(e.iter().map(|x| vec![x.ids[0] as f32]).collect())
        });
        let cfg = BatcherConfig { max_batch_size: 1, max_wait: Duration::ZERO, queue_capacity: 4 };
        let b = Batcher::start(model, cfg, ServerMetrics::new());
        let closed = gate.lock().unwrap();
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.submit(vec![enc(1)]).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Waits behind the first, gives up after 50 ms.
        let late = tokio::time::timeout(Duration::from_millis(50), b.submit(vec![enc(2)])).await;
        assert!(late.is_err());
        drop(closed);
        assert_eq!(first.await.unwrap().unwrap().unwrap(), vec![vec![1.0]]);
        assert_eq!(b.submit(vec![enc(3)]).await.unwrap().unwrap(), vec![vec![3.0]]);
        assert_eq!(*seen.lock().unwrap(), vec![1, 3], "the abandoned request was scored");
    }

    #[tokio::test]
    async fn concurrent_requests_share_a_batch_and_get_their_own_rows() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let model: Model = Box::new(move |e: &[Encoded]| {
            seen.lock().unwrap().push(e.len());
            Ok(e.iter().map(|x| vec![x.ids[0] as f32]).collect())
        });
        let cfg = BatcherConfig { max_batch_size: 8, max_wait: Duration::from_millis(200), queue_capacity: 16 };
        let b = Batcher::start(model, cfg, ServerMetrics::new());
        let handles: Vec<_> = (0..4u32)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.submit(vec![enc(i), enc(i + 10)]).await })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let rows = h.await.unwrap().unwrap().unwrap();
            assert_eq!(rows, vec![vec![i as f32], vec![i as f32 + 10.0]]);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![8], "4 requests of 2 → one batch of 8");
    }

    #[tokio::test]
    async fn a_model_returning_too_few_rows_is_an_error_not_a_panic() {
        // Regression: the worker sliced `rows[offset..offset + n]` and panicked, which left every
        // later request with "the model worker stopped".
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let model: Model = Box::new(move |e: &[Encoded]| {
            let short = seen.fetch_add(1, Ordering::SeqCst) == 0;
            Ok(vec![vec![1.0]; if short { e.len() - 1 } else { e.len() }])
        });
        let cfg = BatcherConfig { max_batch_size: 8, max_wait: Duration::ZERO, queue_capacity: 4 };
        let b = Batcher::start(model, cfg, ServerMetrics::new());
        let first = b.submit(vec![enc(1), enc(2)]).await.expect("the worker answers");
        assert_eq!(first, Err("the model returned 1 rows for 2 inputs".to_string()));
        let second = b.submit(vec![enc(3)]).await.expect("the worker still runs");
        assert_eq!(second, Ok(vec![vec![1.0]]));
    }

    #[tokio::test]
    async fn a_panicking_model_fails_its_batch_and_the_worker_goes_on() {
        // Regression (issue 17): a panic in the model killed the worker thread; every later
        // request got "the model worker stopped" while health stayed 200.
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let model: Model = Box::new(move |e: &[Encoded]| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("injected fault");
            }
            Ok(vec![vec![2.0]; e.len()])
        });
        let cfg = BatcherConfig { max_batch_size: 8, max_wait: Duration::ZERO, queue_capacity: 4 };
        let metrics = ServerMetrics::new();
        let b = Batcher::start(model, cfg, metrics.clone());
        let first = b.submit(vec![enc(1)]).await.expect("the worker answers");
        assert!(matches!(&first, Err(m) if m.contains("panicked") && m.contains("injected fault")), "{first:?}");
        let second = b.submit(vec![enc(2), enc(3)]).await.expect("the worker still runs");
        assert_eq!(second, Ok(vec![vec![2.0], vec![2.0]]));
        assert!(metrics.render().contains("bertkit_model_panics_total 1"), "{}", metrics.render());
    }

    // The std lock is the gate that keeps the fake model busy; holding it across awaits is the point.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_full_queue_is_refused_not_blocked() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = gate.clone();
        let model: Model = Box::new(move |e: &[Encoded]| {
            let _wait = g.lock().unwrap();
            Ok(vec![vec![0.0]; e.len()])
        });
        let cfg = BatcherConfig { max_batch_size: 1, max_wait: Duration::ZERO, queue_capacity: 1 };
        let b = Batcher::start(model, cfg, ServerMetrics::new());
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.submit(vec![enc(1)]).await }
        });
        // Let the worker take the first job and block in the model.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = tokio::spawn({
            let b = b.clone();
            async move { b.submit(vec![enc(2)]).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = b.submit(vec![enc(3)]).await;
        assert!(matches!(third, Err(SubmitError::QueueFull(1))), "{third:?}");
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }
}
