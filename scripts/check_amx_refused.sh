#!/usr/bin/env bash
# Linux hands out AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM). Where the OS
# refuses it, the kernels must fall back to AVX-512, never fault on the first tile instruction.
# This checks it on an AMX CPU by refusing that one request with an LD_PRELOAD shim
# (scripts/noamx.c, also used to bench the peers without AMX: docs/benchmarks.md), after proving
# that the same binary picks AMX without the shim, so the check can fail.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! grep -qw amx_bf16 /proc/cpuinfo; then
  echo "==> skipped: this CPU has no AMX, so there is no tile permission to refuse"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -shared -fPIC -o "$tmp/noamx.so" scripts/noamx.c -ldl
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
with=$($bk cpu)
with=${with%%$'\n'*}
case "$with" in
  *"kernels level amx"*) ;;
  *) echo "==> skipped: the kernels do not pick AMX here even with permission ($with)"; exit 0 ;;
esac
without=$(LD_PRELOAD="$tmp/noamx.so" $bk cpu)
without=${without%%$'\n'*}
case "$without" in
  *"kernels level avx512-bf16 (detected avx512-bf16; int8 on AVX512-VNNI)"*) ;;
  *) echo "error: with the tile permission refused, expected the avx512-bf16 level with int8 on AVX512-VNNI: $without" >&2; exit 1 ;;
esac
# And a forward pass runs there (bf16 GEMMs without tiles).
out=$(LD_PRELOAD="$tmp/noamx.so" $bk embed --dynamic --model models/minilm "this is such an amazing movie!" | grep -c 'Pooled Outputs Values')
[ "$out" = 1 ] || { echo "error: embed without the tile permission printed no pooled output" >&2; exit 1; }
echo "==> AMX permission refused: the kernels fell back to avx512-bf16 and ran"
