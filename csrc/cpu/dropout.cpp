// Dropout on the CPU: element i takes word j%4 of Philox block j/4, j = offset + i, as on the
// GPU. Float32 training runs dropout_avx512.cpp where the CPU allows (sixteen blocks per vector)
// and the offset is a whole number of groups; elsewhere each block is one rng::stream_block call,
// a group of kLanes blocks at a time.
#include "ops/dropout.h"

#include <algorithm>
#include <type_traits>

#include "cpu/dropout_kernels.h"
#include "cpu/vector_clones.h"
#include "math/rng.h"

namespace convnet {

namespace {

constexpr int kLanes = 16;                        // Philox blocks drawn together
constexpr std::int64_t kGroup = 4 * kLanes;       // elements per group

// The words of elements [4 * first, 4 * first + kGroup) in element order.
CONVNET_ALWAYS_INLINE void group_words(const DropoutParams& p, std::int64_t first,
                                       std::uint32_t* words) {
    for (int l = 0; l < kLanes; ++l) {
        const rng::Words4 r = rng::stream_block(p.seed, p.layer, p.step, std::uint32_t(first + l));
        for (int j = 0; j < 4; ++j) words[4 * l + j] = r.v[j];
    }
}

// Kept when the word is below floor(keep * 2^32); that threshold is 2^32 (all kept) for keep 1,
// otherwise it fits 32 bits and the compare is a 32-bit one.
struct Threshold {
    explicit Threshold(double keep) {
        const std::uint64_t t = rng::keep_threshold(keep);
        all = t > 0xFFFFFFFFull;
        below = all ? 0 : std::uint32_t(t);
    }
    bool all;
    std::uint32_t below;
};

// Where a shard's elements fall in the groups of the stream: local element i is stream position
// offset + i, so group g of the shard covers local elements [g * kGroup - lead, + kGroup) and
// draws the words of stream group first + g.
struct GroupSpan {
    explicit GroupSpan(std::uint64_t offset)
        : first(std::int64_t(offset / kGroup)), lead(std::int64_t(offset % kGroup)) {}
    std::int64_t groups(std::int64_t n) const { return (lead + n + kGroup - 1) / kGroup; }
    std::int64_t first, lead;
};

template <typename T>
CONVNET_ALWAYS_INLINE void apply_groups(const T* x, T* y, std::int64_t n, const DropoutParams& p,
                                        T beta, std::int64_t g0, std::int64_t g1) {
    const T factor = T(p.kept_factor());
    const Threshold keep(1.0 - p.p);
    const GroupSpan span(p.offset);
    alignas(64) std::uint32_t words[kGroup];
    for (std::int64_t g = g0; g < g1; ++g) {
        const std::int64_t s = g * kGroup - span.lead;
        const std::int64_t e0 = std::max<std::int64_t>(0, -s), e1 = std::min(kGroup, n - s);
        if (p.train) group_words(p, (span.first + g) * kLanes, words);
        const T* xg = x + s;
        T* yg = y + s;
        for (std::int64_t e = e0; e < e1; ++e) {
            const bool kept = !p.train || keep.all || words[e] < keep.below;
            const T v = kept ? xg[e] * factor : T(0);
            yg[e] = beta == T(0) ? v : beta * yg[e] + v;
        }
    }
}

CONVNET_VECTOR_CLONES void apply_groups_f32(const float* x, float* y, std::int64_t n,
                                            const DropoutParams& p, float beta, std::int64_t g0,
                                            std::int64_t g1) {
    apply_groups(x, y, n, p, beta, g0, g1);
}
CONVNET_VECTOR_CLONES void apply_groups_f64(const double* x, double* y, std::int64_t n,
                                            const DropoutParams& p, double beta, std::int64_t g0,
                                            std::int64_t g1) {
    apply_groups(x, y, n, p, beta, g0, g1);
}
void apply_groups_any(const float* x, float* y, std::int64_t n, const DropoutParams& p,
                      float beta, std::int64_t g0, std::int64_t g1) {
    apply_groups_f32(x, y, n, p, beta, g0, g1);
}
void apply_groups_any(const double* x, double* y, std::int64_t n, const DropoutParams& p,
                      double beta, std::int64_t g0, std::int64_t g1) {
    apply_groups_f64(x, y, n, p, beta, g0, g1);
}

CONVNET_VECTOR_CLONES void mask_groups(std::uint8_t* mask, std::int64_t n, const DropoutParams& p,
                                       std::int64_t g0, std::int64_t g1) {
    const Threshold keep(1.0 - p.p);
    const GroupSpan span(p.offset);
    alignas(64) std::uint32_t words[kGroup];
    for (std::int64_t g = g0; g < g1; ++g) {
        const std::int64_t s = g * kGroup - span.lead;
        const std::int64_t e0 = std::max<std::int64_t>(0, -s), e1 = std::min(kGroup, n - s);
        group_words(p, (span.first + g) * kLanes, words);
        for (std::int64_t e = e0; e < e1; ++e)
            mask[s + e] = keep.all || words[e] < keep.below ? 1 : 0;
    }
}

// Runs body(first group, end group) over the groups of n elements at `offset` in the stream,
// threaded above 1M elements: below, waking the second thread costs about what it saves
// (AlexNet's 32 x 4096: 67 us on one thread, 75 on two).
template <typename Body>
void for_groups(std::int64_t n, std::uint64_t offset, Body&& body) {
    const std::int64_t groups = GroupSpan(offset).groups(n);
#pragma omp parallel if (n > (1 << 20))
    {
#pragma omp for schedule(static)
        for (std::int64_t g = 0; g < groups; g += 16) body(g, std::min(groups, g + 16));
    }
}

}  // namespace

void dropout_mask_cpu(std::uint8_t* mask, std::int64_t n, const DropoutParams& p) {
    for_groups(n, p.offset,
               [&](std::int64_t g0, std::int64_t g1) { mask_groups(mask, n, p, g0, g1); });
}

template <typename T>
void dropout_apply_cpu(const T* x, T* y, std::int64_t n, const DropoutParams& p, T beta) {
    if constexpr (std::is_same_v<T, float>)
        if (p.train && GroupSpan(p.offset).lead == 0 && cpu_has_avx512f_bmi2()) {
            static_assert(kGroup == 64, "dropout_avx512 draws 16 blocks per group");
            const Threshold keep(1.0 - p.p);
            const dropout_avx512::Apply a{p.seed, p.step, GroupSpan(p.offset).first, p.layer,
                                          keep.all, keep.below, float(p.kept_factor()), beta};
            for_groups(n, p.offset, [&](std::int64_t g0, std::int64_t g1) {
                dropout_avx512::apply(x, y, n, a, g0, g1);
            });
            return;
        }
    for_groups(n, p.offset, [&](std::int64_t g0, std::int64_t g1) {
        apply_groups_any(x, y, n, p, beta, g0, g1);
    });
}

template void dropout_apply_cpu<float>(const float*, float*, std::int64_t, const DropoutParams&,
                                       float);
template void dropout_apply_cpu<double>(const double*, double*, std::int64_t,
                                        const DropoutParams&, double);

}  // namespace convnet
