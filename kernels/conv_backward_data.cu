// Convolution backward data on the GPU as an implicit GEMM (kernels/gemm.cuh), one GEMM per group
// (blockIdx.z), written as a gather so every dx element is produced by exactly one thread (no
// atomics, no col2im):
//   dx_g (C/G x N*H*W) = W_g^T (C/G x F/G*KH*KW) * D_g,
//   D_g[(f, ky, kx), (image, iy, ix)] = dy[image, f, oy, ox] where oy*sh - ph + ky = iy (and the
//   same for x), or 0 when no output position (or no whole one, stride > 1) maps there.
// A (the filters, read with stride KH*KW along C) is loaded k-major by decoding k = (f, ky*KW + kx)
// once per step and stepping; B is gathered from dy, each thread decoding its 4 pixels once per
// block and its 2 k-rows once per step. dx = beta*dx + result in the epilogue (beta 0: not read).
// With stride s, only 1/s^2 of D is nonzero: the GEMM does s^2 times the needed work there (the
// AlexNet layers that need dx all have stride 1). Traffic: dy about KH*KW times through L1/L2,
// dx written once. FLOPs as forward: 2*N*C*H*W*F/G*KH*KW at stride 1.
#include "csrc/ops/conv.h"
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace convnet {

namespace {
using gemm::Frag;

constexpr int kOutside = -(1 << 29);  // a pixel no output position reaches

struct ConvBackwardDataProblem {
    int M, N;  // C/G input channels, N*H*W input pixels
    int K;     // F/G*KH*KW
    const float* w;
    const float* dy;
    float* dx;
    float beta;
    int c, hw, w_, f, cg, fg, oh, ow, positions, kw, khkw, sh, sw, ph, pw;

    struct Loader {
        const float* wg;    // this group's filters
        const float* dy;
        int wrow[2];        // c*KH*KW of the thread's two channel rows, -1 past the last
        int dyoff[4], ty0[4], tx0[4];  // per pixel: image + group offset, iy + ph, ix + pw
        int filter_stride, positions, oh, ow, kw, khkw, sh, sw;
        int k_begin, k_end, tid;
        bool a_kmajor, b_kmajor;

        __device__ Loader(const ConvBackwardDataProblem& p, int m0, int n0, int z, int tid_)
            : wg(p.w + std::int64_t(z) * p.fg * p.cg * p.khkw), dy(p.dy),
              filter_stride(p.cg * p.khkw), positions(p.positions), oh(p.oh), ow(p.ow),
              kw(p.kw), khkw(p.khkw), sh(p.sh), sw(p.sw), k_begin(0), k_end(p.K), tid(tid_),
              a_kmajor(true), b_kmajor(false) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int ch = m0 + gemm::km_row(tid, i);
                wrow[i] = ch < p.M ? ch * p.khkw : -1;
            }
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int n = n0 + gemm::mn_row(tid) + j;
                if (n < p.N) {
                    const int img = n / p.hw, pix = n - img * p.hw;
                    const int iy = pix / p.w_, ix = pix - iy * p.w_;
                    dyoff[j] = (img * p.f + z * p.fg) * p.positions;
                    ty0[j] = iy + p.ph;
                    tx0[j] = ix + p.pw;
                } else {
                    dyoff[j] = 0, ty0[j] = kOutside, tx0[j] = kOutside;
                }
            }
        }

        // A(c, k) = w[g*F/G + f, c, ky, kx] with k = f*KH*KW + (ky*KW + kx).
        __device__ void load_a(int k0, Frag& fr) const {
            const int k = k0 + gemm::km_k(tid);
            int f = k / khkw, r = k - f * khkw;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const bool ok = k + j < k_end;
                const float* src = wg + f * filter_stride + r;
#pragma unroll
                for (int i = 0; i < 2; ++i)
                    fr.v[i][j] = ok && wrow[i] >= 0 ? __ldg(src + wrow[i]) : 0.f;
                if (++r == khkw) r = 0, ++f;
            }
        }

        __device__ void load_b(int k0, Frag& fr) const {
            const bool unit_stride = sh == 1 && sw == 1;
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int k = k0 + gemm::mn_k(tid) + i;
                if (k >= k_end) {
#pragma unroll
                    for (int j = 0; j < 4; ++j) fr.v[i][j] = 0.f;
                    continue;
                }
                const int f = k / khkw, r = k - f * khkw;
                const int ky = r / kw, kx = r - ky * kw;
                const float* dyf = dy + f * positions;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    int oy = ty0[j] - ky, ox = tx0[j] - kx;  // oy*sh, ox*sw when they exist
                    bool ok = oy >= 0 && ox >= 0;
                    if (ok && !unit_stride) {
                        const int qy = oy / sh, qx = ox / sw;
                        ok = qy * sh == oy && qx * sw == ox;
                        oy = qy, ox = qx;
                    }
                    ok = ok && oy < oh && ox < ow;
                    fr.v[i][j] = ok ? __ldg(dyf + dyoff[j] + oy * ow + ox) : 0.f;
                }
            }
        }
    };

    struct Output {
        float* ptr;
        float beta;
        int group_row, hw, image_stride;

        __device__ Output(const ConvBackwardDataProblem& p, int z)
            : ptr(p.dx), beta(p.beta), group_row(z * p.cg), hw(p.hw), image_stride(p.c * p.hw) {}
        __device__ int row_offset(int m) const { return (group_row + m) * hw; }
        __device__ int col_offset(int n) const {
            const int img = n / hw;
            return img * image_stride + (n - img * hw);
        }
        __device__ float bias_row(int) const { return 0.f; }
        __device__ float bias_col(int) const { return 0.f; }
    };
};

}  // namespace

void conv_backward_data_cuda(const float* w, const float* dy, float* dx, const ConvGeometry& g,
                             float beta, MathPrecision precision, void* stream) {
    const char* op = "conv_backward_data";
    gemm::check_int32(g.n * g.c * g.h * g.w, op, "dx");
    gemm::check_int32(g.n * g.f * g.oh * g.ow, op, "dy");
    gemm::check_int32(g.f * g.patch_size(), op, "w");
    ConvBackwardDataProblem p;
    p.M = int(g.channels_per_group()), p.N = int(g.n * g.h * g.w);
    p.K = int(g.filters_per_group() * g.kh * g.kw);
    p.w = w, p.dy = dy, p.dx = dx, p.beta = beta;
    p.c = int(g.c), p.hw = int(g.h * g.w), p.w_ = int(g.w), p.f = int(g.f);
    p.cg = int(g.channels_per_group()), p.fg = int(g.filters_per_group());
    p.oh = int(g.oh), p.ow = int(g.ow), p.positions = int(g.oh * g.ow);
    p.kw = int(g.kw), p.khkw = int(g.kh * g.kw);
    p.sh = g.stride_h, p.sw = g.stride_w, p.ph = g.pad_h, p.pw = g.pad_w;
    gemm::launch_igemm(p, unsigned(g.groups), precision, cuda::as_stream(stream));
}

}  // namespace convnet
