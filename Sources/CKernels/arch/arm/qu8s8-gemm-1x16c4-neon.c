// qu8s8 GEMM micro-kernel, 1 row x 16 columns, KR = 4, AArch64 NEON (baseline: no dot-product extension).
//
// Both operands are widened to int16 and multiplied with widening multiply-accumulates (vmlal_s16), which is exact
// for every u8 x s8 input. One int32x4 accumulator per column holds its 4 k-lane partial sums; pairwise adds
// reduce them at the end. The epilogue is the scalar reference's, so results match it bit for bit.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <assert.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-math.h"

void zrk_qu8s8_gemm_ukernel_1x16c4__neon(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    assert(mr == 1);
    assert(nc >= 1 && nc <= ZRK_NR);
    assert(kc % ZRK_KR == 0);
    (void)mr;
    (void)a_stride;
    (void)c_stride;
    const uint8_t* block = (const uint8_t*)w_block;
    const uint8_t* arow = (const uint8_t*)a;
    const int8_t* w = (const int8_t*)(block + ZRK_BLOCK_HEADER_BYTES);
    int32x4_t acc[ZRK_NR];
    for (size_t j = 0; j < ZRK_NR; j++) {
        acc[j] = vdupq_n_s32(0);
    }
    for (size_t k = 0; k < kc; k += ZRK_KR) {
        uint32_t quad;
        memcpy(&quad, arow + k, 4);
        // [a0 a1 a2 a3 a0 a1 a2 a3] as int16.
        const int16x8_t va = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(quad))));
        for (size_t q = 0; q < 4; q++) {
            const int8x16_t wq = vld1q_s8(w + 16 * q);  // columns 4q .. 4q+3, 4 k each
            const int16x8_t w01 = vmovl_s8(vget_low_s8(wq));
            const int16x8_t w23 = vmovl_high_s8(wq);
            acc[4 * q + 0] = vmlal_s16(acc[4 * q + 0], vget_low_s16(w01), vget_low_s16(va));
            acc[4 * q + 1] = vmlal_high_s16(acc[4 * q + 1], w01, va);
            acc[4 * q + 2] = vmlal_s16(acc[4 * q + 2], vget_low_s16(w23), vget_low_s16(va));
            acc[4 * q + 3] = vmlal_high_s16(acc[4 * q + 3], w23, va);
        }
        w += ZRK_NR * ZRK_KR;
    }
    int32_t vacc[ZRK_NR];
    for (size_t j = 0; j < ZRK_NR; j += 4) {
        const int32x4_t s01 = vpaddq_s32(acc[j], acc[j + 1]);
        const int32x4_t s23 = vpaddq_s32(acc[j + 2], acc[j + 3]);
        vst1q_s32(vacc + j, vpaddq_s32(s01, s23));
    }
    zrk_qgemm_store_row_ref(vacc, nc, block, params, 0, c);
}
#endif
