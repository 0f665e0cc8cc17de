// Internal scalar math shared by the reference kernels.
#ifndef ZRK_MATH_H
#define ZRK_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "CKernels.h"

/// Scale and zero point of one row's range [min(0, lo), max(0, hi)] mapped onto [0, 255]: the per-token u8
/// quantisation every quantise kernel shares (their outputs must agree bit for bit).
static inline void zrk_u8_range_params(float lo, float hi, float* scale, int32_t* zero) {
    lo = fminf(lo, 0.0f);
    hi = fmaxf(hi, 0.0f);
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        s = 1.0f;
    }
    float z = nearbyintf(-lo / s);
    z = fminf(fmaxf(z, 0.0f), 255.0f);
    *scale = s;
    *zero = (int32_t)z;
}

/// Exact-form GELU, as BERT's "gelu": 0.5 x (1 + erf(x / sqrt(2))).
static inline float zrk_gelu_ref(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

/// The reference qu8s8 GEMM epilogue for one row of int32 accumulators: raw int32 out, or
/// act(a_scale * scale * (acc - a_zero * colsum) + bias). Shared by every kernel that finishes in scalar code, so they
/// agree with the reference bit for bit.
static inline void zrk_qgemm_store_row_ref(
    const int32_t* vacc, size_t nc, const uint8_t* block, const struct zrk_qgemm_params* params, size_t row, void* crow) {
    if (params->raw_int32) {
        memcpy(crow, vacc, nc * sizeof(int32_t));
        return;
    }
    int32_t colsum[ZRK_NR];
    float scale[ZRK_NR];
    float bias[ZRK_NR];
    memcpy(colsum, block, sizeof(colsum));
    memcpy(scale, block + 64, sizeof(scale));
    memcpy(bias, block + 128, sizeof(bias));
    const float as = params->a_scale[row];
    const int32_t az = params->a_zero[row];
    float* out = (float*)crow;
    for (size_t j = 0; j < nc; j++) {
        float v = as * scale[j] * (float)(vacc[j] - az * colsum[j]) + bias[j];
        if (params->activation == ZRK_ACTIVATION_GELU) {
            v = zrk_gelu_ref(v);
        }
        out[j] = v;
    }
}

#endif
