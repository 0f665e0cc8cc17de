// qu8s8 GEMM micro-kernel, 4 rows x 16 columns, KR = 4, AVX2.
//
// vpmaddubsw (u8 x s8 -> saturating s16 pairs) is not exact for full-range u8 activations (255*127*2 overflows
// int16), so this kernel multiplies int16 operands with vpmaddwd, which is exact for every u8 x s8 input. Both
// instructions issue on the same two multiply pipes (16 MACs per multiply-pipe slot either way: vpmaddubsw needs a
// second vpmaddwd to widen its pairs), so the exact form costs no peak throughput. A is widened once per GEMM
// (zrk_u8_widen_rows); the s8 weights are sign-extended in registers (vpmovsxbw), which keeps the mapped panel
// as the kernel's input and halves weight traffic against a pre-widened int16 copy. (An ad-hoc comparison during
// development favoured this on the encoder's cold-weight small-M GEMMs and the copy only on hot-cache GEMM loops;
// it was not committed as a benchmark.)
//
// The 16 columns are done as two passes of 8 (4 rows x 2 accumulators each), which keeps accumulators, broadcast
// rows, weights and the product temporary in the 16 ymm registers without spills.
#if defined(__x86_64__) || defined(__i386__)
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx2-math.h"

/// Sums the pair-interleaved partial sums of two accumulators (columns 0..3 and 4..7, two lanes per column) into
/// one vector of 8 columns in order.
static inline ZRK_AVX2_TARGET __m256i zrk_avx2_reduce_pairs(__m256i a0, __m256i a1) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a0, a1), 0xD8);
}

/// Epilogue for 8 columns (`cols` of them valid) of one row.
static inline ZRK_AVX2_TARGET void zrk_avx2_store8(
    __m256i vacc, size_t cols, const uint8_t* block, size_t col0, const struct zrk_qgemm_params* params, size_t row,
    void* crow) {
    if (params->raw_int32) {
        if (cols == 8) {
            _mm256_storeu_si256((__m256i*)crow, vacc);
        } else {
            _mm256_maskstore_epi32((int*)crow, zrk_avx2_tail_mask(cols), vacc);
        }
        return;
    }
    const __m256i colsum = _mm256_loadu_si256((const __m256i*)(block + 4 * col0));
    const __m256 scale = _mm256_mul_ps(
        _mm256_set1_ps(params->a_scale[row]), _mm256_loadu_ps((const float*)(block + 64 + 4 * col0)));
    const __m256 bias = _mm256_loadu_ps((const float*)(block + 128 + 4 * col0));
    const __m256i centred = _mm256_sub_epi32(vacc, _mm256_mullo_epi32(_mm256_set1_epi32(params->a_zero[row]), colsum));
    __m256 f = _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(centred)), bias);
    if (params->activation == ZRK_ACTIVATION_GELU) {
        f = zrk_avx2_gelu(f);
    }
    if (cols == 8) {
        _mm256_storeu_ps((float*)crow, f);
    } else {
        _mm256_maskstore_ps((float*)crow, zrk_avx2_tail_mask(cols), f);
    }
}

/// R rows (1-4) of the tile: each half's two weight vectors are sign-extended once and feed every row, so a tile of
/// two or three rows does two or three multiplies per extension instead of running the kernel on aliased rows (or the
/// single-row kernel once per row, extending every weight again).
static inline __attribute__((always_inline)) ZRK_AVX2_TARGET void zrk_avx2_rows(
    const size_t R, size_t nc, size_t kc, const int16_t* const* arow, const uint8_t* block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    const int8_t* w8 = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    for (size_t half = 0; half < 2; half++) {
        const size_t col0 = half * 8;
        if (col0 >= nc) {
            break;
        }
        const size_t cols = nc - col0 < 8 ? nc - col0 : 8;
        // Each k-quad row of the block holds 16 columns x 4 k (64 bytes); this half reads 32 of them.
        const int8_t* w = w8 + half * 32;
        __m256i acc[4][2];
        for (size_t r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        for (size_t k = 0; k < kc; k += ZRK_KR) {
            const __m256i vw0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)w));
            const __m256i vw1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(w + 16)));
            for (size_t r = 0; r < R; r++) {
                int64_t q;
                memcpy(&q, arow[r] + k, 8);
                const __m256i va = _mm256_set1_epi64x(q);
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(va, vw0));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(va, vw1));
            }
            w += ZRK_NR * ZRK_KR;
        }
        for (size_t r = 0; r < R; r++) {
            zrk_avx2_store8(
                zrk_avx2_reduce_pairs(acc[r][0], acc[r][1]), cols, block, col0, params, r,
                (uint8_t*)c + r * c_stride + 4 * col0);
        }
    }
}

ZRK_AVX2_TARGET void zrk_qu8s8_gemm_ukernel_4x16c4__avx2(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 4);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const int16_t* arow[4];
    for (size_t r = 0; r < mr; r++) arow[r] = (const int16_t*)((const uint8_t*)a + r * a_stride);
    switch (mr) {
        case 1: zrk_avx2_rows(1, nc, kc, arow, block, c, c_stride, params); break;
        case 2: zrk_avx2_rows(2, nc, kc, arow, block, c, c_stride, params); break;
        case 3: zrk_avx2_rows(3, nc, kc, arow, block, c, c_stride, params); break;
        default: zrk_avx2_rows(4, nc, kc, arow, block, c, c_stride, params); break;
    }
}
#endif
