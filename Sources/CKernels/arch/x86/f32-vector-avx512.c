// AVX-512 fp32 kernels for the AVX-512 VNNI configuration: the row-wise ops of the encoder, 16 lanes at a time.
// Same contracts as f32/f32-vector-scalar.c; quantisation is bit-exact with the scalar version (the same single
// multiply, round-to-nearest-even and clamp), the others are within the tolerances the tests state.
#if defined(__x86_64__) || defined(__i386__)
#include <math.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-math.h"
#include "zrk-avx512-math.h"

ZRK_AVX512_TARGET void zrk_f32_quantize_rows__avx512(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero) {
    // Rows go in batches of up to 16 through three phases: every row's range, then every row's scale and zero
    // point, then every row's values. Done row by row, each row's chain (reduction, two divisions, a third for the
    // reciprocal) stalled the core between two short loops; in phases the rows' chains overlap.
    enum { BATCH = 16 };
    for (size_t i0 = 0; i0 < m; i0 += BATCH) {
        const size_t rows = m - i0 < BATCH ? m - i0 : BATCH;
        float lo[BATCH], hi[BATCH], inv[BATCH];
        for (size_t b = 0; b < rows; b++) {
            const float* row = x + (i0 + b) * x_stride;
            // Two min and two max chains of 16 lanes; the range starts at [0, 0] like the scalar version's. Masked
            // lanes of the tail keep the chain's value (min and max are exact in any order).
            __m512 vlo0 = _mm512_setzero_ps(), vhi0 = _mm512_setzero_ps(), vlo1 = vlo0, vhi1 = vhi0;
            size_t j = 0;
            for (; j + 32 <= k; j += 32) {
                const __m512 v0 = _mm512_loadu_ps(row + j), v1 = _mm512_loadu_ps(row + j + 16);
                vlo0 = _mm512_min_ps(vlo0, v0);
                vhi0 = _mm512_max_ps(vhi0, v0);
                vlo1 = _mm512_min_ps(vlo1, v1);
                vhi1 = _mm512_max_ps(vhi1, v1);
            }
            for (; j < k; j += 16) {
                const __mmask16 mask = zrk_avx512_tail_mask(k - j);
                const __m512 v = _mm512_maskz_loadu_ps(mask, row + j);
                vlo0 = _mm512_mask_min_ps(vlo0, mask, vlo0, v);
                vhi0 = _mm512_mask_max_ps(vhi0, mask, vhi0, v);
            }
            lo[b] = _mm512_reduce_min_ps(_mm512_min_ps(vlo0, vlo1));
            hi[b] = _mm512_reduce_max_ps(_mm512_max_ps(vhi0, vhi1));
        }
        for (size_t b = 0; b < rows; b++) {
            zrk_u8_range_params(lo[b], hi[b], &scale[i0 + b], &zero[i0 + b]);
            inv[b] = 1.0f / scale[i0 + b];
        }
        for (size_t b = 0; b < rows; b++) {
            const size_t i = i0 + b;
            const float* row = x + i * x_stride;
            size_t j;
            const __m512 vinv = _mm512_set1_ps(inv[b]);
            const __m512i vz = _mm512_set1_epi32(zero[i]);
            const __m512i vzero = _mm512_setzero_si512();
            uint8_t* out = q + i * q_stride;
            // 64 values at a time: int32 -> int16 -> u8 with the saturating packs, which clamp to [0, 255] exactly as
            // the scalar version's clamp does; the packs interleave 128-bit lanes, and one vpermd puts the 16 dwords
            // (4 values each) back in order.
            const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            for (j = 0; j + 64 <= k; j += 64) {
                const __m512i a0 = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + j), vinv)), vz);
                const __m512i a1 =
                    _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + j + 16), vinv)), vz);
                const __m512i a2 =
                    _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + j + 32), vinv)), vz);
                const __m512i a3 =
                    _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + j + 48), vinv)), vz);
                const __m512i u8 =
                    _mm512_packus_epi16(_mm512_packs_epi32(a0, a1), _mm512_packs_epi32(a2, a3));
                _mm512_storeu_si512((void*)(out + j), _mm512_permutexvar_epi32(order, u8));
            }
            for (; j < k; j += 16) {
                const __mmask16 mask = zrk_avx512_tail_mask(k - j);
                const __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, row + j), vinv)), vz);
                // Clamp below at 0 in int32, then vpmovusdb saturates above at 255.
                _mm_mask_storeu_epi8(out + j, mask, _mm512_cvtusepi32_epi8(_mm512_max_epi32(v, vzero)));
            }
            for (j = k; j < kp; j++) {
                out[j] = (uint8_t)zero[i];
            }
        }
    }
}

ZRK_AVX512_TARGET void zrk_f32_add_layernorm__avx512(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride) {
    // Rows go in batches of up to 8 through three phases (sums, variances, normalisation), like the quantise
    // kernel: row by row, each row's two reductions and its square root stalled the core between short loops.
    // Each sum runs two accumulators, 32 values a step; the masked tail (lanes past n add zero) goes to the first.
    enum { BATCH = 8 };
    for (size_t i0 = 0; i0 < m; i0 += BATCH) {
        const size_t rows = m - i0 < BATCH ? m - i0 : BATCH;
        float mean[BATCH], rstd[BATCH];
        for (size_t b = 0; b < rows; b++) {
            const float* xr = x + (i0 + b) * x_stride;
            const float* rr = r != NULL ? r + (i0 + b) * r_stride : NULL;
            float* yr = y + (i0 + b) * y_stride;
            __m512 vsum0 = _mm512_setzero_ps(), vsum1 = _mm512_setzero_ps();
            size_t j = 0;
            for (; j + 32 <= n; j += 32) {
                __m512 v0 = _mm512_loadu_ps(xr + j), v1 = _mm512_loadu_ps(xr + j + 16);
                if (rr != NULL) {
                    v0 = _mm512_add_ps(v0, _mm512_loadu_ps(rr + j));
                    v1 = _mm512_add_ps(v1, _mm512_loadu_ps(rr + j + 16));
                }
                _mm512_storeu_ps(yr + j, v0);
                _mm512_storeu_ps(yr + j + 16, v1);
                vsum0 = _mm512_add_ps(vsum0, v0);
                vsum1 = _mm512_add_ps(vsum1, v1);
            }
            for (; j < n; j += 16) {
                const __mmask16 mask = zrk_avx512_tail_mask(n - j);
                __m512 v = _mm512_maskz_loadu_ps(mask, xr + j);
                if (rr != NULL) {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, rr + j));
                }
                _mm512_mask_storeu_ps(yr + j, mask, v);
                vsum0 = _mm512_add_ps(vsum0, v);
            }
            mean[b] = _mm512_reduce_add_ps(_mm512_add_ps(vsum0, vsum1)) / (float)n;
        }
        for (size_t b = 0; b < rows; b++) {
            const float* yr = y + (i0 + b) * y_stride;
            const __m512 vmean = _mm512_set1_ps(mean[b]);
            __m512 vvar0 = _mm512_setzero_ps(), vvar1 = _mm512_setzero_ps();
            size_t j = 0;
            for (; j + 32 <= n; j += 32) {
                const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(yr + j), vmean);
                const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(yr + j + 16), vmean);
                vvar0 = _mm512_fmadd_ps(d0, d0, vvar0);
                vvar1 = _mm512_fmadd_ps(d1, d1, vvar1);
            }
            for (; j < n; j += 16) {
                const __mmask16 mask = zrk_avx512_tail_mask(n - j);
                const __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, yr + j), vmean);
                vvar0 = _mm512_fmadd_ps(d, d, vvar0);
            }
            const float var = _mm512_reduce_add_ps(_mm512_add_ps(vvar0, vvar1));
            rstd[b] = 1.0f / sqrtf(var / (float)n + eps);
        }
        for (size_t b = 0; b < rows; b++) {
            float* yr = y + (i0 + b) * y_stride;
            const __m512 vmean = _mm512_set1_ps(mean[b]);
            const __m512 vrstd = _mm512_set1_ps(rstd[b]);
            for (size_t j = 0; j < n; j += 16) {
                const __mmask16 mask = zrk_avx512_tail_mask(n - j);
                const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, yr + j), vmean), vrstd);
                _mm512_mask_storeu_ps(
                    yr + j, mask,
                    _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(mask, gamma + j), _mm512_maskz_loadu_ps(mask, beta + j)));
            }
        }
    }
}

ZRK_AVX512_TARGET void zrk_f16_embed_add__avx512(
    size_t n, const uint16_t* word, const float* position, const float* type, float* out) {
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(n - j);
        const __m512 w = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, word + j));
        const __m512 v = _mm512_add_ps(_mm512_add_ps(w, _mm512_maskz_loadu_ps(mask, position + j)),
                                       _mm512_maskz_loadu_ps(mask, type + j));
        _mm512_mask_storeu_ps(out + j, mask, v);
    }
}

ZRK_AVX512_TARGET void zrk_f32_gelu__avx512(size_t n, float* x) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, mask, zrk_avx512_gelu(_mm512_maskz_loadu_ps(mask, x + i)));
    }
}
#endif
