// s8 x s8 row dot products, AVX2: both operands sign-extended to int16 and multiplied with vpmaddwd (exact for
// every input, including -128 x -128). The query is widened once per call.
#if defined(__x86_64__) || defined(__i386__)
#include <stdlib.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

ZRK_AVX2_TARGET void zrk_qs8_dot_rows__avx2(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q,
    int32_t* out) {
    const size_t full = dim & ~(size_t)15;
    int16_t q16[1024];
    if (dim > 1024) {
        zrk_qs8_dot_rows__scalar(rows, dim, base, row_stride, index, q, out);
        return;
    }
    for (size_t i = 0; i < dim; i++) {
        q16[i] = q[i];
    }
    for (size_t r = 0; r < rows; r++) {
        zrk_prefetch_row_ahead(r, rows, dim, base, row_stride, index);
        const int8_t* v = base + (index != NULL ? (size_t)index[r] : r) * row_stride;
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        size_t i = 0;
        for (; i + 32 <= full; i += 32) {
            const __m256i v0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(v + i)));
            const __m256i v1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(v + i + 16)));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(v0, _mm256_loadu_si256((const __m256i*)(q16 + i))));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(v1, _mm256_loadu_si256((const __m256i*)(q16 + i + 16))));
        }
        for (; i < full; i += 16) {
            const __m256i v0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(v + i)));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(v0, _mm256_loadu_si256((const __m256i*)(q16 + i))));
        }
        __m256i acc = _mm256_add_epi32(acc0, acc1);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        s = _mm_hadd_epi32(s, s);
        s = _mm_hadd_epi32(s, s);
        int32_t total = _mm_cvtsi128_si32(s);
        for (; i < dim; i++) {
            total += (int32_t)v[i] * (int32_t)q16[i];
        }
        out[r] = total;
    }
}
#endif
