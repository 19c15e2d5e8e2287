//! The `bertkit` binary: parses the command line and prints the whole cause chain of any error.

mod cli;

use std::process::ExitCode;

/// mimalloc keeps freed pages for reuse; with the system allocator, the encoder's per-op tensor
/// allocations cost ~5 % of inference in page faults (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
