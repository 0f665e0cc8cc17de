// Portable scalar s8 x s8 row dot products against two vectors at once (ranking heads: one pass over the candidate
// rows scores both heads): fallback and reference.
#include "CKernels.h"

void zrk_qs8_dot2_rows__scalar(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q0,
    const int8_t* q1, int32_t* out0, int32_t* out1) {
    for (size_t r = 0; r < rows; r++) {
        const int8_t* v = base + (index != NULL ? (size_t)index[r] : r) * row_stride;
        int32_t acc0 = 0, acc1 = 0;
        for (size_t i = 0; i < dim; i++) {
            acc0 += (int32_t)v[i] * (int32_t)q0[i];
            acc1 += (int32_t)v[i] * (int32_t)q1[i];
        }
        out0[r] = acc0;
        out1[r] = acc1;
    }
}
