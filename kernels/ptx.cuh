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
// The emulated device computes each mma.sync from the whole warp's fragments, which it gathers
// with one warp exchange, reading each element from the lane and register where the PTX ISA's
// fragment tables put it (groupID g = lane / 4, threadID_in_group t = lane % 4), and gives this
// lane its four accumulators. Products are
// exact and the sums are taken in double, a tensor core's best case; the inputs are read as the
// hardware reads them (TF32: the top 19 bits of the register; BF16: two halves, the lower k in the
// low half).
namespace emu_mma {
struct Fragments {
    std::uint32_t a[4], b[2];
};
inline float tf32(std::uint32_t bits) { return __uint_as_float(bits & 0xffffe000u); }
inline float bf16(std::uint32_t bits, int half) {
    return __uint_as_float(half ? bits & 0xffff0000u : bits << 16);
}
inline unsigned lane() {
    return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
}
// This lane's accumulators c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1) += A * B,
// with A's rows and B's columns given as functions of (row or column, k).
template <int K, typename ARow, typename BCol>
inline void accumulate(ARow a, BCol b, float& c0, float& c1, float& c2, float& c3) {
    const unsigned g = lane() / 4, t = lane() % 4;
    float* c[4] = {&c0, &c1, &c2, &c3};
    for (int i = 0; i < 4; ++i) {
        const unsigned row = g + 8 * (i / 2), col = 2 * t + i % 2;
        double sum = *c[i];
        for (int k = 0; k < K; ++k) sum += double(a(row, k)) * double(b(k, col));
        *c[i] = float(sum);
    }
}
// Every lane's A and B registers, once the whole warp has arrived (Fragments of lane l at
// `of(all, l)`).
inline const void* gather(const std::uint32_t (&a)[4], const std::uint32_t (&b)[2],
                          const char* what) {
    ::convnet::emu::require_compute_capability(8, 0, what);
    const Fragments mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
    return ::convnet::emu::warp_exchange(0xffffffffu, &mine, sizeof mine, what);
}
inline const Fragments& of(const void* all, unsigned lane) {
    return *reinterpret_cast<const Fragments*>(static_cast<const unsigned char*>(all) +
                                               lane * ::convnet::emu::kWarpPayloadBytes);
}
}  // namespace emu_mma

// m16n8k8, .tf32: A (16x8) a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4);
// B (8x8) b0 (t, g), b1 (t+4, g).
__device__ __forceinline__ void mma_tf32(float& c0, float& c1, float& c2, float& c3,
                                         const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    const void* all = emu_mma::gather(a, b, "mma.sync.m16n8k8.tf32");
    // Element (row, k) of A is held by lane 4 * (row % 8) + k % 4 in register 2 * (k / 4) +
    // row / 8; element (k, col) of B by lane 4 * col + k % 4 in register k / 4.
    emu_mma::accumulate<8>(
        [&](unsigned row, unsigned k) {
            return emu_mma::tf32(emu_mma::of(all, 4 * (row % 8) + k % 4).a[2 * (k / 4) + row / 8]);
        },
        [&](unsigned k, unsigned col) {
            return emu_mma::tf32(emu_mma::of(all, 4 * col + k % 4).b[k / 4]);
        },
        c0, c1, c2, c3);
}

// m16n8k16, .bf16 (two per register, the lower k in the low half): A (16x16) a0 (g, 2t..2t+1),
// a1 (g+8, 2t..2t+1), a2 (g, 2t+8..2t+9), a3 (g+8, 2t+8..2t+9); B (16x8) b0 (2t..2t+1, g),
// b1 (2t+8..2t+9, g).
__device__ __forceinline__ void mma_bf16(float& c0, float& c1, float& c2, float& c3,
                                         const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    const void* all = emu_mma::gather(a, b, "mma.sync.m16n8k16.bf16");
    // Element (row, k) of A is half k % 2 of lane 4 * (row % 8) + (k % 8) / 2, register
    // 2 * (k / 8) + row / 8; element (k, col) of B is half k % 2 of lane 4 * col + (k % 8) / 2,
    // register k / 8.
    emu_mma::accumulate<16>(
        [&](unsigned row, unsigned k) {
            return emu_mma::bf16(
                emu_mma::of(all, 4 * (row % 8) + (k % 8) / 2).a[2 * (k / 8) + row / 8], k % 2);
        },
        [&](unsigned k, unsigned col) {
            return emu_mma::bf16(emu_mma::of(all, 4 * col + (k % 8) / 2).b[k / 8], k % 2);
        },
        c0, c1, c2, c3);
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
