// The whole-GEMM loop over packed 16-column blocks and MR-row tiles.
//
// Within a chunk of rows, blocks are the outer loop: a block (16 x Kp bytes, 6 KiB for K = 384) stays in L1 while every row tile of A
// passes over it, which is what small-M (query-sized) GEMMs need.
#include <assert.h>

#include "CKernels.h"

#define ZRK_GEMM_MC 64

void zrk_qgemm(
    const struct zrk_kernel_config* config, size_t m, size_t n, size_t k, const uint8_t* a, size_t a_stride,
    int16_t* a16, const void* packed_w, void* c, size_t c_stride, const struct zrk_qgemm_params* params) {
    const size_t kp = (k + ZRK_KR - 1) / ZRK_KR * ZRK_KR;
    const size_t block_bytes = zrk_qu8s8_packed_block_bytes(k);
    const size_t blocks = (n + ZRK_NR - 1) / ZRK_NR;
    const size_t mr = config->gemm_mr;
    const void* a_rows = a;
    size_t a_rows_stride = a_stride;
    if (config->gemm_a_int16) {
        assert(a16 != NULL);
        zrk_u8_widen_rows(m, kp, a, a_stride, a16, kp * sizeof(int16_t));
        a_rows = a16;
        a_rows_stride = kp * sizeof(int16_t);
    }
    const size_t c_elem = sizeof(float);  // int32 and float are both 4 bytes
    // Rows of A are taken ZRK_GEMM_MC at a time so that chunk of A stays in L2 while every block passes over it.
    for (size_t mc0 = 0; mc0 < m; mc0 += ZRK_GEMM_MC) {
        const size_t mc_end = m - mc0 < ZRK_GEMM_MC ? m : mc0 + ZRK_GEMM_MC;
        for (size_t nb = 0; nb < blocks; nb++) {
            const void* block = (const uint8_t*)packed_w + nb * block_bytes;
            const size_t nc = n - nb * ZRK_NR < ZRK_NR ? n - nb * ZRK_NR : ZRK_NR;
            for (size_t m0 = mc0; m0 < mc_end; m0 += mr) {
                const size_t rows = mc_end - m0 < mr ? mc_end - m0 : mr;
                struct zrk_qgemm_params tile = *params;
                if (!params->raw_int32) {
                    tile.a_scale = params->a_scale + m0;
                    tile.a_zero = params->a_zero + m0;
                }
                config->gemm(
                    rows, nc, kp, (const uint8_t*)a_rows + m0 * a_rows_stride, a_rows_stride, block,
                    (uint8_t*)c + m0 * c_stride + nb * ZRK_NR * c_elem, c_stride, &tile);
            }
        }
    }
}
