// Portable scalar single-head self-attention: fallback and reference for the vectorised variant.
#include <math.h>
#include <string.h>

#include "CKernels.h"

void zrk_f32_attention__scalar(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch) {
    float* p = scratch;
    for (size_t i = 0; i < l; i++) {
        const float* qi = q + i * stride;
        for (size_t j = 0; j < l; j++) {
            const float* kj = k + j * stride;
            float s = 0.0f;
            for (size_t c = 0; c < d; c++) {
                s += qi[c] * kj[c];
            }
            p[j] = s * scale;
        }
        zrk_f32_softmax__scalar(l, p);
        float* oi = out + i * out_stride;
        for (size_t c = 0; c < d; c++) {
            oi[c] = 0.0f;
        }
        for (size_t j = 0; j < l; j++) {
            const float* vj = v + j * stride;
            for (size_t c = 0; c < d; c++) {
                oi[c] += p[j] * vj[c];
            }
        }
    }
}
