//! CPU priority between the server's two kinds of work: the model (its worker thread and the
//! compute pool) keeps the normal priority, and the request side (the async runtime's threads and
//! the tokenizing pool) runs at a lower one. Under overload the request side is where the CPU goes
//! to waste — tens of thousands of refused requests a second from clients that retry at once —
//! and on a small machine it took more than half of the cores from the model (measured in
//! docs/benchmarks.md). With the request side niced, the scheduler hands the model the cores while
//! it has work and the request side whatever is left; when the model is idle nothing changes.
//!
//! Linux niceness is per thread and inherited by threads a thread creates, so the model's threads
//! must be created from a thread that was never lowered (raising a priority back needs a
//! privilege): the compute pool ([`crate::device::start_compute_pool`]) and the model worker are
//! started from the caller's thread before the runtime lowers its own.

/// How much lower the request side runs: at nice 10 a thread weighs about a tenth of a nice-0
/// one in the kernel's fair scheduler, so a busy model keeps ~90 % of a core it shares.
pub const REQUEST_SIDE_NICE: i32 = 10;

/// The niceness the request side runs at: `REQUEST_SIDE_NICE` steps below the calling thread's
/// (capped at 19, the lowest). Taken once, on the thread that starts the runtime.
pub fn request_side_nice() -> i32 {
    (this_thread_nice() + REQUEST_SIDE_NICE).min(19)
}

/// Sets the calling thread's niceness to `nice`, if that lowers it (an absolute value: threads
/// the runtime starts from its own lowered threads inherit the lowered value, and must not be
/// lowered again). Failure is not fatal: the server then runs with every thread at one priority.
pub fn lower_this_thread_to(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        if this_thread_nice() >= nice {
            return;
        }
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
            tracing::debug!(error = %e, "cannot lower the request thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The calling thread's niceness (0 where the platform has no per-thread value).
fn this_thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn lowering_a_thread_leaves_its_creator_and_siblings_alone() {
        let before = this_thread_nice();
        let target = request_side_nice();
        let (lowered, child_of_lowered) = std::thread::spawn(move || {
            lower_this_thread_to(target);
            let mine = this_thread_nice();
            // A thread started by a lowered thread inherits its niceness (why the model's threads
            // are started before the runtime's are lowered); lowering it to the same value again
            // leaves it there.
            let child = std::thread::spawn(move || {
                lower_this_thread_to(target);
                this_thread_nice()
            })
            .join()
            .unwrap();
            (mine, child)
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + REQUEST_SIDE_NICE).min(19));
        assert_eq!(child_of_lowered, lowered);
        assert_eq!(this_thread_nice(), before, "the test's own thread was lowered too");
        let sibling = std::thread::spawn(this_thread_nice).join().unwrap();
        assert_eq!(sibling, before);
    }
}
