//! The `bertkit` binary: parses the command line and prints the whole cause chain of any error.

mod cli;

use std::process::ExitCode;

/// mimalloc keeps freed pages for reuse; with the system allocator, the encoder's per-op tensor
/// allocations cost ~5 % of inference in page faults (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `bertkit predict ... | head`: once the reader has gone, `println!` panics on the broken pipe
/// (Rust ignores SIGPIPE, so the write fails instead of ending the process). Such a panic ends
/// the process quietly with 141, what a shell reports for a program that SIGPIPE ended (as `cat`
/// or `grep` do there), instead of a panic message and backtrace; any other panic is reported as
/// before. Without `unsafe` (outside the kernels) SIGPIPE itself cannot be restored.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map_or("", String::as_str);
        // std's message: "failed printing to stdout: Broken pipe (os error 32)"; 32 is EPIPE.
        if message.starts_with("failed printing to stdout") && message.ends_with("(os error 32)") {
            std::process::exit(141);
        }
        report(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Cli::from_env();
    // A mistyped BERTKIT_CPU must not silently run at another level.
    if let Err(msg) = bertkit_kernels::check_cpu_env() {
        eprintln!("error: {msg}");
        return ExitCode::FAILURE;
    }
    // Before any command, from this (un-niced) thread: the server's compute threads keep its
    // priority.
    if let Err(e) = bertkit::start_compute_pool(args.threads) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
