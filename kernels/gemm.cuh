// The one matrix-product engine behind fc, conv (all three directions) and their tensor-core paths:
// a tiled GEMM C = op(A) * op(B) (+ bias, + beta*C) whose operand tiles come from "problem"
// classes, so a convolution gathers its image tile straight into shared memory (implicit GEMM, no
// im2col in global memory) and a plain matrix reads strided rows (fc's transposes).
//
// Block: 256 threads, a 128 x 128 tile of C, K in steps of 16. Each step every thread loads 8
// values of A and 8 of B into registers (the next step's, while the current one is computed:
// register double buffering, one __syncthreads per step, two shared-memory stages), then stores
// them to shared memory k-major: s[k][m] with a row stride of 136 words (= 8 mod 32, so the
// tensor-core fragment reads below are conflict-free, and 16-byte aligned for float4 reads); tf32
// stages also XOR-swizzle columns per k (stage_word) so the k-major stores are conflict-free.
//   fp32: each thread owns an 8x8 block of C (rows ty*4+{0..3} and +64, columns tx*4+{0..3} and
//         +64; warps laid out 4x8 so a float4 read serves 4 or 8 threads): per k, 4 LDS.128 feed
//         64 FFMA. 2 * 128 * 128 * 16 flops per 2 * 128 * 16 * 4 bytes loaded: 32 flops/byte.
//   tf32: the values are rounded to TF32 once, when stored; warps tile C 2 x 4, 64 x 32 each,
//         mma.sync m16n8k8 (4 x 4 per 8 k, 24 LDS.32 per 16 mma).
//   bf16: pairs along k are packed to bf16x2 when stored (s[k/2][m]), so every fragment register
//         is one LDS.32; mma.sync m16n8k16, same warp tiling (24 LDS.32 per 16 mma of k16).
// Tensor-core paths need sm_80+; on older GPUs the host runs fp32 instead (effective_precision),
// and their kernels compile to a trap there so the sm_75 build stays small.
//
// Loading assignments (which 8 values a thread loads per step), chosen per operand for coalescing:
//   k-major  (contiguous along k):   rows tid/4 and tid/4 + 64, k = 4*(tid%4) + {0..3}
//   mn-major (contiguous along rows): k = 2*(tid/32) + {0,1}, rows 4*(tid%32) + {0..3}
// A problem class P supplies: int M, N (sizes of C per blockIdx.z slice); a nested Loader built
// as Loader(p, m0, n0, z, tid) with members k_begin, k_end, a_kmajor, b_kmajor and
// load_a(k0, Frag&), load_b(k0, Frag&) that zero-fill rows and k outside the problem; a nested
// Output built as Output(p, z) with ptr, beta, row_offset(m), col_offset(n), bias_row(m),
// bias_col(n): element (m, n) goes to ptr[row_offset(m) + col_offset(n)].
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "kernels/common.cuh"
#include "kernels/ptx.cuh"
#include "ops/precision.h"

// sm_75 has no TF32/BF16 mma and 64 KB of shared memory per SM: one 35 KB block per SM, so the
// kernel may use more than the 128 registers two blocks would leave it (no spills there).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define CONVNET_GEMM_HAS_MMA 0
#define CONVNET_GEMM_MIN_BLOCKS 1
#else
#define CONVNET_GEMM_HAS_MMA 1
#define CONVNET_GEMM_MIN_BLOCKS 2
#endif

namespace convnet::gemm {

constexpr int kBM = 128, kBN = 128, kBK = 16, kThreads = 256;
constexpr int kLd = kBM + 8;            // shared-memory row stride in 32-bit words
constexpr int kTileWords = kBK * kLd;   // one operand tile of one stage (fp32 layout)

// Word of element (k-row, m) in a stage. tf32 stages XOR the column with 8*((k/4)%4), so the
// k-major stores (a thread's 4 consecutive k of one row; 8 rows per warp) hit 32 distinct banks
// instead of 8, and the fragment reads (k = 8s + tig: one k/4 per instruction) stay
// conflict-free; the swizzle moves aligned groups of 8 words. fp32 stages are not swizzled: the
// CUDA-core step is bound by its FFMAs, not by shared memory, and the swizzled float4 reads would
// cost it registers (spills). bf16 stages (rows of k pairs) are not either: their k-major stores
// conflict only 2-way.
template <MathPrecision P>
__device__ __forceinline__ int stage_word(int k, int m) {
    if constexpr (P == MathPrecision::tf32) return k * kLd + (m ^ ((k << 1) & 24));
    return k * kLd + m;
}
static_assert(kBM == kBN && kBM == 128 && kBK == 16 && kThreads == 256,
              "the load assignments and warp layouts below are written for these sizes");

// The 8 values a thread loads per step: v[i][j], meaning depends on the assignment (see above).
struct Frag {
    float v[2][4];
};

__device__ __forceinline__ int km_row(int tid, int i) { return (tid >> 2) + 64 * i; }
__device__ __forceinline__ int km_k(int tid) { return (tid & 3) * 4; }
__device__ __forceinline__ int mn_k(int tid) { return (tid >> 5) * 2; }
__device__ __forceinline__ int mn_row(int tid) { return (tid & 31) * 4; }

// An operand that is a strided matrix: element (row, k) at ptr[row*s_row + k*s_k]. Either
// assignment is correct for any strides; kmajor (s_k == 1) or mn-major (s_row == 1) coalesces.
// vec: 16-byte loads along the unit stride are legal (aligned base, other stride a multiple of 4).
struct MatrixOperand {
    const float* ptr;
    int rows, s_row, s_k;
    bool kmajor, vec;
};

// Per-thread state of a MatrixOperand tile load.
struct MatrixTile {
    const float* ptr;
    int rows, s_row, s_k, row0;
    bool kmajor, vec;

    __device__ void init(const MatrixOperand& op, int block_row0, int tid) {
        ptr = op.ptr, rows = op.rows, s_row = op.s_row, s_k = op.s_k, kmajor = op.kmajor;
        vec = op.vec;
        row0 = block_row0 + (kmajor ? (tid >> 2) : mn_row(tid));
    }

    __device__ __forceinline__ void load(int k0, int k_end, Frag& f, int tid) const {
        if (kmajor) {
            const int k = k0 + km_k(tid);
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int row = row0 + 64 * i;
                if (row >= rows) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) f.v[i][j] = 0.f;
                    continue;
                }
                const float* src = ptr + std::int64_t(row) * s_row + std::int64_t(k) * s_k;
                if (vec && k + 3 < k_end) {
                    const float4 q = __ldg(reinterpret_cast<const float4*>(src));
                    f.v[i][0] = q.x, f.v[i][1] = q.y, f.v[i][2] = q.z, f.v[i][3] = q.w;
                } else {
#pragma unroll
                    for (int j = 0; j < 4; ++j)
                        f.v[i][j] = k + j < k_end ? __ldg(src + std::int64_t(j) * s_k) : 0.f;
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int k = k0 + mn_k(tid) + i;
                if (k >= k_end) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) f.v[i][j] = 0.f;
                    continue;
                }
                const float* src = ptr + std::int64_t(row0) * s_row + std::int64_t(k) * s_k;
                if (vec && row0 + 3 < rows) {
                    const float4 q = __ldg(reinterpret_cast<const float4*>(src));
                    f.v[i][0] = q.x, f.v[i][1] = q.y, f.v[i][2] = q.z, f.v[i][3] = q.w;
                } else {
#pragma unroll
                    for (int j = 0; j < 4; ++j)
                        f.v[i][j] = row0 + j < rows ? __ldg(src + std::int64_t(j) * s_row) : 0.f;
                }
            }
        }
    }
};

// ---- shared-memory stores and the three step computations ---------------------------------------

// What a stage holds for an fp32/tf32 operand value.
template <MathPrecision P>
__device__ __forceinline__ float staged(float x) {
    if constexpr (P == MathPrecision::tf32) return round_tf32(x);
    return x;
}

// bf16x2 with `lo` in the low half (the lower k index, as the mma fragments expect).
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&h);
}

template <MathPrecision P>
__device__ __forceinline__ void store_tile(float* s, const Frag& f, bool kmajor, int tid) {
    if constexpr (P == MathPrecision::bf16) {
        std::uint32_t* s2 = reinterpret_cast<std::uint32_t*>(s);  // [k/2][kLd]
        if (kmajor) {
            const int kp = km_k(tid) / 2;
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int row = km_row(tid, i);
                s2[stage_word<P>(kp, row)] = pack_bf16(f.v[i][0], f.v[i][1]);
                s2[stage_word<P>(kp + 1, row)] = pack_bf16(f.v[i][2], f.v[i][3]);
            }
        } else {
            const int kp = mn_k(tid) / 2, row = mn_row(tid);
            uint4 q;
            q.x = pack_bf16(f.v[0][0], f.v[1][0]);
            q.y = pack_bf16(f.v[0][1], f.v[1][1]);
            q.z = pack_bf16(f.v[0][2], f.v[1][2]);
            q.w = pack_bf16(f.v[0][3], f.v[1][3]);
            *reinterpret_cast<uint4*>(s2 + stage_word<P>(kp, row)) = q;
        }
    } else {
        if (kmajor) {
            const int k = km_k(tid);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    s[stage_word<P>(k + j, km_row(tid, i))] = staged<P>(f.v[i][j]);
        } else {
            const int k = mn_k(tid), row = mn_row(tid);
#pragma unroll
            for (int i = 0; i < 2; ++i)
                *reinterpret_cast<float4*>(s + stage_word<P>(k + i, row)) =
                    make_float4(staged<P>(f.v[i][0]), staged<P>(f.v[i][1]),
                                staged<P>(f.v[i][2]), staged<P>(f.v[i][3]));
        }
    }
}

// Which tile-local rows and columns accumulator acc[i][j] of this thread holds.
template <MathPrecision P>
struct ThreadLayout {
    int r0, c0;  // fp32: ty*4, tx*4; tensor cores: warp origin + lane offset
    __device__ explicit ThreadLayout(int tid) {
        const int warp = tid >> 5, lane = tid & 31;
        if constexpr (P == MathPrecision::fp32) {
            r0 = ((warp >> 1) * 4 + (lane >> 3)) * 4;  // ty = 4*(warp/2) + lane/8, 0..15
            c0 = ((warp & 1) * 8 + (lane & 7)) * 4;    // tx = 8*(warp%2) + lane%8, 0..15
        } else {
            r0 = (warp & 1) * 64 + (lane >> 2);       // warp row * 64 + groupID
            c0 = (warp >> 1) * 32 + (lane & 3) * 2;   // warp column * 32 + 2 * thread-in-group
        }
    }
    __device__ int row(int i) const {
        if constexpr (P == MathPrecision::fp32) return r0 + (i & 3) + (i >> 2) * 64;
        return r0 + (i >> 1) * 16 + (i & 1) * 8;
    }
    __device__ int col(int j) const {
        if constexpr (P == MathPrecision::fp32) return c0 + (j & 3) + (j >> 2) * 64;
        return c0 + (j >> 1) * 8 + (j & 1);
    }
};

__device__ __forceinline__ void step_fp32(const float* sa, const float* sb, float (&acc)[8][8],
                                          const ThreadLayout<MathPrecision::fp32>& t) {
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
        float a[8], b[8];
        constexpr auto kFp32 = MathPrecision::fp32;
        const float4 a0 = *reinterpret_cast<const float4*>(sa + stage_word<kFp32>(k, t.r0));
        const float4 a1 = *reinterpret_cast<const float4*>(sa + stage_word<kFp32>(k, t.r0 + 64));
        const float4 b0 = *reinterpret_cast<const float4*>(sb + stage_word<kFp32>(k, t.c0));
        const float4 b1 = *reinterpret_cast<const float4*>(sb + stage_word<kFp32>(k, t.c0 + 64));
        a[0] = a0.x, a[1] = a0.y, a[2] = a0.z, a[3] = a0.w;
        a[4] = a1.x, a[5] = a1.y, a[6] = a1.z, a[7] = a1.w;
        b[0] = b0.x, b[1] = b0.y, b[2] = b0.z, b[3] = b0.w;
        b[4] = b1.x, b[5] = b1.y, b[6] = b1.z, b[7] = b1.w;
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

#if CONVNET_GEMM_HAS_MMA
// Tensor-core step. Fragment element (row, k) of A sits at stage_word(k-row, row) (for bf16 the
// k-row is a pair of k); lane = 4*groupID + threadID_in_group. With k-row = 8s + dk + tig
// (tig < 4) the swizzle is the constant sw = stage_word's for 8s + dk, and it only flips bits 3-4
// of the row, which hold the compile-time part (mi*16 + 8e, or ni*8) of the fragment's row: so
// every fragment address is a per-thread base plus an immediate.
template <MathPrecision P>
__device__ __forceinline__ void step_mma(const float* sa, const float* sb, float (&acc)[8][8],
                                         int tid) {
    const std::uint32_t* a_words = reinterpret_cast<const std::uint32_t*>(sa);
    const std::uint32_t* b_words = reinterpret_cast<const std::uint32_t*>(sb);
    const int warp = tid >> 5, lane = tid & 31;
    const int gid = lane >> 2, tig = lane & 3;
    const int a_base = tig * kLd + (warp & 1) * 64 + gid;
    const int b_base = tig * kLd + (warp >> 1) * 32 + gid;
    // tf32: two k8 steps of rows k; bf16: one k16 step of rows k/2 (8 of them).
    constexpr int kSteps = P == MathPrecision::bf16 ? 1 : 2;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
        const int k0 = 8 * s, k4 = 8 * s + 4;  // fragment k-rows, less tig
        const int sw0 = stage_word<P>(k0, 0) - k0 * kLd, sw4 = stage_word<P>(k4, 0) - k4 * kLd;
        std::uint32_t a[4][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
            a[mi][0] = a_words[a_base + k0 * kLd + ((mi * 16) ^ sw0)];
            a[mi][1] = a_words[a_base + k0 * kLd + ((mi * 16 + 8) ^ sw0)];
            a[mi][2] = a_words[a_base + k4 * kLd + ((mi * 16) ^ sw4)];
            a[mi][3] = a_words[a_base + k4 * kLd + ((mi * 16 + 8) ^ sw4)];
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            b[ni][0] = b_words[b_base + k0 * kLd + ((ni * 8) ^ sw0)];
            b[ni][1] = b_words[b_base + k4 * kLd + ((ni * 8) ^ sw4)];
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) {
                // c0, c1: row groupID, columns 2*tig, +1; c2, c3: row groupID + 8.
                if constexpr (P == MathPrecision::bf16)
                    mma_bf16(acc[2 * mi][2 * ni], acc[2 * mi][2 * ni + 1], acc[2 * mi + 1][2 * ni],
                             acc[2 * mi + 1][2 * ni + 1], a[mi], b[ni]);
                else
                    mma_tf32(acc[2 * mi][2 * ni], acc[2 * mi][2 * ni + 1], acc[2 * mi + 1][2 * ni],
                             acc[2 * mi + 1][2 * ni + 1], a[mi], b[ni]);
            }
    }
}
#endif

// ---- the kernel -------------------------------------------------------------------------------

template <class Problem, MathPrecision P>
__device__ __forceinline__ void igemm_body(const Problem& p) {
    __shared__ __align__(16) float smem[2][2][kTileWords];  // [stage][A, B]
    const int tid = threadIdx.x;
    const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN, z = blockIdx.z;
    typename Problem::Loader ld(p, m0, n0, z, tid);
    const ThreadLayout<P> layout(tid);

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

    const int steps = ld.k_end > ld.k_begin ? (ld.k_end - ld.k_begin + kBK - 1) / kBK : 0;
    if (steps > 0) {
        Frag fa, fb;
        ld.load_a(ld.k_begin, fa);
        ld.load_b(ld.k_begin, fb);
        store_tile<P>(smem[0][0], fa, ld.a_kmajor, tid);
        store_tile<P>(smem[0][1], fb, ld.b_kmajor, tid);
        __syncthreads();
        for (int step = 0; step < steps; ++step) {
            const int cur = step & 1;
            const bool more = step + 1 < steps;
            if (more) {  // the next step's loads are in flight while this one computes
                const int k0 = ld.k_begin + (step + 1) * kBK;
                ld.load_a(k0, fa);
                ld.load_b(k0, fb);
            }
            if constexpr (P == MathPrecision::fp32) {
                step_fp32(smem[cur][0], smem[cur][1], acc, layout);
            } else {
#if CONVNET_GEMM_HAS_MMA
                step_mma<P>(smem[cur][0], smem[cur][1], acc, tid);
#endif
            }
            if (more) {  // the other stage was last read before the previous barrier
                store_tile<P>(smem[cur ^ 1][0], fa, ld.a_kmajor, tid);
                store_tile<P>(smem[cur ^ 1][1], fb, ld.b_kmajor, tid);
            }
            __syncthreads();
        }
    }

    const typename Problem::Output out(p, z);
    int col_off[8];
    float col_bias[8];
    bool col_ok[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int n = n0 + layout.col(j);
        col_ok[j] = n < p.N;
        col_off[j] = col_ok[j] ? out.col_offset(n) : 0;
        col_bias[j] = col_ok[j] ? out.bias_col(n) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int m = m0 + layout.row(i);
        if (m >= p.M) continue;
        const int row_off = out.row_offset(m);
        const float row_bias = out.bias_row(m);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            if (!col_ok[j]) continue;
            float* dst = out.ptr + row_off + col_off[j];
            const float v = acc[i][j] + row_bias + col_bias[j];
            // beta == 0 never reads the output, which may hold garbage (or NaN).
            *dst = out.beta == 0.f ? v : fmaf(out.beta, *dst, v);
        }
    }
}

template <class Problem, MathPrecision P>
__global__ void __launch_bounds__(kThreads, CONVNET_GEMM_MIN_BLOCKS) igemm_kernel(const Problem p) {
    if constexpr (P == MathPrecision::fp32 || CONVNET_GEMM_HAS_MMA)
        igemm_body<Problem, P>(p);
    else
        __trap();  // the host runs fp32 on GPUs without these tensor-core instructions
}

// ---- host side ------------------------------------------------------------------------------

struct DeviceInfo {
    int sms = 1, cc_major = 0;
};

// The current device's multiprocessor count and compute capability, queried once per device.
inline DeviceInfo device_info() {
    constexpr int kMaxDevices = 64;
    static std::atomic<int> sms[kMaxDevices], major[kMaxDevices];
    int dev = 0;
    CONVNET_CUDA_CHECK(cudaGetDevice(&dev));
    DeviceInfo info;
    if (dev < kMaxDevices && sms[dev].load() > 0) {
        info.sms = sms[dev].load(), info.cc_major = major[dev].load();
        return info;
    }
    CONVNET_CUDA_CHECK(cudaDeviceGetAttribute(&info.sms, cudaDevAttrMultiProcessorCount, dev));
    CONVNET_CUDA_CHECK(cudaDeviceGetAttribute(&info.cc_major, cudaDevAttrComputeCapabilityMajor,
                                              dev));
    if (dev < kMaxDevices) major[dev].store(info.cc_major), sms[dev].store(info.sms);
    return info;
}

// The precision that actually runs: tensor-core requests need sm_80 or newer.
inline MathPrecision effective_precision(MathPrecision requested) {
    if (requested == MathPrecision::fp32) return requested;
    return device_info().cc_major >= 8 ? requested : MathPrecision::fp32;
}

inline unsigned ceil_div(std::int64_t a, std::int64_t b) { return unsigned((a + b - 1) / b); }

// Launches the kernel for problem p on grid (N tiles, M tiles, slices).
template <class Problem>
void launch_igemm(const Problem& p, unsigned slices, MathPrecision precision,
                  cudaStream_t stream) {
    if (p.M <= 0 || p.N <= 0 || slices == 0) return;
    const dim3 grid(ceil_div(p.N, kBN), ceil_div(p.M, kBM), slices);
    CONVNET_CHECK(grid.y <= 65535 && grid.z <= 65535, "gemm: grid too large (", grid.y, ", ",
                  grid.z, ")");
    switch (effective_precision(precision)) {
        case MathPrecision::tf32:
            CONVNET_LAUNCH(grid, kThreads, 0, stream,
                           igemm_kernel<Problem, MathPrecision::tf32>)(p);
            break;
        case MathPrecision::bf16:
            CONVNET_LAUNCH(grid, kThreads, 0, stream,
                           igemm_kernel<Problem, MathPrecision::bf16>)(p);
            break;
        default:
            CONVNET_LAUNCH(grid, kThreads, 0, stream,
                           igemm_kernel<Problem, MathPrecision::fp32>)(p);
    }
    CONVNET_LAUNCH_CHECK();
}

// Split-K: how many slices of K (each a multiple of kBK long) to run a GEMM of `tiles` output
// tiles in, so that the grid fills about two blocks per multiprocessor; 1 when no split is needed.
// The slices' partial products go to a workspace and are summed in a fixed order afterwards, so
// results do not depend on scheduling.
struct SplitPlan {
    int splits = 1;
    std::int64_t chunk = 0;  // K per slice
};

inline SplitPlan plan_split_k(std::int64_t tiles, std::int64_t k, int sms,
                              std::int64_t min_chunk = 512, int max_splits = 64) {
    SplitPlan plan;
    plan.chunk = k;
    const std::int64_t target = 2LL * sms;
    if (tiles >= target || k < 2 * min_chunk) return plan;
    std::int64_t splits = (target + tiles - 1) / tiles;
    splits = std::min<std::int64_t>({splits, k / min_chunk, max_splits});
    if (splits <= 1) return plan;
    std::int64_t chunk = (k + splits - 1) / splits;
    chunk = (chunk + kBK - 1) / kBK * kBK;
    plan.chunk = chunk;
    plan.splits = int((k + chunk - 1) / chunk);
    return plan;
}

// Defined in kernels/fc.cu, shared with conv and local:
// out[m*c_sm + n*c_sn] = beta*out + bias + sum_s ws[s][m][n] (s in order; beta 0: out not read);
// bias (may be null) indexed by m when bias_rows, else by n.
void splitk_reduce_cuda(const float* ws, int splits, std::int64_t m, std::int64_t n, float* out,
                        std::int64_t c_sm, std::int64_t c_sn, const float* bias, bool bias_rows,
                        float beta, cudaStream_t stream);
// out[c] = beta*out[c] + sum_r a[r*cols + c], r in order (a is (rows, cols)).
void column_sums_cuda(const float* a, std::int64_t rows, std::int64_t cols, float* out,
                      float beta, cudaStream_t stream);

// Throws when a tensor is too large for the kernels' 32-bit element offsets.
inline void check_int32(std::int64_t elements, const char* op, const char* what) {
    CONVNET_ARG_CHECK(elements < (std::int64_t(1) << 31), op, ": ", what, " has ", elements,
                      " elements; the GPU kernels take fewer than 2^31");
}

}  // namespace convnet::gemm
