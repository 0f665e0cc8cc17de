// Row-parallel drivers for the per-row fp32 kernels (quantisation and LayerNorm), chunks of rows per task.
#include "CKernels.h"

#define ZRK_ROWS_PER_TASK 16

struct zrk_quantize_task {
    const struct zrk_kernel_config* config;
    size_t m, k, kp;
    const float* x;
    size_t x_stride;
    uint8_t* q;
    size_t q_stride;
    float* scale;
    int32_t* zero;
};

static void zrk_quantize_task_run(void* ctx, size_t index, size_t thread) {
    (void)thread;
    const struct zrk_quantize_task* t = (const struct zrk_quantize_task*)ctx;
    const size_t r0 = index * ZRK_ROWS_PER_TASK;
    const size_t rows = t->m - r0 < ZRK_ROWS_PER_TASK ? t->m - r0 : ZRK_ROWS_PER_TASK;
    t->config->quantize_rows(
        rows, t->k, t->kp, t->x + r0 * t->x_stride, t->x_stride, t->q + r0 * t->q_stride, t->q_stride, t->scale + r0,
        t->zero + r0);
}

void zrk_quantize_rows_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t k, size_t kp,
    const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale, int32_t* zero) {
    struct zrk_quantize_task task = {config, m, k, kp, x, x_stride, q, q_stride, scale, zero};
    zrk_threadpool_run(pool, (m + ZRK_ROWS_PER_TASK - 1) / ZRK_ROWS_PER_TASK, zrk_quantize_task_run, &task);
}

struct zrk_layernorm_task {
    const struct zrk_kernel_config* config;
    size_t m, n;
    const float* x;
    size_t x_stride;
    const float* r;
    size_t r_stride;
    const float* gamma;
    const float* beta;
    float eps;
    float* y;
    size_t y_stride;
};

static void zrk_layernorm_task_run(void* ctx, size_t index, size_t thread) {
    (void)thread;
    const struct zrk_layernorm_task* t = (const struct zrk_layernorm_task*)ctx;
    const size_t r0 = index * ZRK_ROWS_PER_TASK;
    const size_t rows = t->m - r0 < ZRK_ROWS_PER_TASK ? t->m - r0 : ZRK_ROWS_PER_TASK;
    t->config->add_layernorm(
        rows, t->n, t->x + r0 * t->x_stride, t->x_stride, t->r != NULL ? t->r + r0 * t->r_stride : NULL, t->r_stride,
        t->gamma, t->beta, t->eps, t->y + r0 * t->y_stride, t->y_stride);
}

void zrk_add_layernorm_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t n, const float* x,
    size_t x_stride, const float* r, size_t r_stride, const float* gamma, const float* beta, float eps, float* y,
    size_t y_stride) {
    struct zrk_layernorm_task task = {config, m, n, x, x_stride, r, r_stride, gamma, beta, eps, y, y_stride};
    zrk_threadpool_run(pool, (m + ZRK_ROWS_PER_TASK - 1) / ZRK_ROWS_PER_TASK, zrk_layernorm_task_run, &task);
}
