// qu8s8 GEMM micro-kernel, 1 row x 16 columns, KR = 4, AVX2: the single-row (GEMV-like) companion of the 4x16
// kernel, used for M = 1 and for one-row tails so they don't run the 4-row kernel on aliased rows.
// Same exact int16 vpmaddwd arithmetic; two k-quads per iteration keep 8 independent accumulators in flight.
#if defined(__x86_64__) || defined(__i386__)
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

static inline ZRK_AVX2_TARGET __m256i zrk_avx2_reduce_pairs_1x(__m256i a0, __m256i a1) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a0, a1), 0xD8);
}

static inline ZRK_AVX2_TARGET void zrk_avx2_store8_1x(
    __m256i vacc, size_t cols, const uint8_t* block, size_t col0, const struct zrk_qgemm_params* params, void* crow) {
    if (params->raw_int32) {
        _mm256_maskstore_epi32((int*)crow, zrk_avx2_tail_mask(cols), vacc);
        return;
    }
    const __m256i colsum = _mm256_loadu_si256((const __m256i*)(block + 4 * col0));
    const __m256 scale = _mm256_mul_ps(
        _mm256_set1_ps(params->a_scale[0]), _mm256_loadu_ps((const float*)(block + 64 + 4 * col0)));
    const __m256 bias = _mm256_loadu_ps((const float*)(block + 128 + 4 * col0));
    const __m256i centred = _mm256_sub_epi32(vacc, _mm256_mullo_epi32(_mm256_set1_epi32(params->a_zero[0]), colsum));
    __m256 f = _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(centred)), bias);
    if (params->activation == ZRK_ACTIVATION_GELU) {
        f = zrk_avx2_gelu(f);
    }
    _mm256_maskstore_ps((float*)crow, zrk_avx2_tail_mask(cols), f);
}

ZRK_AVX2_TARGET void zrk_qu8s8_gemm_ukernel_1x16c4__avx2(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr == 1);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    (void)mr;
    (void)a_stride;
    (void)c_stride;
    const uint8_t* block = (const uint8_t*)w_block;
    const int16_t* a0 = (const int16_t*)a;
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    __m256i v0 = _mm256_setzero_si256(), v1 = _mm256_setzero_si256(), v2 = _mm256_setzero_si256();
    __m256i v3 = _mm256_setzero_si256(), u0 = _mm256_setzero_si256(), u1 = _mm256_setzero_si256();
    __m256i u2 = _mm256_setzero_si256(), u3 = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 2 * ZRK_KR <= kc; k += 2 * ZRK_KR) {
        int64_t q;
        memcpy(&q, a0 + k, 8);
        const __m256i va = _mm256_set1_epi64x(q);
        memcpy(&q, a0 + k + ZRK_KR, 8);
        const __m256i vb = _mm256_set1_epi64x(q);
        v0 = _mm256_add_epi32(v0, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w))));
        v1 = _mm256_add_epi32(v1, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 16)))));
        v2 = _mm256_add_epi32(v2, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 32)))));
        v3 = _mm256_add_epi32(v3, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 48)))));
        u0 = _mm256_add_epi32(u0, _mm256_madd_epi16(vb, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 64)))));
        u1 = _mm256_add_epi32(u1, _mm256_madd_epi16(vb, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 80)))));
        u2 = _mm256_add_epi32(u2, _mm256_madd_epi16(vb, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 96)))));
        u3 = _mm256_add_epi32(u3, _mm256_madd_epi16(vb, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 112)))));
        w += 2 * ZRK_NR * ZRK_KR;
    }
    if (k < kc) {
        int64_t q;
        memcpy(&q, a0 + k, 8);
        const __m256i va = _mm256_set1_epi64x(q);
        v0 = _mm256_add_epi32(v0, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w))));
        v1 = _mm256_add_epi32(v1, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 16)))));
        v2 = _mm256_add_epi32(v2, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 32)))));
        v3 = _mm256_add_epi32(v3, _mm256_madd_epi16(va, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 48)))));
    }
    v0 = _mm256_add_epi32(v0, u0);
    v1 = _mm256_add_epi32(v1, u1);
    v2 = _mm256_add_epi32(v2, u2);
    v3 = _mm256_add_epi32(v3, u3);
    zrk_avx2_store8_1x(zrk_avx2_reduce_pairs_1x(v0, v1), nc < 8 ? nc : 8, block, 0, params, c);
    if (nc > 8) {
        zrk_avx2_store8_1x(zrk_avx2_reduce_pairs_1x(v2, v3), nc - 8, block, 8, params, (uint8_t*)c + 32);
    }
}
#endif
