// Single-head self-attention, AVX2 + FMA. K is transposed once per call into scratch ([d][L], rows padded to 8)
// so each query's scores are d broadcast-FMAs over L; the weighted sum of V rows is L FMAs over d.
#if defined(__x86_64__) || defined(__i386__)
#include <math.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

ZRK_AVX2_TARGET void zrk_f32_attention__avx2(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch) {
    const size_t lp = (l + 7) & ~(size_t)7;
    float* kt = scratch;          // [d][lp]
    float* p = scratch + d * lp;  // [lp]
    for (size_t j = 0; j < l; j++) {
        const float* kj = k + j * stride;
        for (size_t c = 0; c < d; c++) {
            kt[c * lp + j] = kj[c] * scale;
        }
    }
    for (size_t c = 0; c < d; c++) {
        for (size_t j = l; j < lp; j++) {
            kt[c * lp + j] = 0.0f;
        }
    }
    for (size_t i = 0; i < l; i++) {
        const float* qi = q + i * stride;
        for (size_t j = 0; j < lp; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t c = 0; c < d; c++) {
                acc = _mm256_fmadd_ps(_mm256_set1_ps(qi[c]), _mm256_loadu_ps(kt + c * lp + j), acc);
            }
            _mm256_storeu_ps(p + j, acc);
        }
        zrk_f32_softmax__avx2(l, p);
        float* oi = out + i * out_stride;
        size_t c = 0;
        for (; c + 8 <= d; c += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t j = 0; j < l; j++) {
                acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + j * stride + c), acc);
            }
            _mm256_storeu_ps(oi + c, acc);
        }
        for (; c < d; c++) {
            float acc = 0.0f;
            for (size_t j = 0; j < l; j++) {
                acc += p[j] * v[j * stride + c];
            }
            oi[c] = acc;
        }
    }
}
#endif
