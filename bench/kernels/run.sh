#!/usr/bin/env bash
# Builds the GEMM benchmark from the kernel sources (baseline flags and compiler, like the package) and runs it.
# Usage: bench/kernels/run.sh [seconds-per-cell]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/Sources/CKernels"
out="${TMPDIR:-/tmp}/zrank-gemm-bench"
# clang, like SwiftPM builds the package's C kernels (GCC 12 shuffles the 8x32 tile's accumulators through extra
# register moves and measures a slower kernel than the one zrank runs); CC overrides.
cc="${CC:-$(command -v clang || command -v cc)}"
echo "compiler: $("$cc" --version | head -1)" >&2
"$cc" -O3 -fno-math-errno -ffp-contract=off -DNDEBUG -I"$src/include" -I"$src" -I"$src/arch/x86" \
  "$root/bench/kernels/gemm-bench.c" $(find "$src" -name '*.c') -lm -lpthread -o "$out"
"$out" "${1:-0.3}"
