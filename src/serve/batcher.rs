//! Dynamic batching, the request side: requests queue (bounded) for one model worker thread
//! (`worker.rs`), which takes the first waiting request, keeps collecting for up
//! to `max_wait` or until `max_batch_size` instances, runs them as one batch and answers each
//! request with its rows.
//!
//! The bound counts every request the server holds, from admission to its answer: being read,
//! tokenized, waiting, or in the batch the model is scoring (as TEI's `--max-concurrent-requests`
//! does). A request admitted therefore waits behind at most `queue_capacity - 1` others, whatever
//! the load, which is what keeps the latency of answered requests bounded under overload.
//!
//! A panic in the model fails only its batch's requests (500). The model it leaves behind is not
//! trusted (a panic can stop mid-update of its scratch state), so the worker drops it and builds
//! a fresh one with [`Restart`]; meanwhile [`Batcher::worker_alive`] is false (health answers
//! 503) and requests wait in the queue for the new model.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::ServerMetrics;
use super::worker::Worker;
use crate::tokenize::Encoded;

/// One row of logits per encoding, or the model's error.
pub type Scored = Result<Vec<Vec<f32>>, String>;

/// Runs the model: encodings in, one row of logits per encoding out.
pub type Model = Box<dyn FnMut(&[Encoded]) -> Scored + Send>;

/// Builds a fresh model for the worker after the running one panicked (a restart): the server's
/// reloads the model folder.
pub type Restart = Box<dyn FnMut() -> Result<Model, String> + Send>;

#[derive(Clone, Copy, Debug)]
pub struct BatcherConfig {
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
}

/// One request in the queue.
pub(super) struct Job {
    pub(super) encodings: Vec<Encoded>,
    pub(super) reply: oneshot::Sender<Scored>,
    /// The request's slot, freed just before its answer is sent.
    pub(super) ticket: Ticket,
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
    /// `capacity` slots: requests being read, tokenized, waiting for the worker or being scored.
    slots: Arc<Semaphore>,
    /// False while the worker rebuilds its model after a panic (or could not start at all).
    alive: Arc<AtomicBool>,
    metrics: ServerMetrics,
}

impl Batcher {
    /// Starts the worker thread that owns `model`, rebuilt with `restart` after a panic.
    pub fn start(model: Model, restart: Restart, config: BatcherConfig, metrics: ServerMetrics) -> Self {
        let (tx, rx) = sync_channel::<Job>(config.queue_capacity);
        let depth = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(AtomicBool::new(true));
        let slots = Arc::new(Semaphore::new(config.queue_capacity));
        let worker = Worker {
            slots: slots.clone(),
            model,
            restart,
            config,
            depth: depth.clone(),
            alive: alive.clone(),
            metrics: metrics.clone(),
        };
        if let Err(e) = std::thread::Builder::new().name("bertkit-model".into()).spawn(move || worker.run(rx)) {
            tracing::error!("cannot start the model worker: {e}");
            alive.store(false, Ordering::SeqCst);
        }
        Self { tx, depth, capacity: config.queue_capacity, slots, alive, metrics }
    }

    /// Whether a model worker is ready to score (false while it restarts after a panic).
    pub fn worker_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
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
    pub async fn submit(&self, encodings: Vec<Encoded>) -> Result<Scored, SubmitError> {
        let ticket = self.admit()?;
        self.submit_admitted(ticket, encodings).await
    }

    /// Queues an admitted request's `encodings`; the ticket's slot frees when it is answered.
    pub async fn submit_admitted(&self, ticket: Ticket, encodings: Vec<Encoded>) -> Result<Scored, SubmitError> {
        let (reply, rx) = oneshot::channel();
        let depth = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
        match self.tx.try_send(Job { encodings, reply, ticket }) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn enc(n: u32) -> Encoded {
        Encoded { ids: vec![n], type_ids: vec![0] }
    }

    /// A batcher whose model scores only while the returned gate is free: lock it before
    /// submitting to keep the model busy.
    fn gated(cfg: BatcherConfig) -> (Batcher, Arc<Mutex<()>>) {
        let gate = Arc::new(Mutex::new(()));
        let g = gate.clone();
        let model: Model = Box::new(move |e: &[Encoded]| {
            let _wait = g.lock().unwrap();
            Ok(vec![vec![0.0]; e.len()])
        });
        (Batcher::start(model, never_restarts(), cfg, ServerMetrics::new()), gate)
    }

    /// `b.submit` of one encoding, in the background.
    fn spawn_submit(b: &Batcher, id: u32) -> tokio::task::JoinHandle<Result<Scored, SubmitError>> {
        let b = b.clone();
        tokio::spawn(async move { b.submit(vec![enc(id)]).await })
    }

    /// For tests whose model never panics: a restart would be a bug.
    fn never_restarts() -> Restart {
        Box::new(|| panic!("this test's model was restarted"))
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
        let b = Batcher::start(model, never_restarts(), cfg, ServerMetrics::new());
        let closed = gate.lock().unwrap();
        let first = spawn_submit(&b, 1);
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
        let b = Batcher::start(model, never_restarts(), cfg, ServerMetrics::new());
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
        let b = Batcher::start(model, never_restarts(), cfg, ServerMetrics::new());
        let first = b.submit(vec![enc(1), enc(2)]).await.expect("the worker answers");
        assert_eq!(first, Err("the model returned 1 rows for 2 inputs".to_string()));
        let second = b.submit(vec![enc(3)]).await.expect("the worker still runs");
        assert_eq!(second, Ok(vec![vec![1.0]]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_model_fails_its_batch_and_the_worker_restarts_it() {
        // Regression (issue 17): a panic in the model killed the worker thread; every later
        // request got "the model worker stopped" while health stayed 200.
        let model: Model = Box::new(|_: &[Encoded]| panic!("injected fault"));
        // The restart waits for the test's word, so that the test sees the worker down.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let restart: Restart = Box::new(move || {
            wait.recv().map_err(|e| e.to_string())?;
            Ok(Box::new(|e: &[Encoded]| Ok(vec![vec![2.0f32]; e.len()])) as Model)
        });
        let cfg = BatcherConfig { max_batch_size: 8, max_wait: Duration::ZERO, queue_capacity: 4 };
        let metrics = ServerMetrics::new();
        let b = Batcher::start(model, restart, cfg, metrics.clone());
        assert!(b.worker_alive());
        let first = b.submit(vec![enc(1)]).await.expect("the worker answers");
        assert!(matches!(&first, Err(m) if m.contains("panicked") && m.contains("injected fault")), "{first:?}");
        assert!(!b.worker_alive(), "the worker reports alive while its model is being rebuilt");
        // A request sent during the restart waits for the new model.
        let during = tokio::spawn({
            let b = b.clone();
            async move { b.submit(vec![enc(2), enc(3)]).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!during.is_finished());
        go.send(()).unwrap();
        assert_eq!(during.await.unwrap().expect("the worker still runs"), Ok(vec![vec![2.0], vec![2.0]]));
        assert!(b.worker_alive());
        let text = metrics.render();
        assert!(text.contains("bertkit_model_panics_total 1") && text.contains("bertkit_model_restarts_total 1"), "{text}");
    }

    /// A restart that fails is retried; the worker never gives up on the queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_restart_is_retried_until_a_model_builds() {
        let model: Model = Box::new(|_: &[Encoded]| panic!("injected fault"));
        let tries = Arc::new(AtomicUsize::new(0));
        let seen = tries.clone();
        let restart: Restart = Box::new(move || match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Err("the model folder is gone".into()),
            _ => Ok(Box::new(|e: &[Encoded]| Ok(vec![vec![3.0f32]; e.len()])) as Model),
        });
        let cfg = BatcherConfig { max_batch_size: 8, max_wait: Duration::ZERO, queue_capacity: 4 };
        let b = Batcher::start(model, restart, cfg, ServerMetrics::new());
        assert!(b.submit(vec![enc(1)]).await.unwrap().is_err());
        // The retry comes after a second.
        let later = tokio::time::timeout(Duration::from_secs(10), b.submit(vec![enc(2)])).await.expect("answered after the retry");
        assert_eq!(later.unwrap(), Ok(vec![vec![3.0]]));
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    // The std lock is the gate that keeps the fake model busy; holding it across awaits is the point.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_full_queue_is_refused_not_blocked() {
        let (b, gate) = gated(BatcherConfig { max_batch_size: 1, max_wait: Duration::ZERO, queue_capacity: 2 });
        let held = gate.lock().unwrap();
        let first = spawn_submit(&b, 1);
        // Let the worker take the first job and block in the model.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = spawn_submit(&b, 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One request in the model, one waiting: both slots are taken.
        let third = b.submit(vec![enc(3)]).await;
        assert!(matches!(third, Err(SubmitError::QueueFull(2))), "{third:?}");
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
        // Answered requests give their slots back.
        assert!(b.submit(vec![enc(4)]).await.is_ok());
    }

    /// The bound counts the request the model is scoring, not only those waiting: with one slot,
    /// a second request is refused while the first is in the model, so an admitted request never
    /// waits behind more than `queue_capacity - 1` others.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_request_being_scored_keeps_its_slot_until_answered() {
        let (b, gate) = gated(BatcherConfig { max_batch_size: 8, max_wait: Duration::ZERO, queue_capacity: 1 });
        let held = gate.lock().unwrap();
        let first = spawn_submit(&b, 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(b.admit(), Err(SubmitError::QueueFull(1))));
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert!(b.admit().is_ok(), "the answered request's slot was not given back");
    }
}
