#!/usr/bin/env bash
# Checks that the kernels' SIMD intrinsics are inlined into the functions compiled for their
# instruction set (`scripts/test.sh` runs it on the test build; give another binary as $1).
#
# Why: an intrinsic written inside a closure (`std::array::from_fn(|i| _mm512_unpacklo_epi32(..))`)
# or in a helper without `#[target_feature]` is compiled without the caller's target features, so
# it cannot be inlined and each use becomes a call that passes vectors through memory. The 16 × 16
# transposes of the attention did that until session 20: 32 calls per transpose, 3–7 % of
# inference at the AVX-512 levels. Such calls show up as out-of-line `core::core_arch` functions.
#
# Fails when the binary holds an out-of-line intrinsic of a family only the kernels use (AVX-512,
# AMX, AVX-VNNI), or any out-of-line intrinsic that a `bertkit` function calls directly. Other
# crates' own out-of-line SSE/AVX2 helpers (aho-corasick's `_mm256_loadu_si256` at start-up) are
# not the kernels' and pass, as does the one `_xgetbv` of the AMX check (`amx::usable`, once per
# process: not a vector intrinsic).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/bertkit}
if ! command -v objdump >/dev/null; then
  echo "skipped: check_intrinsics_inlined: objdump (binutils) is not installed"
  exit 0
fi
[ -x "$bin" ] || { echo "check_intrinsics_inlined: $bin not found (build it first)" >&2; exit 1; }
found=$(objdump -d --no-show-raw-insn -C "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
  /call/ && /<core::core_arch::x86::/ {
    callee = $0; sub(/.*<core::core_arch::x86::/, "", callee); sub(/>.*/, "", callee)
    if (callee ~ /^(avx512|amx|avxvnni)/ || (fn ~ /bertkit/ && callee !~ /^xsave::/)) print fn "  calls  " callee
  }' | sort | uniq -c)
if [ -n "$found" ]; then
  echo "check_intrinsics_inlined: SIMD intrinsics called out of line in $bin (write them outside closures, in a function compiled with their target features):" >&2
  echo "$found" >&2
  exit 1
fi
echo "ok: check_intrinsics_inlined: no kernels intrinsic is called out of line in $bin"
