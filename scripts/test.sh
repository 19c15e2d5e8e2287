#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the checkpoint + data if missing, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/assets.sh
cargo test --locked "$@"
