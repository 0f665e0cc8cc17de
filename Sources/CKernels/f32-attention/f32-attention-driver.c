// Multi-head self-attention over a ragged batch (no padding), heads shared out across a thread pool.
#include "CKernels.h"

// K^T ([d][lp]) and up to eight rows of probabilities ([8][lp]), lp = l rounded up to 8: the AVX-512 kernel's need,
// which covers the AVX2 kernel's four rows and the scalar kernel's one; at least the AVX-512 kernel's Q^T ([d][16])
// and P^T ([16][16]) for sequences of up to 16 tokens.
size_t zrk_attention_scratch_floats(size_t l, size_t d) {
    const size_t general = (d + 8) * ((l + 7) & ~(size_t)7);
    const size_t short_path = 16 * (d + 16);
    return general > short_path ? general : short_path;
}

struct zrk_attention_task {
    const struct zrk_kernel_config* config;
    const size_t* offsets;
    const size_t* lengths;
    size_t heads, d, hidden;
    const float* qkv;
    float scale;
    float* out;
    float* scratch;
    size_t scratch_per_thread;
};

static void zrk_attention_task_run(void* ctx, size_t index, size_t thread) {
    const struct zrk_attention_task* t = (const struct zrk_attention_task*)ctx;
    const size_t s = index / t->heads;
    const size_t h = index % t->heads;
    const size_t stride = 3 * t->hidden;
    const float* base = t->qkv + t->offsets[s] * stride;
    t->config->attention(
        t->lengths[s], t->d, base + h * t->d, base + t->hidden + h * t->d, base + 2 * t->hidden + h * t->d, stride,
        t->scale, t->out + t->offsets[s] * t->hidden + h * t->d, t->hidden, t->scratch + thread * t->scratch_per_thread);
}

void zrk_attention_ragged(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t sequences, const size_t* offsets,
    const size_t* lengths, size_t heads, size_t d, const float* qkv, float scale, float* out, float* scratch,
    size_t scratch_per_thread) {
    struct zrk_attention_task task = {
        config, offsets, lengths, heads, d, heads * d, qkv, scale, out, scratch, scratch_per_thread,
    };
    zrk_threadpool_run(pool, sequences * heads, zrk_attention_task_run, &task);
}
