// exp for loops the vectoriser turns into SIMD: with glibc's vector maths library (libmvec,
// linked where CMake finds it: CONVNET_HAVE_LIBMVEC), a loop marked `omp simd` calls its 4-, 8-
// or 16-wide versions (_ZGVeN16v_expf on AVX-512), as glibc's math.h arranges under -ffast-math;
// without it, the scalar exp. libmvec's results are within 4 ulp of the correctly rounded ones.
#pragma once

#include <cmath>

#if defined(CONVNET_HAVE_LIBMVEC)
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) double exp(double);
}
#endif

namespace convnet::vector_math {
inline float exp(float x) { return ::expf(x); }
inline double exp(double x) { return ::exp(x); }
}  // namespace convnet::vector_math
