// The encoder's row-wise kernels and GEMM epilogues at the shapes one group of the forward sees (128 rows of MiniLM:
// hidden 384, intermediate 1536, 12 heads of 32), cache-hot, one thread, with the kernel set this CPU's best:
//   gemm  K x N with no activation, the GELU epilogue and raw int32 out (GOP/s, best of 6 x 0.3 s);
//   quantise rows of 384 and 1536 (ns per row); add + LayerNorm of 384 (ns per row);
//   attention of 8 sequences x 12 heads (one group of 128 rows at 16 tokens; 6 and 12 tokens too) (us per call).
// One JSON object per line. bench/kernels/ops.sh builds it against two kernel trees and alternates them.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "CKernels.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(void) { return rand() / (float)RAND_MAX - 0.5f; }

/// Best seconds per call of `body` over 6 rounds of at least 0.3 s.
#define BEST_SECONDS(result, body)                         \
    do {                                                   \
        double best_ = 1e30;                               \
        for (int round_ = 0; round_ < 6; round_++) {       \
            long reps_ = 0;                                \
            double t0_ = now_s(), dt_;                     \
            do {                                           \
                body;                                      \
                reps_++;                                   \
                dt_ = now_s() - t0_;                       \
            } while (dt_ < 0.3);                           \
            if (dt_ / reps_ < best_) best_ = dt_ / reps_;  \
        }                                                  \
        (result) = best_;                                  \
    } while (0)

int main(void) {
    const struct zrk_kernel_config* cfg = zrk_kernel_config_get();
    const size_t m = 128;
    const size_t shapes[][2] = {{384, 1152}, {384, 384}, {384, 1536}, {1536, 384}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        const size_t k = shapes[s][0], n = shapes[s][1];
        int8_t* w = malloc(k * n);
        float* scale = malloc(n * sizeof(float));
        for (size_t i = 0; i < k * n; i++) w[i] = (int8_t)(rand() % 255 - 127);
        for (size_t i = 0; i < n; i++) scale[i] = 0.001f;
        void* packed = aligned_alloc(64, (zrk_qu8s8_packed_bytes(k, n) + 63) / 64 * 64);
        zrk_qu8s8_pack_weights(k, n, w, n, scale, NULL, packed);
        uint8_t* a = malloc(m * k);
        for (size_t i = 0; i < m * k; i++) a[i] = (uint8_t)rand();
        int16_t* a16 = malloc(m * k * sizeof(int16_t));
        float* c = malloc(m * n * sizeof(float));
        float as[128];
        int32_t az[128];
        for (size_t i = 0; i < m; i++) { as[i] = 0.02f; az[i] = 100; }
        const char* names[] = {"none", "gelu", "raw_int32"};
        printf("{\"op\": \"gemm\", \"isa\": \"%s\", \"m\": %zu, \"k\": %zu, \"n\": %zu", cfg->name, m, k, n);
        for (int mode = 0; mode < 3; mode++) {
            struct zrk_qgemm_params p = {as, az, mode == 1 ? ZRK_ACTIVATION_GELU : ZRK_ACTIVATION_NONE, mode == 2};
            double sec;
            BEST_SECONDS(sec, zrk_qgemm(cfg, m, n, k, a, k, a16, packed, c, n * sizeof(float), &p));
            printf(", \"%s_gops\": %.1f", names[mode], 2.0 * m * n * k / sec / 1e9);
        }
        printf("}\n");
        free(w); free(scale); free(packed); free(a); free(a16); free(c);
    }
    for (size_t k = 384; k <= 1536; k *= 4) {
        float* x = malloc(m * k * sizeof(float));
        for (size_t i = 0; i < m * k; i++) x[i] = 4 * frand();
        uint8_t* q = malloc(m * k);
        float sc[128];
        int32_t zp[128];
        double sec;
        BEST_SECONDS(sec, cfg->quantize_rows(m, k, k, x, k, q, k, sc, zp));
        printf("{\"op\": \"quantize\", \"isa\": \"%s\", \"rows\": %zu, \"k\": %zu, \"ns_per_row\": %.1f}\n", cfg->name,
               m, k, sec / m * 1e9);
        free(x); free(q);
    }
    {
        const size_t n = 384;
        float* x = malloc(m * n * sizeof(float));
        float* r = malloc(m * n * sizeof(float));
        float* gamma = malloc(n * sizeof(float));
        float* beta = malloc(n * sizeof(float));
        for (size_t i = 0; i < m * n; i++) { x[i] = frand(); r[i] = frand(); }
        for (size_t i = 0; i < n; i++) { gamma[i] = 1; beta[i] = 0.1f; }
        double sec;  // in place on the residual, as the encoder calls it
        BEST_SECONDS(sec, cfg->add_layernorm(m, n, x, n, r, n, gamma, beta, 1e-12f, r, n));
        printf("{\"op\": \"add_layernorm\", \"isa\": \"%s\", \"rows\": %zu, \"n\": %zu, \"ns_per_row\": %.1f}\n",
               cfg->name, m, n, sec / m * 1e9);
        free(x); free(r); free(gamma); free(beta);
    }
    const size_t lengths[] = {16, 12, 6};
    for (size_t li = 0; li < 3; li++) {
        const size_t l = lengths[li], sequences = 8, heads = 12, d = 32, hidden = heads * d, rows = l * sequences;
        float* qkv = malloc(rows * 3 * hidden * sizeof(float));
        float* out = malloc(rows * hidden * sizeof(float));
        for (size_t i = 0; i < rows * 3 * hidden; i++) qkv[i] = 2 * frand();
        size_t offsets[8], lens[8];
        for (size_t s = 0; s < sequences; s++) { offsets[s] = s * l; lens[s] = l; }
        const size_t per = zrk_attention_scratch_floats(l, d);
        float* scratch = malloc(per * sizeof(float));
        double sec;
        BEST_SECONDS(sec, zrk_attention_ragged(cfg, NULL, sequences, offsets, lens, heads, d, qkv, 0.17f, out, scratch, per));
        printf("{\"op\": \"attention\", \"isa\": \"%s\", \"sequences\": %zu, \"tokens\": %zu, \"heads\": %zu, \"us_per_call\": %.2f}\n",
               cfg->name, sequences, l, heads, sec * 1e6);
        free(qkv); free(out); free(scratch);
    }
    return 0;
}
