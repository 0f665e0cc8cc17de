#ifndef ZRANK_FUZZ_DRIVER_H
#define ZRANK_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, linked by `-sanitize=fuzzer`): runs the fuzzing loop (or the given inputs) with
/// `callback` as the target, parsing libFuzzer's flags from argv. The fuzz executables call it from their Swift
/// entry point, because SwiftPM points `main` at the executable module's own entry (`--defsym main=<module>_main`),
/// which hides libFuzzer's `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
