// AVX2 + FMA fp32 kernels. Same contracts as f32/f32-vector-scalar.c; quantisation is bit-exact with the scalar
// version (same single multiply and round-to-nearest-even), the others are within the tolerances the tests state.
#if defined(__x86_64__) || defined(__i386__)
#include <math.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-math.h"
#include "zrk-avx2-math.h"

ZRK_AVX2_TARGET void zrk_f32_quantize_rows__avx2(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero) {
    for (size_t i = 0; i < m; i++) {
        const float* row = x + i * x_stride;
        // Four min and four max chains (min and max are exact in any order): one chain ran at the latency of
        // vminps/vmaxps.
        __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
        __m256 vlo1 = vlo, vhi1 = vhi, vlo2 = vlo, vhi2 = vhi, vlo3 = vlo, vhi3 = vhi;
        size_t j = 0;
        for (; j + 32 <= k; j += 32) {
            const __m256 v0 = _mm256_loadu_ps(row + j), v1 = _mm256_loadu_ps(row + j + 8);
            const __m256 v2 = _mm256_loadu_ps(row + j + 16), v3 = _mm256_loadu_ps(row + j + 24);
            vlo = _mm256_min_ps(vlo, v0);
            vhi = _mm256_max_ps(vhi, v0);
            vlo1 = _mm256_min_ps(vlo1, v1);
            vhi1 = _mm256_max_ps(vhi1, v1);
            vlo2 = _mm256_min_ps(vlo2, v2);
            vhi2 = _mm256_max_ps(vhi2, v2);
            vlo3 = _mm256_min_ps(vlo3, v3);
            vhi3 = _mm256_max_ps(vhi3, v3);
        }
        vlo = _mm256_min_ps(_mm256_min_ps(vlo, vlo1), _mm256_min_ps(vlo2, vlo3));
        vhi = _mm256_max_ps(_mm256_max_ps(vhi, vhi1), _mm256_max_ps(vhi2, vhi3));
        for (; j + 8 <= k; j += 8) {
            const __m256 v = _mm256_loadu_ps(row + j);
            vlo = _mm256_min_ps(vlo, v);
            vhi = _mm256_max_ps(vhi, v);
        }
        float lo = zrk_avx2_hmin(vlo), hi = zrk_avx2_hmax(vhi);
        for (; j < k; j++) {
            lo = fminf(lo, row[j]);
            hi = fmaxf(hi, row[j]);
        }
        zrk_u8_range_params(lo, hi, &scale[i], &zero[i]);
        const float inv = 1.0f / scale[i];
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i vz = _mm256_set1_epi32(zero[i]);
        uint8_t* out = q + i * q_stride;
        j = 0;
        for (; j + 16 <= k; j += 16) {
            const __m256i a = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + j), vinv)), vz);
            const __m256i b =
                _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + j + 8), vinv)), vz);
            // Saturating packs clamp to [0, 255]; packs work within 128-bit lanes, so fix the order after.
            const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
            const __m128i u8 = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
            _mm_storeu_si128((__m128i*)(out + j), u8);
        }
        for (; j < k; j++) {
            float v = nearbyintf(row[j] * inv) + (float)zero[i];
            v = fminf(fmaxf(v, 0.0f), 255.0f);
            out[j] = (uint8_t)v;
        }
        for (j = k; j < kp; j++) {
            out[j] = (uint8_t)zero[i];
        }
    }
}

ZRK_AVX2_TARGET void zrk_f32_add_layernorm__avx2(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride) {
    for (size_t i = 0; i < m; i++) {
        const float* xr = x + i * x_stride;
        const float* rr = r != NULL ? r + i * r_stride : NULL;
        float* yr = y + i * y_stride;
        __m256 vsum = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(xr + j);
            if (rr != NULL) {
                v = _mm256_add_ps(v, _mm256_loadu_ps(rr + j));
            }
            _mm256_storeu_ps(yr + j, v);
            vsum = _mm256_add_ps(vsum, v);
        }
        float sum = zrk_avx2_hsum(vsum);
        for (; j < n; j++) {
            const float v = xr[j] + (rr != NULL ? rr[j] : 0.0f);
            yr[j] = v;
            sum += v;
        }
        const float mean = sum / (float)n;
        const __m256 vmean = _mm256_set1_ps(mean);
        __m256 vvar = _mm256_setzero_ps();
        for (j = 0; j + 8 <= n; j += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(yr + j), vmean);
            vvar = _mm256_fmadd_ps(d, d, vvar);
        }
        float var = zrk_avx2_hsum(vvar);
        for (; j < n; j++) {
            const float d = yr[j] - mean;
            var += d * d;
        }
        const float rstd = 1.0f / sqrtf(var / (float)n + eps);
        const __m256 vrstd = _mm256_set1_ps(rstd);
        for (j = 0; j + 8 <= n; j += 8) {
            const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(yr + j), vmean), vrstd);
            _mm256_storeu_ps(yr + j, _mm256_fmadd_ps(d, _mm256_loadu_ps(gamma + j), _mm256_loadu_ps(beta + j)));
        }
        for (; j < n; j++) {
            yr[j] = (yr[j] - mean) * rstd * gamma[j] + beta[j];
        }
    }
}

ZRK_AVX2_TARGET void zrk_f32_softmax__avx2(size_t n, float* x) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    }
    float mx = zrk_avx2_hmax(vmax);
    for (; i < n; i++) {
        mx = fmaxf(mx, x[i]);
    }
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = zrk_avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    if (i < n) {
        const __m256i mask = zrk_avx2_tail_mask(n - i);
        const __m256 v = _mm256_maskload_ps(x + i, mask);
        const __m256 e = _mm256_and_ps(zrk_avx2_exp(_mm256_sub_ps(v, vmx)), _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    const __m256 vinv = _mm256_set1_ps(1.0f / zrk_avx2_hsum(vsum));
    for (i = 0; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    }
    if (i < n) {
        const __m256i mask = zrk_avx2_tail_mask(n - i);
        _mm256_maskstore_ps(x + i, mask, _mm256_mul_ps(_mm256_maskload_ps(x + i, mask), vinv));
    }
}

ZRK_AVX2_TARGET void zrk_f32_gelu__avx2(size_t n, float* x) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(x + i, zrk_avx2_gelu(_mm256_loadu_ps(x + i)));
    }
    if (i < n) {
        const __m256i mask = zrk_avx2_tail_mask(n - i);
        _mm256_maskstore_ps(x + i, mask, zrk_avx2_gelu(_mm256_maskload_ps(x + i, mask)));
    }
}

ZRK_AVX2_TARGET float zrk_f32_dot__avx2(size_t n, const float* a, const float* b) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    }
    float s = zrk_avx2_hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        s += a[i] * b[i];
    }
    return s;
}

ZRK_AVX2_TARGET void zrk_f32_axpy__avx2(size_t n, float alpha, const float* x, float* y) {
    const __m256 va = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += alpha * x[i];
    }
}
#endif
