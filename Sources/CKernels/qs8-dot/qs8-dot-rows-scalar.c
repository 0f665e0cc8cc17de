// Portable scalar s8 x s8 row dot products (catalog scoring): fallback and reference.
#include "CKernels.h"

void zrk_qs8_dot_rows__scalar(
    size_t rows, size_t dim, const int8_t* base, size_t row_stride, const uint32_t* index, const int8_t* q,
    int32_t* out) {
    for (size_t r = 0; r < rows; r++) {
        const int8_t* v = base + (index != NULL ? (size_t)index[r] : r) * row_stride;
        int32_t acc = 0;
        for (size_t i = 0; i < dim; i++) {
            acc += (int32_t)v[i] * (int32_t)q[i];
        }
        out[r] = acc;
    }
}
