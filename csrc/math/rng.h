// Counter-based random numbers shared by the CPU path and the CUDA kernels: Philox4x32-10
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011). A counter and a key
// give four 32-bit words with no state, so element i of a dropout mask depends only on
// (seed, layer, step, i): identical on CPU and GPU, and a resumed run draws what an
// uninterrupted one would have drawn.
#pragma once

#include <cstdint>

#include "math/hostdevice.h"

namespace convnet::rng {

struct Words4 {
    std::uint32_t v[4];
};

CONVNET_HD void mul_hi_lo(std::uint32_t a, std::uint32_t b, std::uint32_t* hi, std::uint32_t* lo) {
    const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
    *hi = static_cast<std::uint32_t>(product >> 32);
    *lo = static_cast<std::uint32_t>(product);
}

// The constants of the Random123 reference: round multipliers and the key's Weyl increments.
constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

// Philox4x32 with 10 rounds.
CONVNET_HD Words4 philox4x32_10(Words4 counter, std::uint32_t key0, std::uint32_t key1) {
    std::uint32_t* c = counter.v;
    for (int round = 0; round < kRounds; ++round) {
        std::uint32_t hi0, lo0, hi1, lo1;
        mul_hi_lo(kMul0, c[0], &hi0, &lo0);
        mul_hi_lo(kMul1, c[2], &hi1, &lo1);
        const std::uint32_t next[4] = {hi1 ^ c[1] ^ key0, lo1, hi0 ^ c[3] ^ key1, lo0};
        c[0] = next[0];
        c[1] = next[1];
        c[2] = next[2];
        c[3] = next[3];
        key0 += kWeyl0;
        key1 += kWeyl1;
    }
    return counter;
}

// The four words for elements [4*block, 4*block + 4) of a stream keyed by (seed, layer, step).
CONVNET_HD Words4 stream_block(std::uint64_t seed, std::uint32_t layer, std::uint64_t step,
                               std::uint32_t block) {
    Words4 counter{{block, static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32),
                    layer}};
    return philox4x32_10(counter, static_cast<std::uint32_t>(seed),
                         static_cast<std::uint32_t>(seed >> 32));
}

// A word is "kept" when below this threshold: floor(keep * 2^32), exact for keep = 1.
CONVNET_HD std::uint64_t keep_threshold(double keep) {
    return static_cast<std::uint64_t>(keep * 4294967296.0);
}

}  // namespace convnet::rng
