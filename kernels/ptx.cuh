// The only inline PTX of the kernels, each in a small device function: TF32 rounding and the
// two tensor-core mma.sync shapes the GEMM uses (kernels/gemm.cuh). Keeping them here, and only
// here, lets a build without a GPU substitute their bodies without touching any kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace convnet::gemm {

// x rounded to TF32 (10-bit mantissa, to nearest with ties away from zero), as the tensor cores
// read it; a no-op before sm_80, which has no TF32.
__device__ __forceinline__ float round_tf32(float x) {
#if defined(CONVNET_CUDA_EMULATED)
    // cvt.rna: add half of the dropped 13 bits to the magnitude, then drop them (inf/NaN kept).
    std::uint32_t u = __float_as_uint(x);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    return __uint_as_float(u);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    std::uint32_t u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
    return __uint_as_float(u);
#else
    return x;
#endif
}

#if defined(CONVNET_CUDA_EMULATED)
// The emulated device does not run the tensor-core shapes yet.
__device__ __forceinline__ void mma_tf32(float&, float&, float&, float&, const std::uint32_t (&)[4],
                                         const std::uint32_t (&)[2]) {
    ::convnet::emu::unsupported("mma.sync m16n8k8 tf32");
}
__device__ __forceinline__ void mma_bf16(float&, float&, float&, float&, const std::uint32_t (&)[4],
                                         const std::uint32_t (&)[2]) {
    ::convnet::emu::unsupported("mma.sync m16n8k16 bf16");
}
// The mma.sync shapes exist from sm_80 on (the host pass sees the declarations only).
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// D += A * B on a 16 x 8 tile; acc registers c0..c3 as in the PTX fragment layout.
__device__ __forceinline__ void mma_tf32(float& c0, float& c1, float& c2, float& c3,
                                         const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void mma_bf16(float& c0, float& c1, float& c2, float& c3,
                                         const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

}  // namespace convnet::gemm
