// Vector math for the AVX2 kernels (internal). Compiled only inside functions with target("avx2,fma").
#ifndef ZRK_AVX2_MATH_H
#define ZRK_AVX2_MATH_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define ZRK_AVX2_TARGET __attribute__((target("avx2,fma")))

/// Rows the catalog dot kernels fetch ahead of the one they multiply. Candidate rows are scattered over the index
/// (a request's ids are in no catalog order), so each row is a cache miss the hardware prefetchers cannot predict;
/// asking for the row this many positions ahead keeps several misses in flight instead of one.
#define ZRK_DOT_ROWS_AHEAD 8

/// Prefetches the `dim` bytes of catalog row `r + ZRK_DOT_ROWS_AHEAD` (when there is one) into L1. A prefetch never
/// faults; only the index read is bounded.
static inline ZRK_AVX2_TARGET void zrk_prefetch_row_ahead(
    size_t r, size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index) {
    if (r + ZRK_DOT_ROWS_AHEAD >= rows) {
        return;
    }
    const size_t ahead = r + ZRK_DOT_ROWS_AHEAD;
    const char* p = (const char*)(base + (index != NULL ? (size_t)index[ahead] : ahead) * row_stride);
    for (size_t o = 0; o < dim; o += 64) {
        _mm_prefetch(p + o, _MM_HINT_T0);
    }
}

/// erf(x) as an odd/even rational polynomial on [-4, 4] (the widely used single-precision fit also found in
/// Eigen and XLA); |error| < 2e-7 against libm's erff, +-1 outside.
static inline ZRK_AVX2_TARGET __m256 zrk_avx2_erf(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(4.0f)), _mm256_set1_ps(-4.0f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

/// Exact-form GELU 0.5 x (1 + erf(x / sqrt 2)).
static inline ZRK_AVX2_TARGET __m256 zrk_avx2_gelu(__m256 x) {
    const __m256 e = zrk_avx2_erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/// exp(x) by range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial (Cephes-style
/// coefficients); relative error ~2 ulp for x in [-87, 88], 0 below.
static inline ZRK_AVX2_TARGET __m256 zrk_avx2_exp(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.3762626647949f));
    const __m256 n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
    return _mm256_andnot_ps(underflow, result);
}

static inline ZRK_AVX2_TARGET float zrk_avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline ZRK_AVX2_TARGET float zrk_avx2_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline ZRK_AVX2_TARGET float zrk_avx2_hmin(__m256 v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Mask of the first n (0..8) lanes.
static inline ZRK_AVX2_TARGET __m256i zrk_avx2_tail_mask(size_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

#endif
#endif
