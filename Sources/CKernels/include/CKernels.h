// zrank kernels: int8 GEMM micro-kernels and fp32 vector kernels with runtime CPU dispatch.
//
// Naming follows XNNPACK: `zrk_<datatype>_<op>_ukernel_<MR>x<NR>c<KR>__<isa>`.
// Every family has a portable scalar version that is both the fallback and the reference the fast ones are
// tested against. The dispatch table is filled once (`zrk_kernel_config_get`) and handed out whole, so the packed
// weight layout and the kernel that reads it never disagree.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Packed int8 weights (qu8s8 GEMM: u8 activations x s8 weights, int32 accumulation)
//
// Weights W[K][N] (s8, per-output-channel scale) are packed in blocks of ZRK_NR = 16 output columns.
// K is padded to Kp = round_up(K, ZRK_KR), N to Np = round_up(N, ZRK_NR); padding weights are zero.
// One block (64-byte aligned when the panel base is):
//   int32 colsum[16]   sum over k of W[k][n]     (zero-point compensation)
//   float scale[16]    per-column weight scale
//   float bias[16]     per-column bias
//   int8  w[Kp/4][16][4]  w[kq][j][r] = W[4*kq + r][16*nb + j]
// so block bytes = 192 + 16 * Kp.

#define ZRK_NR 16
#define ZRK_KR 4
#define ZRK_BLOCK_HEADER_BYTES 192
/// The largest K the GEMMs take: int32 accumulators of u8 x s8 stay exact below 65,793, and the AVX-512 VNNI
/// epilogue splits colsum / 128 (|colsum| <= 128 K) into int16.
#define ZRK_MAX_K 32767

/// Bytes of one packed 16-column block for a K of `k` (padded internally).
size_t zrk_qu8s8_packed_block_bytes(size_t k);
/// Bytes of a whole packed panel for K x N.
size_t zrk_qu8s8_packed_bytes(size_t k, size_t n);
/// Packs row-major `w` (K x N, s8, row stride `w_stride` elements), per-column `scale` and `bias` (may be NULL
/// for zero) into `packed` (zrk_qu8s8_packed_bytes(k, n) bytes).
void zrk_qu8s8_pack_weights(
    size_t k, size_t n, const int8_t* w, size_t w_stride, const float* scale, const float* bias, void* packed);

/// Activation epilogue applied after dequantisation.
enum zrk_activation {
    ZRK_ACTIVATION_NONE = 0,
    ZRK_ACTIVATION_GELU = 1,  // exact GELU: 0.5 x (1 + erf(x / sqrt 2))
};

/// Per-call parameters of a qu8s8 GEMM micro-kernel.
///
/// With `raw_int32` set the kernel writes the raw accumulators sum_k A[m][k] * W[k][n] as int32 to `c`
/// (used by the bit-exact tests); otherwise it writes fp32
///   c[m][n] = act(a_scale[m] * scale[n] * (acc - a_zero[m] * colsum[n]) + bias[n]).
struct zrk_qgemm_params {
    const float* a_scale;   // per row of A, indexed from the tile's first row
    const int32_t* a_zero;  // per row of A, in [0, 255] (the u8 zero point quantize_rows gives)
    int32_t activation;     // enum zrk_activation
    int32_t raw_int32;
};

/// Micro-kernel: `mr` (<= MR) rows of A times `nc` (<= 16) columns of one packed block.
/// `a` points at the tile's first row; rows are `a_stride` bytes apart and hold at least Kp readable bytes
/// (the AVX2 kernel takes A widened to int16; its `a_stride` is then in bytes of the int16 rows).
/// `kc` is the padded K (multiple of 4). `c` is row-major with `c_stride` bytes between rows.
typedef void (*zrk_qgemm_ukernel_fn)(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);

void zrk_qu8s8_gemm_ukernel_1x16c4__scalar(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
void zrk_qu8s8_gemm_ukernel_4x16c4__avx2(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
void zrk_qu8s8_gemm_ukernel_1x16c4__avx2(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
void zrk_qu8s8_gemm_ukernel_8x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
void zrk_qu8s8_gemm_ukernel_4x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
void zrk_qu8s8_gemm_ukernel_1x16c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
/// Two adjacent blocks at once (17 <= nc <= 32 columns): `w_block` is the first; the second follows it.
void zrk_qu8s8_gemm_ukernel_8x32c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);
/// Short tiles (1 <= mr <= 7) across four adjacent blocks (49 <= nc <= 64 columns): `w_block` is the first block.
void zrk_qu8s8_gemm_ukernel_7x64c4__avx512vnni(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);

void zrk_qu8s8_gemm_ukernel_1x16c4__neon(
    size_t mr, size_t nc, size_t kc, const void* a, size_t a_stride, const void* w_block, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);

/// Widens u8 rows to int16 rows (the AVX2 kernel's A format): `m` rows of `kc` bytes.
void zrk_u8_widen_rows(size_t m, size_t kc, const uint8_t* a, size_t a_stride, int16_t* out, size_t out_stride);

// MARK: - fp32 vector kernels

/// Per-row asymmetric u8 quantisation: for each of `m` rows of `k` floats, range [min(0, x), max(0, x)] maps to
/// [0, 255]; writes `kp` bytes per row (positions k..kp-1 are set to the zero point), the scale and zero point.
typedef void (*zrk_quantize_rows_fn)(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero);
/// y = LayerNorm(x + r) * gamma + beta over rows of n; `r` may be NULL. y may alias x.
typedef void (*zrk_add_layernorm_fn)(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride);
/// In-place numerically stable softmax of one row of n floats.
typedef void (*zrk_softmax_fn)(size_t n, float* x);
/// In-place exact-form GELU of n floats.
typedef void (*zrk_gelu_fn)(size_t n, float* x);
/// Dot product of n floats.
typedef float (*zrk_dot_fn)(size_t n, const float* a, const float* b);
/// y[i] += alpha * x[i] for n floats.
typedef void (*zrk_axpy_fn)(size_t n, float alpha, const float* x, float* y);
/// Self-attention of one head over one unpadded sequence of `l` tokens: out[i] = softmax(scale * q_i . K^T) V.
/// Rows of q, k and v are `stride` floats apart (the fused QKV layout); `scratch` holds
/// zrk_attention_scratch_floats(l, d) floats.
typedef void (*zrk_attention_fn)(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch);

/// s8 x s8 dot products of `rows` catalog rows with one query: out[r] = sum_i row[i] * q[i], where row r is
/// `base + (index ? index[r] : r) * row_stride` (exact int32).
typedef void (*zrk_qs8_dot_rows_fn)(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q,
    int32_t* out);

/// The same against two vectors in one pass over the rows: out0[r] = row . q0, out1[r] = row . q1.
typedef void (*zrk_qs8_dot2_rows_fn)(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q0,
    const int8_t* q1, int32_t* out0, int32_t* out1);

/// Asks for the cache line holding `p` ahead of its use (a hint: never faults, whatever `p` is). For Swift code
/// that walks scattered memory in passes, such as the item id lookup of a request's candidates. A `static inline`
/// on purpose, unlike `zrk_attention_scratch_floats` below: a call per prefetch would cost more than the hint, and
/// this one line has nothing to go stale.
static inline void zrk_prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

/// Scratch floats one attention call needs for a sequence of `l` tokens and head size `d`. A function, not a
/// `static inline` in this header: a change to it then rebuilds with the kernels, where an inline copy compiled into
/// the Swift callers went stale in incremental builds.
size_t zrk_attention_scratch_floats(size_t l, size_t d);

void zrk_f32_quantize_rows__scalar(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero);
void zrk_f32_quantize_rows__avx2(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero);
void zrk_f32_add_layernorm__scalar(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride);
void zrk_f32_add_layernorm__avx2(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride);
void zrk_f32_softmax__scalar(size_t n, float* x);
void zrk_f32_softmax__avx2(size_t n, float* x);
void zrk_f32_gelu__scalar(size_t n, float* x);
void zrk_f32_gelu__avx2(size_t n, float* x);
void zrk_f32_quantize_rows__avx512(
    size_t m, size_t k, size_t kp, const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale,
    int32_t* zero);
void zrk_f32_add_layernorm__avx512(
    size_t m, size_t n, const float* x, size_t x_stride, const float* r, size_t r_stride, const float* gamma,
    const float* beta, float eps, float* y, size_t y_stride);
void zrk_f32_gelu__avx512(size_t n, float* x);
void zrk_f32_softmax__avx512(size_t n, float* x);
void zrk_f32_attention__avx512(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch);
float zrk_f32_dot__scalar(size_t n, const float* a, const float* b);
float zrk_f32_dot__avx2(size_t n, const float* a, const float* b);
void zrk_f32_axpy__scalar(size_t n, float alpha, const float* x, float* y);
void zrk_f32_axpy__avx2(size_t n, float alpha, const float* x, float* y);
void zrk_qs8_dot_rows__scalar(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q,
    int32_t* out);
void zrk_qs8_dot_rows__avx2(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q,
    int32_t* out);
void zrk_qs8_dot2_rows__scalar(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q0,
    const int8_t* q1, int32_t* out0, int32_t* out1);
void zrk_qs8_dot2_rows__avx2(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q0,
    const int8_t* q1, int32_t* out0, int32_t* out1);
void zrk_f32_attention__scalar(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch);
void zrk_f32_attention__avx2(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch);

// MARK: - Dispatch

enum zrk_isa {
    ZRK_ISA_SCALAR = 0,
    ZRK_ISA_AVX2 = 1,
    ZRK_ISA_AVX512VNNI = 2,
    ZRK_ISA_NEON = 3,  // AArch64 baseline
};

/// One embedding row: out[j] = float(word[j]) + position[j] + type[j] for n values, `word` in IEEE binary16 bits
/// (the conversion is exact, the two additions in that order, so every variant equals the scalar one bit for bit).
typedef void (*zrk_f16_embed_add_fn)(size_t n, const uint16_t* word, const float* position, const float* type, float* out);
void zrk_f16_embed_add__scalar(size_t n, const uint16_t* word, const float* position, const float* type, float* out);
void zrk_f16_embed_add__avx512(size_t n, const uint16_t* word, const float* position, const float* type, float* out);

/// The whole kernel set chosen for one CPU.
struct zrk_kernel_config {
    int32_t isa;                    // enum zrk_isa
    const char* name;               // e.g. "avx2"
    uint32_t gemm_mr;               // rows per micro-kernel call
    uint32_t gemm_a_int16;          // 1: the GEMM kernel takes A widened to int16 (see zrk_u8_widen_rows)
    zrk_qgemm_ukernel_fn gemm;
    zrk_qgemm_ukernel_fn gemm1;     // single-row kernel for M = 1 and one-row tails (NULL: use gemm)
    zrk_qgemm_ukernel_fn gemm_small; // kernel for tiles shorter than gemm_mr, up to gemm_small_mr rows (NULL: none)
    uint32_t gemm_small_mr;
    zrk_qgemm_ukernel_fn gemm_wide; // full tiles of gemm_mr rows over two adjacent blocks, 17..32 columns (NULL: none)
    zrk_qgemm_ukernel_fn gemm_short_wide; // tiles of 1..gemm_mr-1 rows over four adjacent blocks, 49..64 columns
                                          // (NULL: none)
    zrk_quantize_rows_fn quantize_rows;
    zrk_add_layernorm_fn add_layernorm;
    zrk_softmax_fn softmax;
    zrk_gelu_fn gelu;
    zrk_dot_fn dot;
    zrk_axpy_fn axpy;
    zrk_attention_fn attention;
    zrk_qs8_dot_rows_fn dot_rows;
    zrk_qs8_dot2_rows_fn dot2_rows;
    zrk_f16_embed_add_fn embed_add;
};

/// Returns 1 when this CPU (and OS) supports `isa`.
int zrk_cpu_supports(int32_t isa);
/// The best configuration for this CPU, detected once; the environment variable ZRANK_ISA=scalar|avx2|avx512vnni
/// caps the choice on x86 (an unsupported request falls back to the best supported below it); ZRANK_ISA=scalar
/// selects the reference kernels on AArch64 too.
const struct zrk_kernel_config* zrk_kernel_config_get(void);
/// The configuration for one ISA (NULL when this CPU lacks it). Used by tests and benchmarks.
const struct zrk_kernel_config* zrk_kernel_config_for(int32_t isa);

/// Whole GEMM: C[M][N] (fp32 or raw int32) = A[M][Kp] x packed W, looping over 16-column blocks and MR-row tiles.
/// `a` is u8 rows (`a_stride` bytes); when the config wants int16 A, `a16` must hold a scratch of M * Kp int16
/// (else it may be NULL). `params->a_scale`/`a_zero` point at row 0.
void zrk_qgemm(
    const struct zrk_kernel_config* config, size_t m, size_t n, size_t k, const uint8_t* a, size_t a_stride,
    int16_t* a16, const void* packed_w, void* c, size_t c_stride, const struct zrk_qgemm_params* params);

// MARK: - Intra-op threads

/// A persistent pool of threads; the caller of zrk_threadpool_run takes part.
struct zrk_threadpool;
/// One task of a parallel region: `index` in [0, count), `thread` in [0, threads).
typedef void (*zrk_task_fn)(void* ctx, size_t index, size_t thread);
/// A pool of `threads` threads in all (the caller included; 1 = run inline).
struct zrk_threadpool* zrk_threadpool_create(size_t threads);
void zrk_threadpool_destroy(struct zrk_threadpool* pool);
size_t zrk_threadpool_threads(const struct zrk_threadpool* pool);
/// Runs fn for every index in [0, count) across the pool's threads and returns when all are done.
/// Not reentrant: one region at a time per pool.
void zrk_threadpool_run(struct zrk_threadpool* pool, size_t count, zrk_task_fn fn, void* ctx);

/// zrk_qgemm with the 16-column blocks shared out across `pool` (NULL or 1 thread = zrk_qgemm).
void zrk_qgemm_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t n, size_t k,
    const uint8_t* a, size_t a_stride, int16_t* a16, const void* packed_w, void* c, size_t c_stride,
    const struct zrk_qgemm_params* params);

/// The config's quantize_rows over chunks of rows across `pool`.
void zrk_quantize_rows_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t k, size_t kp,
    const float* x, size_t x_stride, uint8_t* q, size_t q_stride, float* scale, int32_t* zero);
/// The config's add_layernorm over chunks of rows across `pool`.
void zrk_add_layernorm_parallel(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t m, size_t n, const float* x,
    size_t x_stride, const float* r, size_t r_stride, const float* gamma, const float* beta, float eps, float* y,
    size_t y_stride);

/// Self-attention of every head of every sequence of a ragged batch: sequence s holds rows
/// [offsets[s], offsets[s] + lengths[s]) of the fused QKV matrix (rows of 3 * heads * d floats); context rows go to
/// `out` (heads * d floats each). `scratch` holds threads * scratch_per_thread floats, scratch_per_thread >=
/// zrk_attention_scratch_floats(longest, d).
void zrk_attention_ragged(
    const struct zrk_kernel_config* config, struct zrk_threadpool* pool, size_t sequences, const size_t* offsets,
    const size_t* lengths, size_t heads, size_t d, const float* qkv, float scale, float* out, float* scratch,
    size_t scratch_per_thread);

#ifdef __cplusplus
}
#endif

#endif  // CKERNELS_H
