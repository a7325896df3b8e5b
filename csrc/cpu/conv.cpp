// Convolution on the CPU: im2col + GEMM per image and group, threaded over the batch.
// With two or more images, each OpenMP thread takes whole images and runs single-threaded
// OpenBLAS GEMMs on its own im2col workspace; with one image, the GEMMs use OpenBLAS's threads.
// A 1x1, stride-1, unpadded convolution skips im2col: the image already is the column matrix.
// Stride-1 float layers go to the direct convolution instead where it fits (direct_conv.h), and
// the forward and filter gradient of strided ones with few input channels through
// space-to-depth to it (space_to_depth_conv.h).
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu/blas.h"
#include "cpu/direct_conv.h"
#include "cpu/im2col.h"
#include "cpu/space_to_depth_conv.h"
#include "ops/conv.h"
#include "ops/neuron.h"

namespace convnet {

namespace {
bool is_pointwise(const ConvGeometry& g) {
    return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
           g.pad_w == 0 && g.oh == g.h && g.ow == g.w;
}

// The sizes every direction uses, and one im2col workspace per thread (from the caching
// allocator, so repeated calls allocate nothing new).
template <typename T>
struct ConvPlan {
    explicit ConvPlan(const ConvGeometry& g)
        : positions(g.oh * g.ow), patch(g.patch_size()), cg(g.channels_per_group()),
          fg(g.filters_per_group()), pointwise(is_pointwise(g)), threads(blas::threads_for(g.n)),
          cols(blas::thread_rows(threads, pointwise ? 1 : patch * positions, dtype_of<T>())) {}
    T* col(int thread) const { return cols.data<T>() + thread * cols.dim(1); }

    std::int64_t positions, patch, cg, fg;
    bool pointwise;
    int threads;
    Tensor cols;
};

// The sum of a contiguous row, in eight running sums: one chain of dependent additions would wait
// for the adder's latency at every element (and GCC keeps the eight in one vector).
template <typename T>
T row_sum(const T* x, std::int64_t n) {
    T part[8] = {};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) part[k] += x[i + k];
    T total = 0;
    for (; i < n; ++i) total += x[i];
    for (int k = 0; k < 8; ++k) total += part[k];
    return total;
}

}  // namespace

template <typename T>
void conv_forward_cpu(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g,
                      const NeuronParams* neuron, const ImageHook* after_image) {
    if constexpr (std::is_same_v<T, float>) {
        if (direct_conv::use_forward(g))
            return direct_conv::forward(x, w, b, y, g, neuron, after_image);
        if (space_to_depth::use_forward(g))
            return space_to_depth::forward(x, w, b, y, g, neuron, after_image);
    }
    const ConvPlan<T> plan(g);
    const std::int64_t positions = plan.positions, patch = plan.patch, cg = plan.cg, fg = plan.fg;
    const bool pointwise = plan.pointwise;
    blas::for_each_item(g.n, plan.threads, [&](std::int64_t n, int t) {
        T* col = plan.col(t);
        for (int grp = 0; grp < g.groups; ++grp) {
            const T* xg = x + (n * g.c + grp * cg) * g.h * g.w;
            T* yg = y + (n * g.f + grp * fg) * positions;
            if (!pointwise) im2col(xg, col, g);
            blas::gemm<T>(false, false, fg, positions, patch, T(1), w + grp * fg * patch, patch,
                          pointwise ? xg : col, positions, T(0), yg, positions);
            if (b)
                for (std::int64_t f = 0; f < fg; ++f) {
                    const T bias = b[grp * fg + f];
                    T* row = yg + f * positions;
                    for (std::int64_t p = 0; p < positions; ++p) row[p] += bias;
                }
        }
        if (neuron) neuron_in_place_cpu(y + n * g.f * positions, g.f * positions, *neuron);
        if (after_image) (*after_image)(n);
    });
}

template <typename T>
void conv_backward_data_cpu(const T* w, const T* dy, T* dx, const ConvGeometry& g, T beta,
                            const T* x, const NeuronParams* x_neuron) {
    if constexpr (std::is_same_v<T, float>) {
        if (direct_conv::use_backward_data(g))
            return direct_conv::backward_data(w, dy, dx, g, beta, x, x_neuron);
        if (direct_conv::use_thin_backward_data(g))
            return direct_conv::thin_backward_data(w, dy, dx, g, beta, x, x_neuron);
    }
    const ConvPlan<T> plan(g);
    const std::int64_t positions = plan.positions, patch = plan.patch, cg = plan.cg, fg = plan.fg;
    const bool pointwise = plan.pointwise;
    blas::for_each_item(g.n, plan.threads, [&](std::int64_t n, int t) {
        T* col = plan.col(t);
        T* dxn = dx + n * g.c * g.h * g.w;
        if (!pointwise) blas::scale_for_accumulation(dxn, g.c * g.h * g.w, beta);
        for (int grp = 0; grp < g.groups; ++grp) {
            const T* dyg = dy + (n * g.f + grp * fg) * positions;
            T* dxg = dxn + grp * cg * g.h * g.w;
            // dcol (patch, positions) = W_g^T (patch, fg) * dy_g (fg, positions)
            blas::gemm<T>(true, false, patch, positions, fg, T(1), w + grp * fg * patch, patch, dyg,
                          positions, pointwise ? beta : T(0), pointwise ? dxg : col, positions);
            if (!pointwise) col2im_add(col, dxg, g);
        }
        if (x_neuron) {
            const std::int64_t image = g.c * g.h * g.w;
            neuron_gradient_in_place_cpu(x + n * image, dxn, image, *x_neuron);
        }
    });
}

template <typename T>
void conv_backward_filter_cpu(const T* x, const T* dy, T* dw, T* db, const ConvGeometry& g,
                              T beta) {
    if constexpr (std::is_same_v<T, float>) {
        if (direct_conv::use_backward_filter(g))
            return direct_conv::backward_filter(x, dy, dw, db, g, beta);
        if (space_to_depth::use_backward_filter(g))
            return space_to_depth::backward_filter(x, dy, dw, db, g, beta);
    }
    const ConvPlan<T> plan(g);
    const std::int64_t positions = plan.positions, patch = plan.patch, cg = plan.cg, fg = plan.fg;
    const bool pointwise = plan.pointwise;
    // Each thread sums its images' gradients into its own (dw, db); the sums are added at the end.
    const std::int64_t dw_size = g.f * patch;
    Tensor partial = blas::thread_rows(plan.threads, dw_size + g.f, dtype_of<T>());
    std::fill(partial.data<T>(), partial.data<T>() + partial.numel(), T(0));
    blas::for_each_item(g.n, plan.threads, [&](std::int64_t n, int t) {
        T* col = plan.col(t);
        T* dw_t = partial.data<T>() + t * partial.dim(1);
        T* db_t = dw_t + dw_size;
        for (int grp = 0; grp < g.groups; ++grp) {
            const T* xg = x + (n * g.c + grp * cg) * g.h * g.w;
            const T* dyg = dy + (n * g.f + grp * fg) * positions;
            if (dw) {
                if (!pointwise) im2col(xg, col, g);
                // dW_g (fg, patch) += dy_g (fg, positions) * col^T (positions, patch)
                blas::gemm<T>(false, true, fg, patch, positions, T(1), dyg, positions,
                              pointwise ? xg : col, positions, T(1), dw_t + grp * fg * patch,
                              patch);
            }
            if (db)
                for (std::int64_t f = 0; f < fg; ++f) {
                    db_t[grp * fg + f] += row_sum(dyg + f * positions, positions);
                }
        }
    });
    auto reduce = [&](T* out, std::int64_t offset, std::int64_t count) {
        for (std::int64_t i = 0; i < count; ++i) {
            T sum = 0;
            for (int t = 0; t < plan.threads; ++t) sum += partial.data<T>()[t * partial.dim(1) + offset + i];
            out[i] = beta == T(0) ? sum : beta * out[i] + sum;
        }
    };
    if (dw) reduce(dw, 0, dw_size);
    if (db) reduce(db, dw_size, g.f);
}

#define CONVNET_INSTANTIATE(T)                                                                  \
    template void conv_forward_cpu<T>(const T*, const T*, const T*, T*, const ConvGeometry&,    \
                                      const NeuronParams*, const ImageHook*);                   \
    template void conv_backward_data_cpu<T>(const T*, const T*, T*, const ConvGeometry&, T,      \
                                            const T*, const NeuronParams*);                     \
    template void conv_backward_filter_cpu<T>(const T*, const T*, T*, T*, const ConvGeometry&, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
