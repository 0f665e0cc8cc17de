// Portable scalar fp32 kernels: fallback and reference for the vectorised variants.
#include <math.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-math.h"

void zrk_f32_quantize_rows__scalar(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero) {
    for (size_t i = 0; i < m; i++) {
        const float* row = x + i * x_stride;
        float lo = 0.0f, hi = 0.0f;
        for (size_t j = 0; j < k; j++) {
            lo = fminf(lo, row[j]);
            hi = fmaxf(hi, row[j]);
        }
        zrk_u8_range_params(lo, hi, &scale[i], &zero[i]);
        const float inv = 1.0f / scale[i];
        uint8_t* out = q + i * q_stride;
        for (size_t j = 0; j < k; j++) {
            float v = nearbyintf(row[j] * inv) + (float)zero[i];
            v = fminf(fmaxf(v, 0.0f), 255.0f);
            out[j] = (uint8_t)v;
        }
        for (size_t j = k; j < kp; j++) {
            out[j] = (uint8_t)zero[i];
        }
    }
}

void zrk_f32_add_layernorm__scalar(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride) {
    for (size_t i = 0; i < m; i++) {
        const float* xr = x + i * x_stride;
        const float* rr = r != NULL ? r + i * r_stride : NULL;
        float* yr = y + i * y_stride;
        double sum = 0.0;
        for (size_t j = 0; j < n; j++) {
            const float v = xr[j] + (rr != NULL ? rr[j] : 0.0f);
            yr[j] = v;
            sum += v;
        }
        const float mean = (float)(sum / (double)n);
        double var = 0.0;
        for (size_t j = 0; j < n; j++) {
            const double d = (double)yr[j] - mean;
            var += d * d;
        }
        const float rstd = (float)(1.0 / sqrt(var / (double)n + (double)eps));
        for (size_t j = 0; j < n; j++) {
            yr[j] = (yr[j] - mean) * rstd * gamma[j] + beta[j];
        }
    }
}

void zrk_f32_softmax__scalar(size_t n, float* x) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        mx = fmaxf(mx, x[i]);
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) {
        x[i] *= inv;
    }
}

void zrk_f32_gelu__scalar(size_t n, float* x) {
    for (size_t i = 0; i < n; i++) {
        x[i] = zrk_gelu_ref(x[i]);
    }
}

float zrk_f32_dot__scalar(size_t n, const float* a, const float* b) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)a[i] * (double)b[i];
    }
    return (float)s;
}

void zrk_f32_axpy__scalar(size_t n, float alpha, const float* x, float* y) {
    for (size_t i = 0; i < n; i++) {
        y[i] += alpha * x[i];
    }
}

/// binary16 bits -> float, exactly (normals, subnormals, zeros, infinities; NaNs stay NaNs with their payload).
static float zrk_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1Fu) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        // Subnormal: normalise the mantissa.
        uint32_t e = 113u;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

void zrk_f16_embed_add__scalar(size_t n, const uint16_t* word, const float* position, const float* type, float* out) {
    for (size_t j = 0; j < n; j++) {
        out[j] = zrk_f16_to_f32(word[j]) + position[j] + type[j];
    }
}
