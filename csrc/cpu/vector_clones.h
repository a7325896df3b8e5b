// Loops over contiguous memory (the memory-bound ops) compiled twice, for AVX-512 and for the
// baseline x86-64 the library is built for, the CPU picking one when the library loads (GCC's
// target_clones, an ifunc). Put it on a small function with internal linkage whose body is an
// always-inline template, and the template's loops are vectorised 16 floats wide where the CPU
// allows. Unlike a file built with -mavx512f, nothing shared with the rest of the library is
// compiled for AVX-512: only the clone's own body.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define CONVNET_VECTOR_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define CONVNET_VECTOR_CLONES
#endif
#define CONVNET_ALWAYS_INLINE __attribute__((always_inline)) inline

namespace convnet {
// Whether this CPU runs the loops of the files built with -mavx512f (*_avx512.cpp).
inline bool cpu_has_avx512f() {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return avx512;
}
// ... and those built with -mbmi2 as well (dropout_avx512.cpp).
inline bool cpu_has_avx512f_bmi2() {
    static const bool both = cpu_has_avx512f() && __builtin_cpu_supports("bmi2");
    return both;
}
}  // namespace convnet
