// Portable scalar qu8s8 GEMM micro-kernel: the fallback and the reference for every fast variant.
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-math.h"

void zrk_qu8s8_gemm_ukernel_1x16c4__scalar(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr >= 1);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    const uint8_t* block = (const uint8_t*)w_block;
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);

    for (size_t m = 0; m < mr; m++) {
        const uint8_t* arow = (const uint8_t*)a + m * a_stride;
        int32_t vacc[ZRK_NR] = {0};
        for (size_t kq = 0; kq < kc / ZRK_KR; kq++) {
            const int8_t* wq = w + kq * ZRK_NR * ZRK_KR;
            for (size_t j = 0; j < ZRK_NR; j++) {
                for (size_t r = 0; r < ZRK_KR; r++) {
                    vacc[j] += (int32_t)arow[kq * ZRK_KR + r] * (int32_t)wq[j * ZRK_KR + r];
                }
            }
        }
        zrk_qgemm_store_row_ref(vacc, nc, block, params, m, (uint8_t*)c + m * c_stride);
    }
}
