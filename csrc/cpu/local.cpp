// Locally connected layer on the CPU. Each group's patches are gathered once for the whole batch
// into a position-major buffer patches[p][n][k] (im2col per image, then a transpose), so that
// every output position is one GEMM over the batch: y_p (N, F/G) = patches[p] (N, K) * W_p^T.
// Positions are spread over the OpenMP threads, each running single-threaded GEMMs.

#include <algorithm>

#include "cpu/blas.h"
#include "cpu/im2col.h"
#include "ops/local.h"

namespace convnet {

namespace {
// patches[p][n][k] for group `grp`; col is scratch of K*P.
template <typename T>
void gather_patches(const T* x, T* patches, T* col, const ConvGeometry& g, int grp) {
    const std::int64_t positions = g.oh * g.ow, k = g.patch_size(), cg = g.channels_per_group();
    for (std::int64_t n = 0; n < g.n; ++n) {
        im2col(x + (n * g.c + grp * cg) * g.h * g.w, col, g);
        for (std::int64_t r = 0; r < k; ++r)
            for (std::int64_t p = 0; p < positions; ++p)
                patches[(p * g.n + n) * k + r] = col[r * positions + p];
    }
}

template <typename Body>
void for_each_position(std::int64_t positions, Body&& body) {
    const int threads = blas::threads_for(positions);
    if (threads <= 1) {
        for (std::int64_t p = 0; p < positions; ++p) body(p);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t p = 0; p < positions; ++p) body(p);
}
}  // namespace

template <typename T>
void local_forward_cpu(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g) {
    const std::int64_t positions = g.oh * g.ow, k = g.patch_size(), fg = g.filters_per_group();
    Tensor patches = Tensor::empty({positions * g.n * k}, dtype_of<T>());
    Tensor col = Tensor::empty({k * positions}, dtype_of<T>());
    Tensor out = Tensor::empty({positions * g.n * fg}, dtype_of<T>());
    for (int grp = 0; grp < g.groups; ++grp) {
        gather_patches(x, patches.data<T>(), col.data<T>(), g, grp);
        for_each_position(positions, [&](std::int64_t p) {
            // out[p] (N, fg) = patches[p] (N, K) * W_p^T, W_p = w[p, grp*fg : (grp+1)*fg] (fg, K)
            blas::gemm<T>(false, true, g.n, fg, k, T(1), patches.data<T>() + p * g.n * k, k,
                          w + (p * g.f + grp * fg) * k, k, T(0), out.data<T>() + p * g.n * fg, fg);
        });
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t f = 0; f < fg; ++f) {
                const std::int64_t channel = grp * fg + f;
                T* row = y + (n * g.f + channel) * positions;
                for (std::int64_t p = 0; p < positions; ++p)
                    row[p] = out.data<T>()[(p * g.n + n) * fg + f] +
                             (b ? b[channel * positions + p] : T(0));
            }
    }
}

template <typename T>
void local_backward_cpu(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                        const ConvGeometry& g, T beta) {
    const std::int64_t positions = g.oh * g.ow, k = g.patch_size(), fg = g.filters_per_group();
    const std::int64_t cg = g.channels_per_group();
    Tensor patches = Tensor::empty({positions * g.n * k}, dtype_of<T>());
    Tensor col = Tensor::empty({k * positions}, dtype_of<T>());
    Tensor grads = Tensor::empty({positions * g.n * fg}, dtype_of<T>());  // dy as [p][n][f]
    if (dx) blas::scale_for_accumulation(dx, g.n * g.c * g.h * g.w, beta);
    for (int grp = 0; grp < g.groups; ++grp) {
        T* gp = grads.data<T>();
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t f = 0; f < fg; ++f) {
                const T* row = dy + (n * g.f + grp * fg + f) * positions;
                for (std::int64_t p = 0; p < positions; ++p) gp[(p * g.n + n) * fg + f] = row[p];
            }
        if (dw) gather_patches(x, patches.data<T>(), col.data<T>(), g, grp);
        for_each_position(positions, [&](std::int64_t p) {
            const T* gp_p = gp + p * g.n * fg;
            // dW_p (fg, K) = grads[p]^T (fg, N) * patches[p] (N, K)
            if (dw)
                blas::gemm<T>(true, false, fg, k, g.n, T(1), gp_p, fg,
                              patches.data<T>() + p * g.n * k, k, beta,
                              dw + (p * g.f + grp * fg) * k, k);
        });
        if (dx) {
            // dpatches[p] (N, K) = grads[p] (N, fg) * W_p (fg, K), reusing the patches buffer
            T* dpatches = patches.data<T>();
            for_each_position(positions, [&](std::int64_t p) {
                blas::gemm<T>(false, false, g.n, k, fg, T(1), gp + p * g.n * fg, fg,
                              w + (p * g.f + grp * fg) * k, k, T(0), dpatches + p * g.n * k, k);
            });
            for (std::int64_t n = 0; n < g.n; ++n) {
                T* c = col.data<T>();
                for (std::int64_t r = 0; r < k; ++r)
                    for (std::int64_t p = 0; p < positions; ++p)
                        c[r * positions + p] = dpatches[(p * g.n + n) * k + r];
                col2im_add(c, dx + (n * g.c + grp * cg) * g.h * g.w, g);
            }
        }
    }
    if (db)
        for (std::int64_t f = 0; f < g.f; ++f)
            for (std::int64_t p = 0; p < positions; ++p) {
                T s = 0;
                for (std::int64_t n = 0; n < g.n; ++n) s += dy[(n * g.f + f) * positions + p];
                db[f * positions + p] = beta == T(0) ? s : beta * db[f * positions + p] + s;
            }
}

#define CONVNET_INSTANTIATE(T)                                                                   \
    template void local_forward_cpu<T>(const T*, const T*, const T*, T*, const ConvGeometry&);   \
    template void local_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*,                \
                                        const ConvGeometry&, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
