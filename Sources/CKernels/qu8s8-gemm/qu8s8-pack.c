// Weight packing for the qu8s8 GEMM family (layout in CKernels.h).
#include <assert.h>
#include <string.h>

#include "CKernels.h"

static size_t round_up(size_t x, size_t q) { return (x + q - 1) / q * q; }

size_t zrk_qu8s8_packed_block_bytes(size_t k) { return ZRK_BLOCK_HEADER_BYTES + ZRK_NR * round_up(k, ZRK_KR); }

size_t zrk_qu8s8_packed_bytes(size_t k, size_t n) {
    return zrk_qu8s8_packed_block_bytes(k) * (round_up(n, ZRK_NR) / ZRK_NR);
}

void zrk_qu8s8_pack_weights(
    size_t k, size_t n, const int8_t* w, size_t w_stride, const float* scale, const float* bias, void* packed) {
    assert(k <= ZRK_MAX_K);
    const size_t kp = round_up(k, ZRK_KR);
    const size_t blocks = round_up(n, ZRK_NR) / ZRK_NR;
    const size_t block_bytes = zrk_qu8s8_packed_block_bytes(k);
    uint8_t* out = (uint8_t*)packed;
    memset(out, 0, block_bytes * blocks);
    for (size_t nb = 0; nb < blocks; nb++) {
        uint8_t* block = out + nb * block_bytes;
        int32_t colsum[ZRK_NR] = {0};
        float sc[ZRK_NR] = {0};
        float bi[ZRK_NR] = {0};
        int8_t* kw = (int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
        for (size_t j = 0; j < ZRK_NR; j++) {
            const size_t col = nb * ZRK_NR + j;
            if (col >= n) {
                continue;
            }
            sc[j] = scale != NULL ? scale[col] : 0.0f;
            bi[j] = bias != NULL ? bias[col] : 0.0f;
            for (size_t kk = 0; kk < k; kk++) {
                const int8_t v = w[kk * w_stride + col];
                colsum[j] += v;
                kw[(kk / ZRK_KR) * (ZRK_NR * ZRK_KR) + j * ZRK_KR + (kk % ZRK_KR)] = v;
            }
        }
        (void)kp;
        memcpy(block, colsum, sizeof(colsum));
        memcpy(block + 64, sc, sizeof(sc));
        memcpy(block + 128, bi, sizeof(bi));
    }
}

void zrk_u8_widen_rows(size_t m, size_t kc, const uint8_t* a, size_t a_stride, int16_t* out, size_t out_stride) {
    for (size_t i = 0; i < m; i++) {
        const uint8_t* src = a + i * a_stride;
        int16_t* dst = (int16_t*)((uint8_t*)out + i * out_stride);
        for (size_t kk = 0; kk < kc; kk++) {
            dst[kk] = (int16_t)src[kk];
        }
    }
}
