#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the checkpoint + data if missing, check that the binary
# runs without AVX-512, run the kernels and golden tests at every lower CPU level, then run every
# test (cargo's summary stays the last thing printed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo build --locked
./scripts/check_no_avx512.sh
# Every lower CPU level this machine has runs the kernels' tests and the goldens again
# (BERTKIT_CPU caps the level): an AMX machine also tests its AVX512-BF16, AVX-512 and portable
# paths. The full suite runs last, at the machine's own level.
for level in $("${CARGO_TARGET_DIR:-target}/debug/bertkit" cpu --levels | tail -n +2); do
  echo "==> kernels and golden tests at BERTKIT_CPU=$level"
  BERTKIT_CPU=$level cargo test --locked -p bertkit-kernels
  BERTKIT_CPU=$level cargo test --locked --test golden_fast --test fast_train
done
cargo test --locked --workspace "$@"
