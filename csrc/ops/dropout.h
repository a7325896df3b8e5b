// Dropout with a counter-based mask (csrc/math/rng.h): element i of the flat tensor is kept when
// word j%4 of Philox4x32-10(counter = (j/4, step lo, step hi, layer), key = seed) is below
// floor(keep * 2^32), keep = 1 - p, at stream position j = offset + i. The offset places a shard
// of a batch (data parallelism) where its elements are in the whole batch, so the shards draw
// the whole batch's mask between them. The mask is never stored: backward regenerates it.
// Classic dropout (the paper; cuda-convnet's dropout2): train y = x*mask, test y = x*keep.
// Inverted dropout (cuda-convnet2's dropout): train y = x*mask/keep, test y = x.
// x, y, dy, dx: any shape, same for all; float32 on the GPU.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet {

struct DropoutParams {
    double p = 0.5;           // probability of dropping
    std::uint64_t seed = 0;
    std::uint64_t step = 0;
    std::uint32_t layer = 0;
    bool train = true;
    bool inverted = false;
    std::uint64_t offset = 0;  // stream position of element 0

    // y = x * factor where kept (or always, at test time)
    double kept_factor() const;
};

void dropout_mask(std::uint8_t* mask, std::int64_t n, const DropoutParams& p);
// The same mask written into the first n bytes of `bytes`' storage on its device (any dtype,
// nbytes >= n): a device-side mask, so tests can compare the GPU's bits with the CPU's.
void dropout_mask_into(const Tensor& bytes, std::int64_t n, const DropoutParams& p);
void dropout_forward(const Tensor& x, const Tensor& y, const DropoutParams& p);
void dropout_backward(const Tensor& dy, const Tensor& dx, const DropoutParams& p,
                      float beta = 0.f);

void dropout_mask_cpu(std::uint8_t* mask, std::int64_t n, const DropoutParams& p);
// Training: y = x * mask * factor; testing: y = x * factor. Backward is the same map applied to dy.
template <typename T>
void dropout_apply_cpu(const T* x, T* y, std::int64_t n, const DropoutParams& p, T beta);

// CUDA launchers (kernels/dropout.cu): the same streams and formulas on device pointers.
void dropout_mask_cuda(std::uint8_t* mask, std::int64_t n, const DropoutParams& p, void* stream);
void dropout_apply_cuda(const float* x, float* y, std::int64_t n, const DropoutParams& p,
                        float beta, void* stream);

}  // namespace convnet
