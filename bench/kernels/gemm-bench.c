// GEMM GOP/s on the MiniLM shapes for every kernel set this CPU supports, next to the measured peak of the
// multiply instruction the fast kernel is built on (vpmaddwd for AVX2, vpdpbusd for AVX-512 VNNI): a tiny loop of
// independent instructions, so each figure is also a fraction of the limit.
//
// Build and run: bench/kernels/run.sh (compiles this file with the kernel sources, baseline flags).
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "CKernels.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
// The peak loops are inline assembly so the compiler cannot merge the identical multiplies.
// AVX2: 8 independent chains of vpmaddwd + vpaddd (what the kernel issues per 16 MACs): 32 ops per pair.
static double peak_avx2_vpmaddwd(long iters) {
    for (long i = 0; i < iters; i++) {
        __asm__ volatile(
            "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n\tvpaddd %%ymm8, %%ymm0, %%ymm0\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm9\n\tvpaddd %%ymm9, %%ymm1, %%ymm1\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm10\n\tvpaddd %%ymm10, %%ymm2, %%ymm2\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm11\n\tvpaddd %%ymm11, %%ymm3, %%ymm3\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n\tvpaddd %%ymm8, %%ymm4, %%ymm4\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm9\n\tvpaddd %%ymm9, %%ymm5, %%ymm5\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm10\n\tvpaddd %%ymm10, %%ymm6, %%ymm6\n\t"
            "vpmaddwd %%ymm14, %%ymm15, %%ymm11\n\tvpaddd %%ymm11, %%ymm7, %%ymm7\n\t" ::
                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
    }
    return (double)iters * 8 * 16 * 2;
}

// AVX-512 VNNI: 20 independent vpdpbusd accumulator chains (64 MACs = 128 ops each). Ten chains were not enough
// on a core with two vpdpbusd ports: the 8x32 kernel's sixteen chains ran faster than a ten-chain "peak".
static double peak_vnni(long iters) {
    for (long i = 0; i < iters; i++) {
        __asm__ volatile(
            "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm16\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm17\n\t"
            "vpdpbusd %%zmm30, %%zmm31, %%zmm18\n\tvpdpbusd %%zmm30, %%zmm31, %%zmm19\n\t" ::
                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                  "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19");
    }
    return (double)iters * 20 * 64 * 2;
}
#endif

/// Peak GOP/s (1 MAC = 2 ops) of the instruction behind `isa`'s GEMM kernel, best of 5 runs.
static double measure_peak(int isa) {
#if defined(__x86_64__)
    const long iters = 20 * 1000 * 1000;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        double ops = 0;
        if (isa == ZRK_ISA_AVX512VNNI) {
            ops = peak_vnni(iters);
        } else if (isa == ZRK_ISA_AVX2) {
            ops = peak_avx2_vpmaddwd(iters);
        } else {
            return 0;
        }
        double dt = now_s() - t0;
        if (ops / dt / 1e9 > best) best = ops / dt / 1e9;
    }
    return best;
#else
    (void)isa;
    return 0;
#endif
}

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    const size_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16, 32, 128, 512};  // 12, 13: a full tile and a tail
    const size_t shapes[][2] = {{384, 384}, {384, 1536}, {1536, 384}, {384, 1152}};
    printf("{\"bench\": \"qu8s8-gemm\", \"seconds_per_cell\": %.2f}\n", seconds);
    for (int isa = ZRK_ISA_SCALAR; isa <= ZRK_ISA_AVX512VNNI; isa++) {
        const struct zrk_kernel_config* cfg = zrk_kernel_config_for(isa);
        if (cfg == NULL) {
            printf("{\"isa\": \"%s\", \"supported\": false}\n",
                   isa == ZRK_ISA_AVX2 ? "avx2" : isa == ZRK_ISA_AVX512VNNI ? "avx512vnni" : "scalar");
            continue;
        }
        const double peak = measure_peak(isa);
        printf("{\"isa\": \"%s\", \"peak_gops\": %.1f}\n", cfg->name, peak);
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            const size_t k = shapes[s][0], n = shapes[s][1], kp = (k + 3) & ~(size_t)3;
            int8_t* w = malloc(k * n);
            float* scale = malloc(n * sizeof(float));
            for (size_t i = 0; i < k * n; i++) w[i] = (int8_t)(rand() % 255 - 127);
            for (size_t i = 0; i < n; i++) scale[i] = 0.01f;
            void* packed = aligned_alloc(64, (zrk_qu8s8_packed_bytes(k, n) + 63) / 64 * 64);
            zrk_qu8s8_pack_weights(k, n, w, n, scale, NULL, packed);

            for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
                const size_t m = ms[mi];
                if (isa == ZRK_ISA_SCALAR && m > 32) continue;
                uint8_t* a = malloc(m * kp);
                for (size_t i = 0; i < m * kp; i++) a[i] = (uint8_t)rand();
                int16_t* a16 = malloc(m * kp * 2);
                float* c = malloc(m * n * sizeof(float));
                float* as = malloc(m * sizeof(float));
                int32_t* az = malloc(m * sizeof(int32_t));
                for (size_t i = 0; i < m; i++) { as[i] = 0.02f; az[i] = 128; }
                struct zrk_qgemm_params p = {as, az, ZRK_ACTIVATION_NONE, 0};
                zrk_qgemm(cfg, m, n, k, a, kp, a16, packed, c, n * 4, &p);
                long reps = 0;
                double t0 = now_s(), dt = 0;
                do {
                    for (int r = 0; r < 8; r++) zrk_qgemm(cfg, m, n, k, a, kp, a16, packed, c, n * 4, &p);
                    reps += 8;
                    dt = now_s() - t0;
                } while (dt < seconds);
                const double gops = 2.0 * m * n * k * reps / dt / 1e9;
                printf("{\"isa\": \"%s\", \"m\": %zu, \"k\": %zu, \"n\": %zu, \"gops\": %.1f, \"fraction_of_peak\": %.3f}\n",
                       cfg->name, m, k, n, gops, peak > 0 ? gops / peak : 0.0);
                free(a); free(a16); free(c); free(as); free(az);
            }
            free(w); free(scale); free(packed);
        }
    }
    return 0;
}
