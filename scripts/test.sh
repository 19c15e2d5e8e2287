#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the checkpoint + data if missing, check that the binary
# runs without AVX-512, then run every test (cargo's summary stays the last thing printed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo build --locked
./scripts/check_no_avx512.sh
cargo test --locked --workspace "$@"
