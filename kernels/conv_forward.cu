// Convolution forward on the GPU as an implicit GEMM (kernels/gemm.cuh), one GEMM per group
// (blockIdx.z): y_g (F/G x N*OH*OW) = W_g (F/G x C/G*KH*KW) * cols_g + b, where column
// n = (image, oy, ox) of cols_g is image n's patch at (oy, ox). The patch matrix is never built:
// each 128 x 16 B tile is gathered from x into shared memory as the GEMM walks K, each thread
// loading 2 k-rows (k = (c, ky, kx), decoded once per step) at 4 output positions whose image
// offset and window origin it decoded once per block. Pixels outside the image (padding, and the
// cuda-convnet rule's overhanging last windows) read as zero.
// Traffic: W is read once per column tile (L2-resident), x about KH*KW/stride^2 times through
// L1/L2 (the tile's windows overlap), y written once with the bias added in the epilogue.
// FLOPs 2*N*F*OH*OW*C/G*KH*KW; at AlexNet conv2-5 sizes there are 500-1500 blocks of 128x128.
#include "csrc/ops/conv.h"
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace convnet {

namespace {
using gemm::Frag;

constexpr int kOutside = -(1 << 29);  // a window origin no kernel offset brings into the image

struct ConvForwardProblem {
    int M, N;                    // F/G filters, N*OH*OW output positions
    int K;                       // C/G*KH*KW
    const float* x;
    const float* w;
    const float* b;
    float* y;
    int c, h, w_, f, cg, fg, ow, positions, kh, kw, sh, sw, ph, pw;
    bool w_vec;

    struct Loader {
        gemm::MatrixTile a;
        const float* x;
        int xoff[4], iy0[4], ix0[4];  // per column: image + group offset, window origin
        int h, w, hw, kw, khkw;
        int k_begin, k_end, tid;
        bool a_kmajor, b_kmajor;

        __device__ Loader(const ConvForwardProblem& p, int m0, int n0, int z, int tid_)
            : x(p.x), h(p.h), w(p.w_), hw(p.h * p.w_), kw(p.kw), khkw(p.kh * p.kw),
              k_begin(0), k_end(p.K), tid(tid_), a_kmajor(true), b_kmajor(false) {
            gemm::MatrixOperand wop{p.w + std::int64_t(z) * p.fg * p.K, p.M, p.K, 1, true,
                                    p.w_vec};
            a.init(wop, m0, tid);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int n = n0 + gemm::mn_row(tid) + j;
                if (n < p.N) {
                    const int img = n / p.positions, pos = n - img * p.positions;
                    const int oy = pos / p.ow, ox = pos - oy * p.ow;
                    xoff[j] = (img * p.c + z * p.cg) * hw;
                    iy0[j] = oy * p.sh - p.ph;
                    ix0[j] = ox * p.sw - p.pw;
                } else {
                    xoff[j] = 0, iy0[j] = kOutside, ix0[j] = kOutside;
                }
            }
        }
        __device__ void load_a(int k0, Frag& f) const { a.load(k0, k_end, f, tid); }
        __device__ void load_b(int k0, Frag& f) const {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int k = k0 + gemm::mn_k(tid) + i;
                if (k >= k_end) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) f.v[i][j] = 0.f;
                    continue;
                }
                const int ch = k / khkw, r = k - ch * khkw;
                const int ky = r / kw, kx = r - ky * kw;
                const float* xc = x + ch * hw;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int iy = iy0[j] + ky, ix = ix0[j] + kx;
                    f.v[i][j] = unsigned(iy) < unsigned(h) && unsigned(ix) < unsigned(w)
                                    ? __ldg(xc + xoff[j] + iy * w + ix)
                                    : 0.f;
                }
            }
        }
    };

    struct Output {
        float* ptr;
        const float* bias;
        float beta;
        int group_row, positions, image_stride;

        __device__ Output(const ConvForwardProblem& p, int z)
            : ptr(p.y), bias(p.b ? p.b + z * p.fg : nullptr), beta(0.f), group_row(z * p.fg),
              positions(p.positions), image_stride(p.f * p.positions) {}
        __device__ int row_offset(int m) const { return (group_row + m) * positions; }
        __device__ int col_offset(int n) const {
            const int img = n / positions;
            return img * image_stride + (n - img * positions);
        }
        __device__ float bias_row(int m) const { return bias ? __ldg(bias + m) : 0.f; }
        __device__ float bias_col(int) const { return 0.f; }
    };
};

}  // namespace

void conv_forward_cuda(const float* x, const float* w, const float* b, float* y,
                       const ConvGeometry& g, MathPrecision precision, void* stream) {
    const char* op = "conv_forward";
    gemm::check_int32(g.n * g.c * g.h * g.w, op, "x");
    gemm::check_int32(g.n * g.f * g.oh * g.ow, op, "y");
    gemm::check_int32(g.f * g.patch_size(), op, "w");
    ConvForwardProblem p;
    p.M = int(g.filters_per_group()), p.N = int(g.n * g.oh * g.ow), p.K = int(g.patch_size());
    p.x = x, p.w = w, p.b = b, p.y = y;
    p.c = int(g.c), p.h = int(g.h), p.w_ = int(g.w), p.f = int(g.f);
    p.cg = int(g.channels_per_group()), p.fg = int(g.filters_per_group());
    p.ow = int(g.ow), p.positions = int(g.oh * g.ow), p.kh = int(g.kh), p.kw = int(g.kw);
    p.sh = g.stride_h, p.sw = g.stride_w, p.ph = g.pad_h, p.pw = g.pad_w;
    // 16-byte loads of filter rows: every group's rows start on a multiple of 4 floats.
    p.w_vec = reinterpret_cast<std::uintptr_t>(w) % 16 == 0 && p.K % 4 == 0;
    gemm::launch_igemm(p, unsigned(g.groups), precision, cuda::as_stream(stream));
}

}  // namespace convnet
