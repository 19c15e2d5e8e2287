#!/usr/bin/env bash
# The kernels hold AVX-512 and AMX code chosen at run time; this checks that the binary still runs
# on a CPU without AVX-512 (runtime dispatch), by running it under qemu-user as a Haswell (AVX2)
# CPU and comparing its output with the native run (embed runs the kernels, which pick their AVX2
# level there). First proves that this qemu really traps
# AVX-512 (SIGILL), so the check can fail.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-x86_64 >/dev/null; then
  echo "==> installing qemu-user (Debian package) for the no-AVX-512 check"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq qemu-user >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq qemu-user >/dev/null; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/avx512.c" <<'C'
#include <immintrin.h>
#include <stdio.h>
__attribute__((noinline)) void work(float *in, float *out) { _mm512_storeu_ps(out, _mm512_fmadd_ps(_mm512_loadu_ps(in), _mm512_loadu_ps(in), _mm512_loadu_ps(in))); }
int main(int argc, char **argv) { float in[16], out[16]; for (int i = 0; i < 16; i++) in[i] = (float)(argc + i); work(in, out); printf("%f\n", out[3]); return 0; }
C
gcc -O2 -mavx512f "$tmp/avx512.c" -o "$tmp/avx512"
if bash -c 'qemu-x86_64 -cpu Haswell "$0"; exit $?' "$tmp/avx512" >/dev/null 2>&1; then
  echo "error: qemu -cpu Haswell executed an AVX-512 instruction; this check would prove nothing" >&2
  exit 1
fi
bk="${CARGO_TARGET_DIR:-target}/debug/bertkit"
args=(embed --dynamic --model models/minilm "this is such an amazing movie!")
native=$($bk "${args[@]}" | grep 'Pooled Outputs Values')
emulated=$(qemu-x86_64 -cpu Haswell $bk "${args[@]}" 2>/dev/null | grep 'Pooled Outputs Values')
if [ "$native" != "$emulated" ]; then
  echo "error: output under a Haswell (no AVX-512) CPU differs:" >&2
  echo "  native:   $native" >&2
  echo "  emulated: $emulated" >&2
  exit 1
fi
# bertkit-kernels picks its AVX2 level on such a CPU: its own tests must pass there too.
kt=$(cargo test --locked -p bertkit-kernels --no-run 2>&1 | grep -o '[^ (]*deps/bertkit_kernels-[0-9a-f]*' | head -1)
if ! qemu-x86_64 -cpu Haswell "$kt" -q >"$tmp/kernels.log" 2>&1; then
  echo "error: bertkit-kernels tests fail on a CPU without AVX-512:" >&2
  cat "$tmp/kernels.log" >&2
  exit 1
fi
echo "no-AVX-512 check: passed (qemu traps AVX-512; bertkit embed under -cpu Haswell matches native; kernels' portable path passes its tests)"
