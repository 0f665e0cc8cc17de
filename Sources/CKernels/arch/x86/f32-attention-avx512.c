// Single-head self-attention, AVX-512. Sequences of up to 16 tokens take their own path (scores computed transposed,
// softmax across registers: zrk_f32_attention_short__avx512). Longer ones take the AVX2 kernel's scheme (K transposed
// once per call into scratch, eight or four queries at a time) with 16 lanes, so a 32-wide head's context row is two
// registers. Tails are masked; zrk_attention_scratch_floats covers both paths' scratch.
#if defined(__x86_64__) || defined(__i386__)
#include <math.h>
#include <string.h>

#include "CKernels.h"
#include "zrk-avx512-math.h"

ZRK_AVX512_TARGET void zrk_f32_softmax__avx512(size_t n, float* x) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(n - i);
        vmax = _mm512_mask_max_ps(vmax, mask, vmax, _mm512_maskz_loadu_ps(mask, x + i));
    }
    const __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(n - i);
        const __m512 e = _mm512_maskz_mov_ps(mask, zrk_avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), vmx)));
        _mm512_mask_storeu_ps(x + i, mask, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    const __m512 vinv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), vinv));
    }
}

/// Transposes a 16 x 16 block held as 16 rows in place: row c of the result is column c of the input. Pairs of rows
/// interleave (unpack), then pairs of pairs (shuffle_ps), then 128-bit lanes twice (shuffle_f32x4).
static inline __attribute__((always_inline)) ZRK_AVX512_TARGET void zrk_avx512_transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (size_t i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (size_t i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // u[4g + m], lane L: rows 4g..4g+3 of column 4L + m.
    for (size_t h = 0; h < 2; h++) {
        for (size_t m = 0; m < 4; m++) {
            const __m512 a = u[8 * h + m], b = u[8 * h + 4 + m];
            t[8 * h + m] = _mm512_shuffle_f32x4(a, b, 0x88);      // columns m and 8 + m, rows 8h..8h+7
            t[8 * h + 4 + m] = _mm512_shuffle_f32x4(a, b, 0xDD);  // columns 4 + m and 12 + m
        }
    }
    for (size_t m = 0; m < 8; m++) {
        r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xDD);
    }
}

/// Queries [i0, i0 + rows) of one head, R at a time (R = 4 or 8): each column chunk of K^T and each row of V loaded
/// feeds R independent FMA chains, and R chains are what keeps the FMA units busy rather than waiting on latency.
static inline __attribute__((always_inline)) ZRK_AVX512_TARGET void zrk_attention_queries_avx512(
    const size_t R, size_t i0, size_t rows, size_t l, size_t lp, size_t d, const float* q, const float* kt,
    const float* v, size_t stride, float* p, float* out, size_t out_stride) {
    const float* qr[8];
    float* pr[8];
    for (size_t r = 0; r < R; r++) {
        qr[r] = q + (i0 + (r < rows ? r : 0)) * stride;  // rows past the end repeat the first (not stored)
        pr[r] = p + r * lp;
    }
    for (size_t j = 0; j < lp; j += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(lp - j);
        __m512 acc[8];
        for (size_t r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        for (size_t c = 0; c < d; c++) {
            const __m512 kv = _mm512_maskz_loadu_ps(mask, kt + c * lp + j);
            for (size_t r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(qr[r][c]), kv, acc[r]);
        }
        for (size_t r = 0; r < R; r++) _mm512_mask_storeu_ps(pr[r] + j, mask, acc[r]);
    }
    for (size_t r = 0; r < rows; r++) {
        zrk_f32_softmax__avx512(l, pr[r]);
    }
    for (size_t r = rows; r < R; r++) {
        pr[r] = pr[0];  // not stored
    }
    for (size_t c = 0; c < d; c += 16) {
        const __mmask16 mask = zrk_avx512_tail_mask(d - c);
        __m512 acc[8];
        for (size_t r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        for (size_t j = 0; j < l; j++) {
            const __m512 vv = _mm512_maskz_loadu_ps(mask, v + j * stride + c);
            for (size_t r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(pr[r][j]), vv, acc[r]);
        }
        for (size_t r = 0; r < rows; r++) {
            _mm512_mask_storeu_ps(out + (i0 + r) * out_stride + c, mask, acc[r]);
        }
    }
}

/// Up to 16 queries' probabilities times V: out[i] = sum over j < l of pt[16 j + i] V[j], R queries at a time (the
/// lanes of pt past l hold finite values that are never stored).
static inline __attribute__((always_inline)) ZRK_AVX512_TARGET void zrk_attention_short_pv(
    const size_t R, size_t i0, size_t rows, size_t l, size_t d, const float* pt, const float* v, size_t stride,
    float* out, size_t out_stride) {
    for (size_t c0 = 0; c0 < d; c0 += 16) {
        const __mmask16 dims = zrk_avx512_tail_mask(d - c0);
        __m512 acc[8];
        for (size_t r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        for (size_t j = 0; j < l; j++) {
            const __m512 vv = _mm512_maskz_loadu_ps(dims, v + j * stride + c0);
            const float* pj = pt + j * 16 + i0;
            for (size_t r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(pj[r]), vv, acc[r]);
        }
        for (size_t r = 0; r < rows; r++) {
            _mm512_mask_storeu_ps(out + (i0 + r) * out_stride + c0, dims, acc[r]);
        }
    }
}

/// Scores of J keys (J = 4, 8, 12 or 16; keys from l on are masked out) for all queries at once, as S^T: one
/// register per key, a lane per query. Each FMA broadcasts K[j][c] against row c of Q^T.
static inline __attribute__((always_inline)) ZRK_AVX512_TARGET void zrk_attention_short_scores(
    const size_t J, size_t l, size_t d, const float* qt, const float* k, size_t stride, float* pt) {
    const float* krow[16];
    for (size_t j = 0; j < J; j++) krow[j] = k + (j < l ? j : 0) * stride;  // keys past l repeat key 0, masked below
    __m512 s[16];
    for (size_t j = 0; j < J; j++) s[j] = _mm512_setzero_ps();
    for (size_t c = 0; c < d; c++) {
        const __m512 qc = _mm512_loadu_ps(qt + c * 16);
        for (size_t j = 0; j < J; j++) s[j] = _mm512_fmadd_ps(_mm512_set1_ps(krow[j][c]), qc, s[j]);
    }
    for (size_t j = 1; j < J; j++) {
        if (j >= l) s[j] = _mm512_set1_ps(-INFINITY);
    }
    // Softmax over the keys: lane-wise across the registers, so no horizontal reductions.
    __m512 m[16];
    for (size_t j = 0; j < J; j++) m[j] = s[j];
    for (size_t w = 1; w < J; w *= 2) {
        for (size_t j = 0; j + w < J; j += 2 * w) m[j] = _mm512_max_ps(m[j], m[j + w]);
    }
    for (size_t j = 0; j < J; j++) s[j] = zrk_avx512_exp(_mm512_sub_ps(s[j], m[0]));
    for (size_t j = 0; j < J; j++) m[j] = s[j];
    for (size_t w = 1; w < J; w *= 2) {
        for (size_t j = 0; j + w < J; j += 2 * w) m[j] = _mm512_add_ps(m[j], m[j + w]);
    }
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), m[0]);
    for (size_t j = 0; j < J && j < l; j++) _mm512_storeu_ps(pt + j * 16, _mm512_mul_ps(s[j], inv));
}

/// A sequence of at most 16 tokens: Q^T goes to scratch (scaled, lanes past l zero), the scores come out already
/// transposed (a register per key, a lane per query), softmax runs across registers with no horizontal reduction,
/// and P^T feeds the weighted sum of V.
static ZRK_AVX512_TARGET void zrk_f32_attention_short__avx512(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch) {
    float* qt = scratch;           // [d][16]
    float* pt = scratch + 16 * d;  // [16][16]: pt[16 j + i], probability of key j for query i
    const __m512 vscale = _mm512_set1_ps(scale);
    for (size_t c0 = 0; c0 < d; c0 += 16) {
        const __mmask16 dims = zrk_avx512_tail_mask(d - c0);
        __m512 rows[16];
        for (size_t i = 0; i < 16; i++) {
            rows[i] = i < l ? _mm512_mul_ps(_mm512_maskz_loadu_ps(dims, q + i * stride + c0), vscale)
                            : _mm512_setzero_ps();
        }
        zrk_avx512_transpose16(rows);
        for (size_t c = 0; c < 16 && c0 + c < d; c++) {
            _mm512_storeu_ps(qt + (c0 + c) * 16, rows[c]);
        }
    }
    switch ((l + 3) / 4) {
        case 1: zrk_attention_short_scores(4, l, d, qt, k, stride, pt); break;
        case 2: zrk_attention_short_scores(8, l, d, qt, k, stride, pt); break;
        case 3: zrk_attention_short_scores(12, l, d, qt, k, stride, pt); break;
        default: zrk_attention_short_scores(16, l, d, qt, k, stride, pt); break;
    }
    for (size_t i0 = 0; i0 < l; i0 += 8) {
        const size_t rows = l - i0 < 8 ? l - i0 : 8;
        if (rows > 4) {
            zrk_attention_short_pv(8, i0, rows, l, d, pt, v, stride, out, out_stride);
        } else {
            zrk_attention_short_pv(4, i0, rows, l, d, pt, v, stride, out, out_stride);
        }
    }
}

ZRK_AVX512_TARGET void zrk_f32_attention__avx512(
    size_t l, size_t d, const float* q, const float* k, const float* v, size_t stride, float scale, float* out,
    size_t out_stride, float* scratch) {
    if (l == 0) {
        return;
    }
    if (l <= 16) {
        zrk_f32_attention_short__avx512(l, d, q, k, v, stride, scale, out, out_stride, scratch);
        return;
    }
    const size_t lp = (l + 7) & ~(size_t)7;
    float* kt = scratch;          // [d][lp]
    float* p = scratch + d * lp;  // [8][lp]: the probabilities of up to eight queries
    // K^T, scaled: blocks of 16 keys x 16 dimensions go through registers (a 16 x 16 transpose in 64 shuffles)
    // rather than 256 scalar stores each. Keys past l load as zeros, so each K^T row's padding up to lp is written
    // as zeros too.
    const __m512 vscale = _mm512_set1_ps(scale);
    for (size_t j0 = 0; j0 < l; j0 += 16) {
        const __mmask16 keys = zrk_avx512_tail_mask(lp - j0);
        for (size_t c0 = 0; c0 < d; c0 += 16) {
            const __mmask16 dims = zrk_avx512_tail_mask(d - c0);
            __m512 rows[16];
            for (size_t j = 0; j < 16; j++) {
                rows[j] = j0 + j < l ? _mm512_mul_ps(_mm512_maskz_loadu_ps(dims, k + (j0 + j) * stride + c0), vscale)
                                     : _mm512_setzero_ps();
            }
            zrk_avx512_transpose16(rows);
            for (size_t c = 0; c < 16 && c0 + c < d; c++) {
                _mm512_mask_storeu_ps(kt + (c0 + c) * lp + j0, keys, rows[c]);
            }
        }
    }
    // Eight queries at a time while at least five are left, then four.
    for (size_t i0 = 0; i0 < l;) {
        const size_t left = l - i0;
        if (left > 4) {
            const size_t rows = left < 8 ? left : 8;
            zrk_attention_queries_avx512(8, i0, rows, l, lp, d, q, kt, v, stride, p, out, out_stride);
            i0 += rows;
        } else {
            zrk_attention_queries_avx512(4, i0, left, l, lp, d, q, kt, v, stride, p, out, out_stride);
            i0 += left;
        }
    }
}
#endif
