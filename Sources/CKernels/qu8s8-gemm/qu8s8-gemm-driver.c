// The whole-GEMM loop over packed 16-column blocks and MR-row tiles.
//
// Within a chunk of rows, blocks are the outer loop: a block (16 x Kp bytes, 6 KiB for K = 384) stays in L1 while every
// full row tile of A passes over it. With a short-tile kernel over four blocks (AVX-512 VNNI), the rows after the last
// full tile (all of a query-sized GEMM) then take a pass of their own over the blocks, four at a time.
#include <assert.h>

#include "CKernels.h"

#define ZRK_GEMM_MC 64

/// One tile of `rows` rows (from row m0) against one 16-column block (nc columns, starting at column nb * ZRK_NR).
static void zrk_qgemm_tile(
    const struct zrk_kernel_config* config, size_t rows, size_t m0, size_t nb, size_t nc, size_t kp, const void* a_rows,
    size_t a_rows_stride, const void* block, void* c, size_t c_stride, const struct zrk_qgemm_params* tile) {
    const size_t mr = config->gemm_mr;
    const size_t c_elem = sizeof(float);  // int32 and float are both 4 bytes
    if (config->gemm_small != NULL && rows < mr) {
        // Short tiles (a query's tokens, a tail): the small-tile kernel, up to gemm_small_mr rows a call,
        // with independent accumulator chains enough to keep the unit busy on so few rows.
        // A tile of one or two rows: the single-row kernel per row (measured as fast or slightly faster);
        // the rows left after a 4-row call go to the small kernel too (measured faster).
        const size_t smr = config->gemm_small_mr;
        const int single = config->gemm1 != NULL && rows <= 2;
        for (size_t r = 0; r < rows;) {
            const size_t left = rows - r;
            const size_t part_rows = single ? 1 : (left < smr ? left : smr);
            struct zrk_qgemm_params part = *tile;
            if (!tile->raw_int32) {
                part.a_scale = tile->a_scale + r;
                part.a_zero = tile->a_zero + r;
            }
            (single ? config->gemm1 : config->gemm_small)(
                part_rows, nc, kp, (const uint8_t*)a_rows + (m0 + r) * a_rows_stride, a_rows_stride, block,
                (uint8_t*)c + (m0 + r) * c_stride + nb * ZRK_NR * c_elem, c_stride, &part);
            r += part_rows;
        }
        return;
    }
    if (config->gemm1 != NULL && rows == 1) {
        // A one-row tile: the single-row kernel (two k-quads a step, more chains in flight than the tile kernel's
        // one-row case).
        config->gemm1(
            1, nc, kp, (const uint8_t*)a_rows + m0 * a_rows_stride, a_rows_stride, block,
            (uint8_t*)c + m0 * c_stride + nb * ZRK_NR * c_elem, c_stride, tile);
        return;
    }
    config->gemm(
        rows, nc, kp, (const uint8_t*)a_rows + m0 * a_rows_stride, a_rows_stride, block,
        (uint8_t*)c + m0 * c_stride + nb * ZRK_NR * c_elem, c_stride, tile);
}

/// Runs the blocks [nb_begin, nb_end) of a GEMM whose A is already in the kernel's format.
static void zrk_qgemm_blocks(
    const struct zrk_kernel_config* config, size_t m, size_t n, size_t kp, size_t nb_begin, size_t nb_end,
    const void* a_rows, size_t a_rows_stride, const void* packed_w, size_t block_bytes, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    const size_t mr = config->gemm_mr;
    const size_t c_elem = sizeof(float);  // int32 and float are both 4 bytes
    // Rows of A are taken ZRK_GEMM_MC at a time so that chunk of A stays in L2 while every block passes over it.
    for (size_t mc0 = 0; mc0 < m; mc0 += ZRK_GEMM_MC) {
        const size_t mc_end = m - mc0 < ZRK_GEMM_MC ? m : mc0 + ZRK_GEMM_MC;
        // With a short-tile kernel over four blocks, the rows after the last full tile (all of a query-sized GEMM)
        // take their own pass below; the full tiles keep the loop here.
        const size_t short_rows = config->gemm_short_wide != NULL ? (mc_end - mc0) % mr : 0;
        const size_t full_end = mc_end - short_rows;
        for (size_t nb = nb_begin; nb < nb_end && full_end > mc0;) {
            // Two adjacent blocks at a time when the config has a wide kernel: full tiles take both in one call.
            const size_t width = config->gemm_wide != NULL && nb + 1 < nb_end ? 2 : 1;
            const void* block = (const uint8_t*)packed_w + nb * block_bytes;
            const size_t left = n - nb * ZRK_NR;
            const size_t nc = left < width * ZRK_NR ? left : width * ZRK_NR;
            for (size_t m0 = mc0; m0 < full_end; m0 += mr) {
                const size_t rows = full_end - m0 < mr ? full_end - m0 : mr;
                struct zrk_qgemm_params tile = *params;
                if (!params->raw_int32) {
                    tile.a_scale = params->a_scale + m0;
                    tile.a_zero = params->a_zero + m0;
                }
                if (width == 2 && rows == mr) {
                    config->gemm_wide(
                        rows, nc, kp, (const uint8_t*)a_rows + m0 * a_rows_stride, a_rows_stride, block,
                        (uint8_t*)c + m0 * c_stride + nb * ZRK_NR * c_elem, c_stride, &tile);
                    continue;
                }
                zrk_qgemm_tile(
                    config, rows, m0, nb, nc < ZRK_NR ? nc : ZRK_NR, kp, a_rows, a_rows_stride, block, c, c_stride,
                    &tile);
                if (width == 2) {
                    zrk_qgemm_tile(
                        config, rows, m0, nb + 1, nc - ZRK_NR, kp, a_rows, a_rows_stride,
                        (const uint8_t*)block + block_bytes, c, c_stride, &tile);
                }
            }
            nb += width;
        }
        if (short_rows == 0) continue;
        struct zrk_qgemm_params tile = *params;
        if (!params->raw_int32) {
            tile.a_scale = params->a_scale + full_end;
            tile.a_zero = params->a_zero + full_end;
        }
        for (size_t nb = nb_begin; nb < nb_end;) {
            const size_t left = n - nb * ZRK_NR;
            if (nb + 4 <= nb_end) {
                config->gemm_short_wide(
                    short_rows, left < 4 * ZRK_NR ? left : 4 * ZRK_NR, kp,
                    (const uint8_t*)a_rows + full_end * a_rows_stride, a_rows_stride,
                    (const uint8_t*)packed_w + nb * block_bytes, (uint8_t*)c + full_end * c_stride + nb * ZRK_NR * c_elem,
                    c_stride, &tile);
                nb += 4;
            } else {
                zrk_qgemm_tile(
                    config, short_rows, full_end, nb, left < ZRK_NR ? left : ZRK_NR, kp, a_rows, a_rows_stride,
                    (const uint8_t*)packed_w + nb * block_bytes, c, c_stride, &tile);
                nb += 1;
            }
        }
    }
}

/// Prepares A in the kernel's format (widened to int16 when the kernel wants it).
static const void* zrk_qgemm_prepare_a(
    const struct zrk_kernel_config* config, size_t m, size_t kp, const uint8_t* a, size_t a_stride, int16_t* a16,
    size_t* rows_stride) {
    if (config->gemm_a_int16) {
        assert(a16 != NULL);
        zrk_u8_widen_rows(m, kp, a, a_stride, a16, kp * sizeof(int16_t));
        *rows_stride = kp * sizeof(int16_t);
        return a16;
    }
    *rows_stride = a_stride;
    return a;
}

void zrk_qgemm(
    const struct zrk_kernel_config* config, size_t m, size_t n, size_t k, const uint8_t* a, size_t a_stride,
    int16_t* a16, const void* packed_w, void* c, size_t c_stride, const struct zrk_qgemm_params* params) {
    const size_t kp = (k + ZRK_KR - 1) / ZRK_KR * ZRK_KR;
    size_t rows_stride = 0;
    const void* rows = zrk_qgemm_prepare_a(config, m, kp, a, a_stride, a16, &rows_stride);
    zrk_qgemm_blocks(
        config, m, n, kp, 0, (n + ZRK_NR - 1) / ZRK_NR, rows, rows_stride, packed_w, zrk_qu8s8_packed_block_bytes(k),
        c, c_stride, params);
}

struct zrk_qgemm_task {
    const struct zrk_kernel_config* config;
    size_t m, n, kp, blocks, per_task;
    const void* rows;
    size_t rows_stride;
    const void* packed_w;
    size_t block_bytes;
    void* c;
    size_t c_stride;
    const struct zrk_qgemm_params* params;
};

static void zrk_qgemm_task_run(void* ctx, size_t index, size_t thread) {
    (void)thread;
    const struct zrk_qgemm_task* t = (const struct zrk_qgemm_task*)ctx;
    const size_t begin = index * t->per_task;
    const size_t end = begin + t->per_task < t->blocks ? begin + t->per_task : t->blocks;
    zrk_qgemm_blocks(
        t->config, t->m, t->n, t->kp, begin, end, t->rows, t->rows_stride, t->packed_w, t->block_bytes, t->c,
        t->c_stride, t->params);
}

void zrk_qgemm_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t n, size_t k,
    const uint8_t* a, size_t a_stride, int16_t* a16, const void* packed_w, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params) {
    const size_t threads = zrk_threadpool_threads(pool);
    const size_t blocks = (n + ZRK_NR - 1) / ZRK_NR;
    if (threads <= 1 || blocks < 2) {
        zrk_qgemm(config, m, n, k, a, a_stride, a16, packed_w, c, c_stride, params);
        return;
    }
    const size_t kp = (k + ZRK_KR - 1) / ZRK_KR * ZRK_KR;
    struct zrk_qgemm_task task;
    task.config = config;
    task.m = m;
    task.n = n;
    task.kp = kp;
    task.blocks = blocks;
    // A few tasks per thread balances uneven progress without much scheduling.
    const size_t tasks = blocks < threads * 4 ? blocks : threads * 4;
    task.per_task = (blocks + tasks - 1) / tasks;
    if (config->gemm_short_wide != NULL && m % config->gemm_mr != 0) {
        // Rows short of a full tile (all of a query-sized GEMM): whole groups of four blocks per task, for the
        // short-tile kernel over four blocks.
        task.per_task = (task.per_task + 3) / 4 * 4;
    }
    task.rows = zrk_qgemm_prepare_a(config, m, kp, a, a_stride, a16, &task.rows_stride);
    task.packed_w = packed_w;
    task.block_bytes = zrk_qu8s8_packed_block_bytes(k);
    task.c = c;
    task.c_stride = c_stride;
    task.params = params;
    zrk_threadpool_run(pool, (blocks + task.per_task - 1) / task.per_task, zrk_qgemm_task_run, &task);
}
