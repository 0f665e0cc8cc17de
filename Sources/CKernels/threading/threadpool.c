// A small persistent thread pool for intra-op parallelism (GEMM column blocks, attention heads).
//
// The caller thread takes part in every run. Workers spin briefly on the run generation before sleeping on a
// condition variable: waking an idle vCPU costs tens of microseconds, while the encoder issues a parallel region
// every few hundred microseconds, so a short spin usually catches the next one.
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "CKernels.h"

#define ZRK_SPIN_ITERATIONS 20000

struct zrk_threadpool {
    size_t threads;  // including the caller
    pthread_t* handles;
    pthread_mutex_t mutex;
    pthread_cond_t start;
    pthread_cond_t done;
    atomic_uint_fast64_t generation;
    atomic_size_t next;
    atomic_size_t active;
    size_t count;
    zrk_task_fn fn;
    void* ctx;
    int stopping;
};

struct zrk_worker_arg {
    struct zrk_threadpool* pool;
    size_t thread;
};

static void zrk_drain(struct zrk_threadpool* pool, size_t thread) {
    for (;;) {
        const size_t i = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (i >= pool->count) {
            break;
        }
        pool->fn(pool->ctx, i, thread);
    }
}

static void* zrk_worker_main(void* p) {
    struct zrk_worker_arg arg = *(struct zrk_worker_arg*)p;
    free(p);
    struct zrk_threadpool* pool = arg.pool;
    uint_fast64_t seen = 0;
    for (;;) {
        uint_fast64_t gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int spin = 0; gen == seen && spin < ZRK_SPIN_ITERATIONS; spin++) {
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mutex);
            while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen && !pool->stopping) {
                pthread_cond_wait(&pool->start, &pool->mutex);
            }
            pthread_mutex_unlock(&pool->mutex);
        }
        if (pool->stopping) {
            return NULL;
        }
        seen = gen;
        zrk_drain(pool, arg.thread);
        if (atomic_fetch_sub_explicit(&pool->active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
}

struct zrk_threadpool* zrk_threadpool_create(size_t threads) {
    if (threads < 1) {
        threads = 1;
    }
    struct zrk_threadpool* pool = calloc(1, sizeof(*pool));
    pool->threads = threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->start, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->next, 0);
    atomic_init(&pool->active, 0);
    pool->handles = calloc(threads, sizeof(pthread_t));
    for (size_t t = 1; t < threads; t++) {
        struct zrk_worker_arg* arg = malloc(sizeof(*arg));
        arg->pool = pool;
        arg->thread = t;
        pthread_create(&pool->handles[t], NULL, zrk_worker_main, arg);
    }
    return pool;
}

void zrk_threadpool_destroy(struct zrk_threadpool* pool) {
    if (pool == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->mutex);
    for (size_t t = 1; t < pool->threads; t++) {
        pthread_join(pool->handles[t], NULL);
    }
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->handles);
    free(pool);
}

size_t zrk_threadpool_threads(const struct zrk_threadpool* pool) { return pool != NULL ? pool->threads : 1; }

void zrk_threadpool_run(struct zrk_threadpool* pool, size_t count, zrk_task_fn fn, void* ctx) {
    if (pool == NULL || pool->threads == 1 || count <= 1) {
        for (size_t i = 0; i < count; i++) {
            fn(ctx, i, 0);
        }
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->count = count;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->active, pool->threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->mutex);
    zrk_drain(pool, 0);
    // Wait for the workers: spin first, then sleep.
    for (int spin = 0; atomic_load_explicit(&pool->active, memory_order_acquire) != 0 && spin < ZRK_SPIN_ITERATIONS; spin++) {
    }
    if (atomic_load_explicit(&pool->active, memory_order_acquire) != 0) {
        pthread_mutex_lock(&pool->mutex);
        while (atomic_load_explicit(&pool->active, memory_order_acquire) != 0) {
            pthread_cond_wait(&pool->done, &pool->mutex);
        }
        pthread_mutex_unlock(&pool->mutex);
    }
}
