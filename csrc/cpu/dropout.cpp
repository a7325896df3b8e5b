// Dropout on the CPU: blocks of four elements share one Philox call, as on the GPU.
#include "ops/dropout.h"

#include <algorithm>

#include "math/rng.h"

namespace convnet {

void dropout_mask_cpu(std::uint8_t* mask, std::int64_t n, const DropoutParams& p) {
    const std::uint64_t threshold = rng::keep_threshold(1.0 - p.p);
    const std::int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
        const rng::Words4 r = rng::stream_block(p.seed, p.layer, p.step, std::uint32_t(blk));
        for (std::int64_t j = 0; j < 4 && blk * 4 + j < n; ++j)
            mask[blk * 4 + j] = std::uint64_t(r.v[j]) < threshold ? 1 : 0;
    }
}

template <typename T>
void dropout_apply_cpu(const T* x, T* y, std::int64_t n, const DropoutParams& p, T beta) {
    const T factor = T(p.kept_factor());
    const std::uint64_t threshold = rng::keep_threshold(1.0 - p.p);
    const std::int64_t blocks = (n + 3) / 4;
    const bool train = p.train;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
        rng::Words4 r{};
        if (train) r = rng::stream_block(p.seed, p.layer, p.step, std::uint32_t(blk));
        for (std::int64_t j = 0; j < 4 && blk * 4 + j < n; ++j) {
            const std::int64_t i = blk * 4 + j;
            const bool kept = !train || std::uint64_t(r.v[j]) < threshold;
            const T v = kept ? x[i] * factor : T(0);
            y[i] = beta == T(0) ? v : beta * y[i] + v;
        }
    }
}

template void dropout_apply_cpu<float>(const float*, float*, std::int64_t, const DropoutParams&,
                                       float);
template void dropout_apply_cpu<double>(const double*, double*, std::int64_t,
                                        const DropoutParams&, double);

}  // namespace convnet
