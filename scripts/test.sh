#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the checkpoint + data if missing, check that the binary
# runs without AVX-512 and falls back when the OS refuses AMX, check that no kernels intrinsic is
# called out of line, run the kernels, golden and gradient tests at every CPU level this machine
# has, check that the API docs build with every link resolved, then run every test (cargo's
# summary stays the last thing printed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo build --locked
./scripts/check_no_avx512.sh
./scripts/check_amx_refused.sh
./scripts/check_intrinsics_inlined.sh
# BERTKIT_CPU caps the kernels level: an AMX machine tests its AMX, AVX512-BF16, AVX-512, AVX2 and
# portable paths. Each level prints what its golden and gradient tests ran (`ran: ...`) and what
# they skipped and why (`skipped: ...`); a failing level prints its whole log.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for level in $("${CARGO_TARGET_DIR:-target}/debug/bertkit" cpu --levels); do
  echo "==> kernels, golden and gradient tests at BERTKIT_CPU=$level"
  if ! { BERTKIT_CPU=$level cargo test --locked -p bertkit-kernels -- --nocapture &&
         BERTKIT_CPU=$level cargo test --locked --test golden_fast --test golden_grads --test bilstm_kernels -- --nocapture; } >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  grep -E '^(ran|skipped):|^test result:' "$log" | sed 's/^/    /'
done
# burn is optional (`--features burn`, `--features cuda`): its engine and the tests that check the
# kernels against burn's autodiff run with the feature; the CUDA build is checked to compile (no
# GPU needed: its driver is loaded at run time). The default build's full suite runs last.
echo "==> burn's engine and the tests against it (--features burn)"
if ! cargo test --locked --features burn --lib --test fast_train --test golden_encoder --test bilstm_kernels \
       --test checkpoint_errors --test trainer_rules --test train_workflow >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
grep -E '^test result:' "$log" | sed 's/^/    /'
echo "==> the CUDA build compiles (cargo check --features cuda)"
# DOCS_RS skips cubecl-llvm's build-time LLVM download (this machine reaches only the package
# registries); a check needs no LLVM, a real `cargo build --features cuda` downloads it.
DOCS_RS=1 cargo check --locked --features cuda --quiet
# The crate docs the README points to (`cargo doc --open`): every intra-doc link resolves and no
# public item's docs link to a private one.
echo "==> the API docs build with every link resolved (cargo doc, warnings as errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --workspace --quiet
cargo test --locked --workspace "$@"
