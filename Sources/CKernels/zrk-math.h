// Internal scalar math shared by the reference kernels.
#ifndef ZRK_MATH_H
#define ZRK_MATH_H

#include <math.h>

/// Exact-form GELU, as BERT's "gelu": 0.5 x (1 + erf(x / sqrt(2))).
static inline float zrk_gelu_ref(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

#endif
