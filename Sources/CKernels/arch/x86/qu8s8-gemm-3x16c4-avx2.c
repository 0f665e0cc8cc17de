// qu8s8 GEMM micro-kernel, 3 rows x 16 columns, KR = 4, AVX2.
//
// vpmaddubsw (u8 x s8 -> saturating s16 pairs) is not exact for full-range u8 activations (255*127*2 overflows
// int16), so this kernel widens both operands to int16 and uses vpmaddwd, which is exact for every u8 x s8 input.
// On Zen 4 both instructions issue on the same two multiply pipes, so the exact form costs no peak throughput;
// A is widened once per GEMM (zrk_u8_widen_rows) and the s8 weights are widened in registers.
#if defined(__x86_64__) || defined(__i386__)
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

/// Combines the pair-interleaved partial sums of 4 accumulators (cols 4j..4j+3 each, two lanes per column) into
/// two vectors of columns 0..7 and 8..15.
static inline ZRK_AVX2_TARGET void zrk_avx2_reduce_pairs(
    __m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i* lo, __m256i* hi) {
    *lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a0, a1), 0xD8);
    *hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a2, a3), 0xD8);
}

static inline ZRK_AVX2_TARGET void zrk_avx2_store_row(
    __m256i lo, __m256i hi, size_t nc, const uint8_t* block, const struct zrk_qgemm_params* params, size_t row,
    void* crow) {
    if (params->raw_int32) {
        if (nc == ZRK_NR) {
            _mm256_storeu_si256((__m256i*)crow, lo);
            _mm256_storeu_si256((__m256i*)crow + 1, hi);
        } else {
            int32_t tmp[ZRK_NR];
            _mm256_storeu_si256((__m256i*)tmp, lo);
            _mm256_storeu_si256((__m256i*)tmp + 1, hi);
            memcpy(crow, tmp, nc * sizeof(int32_t));
        }
        return;
    }
    const float a_scale = params->a_scale[row];
    const __m256i vzero = _mm256_set1_epi32(params->a_zero[row]);
    const __m256i cs0 = _mm256_loadu_si256((const __m256i*)block);
    const __m256i cs1 = _mm256_loadu_si256((const __m256i*)block + 1);
    const __m256 sc0 = _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_loadu_ps((const float*)(block + 64)));
    const __m256 sc1 = _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_loadu_ps((const float*)(block + 96)));
    const __m256 b0 = _mm256_loadu_ps((const float*)(block + 128));
    const __m256 b1 = _mm256_loadu_ps((const float*)(block + 160));
    const __m256i i0 = _mm256_sub_epi32(lo, _mm256_mullo_epi32(vzero, cs0));
    const __m256i i1 = _mm256_sub_epi32(hi, _mm256_mullo_epi32(vzero, cs1));
    __m256 f0 = _mm256_add_ps(_mm256_mul_ps(sc0, _mm256_cvtepi32_ps(i0)), b0);
    __m256 f1 = _mm256_add_ps(_mm256_mul_ps(sc1, _mm256_cvtepi32_ps(i1)), b1);
    if (params->activation == ZRK_ACTIVATION_GELU) {
        f0 = zrk_avx2_gelu(f0);
        f1 = zrk_avx2_gelu(f1);
    }
    if (nc == ZRK_NR) {
        _mm256_storeu_ps((float*)crow, f0);
        _mm256_storeu_ps((float*)crow + 8, f1);
    } else {
        float tmp[ZRK_NR];
        _mm256_storeu_ps(tmp, f0);
        _mm256_storeu_ps(tmp + 8, f1);
        memcpy(crow, tmp, nc * sizeof(float));
    }
}

ZRK_AVX2_TARGET void zrk_qu8s8_gemm_ukernel_3x16c4__avx2(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 3);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const int16_t* a0 = (const int16_t*)a;
    const int16_t* a1 = (const int16_t*)((const uint8_t*)a0 + a_stride);
    const int16_t* a2 = (const int16_t*)((const uint8_t*)a1 + a_stride);
    if (mr < 2) {
        a1 = a0;
    }
    if (mr < 3) {
        a2 = a1;
    }
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);

    __m256i vacc0x0 = _mm256_setzero_si256(), vacc0x1 = _mm256_setzero_si256();
    __m256i vacc0x2 = _mm256_setzero_si256(), vacc0x3 = _mm256_setzero_si256();
    __m256i vacc1x0 = _mm256_setzero_si256(), vacc1x1 = _mm256_setzero_si256();
    __m256i vacc1x2 = _mm256_setzero_si256(), vacc1x3 = _mm256_setzero_si256();
    __m256i vacc2x0 = _mm256_setzero_si256(), vacc2x1 = _mm256_setzero_si256();
    __m256i vacc2x2 = _mm256_setzero_si256(), vacc2x3 = _mm256_setzero_si256();

    for (size_t k = 0; k < kc; k += ZRK_KR) {
        int64_t q0, q1, q2;
        memcpy(&q0, a0 + k, 8);
        memcpy(&q1, a1 + k, 8);
        memcpy(&q2, a2 + k, 8);
        const __m256i va0 = _mm256_set1_epi64x(q0);
        const __m256i va1 = _mm256_set1_epi64x(q1);
        const __m256i va2 = _mm256_set1_epi64x(q2);
        __m256i vw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w));
        vacc0x0 = _mm256_add_epi32(vacc0x0, _mm256_madd_epi16(va0, vw));
        vacc1x0 = _mm256_add_epi32(vacc1x0, _mm256_madd_epi16(va1, vw));
        vacc2x0 = _mm256_add_epi32(vacc2x0, _mm256_madd_epi16(va2, vw));
        vw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 16)));
        vacc0x1 = _mm256_add_epi32(vacc0x1, _mm256_madd_epi16(va0, vw));
        vacc1x1 = _mm256_add_epi32(vacc1x1, _mm256_madd_epi16(va1, vw));
        vacc2x1 = _mm256_add_epi32(vacc2x1, _mm256_madd_epi16(va2, vw));
        vw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 32)));
        vacc0x2 = _mm256_add_epi32(vacc0x2, _mm256_madd_epi16(va0, vw));
        vacc1x2 = _mm256_add_epi32(vacc1x2, _mm256_madd_epi16(va1, vw));
        vacc2x2 = _mm256_add_epi32(vacc2x2, _mm256_madd_epi16(va2, vw));
        vw = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 48)));
        vacc0x3 = _mm256_add_epi32(vacc0x3, _mm256_madd_epi16(va0, vw));
        vacc1x3 = _mm256_add_epi32(vacc1x3, _mm256_madd_epi16(va1, vw));
        vacc2x3 = _mm256_add_epi32(vacc2x3, _mm256_madd_epi16(va2, vw));
        w += ZRK_NR * ZRK_KR;
    }

    __m256i lo, hi;
    zrk_avx2_reduce_pairs(vacc0x0, vacc0x1, vacc0x2, vacc0x3, &lo, &hi);
    zrk_avx2_store_row(lo, hi, nc, block, params, 0, c);
    if (mr > 1) {
        zrk_avx2_reduce_pairs(vacc1x0, vacc1x1, vacc1x2, vacc1x3, &lo, &hi);
        zrk_avx2_store_row(lo, hi, nc, block, params, 1, (uint8_t*)c + c_stride);
    }
    if (mr > 2) {
        zrk_avx2_reduce_pairs(vacc2x0, vacc2x1, vacc2x2, vacc2x3, &lo, &hi);
        zrk_avx2_store_row(lo, hi, nc, block, params, 2, (uint8_t*)c + 2 * c_stride);
    }
}
#endif
