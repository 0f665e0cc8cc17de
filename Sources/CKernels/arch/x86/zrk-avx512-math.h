// Vector math for the AVX-512 kernels (internal). Compiled only inside functions with ZRK_AVX512_TARGET.
#ifndef ZRK_AVX512_MATH_H
#define ZRK_AVX512_MATH_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "zrk-gelu-table.h"

#define ZRK_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

/// Exact-form GELU 0.5 x (1 + erf(x / sqrt 2)), written as max(x, 0) - R(|x|) with R(z) = z * erfc(z / sqrt 2) / 2,
/// and R a piecewise degree-4 polynomial over 32 intervals of |x| of width 1/4 (zrk-gelu-table.h, from
/// scripts/gelu-table.py; error < 1e-7 against the double-precision GELU). vrangeps takes min(|x|, clamp) in one
/// instruction; the interval index comes from one fused multiply-add onto 1.5 * 2^23, whose low mantissa bits are
/// then round(4 |x|); vreduceps gives the offset from the interval's centre, |x| - round(4 |x|) / 4, exactly, with
/// the same round-to-nearest-even; vpermt2ps picks each power's coefficient for all 16 lanes from a 32-entry table
/// in two registers. 14 operations for 16 values: the rational erf it replaces took 22, one of them vrcp14ps.
static inline ZRK_AVX512_TARGET __m512 zrk_avx512_gelu(__m512 x) {
    // vrangeps imm 0x0A: the smaller absolute value, sign cleared.
    const __m512 z = _mm512_range_ps(x, _mm512_set1_ps(ZRK_GELU_CLAMP), 0x0A);
    // Rounded to nearest even whatever the MXCSR says, like vreduceps below: the index and the offset must agree.
    const __m512i k = _mm512_castps_si512(_mm512_fmadd_round_ps(
        z, _mm512_set1_ps(ZRK_GELU_INV_WIDTH), _mm512_set1_ps(12582912.0f),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // vreduceps imm: fraction bits kept in [7:4], round to nearest even, precision exception suppressed.
    const __m512 t = _mm512_reduce_ps(z, (ZRK_GELU_FRACTION_BITS << 4) | _MM_FROUND_NO_EXC);
#define ZRK_GELU_COEF(d) \
    _mm512_permutex2var_ps(_mm512_load_ps(zrk_gelu_table[d]), k, _mm512_load_ps(zrk_gelu_table[d] + 16))
    __m512 p = ZRK_GELU_COEF(4);
    p = _mm512_fmadd_ps(p, t, ZRK_GELU_COEF(3));
    p = _mm512_fmadd_ps(p, t, ZRK_GELU_COEF(2));
    p = _mm512_fmadd_ps(p, t, ZRK_GELU_COEF(1));
    p = _mm512_fmadd_ps(p, t, ZRK_GELU_COEF(0));
#undef ZRK_GELU_COEF
    return _mm512_sub_ps(_mm512_max_ps(x, _mm512_setzero_ps()), p);
}

/// exp(x): the same range reduction and polynomial as zrk_avx2_exp (relative error ~2 ulp for x in [-87, 88], 0
/// below), 16 lanes at a time.
static inline ZRK_AVX512_TARGET __m512 zrk_avx512_exp(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.3762626647949f));
    const __m512 n = _mm512_roundscale_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i pow2n = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~underflow, p, _mm512_castsi512_ps(pow2n));
}

/// Mask of the first n (0..16) lanes.
static inline __mmask16 zrk_avx512_tail_mask(size_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

#endif
#endif
