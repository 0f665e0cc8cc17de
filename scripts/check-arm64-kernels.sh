#!/usr/bin/env bash
# Builds the kernels and Tests/KernelsC/kernel-equality.c for AArch64 and runs the check under qemu, so the NEON
# kernel is tested bit for bit against nested-loop math on an x86 machine.
# Needs Debian's gcc-aarch64-linux-gnu and qemu-user (apt-get install -y gcc-aarch64-linux-gnu qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."
src=Sources/CKernels
out="${TMPDIR:-/tmp}/zrank-kernel-equality-arm64"
aarch64-linux-gnu-gcc -O2 -static -I"$src/include" -I"$src" Tests/KernelsC/kernel-equality.c \
  $(find "$src" -name '*.c' -not -path '*/arch/x86/*') -lm -lpthread -o "$out"
qemu-aarch64 "$out"
