#!/usr/bin/env bash
# Builds the GEMM benchmark from the kernel sources (baseline flags and compiler, like the package) and runs it.
# Given a second checkout, builds it against that one's kernels too and runs the two alternately ROUNDS times (the
# other first in odd rounds, this one first in even rounds), each line tagged {"tree": "other"|"this", "round": R,
# ...} (the machine is shared and noisy: compare only within a run).
# Usage: bench/kernels/run.sh [seconds-per-cell [OTHER_CHECKOUT [ROUNDS]]]
#        e.g. git worktree add /tmp/base <commit>; bench/kernels/run.sh 0.25 /tmp/base 3
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/zrank-gemm-bench"
# clang, like SwiftPM builds the package's C kernels (GCC 12 shuffles the 8x32 tile's accumulators through extra
# register moves and measures a slower kernel than the one zrank runs); CC overrides.
cc="${CC:-$(command -v clang || command -v cc)}"
echo "compiler: $("$cc" --version | head -1)" >&2
build() {  # build KERNEL_TREE OUT (the benchmark's own source from this tree)
    local src="$1/Sources/CKernels"
    "$cc" -O3 -fno-math-errno -ffp-contract=off -DNDEBUG -I"$src/include" -I"$src" -I"$src/arch/x86" \
      "$root/bench/kernels/gemm-bench.c" $(find "$src" -name '*.c') -lm -lpthread -o "$2"
}
build "$root" "$out"
seconds="${1:-0.3}"
if [[ $# -ge 2 ]]; then
    build "$2" "$out.other"
    echo "this: $(git -C "$root" rev-parse --short HEAD) (and its working tree); other: $2 at $(git -C "$2" rev-parse --short HEAD)" >&2
    # Odd rounds run the other tree first, even rounds this one (so an order effect does not favour one side).
    for round in $(seq "${3:-3}"); do
        order="other this"; (( round % 2 == 0 )) && order="this other"
        for tree in $order; do
            bin="$out"; [[ $tree == other ]] && bin="$out.other"
            "$bin" "$seconds" | sed "s/^{/{\"tree\": \"$tree\", \"round\": $round, /"
        done
    done
else
    "$out" "$seconds"
fi
