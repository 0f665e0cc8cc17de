// s8 x s8 row dot products against two vectors at once, AVX2: each row is loaded and sign-extended to int16 once
// and multiplied with both (widened) vectors by vpmaddwd, exact for every input including -128 x -128.
#if defined(__x86_64__) || defined(__i386__)
#include <stdlib.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

ZRK_AVX2_TARGET static inline int32_t zrk_hsum_epi32(__m256i acc) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_hadd_epi32(s, s);
    s = _mm_hadd_epi32(s, s);
    return _mm_cvtsi128_si32(s);
}

ZRK_AVX2_TARGET void zrk_qs8_dot2_rows__avx2(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q0,
    const int8_t* q1, int32_t* out0, int32_t* out1) {
    const size_t full = dim & ~(size_t)15;
    int16_t a16[1024], b16[1024];
    if (dim > 1024) {
        zrk_qs8_dot2_rows__scalar(rows, dim, base, row_stride, index, q0, q1, out0, out1);
        return;
    }
    for (size_t i = 0; i < dim; i++) {
        a16[i] = q0[i];
        b16[i] = q1[i];
    }
    for (size_t r = 0; r < rows; r++) {
        zrk_prefetch_row_ahead(r, rows, dim, base, row_stride, index);
        const int8_t* v = base + (index != NULL ? (size_t)index[r] : r) * row_stride;
        __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
        size_t i = 0;
        for (; i < full; i += 16) {
            const __m256i v16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(v + i)));
            acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(v16, _mm256_loadu_si256((const __m256i*)(a16 + i))));
            acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(v16, _mm256_loadu_si256((const __m256i*)(b16 + i))));
        }
        int32_t ta = zrk_hsum_epi32(acc_a), tb = zrk_hsum_epi32(acc_b);
        for (; i < dim; i++) {
            ta += (int32_t)v[i] * (int32_t)a16[i];
            tb += (int32_t)v[i] * (int32_t)b16[i];
        }
        out0[r] = ta;
        out1[r] = tb;
    }
}
#endif
