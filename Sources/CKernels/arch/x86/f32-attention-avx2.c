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
    float* p = scratch + d * lp;  // [4][lp]: the probabilities of four queries
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
    // Four queries at a time: each weight vector loaded (a column chunk of K^T, a row of V) feeds four independent
    // FMA chains instead of one, so the loops run at the FMA units' throughput rather than their latency. Every
    // output still sums its terms in the same order as one query at a time (c for scores, j for the context).
    for (size_t i0 = 0; i0 < l; i0 += 4) {
        const size_t rows = l - i0 < 4 ? l - i0 : 4;
        const float* qr[4];
        float* pr[4];
        for (size_t r = 0; r < 4; r++) {
            qr[r] = q + (i0 + (r < rows ? r : 0)) * stride;  // rows past the end repeat the first (not stored)
            pr[r] = p + r * lp;
        }
        for (size_t j = 0; j < lp; j += 8) {
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
            for (size_t c = 0; c < d; c++) {
                const __m256 kv = _mm256_loadu_ps(kt + c * lp + j);
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(qr[0][c]), kv, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(qr[1][c]), kv, acc1);
                acc2 = _mm256_fmadd_ps(_mm256_set1_ps(qr[2][c]), kv, acc2);
                acc3 = _mm256_fmadd_ps(_mm256_set1_ps(qr[3][c]), kv, acc3);
            }
            _mm256_storeu_ps(pr[0] + j, acc0);
            _mm256_storeu_ps(pr[1] + j, acc1);
            _mm256_storeu_ps(pr[2] + j, acc2);
            _mm256_storeu_ps(pr[3] + j, acc3);
        }
        for (size_t r = 0; r < rows; r++) {
            zrk_f32_softmax__avx2(l, pr[r]);
        }
        for (size_t r = rows; r < 4; r++) {
            pr[r] = pr[0];  // not stored
        }
        size_t c = 0;
        for (; c + 8 <= d; c += 8) {
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
            for (size_t j = 0; j < l; j++) {
                const __m256 vv = _mm256_loadu_ps(v + j * stride + c);
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(pr[0][j]), vv, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(pr[1][j]), vv, acc1);
                acc2 = _mm256_fmadd_ps(_mm256_set1_ps(pr[2][j]), vv, acc2);
                acc3 = _mm256_fmadd_ps(_mm256_set1_ps(pr[3][j]), vv, acc3);
            }
            const __m256 acc[4] = {acc0, acc1, acc2, acc3};
            for (size_t r = 0; r < rows; r++) {
                _mm256_storeu_ps(out + (i0 + r) * out_stride + c, acc[r]);
            }
        }
        for (; c < d; c++) {
            for (size_t r = 0; r < rows; r++) {
                float acc = 0.0f;
                for (size_t j = 0; j < l; j++) {
                    acc += pr[r][j] * v[j * stride + c];
                }
                out[(i0 + r) * out_stride + c] = acc;
            }
        }
    }
}
#endif
