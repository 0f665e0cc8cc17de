#!/usr/bin/env bash
# The encoder's row-wise kernels and GEMM epilogues (bench/kernels/ops-bench.c), built against this tree's kernels and,
# given a second checkout, against that one's too, then run alternately ROUNDS times (the machine is shared and noisy:
# compare the two only within one run).
# Usage: bench/kernels/ops.sh [OTHER_CHECKOUT [ROUNDS]]     e.g. git worktree add /tmp/base <commit>; ops.sh /tmp/base 3
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cc="${CC:-$(command -v clang || command -v cc)}"
build() {  # build KERNEL_TREE OUT
    local src="$1/Sources/CKernels"
    "$cc" -O3 -fno-math-errno -ffp-contract=off -DNDEBUG -I"$src/include" -I"$src" -I"$src/arch/x86" \
        "$root/bench/kernels/ops-bench.c" $(find "$src" -name '*.c') -lm -lpthread -o "$2"
}
out="${TMPDIR:-/tmp}/zrank-ops-bench"
build "$root" "$out.this"
echo "compiler: $("$cc" --version | head -1); this: $(git -C "$root" rev-parse --short HEAD)" >&2
if [[ $# -ge 1 ]]; then
    build "$1" "$out.other"
    echo "other: $1 at $(git -C "$1" rev-parse --short HEAD)" >&2
    for round in $(seq "${2:-3}"); do
        "$out.other" | sed "s/^{/{\"tree\": \"other\", \"round\": $round, /"
        "$out.this" | sed "s/^{/{\"tree\": \"this\", \"round\": $round, /"
    done
else
    "$out.this"
fi
