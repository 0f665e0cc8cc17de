#!/usr/bin/env bash
# Builds the GEMM benchmark from the kernel sources (baseline flags, like the package) and runs it.
# Usage: bench/kernels/run.sh [seconds-per-cell]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/Sources/CKernels"
out="${TMPDIR:-/tmp}/zrank-gemm-bench"
cc -O3 -fno-math-errno -ffp-contract=off -DNDEBUG -I"$src/include" -I"$src" -I"$src/arch/x86" \
  "$root/bench/kernels/gemm-bench.c" $(find "$src" -name '*.c') -lm -lpthread -o "$out"
"$out" "${1:-0.3}"
