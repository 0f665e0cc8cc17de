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
    int32_t colsum[ZRK_NR];
    float scale[ZRK_NR];
    float bias[ZRK_NR];
    memcpy(colsum, block, sizeof(colsum));
    memcpy(scale, block + 64, sizeof(scale));
    memcpy(bias, block + 128, sizeof(bias));
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
        uint8_t* crow = (uint8_t*)c + m * c_stride;
        if (params->raw_int32) {
            memcpy(crow, vacc, nc * sizeof(int32_t));
            continue;
        }
        const float as = params->a_scale[m];
        const int32_t az = params->a_zero[m];
        float* out = (float*)crow;
        for (size_t j = 0; j < nc; j++) {
            float v = as * scale[j] * (float)(vacc[j] - az * colsum[j]) + bias[j];
            if (params->activation == ZRK_ACTIVATION_GELU) {
                v = zrk_gelu_ref(v);
            }
            out[j] = v;
        }
    }
}
