// CPU feature detection and the kernel configuration, chosen once per process.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "CKernels.h"

int zrk_cpu_supports(int32_t isa) {
    switch (isa) {
        case ZRK_ISA_SCALAR:
            return 1;
#if defined(__x86_64__) || defined(__i386__)
        case ZRK_ISA_AVX2:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case ZRK_ISA_AVX512VNNI:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
        case ZRK_ISA_NEON:
            return 1;
#endif
        default:
            return 0;
    }
}

static const struct zrk_kernel_config zrk_config_scalar = {
    .isa = ZRK_ISA_SCALAR,
    .name = "scalar",
    .gemm_mr = 1,
    .gemm_a_int16 = 0,
    .gemm = zrk_qu8s8_gemm_ukernel_1x16c4__scalar,
    .quantize_rows = zrk_f32_quantize_rows__scalar,
    .add_layernorm = zrk_f32_add_layernorm__scalar,
    .softmax = zrk_f32_softmax__scalar,
    .gelu = zrk_f32_gelu__scalar,
    .dot = zrk_f32_dot__scalar,
    .axpy = zrk_f32_axpy__scalar,
    .attention = zrk_f32_attention__scalar,
    .dot_rows = zrk_qs8_dot_rows__scalar,
    .dot2_rows = zrk_qs8_dot2_rows__scalar,
    .embed_add = zrk_f16_embed_add__scalar,
};

#if defined(__x86_64__) || defined(__i386__)
static const struct zrk_kernel_config zrk_config_avx2 = {
    .isa = ZRK_ISA_AVX2,
    .name = "avx2",
    .gemm_mr = 4,
    .gemm_a_int16 = 1,
    .gemm = zrk_qu8s8_gemm_ukernel_4x16c4__avx2,
    .gemm1 = zrk_qu8s8_gemm_ukernel_1x16c4__avx2,
    .quantize_rows = zrk_f32_quantize_rows__avx2,
    .add_layernorm = zrk_f32_add_layernorm__avx2,
    .softmax = zrk_f32_softmax__avx2,
    .gelu = zrk_f32_gelu__avx2,
    .dot = zrk_f32_dot__avx2,
    .axpy = zrk_f32_axpy__avx2,
    .attention = zrk_f32_attention__avx2,
    .dot_rows = zrk_qs8_dot_rows__avx2,
    .dot2_rows = zrk_qs8_dot2_rows__avx2,
    .embed_add = zrk_f16_embed_add__scalar,
};

static const struct zrk_kernel_config zrk_config_avx512vnni = {
    .isa = ZRK_ISA_AVX512VNNI,
    .name = "avx512vnni",
    .gemm_mr = 8,
    .gemm_a_int16 = 0,
    .gemm = zrk_qu8s8_gemm_ukernel_8x16c4__avx512vnni,
    .gemm1 = zrk_qu8s8_gemm_ukernel_1x16c4__avx512vnni,
    .gemm_small = zrk_qu8s8_gemm_ukernel_4x16c4__avx512vnni,
    .gemm_small_mr = 4,
    .gemm_wide = zrk_qu8s8_gemm_ukernel_8x32c4__avx512vnni,
    .gemm_short_wide = zrk_qu8s8_gemm_ukernel_7x64c4__avx512vnni,
    .quantize_rows = zrk_f32_quantize_rows__avx512,
    .add_layernorm = zrk_f32_add_layernorm__avx512,
    .softmax = zrk_f32_softmax__avx512,
    .gelu = zrk_f32_gelu__avx512,
    .dot = zrk_f32_dot__avx2,
    .axpy = zrk_f32_axpy__avx2,
    .attention = zrk_f32_attention__avx512,
    .dot_rows = zrk_qs8_dot_rows__avx2,
    .dot2_rows = zrk_qs8_dot2_rows__avx2,
    .embed_add = zrk_f16_embed_add__avx512,
};
#endif

#if defined(__aarch64__)
static const struct zrk_kernel_config zrk_config_neon = {
    .isa = ZRK_ISA_NEON,
    .name = "neon",
    .gemm_mr = 1,
    .gemm_a_int16 = 0,
    .gemm = zrk_qu8s8_gemm_ukernel_1x16c4__neon,
    .quantize_rows = zrk_f32_quantize_rows__scalar,
    .add_layernorm = zrk_f32_add_layernorm__scalar,
    .softmax = zrk_f32_softmax__scalar,
    .gelu = zrk_f32_gelu__scalar,
    .dot = zrk_f32_dot__scalar,
    .axpy = zrk_f32_axpy__scalar,
    .attention = zrk_f32_attention__scalar,
    .dot_rows = zrk_qs8_dot_rows__scalar,
    .dot2_rows = zrk_qs8_dot2_rows__scalar,
    .embed_add = zrk_f16_embed_add__scalar,
};
#endif

const struct zrk_kernel_config* zrk_kernel_config_for(int32_t isa) {
    if (!zrk_cpu_supports(isa)) {
        return NULL;
    }
    switch (isa) {
        case ZRK_ISA_SCALAR:
            return &zrk_config_scalar;
#if defined(__x86_64__) || defined(__i386__)
        case ZRK_ISA_AVX2:
            return &zrk_config_avx2;
        case ZRK_ISA_AVX512VNNI:
            return &zrk_config_avx512vnni;
#endif
#if defined(__aarch64__)
        case ZRK_ISA_NEON:
            return &zrk_config_neon;
#endif
        default:
            return NULL;
    }
}

static pthread_once_t zrk_config_once = PTHREAD_ONCE_INIT;
static const struct zrk_kernel_config* zrk_config_chosen = NULL;

static void zrk_config_init(void) {
#if defined(__aarch64__)
    const char* arm_env = getenv("ZRANK_ISA");
    zrk_config_chosen = (arm_env != NULL && strcmp(arm_env, "scalar") == 0) ? &zrk_config_scalar : &zrk_config_neon;
    return;
#endif
    int32_t cap = ZRK_ISA_AVX512VNNI;
    const char* env = getenv("ZRANK_ISA");
    if (env != NULL) {
        if (strcmp(env, "scalar") == 0) {
            cap = ZRK_ISA_SCALAR;
        } else if (strcmp(env, "avx2") == 0) {
            cap = ZRK_ISA_AVX2;
        }
    }
    for (int32_t isa = cap; isa >= ZRK_ISA_SCALAR; isa--) {
        const struct zrk_kernel_config* config = zrk_kernel_config_for(isa);
        if (config != NULL) {
            zrk_config_chosen = config;
            return;
        }
    }
    zrk_config_chosen = &zrk_config_scalar;
}

const struct zrk_kernel_config* zrk_kernel_config_get(void) {
    pthread_once(&zrk_config_once, zrk_config_init);
    return zrk_config_chosen;
}
