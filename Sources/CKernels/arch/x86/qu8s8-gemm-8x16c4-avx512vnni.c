// qu8s8 GEMM micro-kernel, 8 rows x 16 columns, KR = 4, AVX-512 VNNI (vpdpbusd: u8 x s8 -> int32, exact).
// One zmm accumulator per row; the packed block's 64 bytes per k-quad are exactly one zmm of weights.
#if defined(__x86_64__) || defined(__i386__)
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx512-math.h"

#define ZRK_AVX512VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))

/// A block's epilogue constants, loaded once per tile (the stores to C could alias the block as far as the compiler
/// knows, so it would reload them for every row).
struct zrk_avx512_epilogue {
    __m512i split;  // colsum as int16 pairs (colsum & 127, colsum >> 7)
    __m512 scale;   // per-column weight scale
    __m512 bias;
    int32_t activation;
    int32_t raw_int32;
    const float* a_scale;
    const int32_t* a_zero;
};

static inline ZRK_AVX512VNNI_TARGET struct zrk_avx512_epilogue zrk_avx512_epilogue_load(
    const uint8_t* block, const struct zrk_qgemm_params* params) {
    struct zrk_avx512_epilogue e;
    e.activation = params->activation;
    e.raw_int32 = params->raw_int32;
    e.a_scale = params->a_scale;
    e.a_zero = params->a_zero;
    if (e.raw_int32) {
        e.split = _mm512_setzero_si512();
        e.scale = e.bias = _mm512_setzero_ps();
        return e;
    }
    // acc - a_zero * colsum in one vpdpwssd per row, exactly: colsum = 128 hi + lo with lo in [0, 128) and
    // hi = colsum >> 7 (|hi| <= K <= ZRK_MAX_K, so int16), paired per lane as int16 (lo, hi) against
    // (-a_zero, -128 a_zero), both within int16 for a_zero in [0, 255]. One instruction a row in place of vpmulld
    // (two uops) and vpsubd.
    const __m512i colsum = _mm512_loadu_si512((const void*)block);
    e.split = _mm512_or_si512(
        _mm512_and_si512(colsum, _mm512_set1_epi32(127)), _mm512_slli_epi32(_mm512_srai_epi32(colsum, 7), 16));
    e.scale = _mm512_loadu_ps((const float*)(block + 64));
    e.bias = _mm512_loadu_ps((const float*)(block + 128));
    return e;
}

/// Row `row`'s 16 accumulators to C: raw int32, or act(a_scale * scale * (acc - a_zero * colsum) + bias), the last
/// step one fused multiply-add (within the epilogue tests' tolerance of the reference, not bit for bit).
static inline ZRK_AVX512VNNI_TARGET void zrk_avx512_store_row(
    __m512i vacc, size_t nc, const struct zrk_avx512_epilogue* e, size_t row, void* crow) {
    const __mmask16 mask = (__mmask16)((1u << nc) - 1u);
    if (e->raw_int32) {
        _mm512_mask_storeu_epi32(crow, mask, vacc);
        return;
    }
    const int32_t az = e->a_zero[row];
    const int32_t pair = (int32_t)((uint32_t)(uint16_t)(int16_t)(-az) | ((uint32_t)(uint16_t)(int16_t)(-128 * az) << 16));
    const __m512i centred = _mm512_dpwssd_epi32(vacc, _mm512_set1_epi32(pair), e->split);
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(e->a_scale[row]), e->scale);
    __m512 f = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(centred), e->bias);
    if (e->activation == ZRK_ACTIVATION_GELU) {
        f = zrk_avx512_gelu(f);
    }
    _mm512_mask_storeu_ps(crow, mask, f);
}

ZRK_AVX512VNNI_TARGET void zrk_qu8s8_gemm_ukernel_8x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 8);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const uint8_t* arow[8];
    arow[0] = (const uint8_t*)a;
    for (size_t r = 1; r < 8; r++) {
        arow[r] = r < mr ? arow[r - 1] + a_stride : arow[r - 1];
    }
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    __m512i vacc0 = _mm512_setzero_si512(), vacc1 = _mm512_setzero_si512();
    __m512i vacc2 = _mm512_setzero_si512(), vacc3 = _mm512_setzero_si512();
    __m512i vacc4 = _mm512_setzero_si512(), vacc5 = _mm512_setzero_si512();
    __m512i vacc6 = _mm512_setzero_si512(), vacc7 = _mm512_setzero_si512();
    for (size_t k = 0; k < kc; k += ZRK_KR) {
        const __m512i vw = _mm512_loadu_si512((const void*)w);
        int32_t q[8];
        for (size_t r = 0; r < 8; r++) {
            memcpy(&q[r], arow[r] + k, 4);
        }
        vacc0 = _mm512_dpbusd_epi32(vacc0, _mm512_set1_epi32(q[0]), vw);
        vacc1 = _mm512_dpbusd_epi32(vacc1, _mm512_set1_epi32(q[1]), vw);
        vacc2 = _mm512_dpbusd_epi32(vacc2, _mm512_set1_epi32(q[2]), vw);
        vacc3 = _mm512_dpbusd_epi32(vacc3, _mm512_set1_epi32(q[3]), vw);
        vacc4 = _mm512_dpbusd_epi32(vacc4, _mm512_set1_epi32(q[4]), vw);
        vacc5 = _mm512_dpbusd_epi32(vacc5, _mm512_set1_epi32(q[5]), vw);
        vacc6 = _mm512_dpbusd_epi32(vacc6, _mm512_set1_epi32(q[6]), vw);
        vacc7 = _mm512_dpbusd_epi32(vacc7, _mm512_set1_epi32(q[7]), vw);
        w += ZRK_NR * ZRK_KR;
    }
    const __m512i vacc[8] = {vacc0, vacc1, vacc2, vacc3, vacc4, vacc5, vacc6, vacc7};
    const struct zrk_avx512_epilogue e = zrk_avx512_epilogue_load(block, params);
    for (size_t r = 0; r < mr; r++) {
        zrk_avx512_store_row(vacc[r], nc, &e, r, (uint8_t*)c + r * c_stride);
    }
}

// The single-row kernel (M = 1 and short tails): the 8-row kernel would spend 8 vpdpbusd per k-quad on one real
// row. Here one weight load feeds one vpdpbusd, and four accumulators over consecutive k-quads keep four
// independent dependency chains in flight; they are summed at the end (int32 addition: exact in any order).
ZRK_AVX512VNNI_TARGET void zrk_qu8s8_gemm_ukernel_1x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr == 1);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    (void)a_stride;
    (void)c_stride;
    const uint8_t* block = (const uint8_t*)w_block;
    const uint8_t* arow = (const uint8_t*)a;
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    __m512i vacc0 = _mm512_setzero_si512(), vacc1 = _mm512_setzero_si512();
    __m512i vacc2 = _mm512_setzero_si512(), vacc3 = _mm512_setzero_si512();
    size_t k = 0;
    for (; k + 4 * ZRK_KR <= kc; k += 4 * ZRK_KR) {
        int32_t q[4];
        memcpy(q, arow + k, sizeof(q));
        vacc0 = _mm512_dpbusd_epi32(vacc0, _mm512_set1_epi32(q[0]), _mm512_loadu_si512((const void*)w));
        vacc1 = _mm512_dpbusd_epi32(vacc1, _mm512_set1_epi32(q[1]), _mm512_loadu_si512((const void*)(w + 64)));
        vacc2 = _mm512_dpbusd_epi32(vacc2, _mm512_set1_epi32(q[2]), _mm512_loadu_si512((const void*)(w + 128)));
        vacc3 = _mm512_dpbusd_epi32(vacc3, _mm512_set1_epi32(q[3]), _mm512_loadu_si512((const void*)(w + 192)));
        w += 4 * ZRK_NR * ZRK_KR;
    }
    for (; k < kc; k += ZRK_KR) {
        int32_t q;
        memcpy(&q, arow + k, 4);
        vacc0 = _mm512_dpbusd_epi32(vacc0, _mm512_set1_epi32(q), _mm512_loadu_si512((const void*)w));
        w += ZRK_NR * ZRK_KR;
    }
    const __m512i vacc = _mm512_add_epi32(_mm512_add_epi32(vacc0, vacc1), _mm512_add_epi32(vacc2, vacc3));
    const struct zrk_avx512_epilogue e = zrk_avx512_epilogue_load(block, params);
    zrk_avx512_store_row(vacc, nc, &e, 0, c);
}
// Small tiles, 1 to 4 rows (M = 1 to 7 and the tails of longer GEMMs). With so few rows one vpdpbusd chain per row
// would wait on the instruction's latency; each row keeps U accumulators over consecutive k-quads instead, so that
// R x U (8 to 12) independent chains are in flight, summed at the end (int32 addition: exact in any order). The
// weights of U k-quads are loaded once per step and feed every row.
static inline __attribute__((always_inline)) ZRK_AVX512VNNI_TARGET void zrk_avx512vnni_rows(
    const size_t R, const size_t U, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const uint8_t* block,
    void* c, size_t c_stride, const struct zrk_qgemm_params* params) {
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    __m512i acc[4][8];
    for (size_t r = 0; r < R; r++) {
        for (size_t u = 0; u < U; u++) acc[r][u] = _mm512_setzero_si512();
    }
    size_t k = 0;
    for (; k + U * ZRK_KR <= kc; k += U * ZRK_KR) {
        __m512i vw[8];
        for (size_t u = 0; u < U; u++) vw[u] = _mm512_loadu_si512((const void*)(w + u * ZRK_NR * ZRK_KR));
        for (size_t r = 0; r < R; r++) {
            for (size_t u = 0; u < U; u++) {
                int32_t q;
                memcpy(&q, a + r * a_stride + k + u * ZRK_KR, 4);
                acc[r][u] = _mm512_dpbusd_epi32(acc[r][u], _mm512_set1_epi32(q), vw[u]);
            }
        }
        w += U * ZRK_NR * ZRK_KR;
    }
    for (; k < kc; k += ZRK_KR) {
        const __m512i vw = _mm512_loadu_si512((const void*)w);
        for (size_t r = 0; r < R; r++) {
            int32_t q;
            memcpy(&q, a + r * a_stride + k, 4);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], _mm512_set1_epi32(q), vw);
        }
        w += ZRK_NR * ZRK_KR;
    }
    const struct zrk_avx512_epilogue e = zrk_avx512_epilogue_load(block, params);
    for (size_t r = 0; r < R; r++) {
        __m512i sum = acc[r][0];
        for (size_t u = 1; u < U; u++) sum = _mm512_add_epi32(sum, acc[r][u]);
        zrk_avx512_store_row(sum, nc, &e, r, (uint8_t*)c + r * c_stride);
    }
}

ZRK_AVX512VNNI_TARGET void zrk_qu8s8_gemm_ukernel_4x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 4);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const uint8_t* arows = (const uint8_t*)a;
    switch (mr) {
        case 1: zrk_avx512vnni_rows(1, 8, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 2: zrk_avx512vnni_rows(2, 4, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 3: zrk_avx512vnni_rows(3, 4, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        default: zrk_avx512vnni_rows(4, 3, nc, kc, arows, a_stride, block, c, c_stride, params); break;
    }
}
#endif

#if defined(__x86_64__) || defined(__i386__)
// Two adjacent 16-column blocks at once, 8 rows x 32 columns: 16 zmm accumulators. vpdpbusd has a latency of
// several cycles and two issue ports on recent cores, so the 8x16 tile's eight chains leave the unit idle about a
// fifth of the time; sixteen chains keep it busy. Per k-quad: two weight loads and eight broadcast loads feed
// sixteen vpdpbusd. The second block starts right after the first (packed blocks are contiguous), so the format of
// the packed weights is unchanged.
ZRK_AVX512VNNI_TARGET void zrk_qu8s8_gemm_ukernel_8x32c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 8);
    assert(nc > ZRK_NR && nc <= 2 * ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block0 = (const uint8_t*)w_block;
    const uint8_t* block1 = block0 + ZRK_BLOCK_HEADER_BYTES + ZRK_NR * kc;
    const uint8_t* arow[8];
    arow[0] = (const uint8_t*)a;
    for (size_t r = 1; r < 8; r++) {
        arow[r] = r < mr ? arow[r - 1] + a_stride : arow[r - 1];
    }
    const int8_t* w0 = (const int8_t*)(block0 + ZRK_BLOCK_HEADER_BYTES);
    const int8_t* w1 = (const int8_t*)(block1 + ZRK_BLOCK_HEADER_BYTES);
    __m512i acc0[8], acc1[8];
    for (size_t r = 0; r < 8; r++) {
        acc0[r] = _mm512_setzero_si512();
        acc1[r] = _mm512_setzero_si512();
    }
    for (size_t k = 0; k < kc; k += ZRK_KR) {
        const __m512i vw0 = _mm512_loadu_si512((const void*)w0);
        const __m512i vw1 = _mm512_loadu_si512((const void*)w1);
        for (size_t r = 0; r < 8; r++) {
            int32_t q;
            memcpy(&q, arow[r] + k, 4);
            const __m512i va = _mm512_set1_epi32(q);
            acc0[r] = _mm512_dpbusd_epi32(acc0[r], va, vw0);
            acc1[r] = _mm512_dpbusd_epi32(acc1[r], va, vw1);
        }
        w0 += ZRK_NR * ZRK_KR;
        w1 += ZRK_NR * ZRK_KR;
    }
    const struct zrk_avx512_epilogue e0 = zrk_avx512_epilogue_load(block0, params);
    const struct zrk_avx512_epilogue e1 = zrk_avx512_epilogue_load(block1, params);
    for (size_t r = 0; r < mr; r++) {
        uint8_t* crow = (uint8_t*)c + r * c_stride;
        zrk_avx512_store_row(acc0[r], ZRK_NR, &e0, r, crow);
        zrk_avx512_store_row(acc1[r], nc - ZRK_NR, &e1, r, crow + ZRK_NR * sizeof(float));
    }
}
#endif

#if defined(__x86_64__) || defined(__i386__)
// Short tiles (1 to 7 rows: a query's tokens, the tail of a longer GEMM) across four adjacent blocks, 64 columns.
// With few rows a 16-column tile spends a broadcast load on every vpdpbusd; across B blocks one broadcast feeds B
// vpdpbusd and one weight load feeds R, so R = 2 to 6 rows run at (B + R) loads per R x B multiplies instead of
// (1 + R) per R. R x B x U accumulators (U: splits over consecutive k-quads, summed at the end; int32 addition is
// exact in any order) keep 8 to 24 independent chains in flight, within the 32 zmm registers together with the
// B x U weight vectors.
static inline __attribute__((always_inline)) ZRK_AVX512VNNI_TARGET void zrk_avx512vnni_rows_blocks(
    const size_t R, const size_t B, const size_t U, size_t nc, size_t kc, const uint8_t* a, size_t a_stride,
    const uint8_t* block0, void* c, size_t c_stride, const struct zrk_qgemm_params* params) {
    const size_t block_bytes = ZRK_BLOCK_HEADER_BYTES + ZRK_NR * kc;
    const int8_t* w = (const int8_t*)(block0 + ZRK_BLOCK_HEADER_BYTES);
    __m512i acc[7][4][2];
    for (size_t r = 0; r < R; r++) {
        for (size_t b = 0; b < B; b++) {
            for (size_t u = 0; u < U; u++) acc[r][b][u] = _mm512_setzero_si512();
        }
    }
    size_t k = 0;
    for (; k + U * ZRK_KR <= kc; k += U * ZRK_KR) {
        __m512i vw[4][2];
        for (size_t b = 0; b < B; b++) {
            for (size_t u = 0; u < U; u++) {
                vw[b][u] = _mm512_loadu_si512((const void*)(w + b * block_bytes + u * ZRK_NR * ZRK_KR));
            }
        }
        for (size_t r = 0; r < R; r++) {
            for (size_t u = 0; u < U; u++) {
                int32_t q;
                memcpy(&q, a + r * a_stride + k + u * ZRK_KR, 4);
                const __m512i va = _mm512_set1_epi32(q);
                for (size_t b = 0; b < B; b++) acc[r][b][u] = _mm512_dpbusd_epi32(acc[r][b][u], va, vw[b][u]);
            }
        }
        w += U * ZRK_NR * ZRK_KR;
    }
    for (; k < kc; k += ZRK_KR) {
        __m512i vw[4];
        for (size_t b = 0; b < B; b++) vw[b] = _mm512_loadu_si512((const void*)(w + b * block_bytes));
        for (size_t r = 0; r < R; r++) {
            int32_t q;
            memcpy(&q, a + r * a_stride + k, 4);
            const __m512i va = _mm512_set1_epi32(q);
            for (size_t b = 0; b < B; b++) acc[r][b][0] = _mm512_dpbusd_epi32(acc[r][b][0], va, vw[b]);
        }
        w += ZRK_NR * ZRK_KR;
    }
    for (size_t b = 0; b < B; b++) {
        const size_t left = nc - b * ZRK_NR;
        const size_t bnc = left < ZRK_NR ? left : ZRK_NR;
        const struct zrk_avx512_epilogue e = zrk_avx512_epilogue_load(block0 + b * block_bytes, params);
        for (size_t r = 0; r < R; r++) {
            __m512i sum = acc[r][b][0];
            for (size_t u = 1; u < U; u++) sum = _mm512_add_epi32(sum, acc[r][b][u]);
            zrk_avx512_store_row(sum, bnc, &e, r, (uint8_t*)c + r * c_stride + b * ZRK_NR * sizeof(float));
        }
    }
}

ZRK_AVX512VNNI_TARGET void zrk_qu8s8_gemm_ukernel_7x64c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1 && mr <= 7);
    assert(nc > 3 * ZRK_NR && nc <= 4 * ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const uint8_t* arows = (const uint8_t*)a;
    switch (mr) {
        case 1: zrk_avx512vnni_rows_blocks(1, 4, 2, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 2: zrk_avx512vnni_rows_blocks(2, 4, 2, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 3: zrk_avx512vnni_rows_blocks(3, 4, 1, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 4: zrk_avx512vnni_rows_blocks(4, 4, 1, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 5: zrk_avx512vnni_rows_blocks(5, 4, 1, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        case 6: zrk_avx512vnni_rows_blocks(6, 4, 1, nc, kc, arows, a_stride, block, c, c_stride, params); break;
        default: {
            // Seven rows: 28 accumulators and four weight vectors would not fit; two passes of two blocks
            // (fourteen chains each).
            const size_t block_bytes = ZRK_BLOCK_HEADER_BYTES + ZRK_NR * kc;
            zrk_avx512vnni_rows_blocks(7, 2, 1, 2 * ZRK_NR, kc, arows, a_stride, block, c, c_stride, params);
            zrk_avx512vnni_rows_blocks(
                7, 2, 1, nc - 2 * ZRK_NR, kc, arows, a_stride, block + 2 * block_bytes,
                (uint8_t*)c + 2 * ZRK_NR * sizeof(float), c_stride, params);
            break;
        }
    }
}
#endif
