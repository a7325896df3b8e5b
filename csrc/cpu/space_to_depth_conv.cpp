// Strided thin convolutions through space-to-depth and the direct path (space_to_depth_conv.h).
#include "cpu/space_to_depth_conv.h"

#include <algorithm>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/direct_conv.h"

namespace convnet::space_to_depth {

namespace {

std::int64_t blocks_of(std::int64_t n, std::int64_t s) { return (n + s - 1) / s; }

// The stride-1 geometry on x2: channels C*s^2, kernel in blocks, no padding (it is in x2), the
// same outputs. x2 holds every block any output reads: rows (OH - 1) + ceil(KH / s).
ConvGeometry blocked(const ConvGeometry& g) {
    const std::int64_t s = g.stride_h;
    ConvGeometry b = g;
    b.c = g.c * s * s;
    b.kh = blocks_of(g.kh, s);
    b.kw = blocks_of(g.kw, s);
    b.h = g.oh - 1 + b.kh;
    b.w = g.ow - 1 + b.kw;
    b.stride_h = b.stride_w = 1;
    b.pad_h = b.pad_w = 0;
    return b;
}

bool fits(const ConvGeometry& g) {
    const int s = g.stride_h;
    return s > 1 && g.stride_w == s && g.groups == 1 && g.c < 16 && g.c * s * s <= 64 &&
           g.kh >= s && g.kw >= s;
}

// Channel (a, c, b) of x2, for input channel c and offsets (a, b) inside a block of s x s:
// row offset first, so that the offsets whose last block row lies past the kernel come last.
std::int64_t dealt(std::int64_t c, std::int64_t a, std::int64_t b, const ConvGeometry& g) {
    const std::int64_t s = g.stride_h;
    return (a * g.c + c) * s + b;
}

// The first channel of x2 whose last kernel block row is all zeros (its row offset a puts
// ku * s + a past the kernel for the last ku), or -1 where the kernel fills its blocks:
// the direct path leaves those rows out (8% of AlexNet conv1's multiply-adds).
std::int64_t short_from(const ConvGeometry& g, const ConvGeometry& b) {
    const std::int64_t s = g.stride_h, first_past = g.kh - (b.kh - 1) * s;
    return first_past < s ? first_past * g.c * s : -1;
}

// x2[n][dealt(c, a, b)][u][v] = x[n][c][u*s + a - pad_h][v*s + b - pad_w], zero outside the
// image.
Tensor to_blocks(const float* x, const ConvGeometry& g, const ConvGeometry& b) {
    const std::int64_t s = g.stride_h;
    Tensor x2 = Tensor::empty({g.n, b.c, b.h, b.w}, DType::f32);
    float* out = x2.data<float>();
    blas::for_each_item(g.n * g.c, blas::threads_for(g.n), [&](std::int64_t nc, int) {
        const std::int64_t n = nc / g.c, c = nc % g.c;
        const float* plane = x + nc * g.h * g.w;
        for (std::int64_t a = 0; a < s; ++a)
            for (std::int64_t bb = 0; bb < s; ++bb) {
                float* o = out + (n * b.c + dealt(c, a, bb, g)) * b.h * b.w;
                for (std::int64_t u = 0; u < b.h; ++u) {
                    const std::int64_t i = u * s + a - g.pad_h;
                    float* row = o + u * b.w;
                    if (i < 0 || i >= g.h) {
                        std::fill(row, row + b.w, 0.f);
                        continue;
                    }
                    for (std::int64_t v = 0; v < b.w; ++v) {
                        const std::int64_t j = v * s + bb - g.pad_w;
                        row[v] = j >= 0 && j < g.w ? plane[i * g.w + j] : 0.f;
                    }
                }
            }
    });
    return x2;
}

// w2[f][dealt(c, a, b)][ku][kv] = w[f][c][ku*s + a][kv*s + b], zero past the kernel.
Tensor kernel_to_blocks(const float* w, const ConvGeometry& g, const ConvGeometry& b) {
    const std::int64_t s = g.stride_h;
    Tensor w2 = Tensor::empty({g.f, b.c, b.kh, b.kw}, DType::f32);
    float* out = w2.data<float>();
    for (std::int64_t f = 0; f < g.f; ++f)
        for (std::int64_t c = 0; c < g.c; ++c)
            for (std::int64_t a = 0; a < s; ++a)
                for (std::int64_t bb = 0; bb < s; ++bb)
                    for (std::int64_t ku = 0; ku < b.kh; ++ku)
                        for (std::int64_t kv = 0; kv < b.kw; ++kv) {
                            const std::int64_t i = ku * s + a, j = kv * s + bb;
                            out[((f * b.c + dealt(c, a, bb, g)) * b.kh + ku) * b.kw + kv] =
                                i < g.kh && j < g.kw ? w[((f * g.c + c) * g.kh + i) * g.kw + j]
                                                     : 0.f;
                        }
    return w2;
}

}  // namespace

bool use_forward(const ConvGeometry& g) {
    return fits(g) && direct_conv::use_forward(blocked(g));
}
bool use_backward_filter(const ConvGeometry& g) {
    return fits(g) && direct_conv::use_backward_filter(blocked(g));
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g,
             const NeuronParams* neuron, const ImageHook* after_image) {
    const ConvGeometry bg = blocked(g);
    const Tensor x2 = to_blocks(x, g, bg);
    const Tensor w2 = kernel_to_blocks(w, g, bg);
    direct_conv::forward(x2.data<float>(), w2.data<float>(), b, y, bg, neuron, after_image,
                         short_from(g, bg));
}

// dw2 on the direct path (db summed there too), then its taps that lie on the kernel gathered
// back into dw.
void backward_filter(const float* x, const float* dy, float* dw, float* db, const ConvGeometry& g,
                     float beta) {
    const ConvGeometry bg = blocked(g);
    const std::int64_t s = g.stride_h;
    Tensor dw2;
    if (dw) {
        dw2 = Tensor::empty({g.f, bg.c, bg.kh, bg.kw}, DType::f32);
        std::fill(dw2.data<float>(), dw2.data<float>() + dw2.numel(), 0.f);  // beta * 0 + grad
    }
    const Tensor x2 = dw ? to_blocks(x, g, bg) : Tensor();
    direct_conv::backward_filter(dw ? x2.data<float>() : nullptr, dy,
                                 dw ? dw2.data<float>() : nullptr, db, bg, beta,
                                 short_from(g, bg));
    if (!dw) return;
    const float* in = dw2.data<float>();
    for (std::int64_t f = 0; f < g.f; ++f)
        for (std::int64_t c = 0; c < g.c; ++c)
            for (std::int64_t i = 0; i < g.kh; ++i)
                for (std::int64_t j = 0; j < g.kw; ++j) {
                    const float grad =
                        in[((f * bg.c + dealt(c, i % s, j % s, g)) * bg.kh + i / s) * bg.kw +
                           j / s];
                    float& d = dw[((f * g.c + c) * g.kh + i) * g.kw + j];
                    d = beta == 0.f ? grad : beta * d + grad;
                }
}

}  // namespace convnet::space_to_depth
