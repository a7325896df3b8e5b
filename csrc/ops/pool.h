// Max and average pooling with cuda-convnet's geometry: windows of size (SY, SX) starting at
// start + o*stride on each axis (start may be negative), clipped to the image, as many outputs as
// the caller asks for. Overlapping pooling is stride < size.
// Layout: x, dx are (N, C, H, W); y, dy are (N, C, OH, OW).
// Average pooling divides by the number of in-image pixels of the clipped window; the max-pool
// gradient goes to every in-image input equal to the window's maximum (ties all receive it).
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "math/neuron_math.h"

namespace convnet {

enum class PoolMode { max, avg };
PoolMode pool_mode_from_name(const std::string& name);

struct PoolParams {
    PoolMode mode = PoolMode::max;
    int size_h = 3, size_w = 3, stride_h = 2, stride_w = 2, start_h = 0, start_w = 0;
};

// cuda-convnet's rule: `outputs` if > 0, else ceil((size - start - window) / stride) + 1.
std::int64_t pool_output_size(std::int64_t size, int window, int stride, int start,
                              std::int64_t outputs);

// winners (optional, CPU max pooling only; ignored elsewhere): a 4-byte-element tensor of y's
// shape that forward fills with each window's winner, the in-plane index of its only maximum or
// -1 where several inputs tie for it, and backward then reads instead of searching every window
// again (backward with winners does not read y). Results are the same with or without it.
// neuron (optional): y = neuron(pool(x)), applied to each plane's output as it is written.
void pool_forward(const Tensor& x, const Tensor& y, const PoolParams& p,
                  const Tensor& winners = Tensor(), const NeuronParams* neuron = nullptr);
// x_neuron (optional, beta 0 only): x is the output of that neuron (one whose gradient reads only
// its output), and dx receives the gradient of the neuron's input, plane by plane.
void pool_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                   const PoolParams& p, float beta = 0.f, const Tensor& winners = Tensor(),
                   const NeuronParams* x_neuron = nullptr);

// planes = N*C images of H x W pooled to OH x OW; winners may be null.
template <typename T>
void pool_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                      std::int64_t oh, std::int64_t ow, const PoolParams& p,
                      std::int32_t* winners = nullptr, const NeuronParams* neuron = nullptr);
template <typename T>
void pool_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                       std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                       const PoolParams& p, T beta, const std::int32_t* winners = nullptr,
                       const NeuronParams* x_neuron = nullptr);

// CUDA launchers (kernels/pool.cu), float32, same arguments as the CPU functions.
void pool_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                       std::int64_t w, std::int64_t oh, std::int64_t ow, const PoolParams& p,
                       void* stream);
void pool_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                        std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t oh,
                        std::int64_t ow, const PoolParams& p, float beta, void* stream);

}  // namespace convnet
