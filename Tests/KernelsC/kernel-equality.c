// Portable C check of every GEMM kernel this CPU supports against nested-loop int32 math (bit for bit), for
// architectures the Swift test suite does not run on here (scripts/check-arm64-kernels.sh builds it for AArch64 and
// runs it under qemu). Exit status 0 when every case matches.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CKernels.h"

static uint64_t state = 0x5EED;
static uint64_t next(void) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(void) {
    int failures = 0, cases = 0;
    const int isas[] = {ZRK_ISA_SCALAR, ZRK_ISA_AVX2, ZRK_ISA_AVX512VNNI, ZRK_ISA_NEON};
    for (int trial = 0; trial < 120; trial++) {
        const size_t m = 1 + next() % 19, n = 1 + next() % 50, k = 1 + next() % 200, kp = (k + 3) & ~(size_t)3;
        const int fill = trial % 3;  // 0 random, 1 extremes, 2 mixed extremes
        uint8_t* a = malloc(m * kp);
        int8_t* w = malloc(k * n);
        for (size_t i = 0; i < m * kp; i++) a[i] = fill == 1 ? 255 : fill == 2 ? ((next() & 1) ? 255 : 0) : (uint8_t)next();
        for (size_t i = 0; i < k * n; i++) w[i] = fill == 1 ? (i % 2 ? 127 : -128) : fill == 2 ? ((next() & 1) ? 127 : -128) : (int8_t)next();
        int32_t* expected = calloc(m * n, 4);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                for (size_t kk = 0; kk < k; kk++) expected[i * n + j] += (int32_t)a[i * kp + kk] * (int32_t)w[kk * n + j];
        void* packed = malloc(zrk_qu8s8_packed_bytes(k, n));
        zrk_qu8s8_pack_weights(k, n, w, n, NULL, NULL, packed);
        for (size_t x = 0; x < sizeof(isas) / sizeof(isas[0]); x++) {
            const struct zrk_kernel_config* cfg = zrk_kernel_config_for(isas[x]);
            if (cfg == NULL) continue;
            int32_t* got = malloc(m * n * 4);
            int16_t* a16 = malloc(m * kp * 2);
            struct zrk_qgemm_params p = {NULL, NULL, ZRK_ACTIVATION_NONE, 1};
            zrk_qgemm(cfg, m, n, k, a, kp, a16, packed, got, n * 4, &p);
            cases++;
            if (memcmp(got, expected, m * n * 4) != 0) {
                failures++;
                fprintf(stderr, "MISMATCH %s m=%zu n=%zu k=%zu fill=%d\n", cfg->name, m, n, k, fill);
            }
            free(got);
            free(a16);
        }
        free(a); free(w); free(expected); free(packed);
    }
    printf("kernel-equality: %s: %d cases, %d mismatches\n", zrk_kernel_config_get()->name, cases, failures);
    printf("%d passed, %d failed\n", cases - failures, failures);
    return failures == 0 ? 0 : 1;
}
