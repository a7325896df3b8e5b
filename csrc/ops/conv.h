// 2D convolution (cross-correlation, as in every CNN library) with stride, zero padding, groups
// and bias.
// Layouts: x is (N, C, H, W); w is (F, C/groups, KH, KW); b is (F,); y is (N, F, OH, OW).
// Group g reads input channels [g*C/G, (g+1)*C/G) and writes output channels [g*F/G, (g+1)*F/G).
// The output size is the caller's: the usual floor rule, or cuda-convnet's ceil rule under which
// the last filter positions overhang the far side of the image and read zeros there. Any pixel
// outside the image (padding or overhang) reads as zero.
// Backward entry points write dx = beta*dx + ..., dw = beta*dw + ..., db = beta*db + ...
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/tensor.h"
#include "math/neuron_math.h"
#include "ops/precision.h"

namespace convnet {

struct ConvGeometry {
    std::int64_t n = 0, c = 0, h = 0, w = 0;  // input
    std::int64_t f = 0, kh = 0, kw = 0;       // filters
    std::int64_t oh = 0, ow = 0;              // output
    int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, groups = 1;

    std::int64_t channels_per_group() const { return c / groups; }
    std::int64_t filters_per_group() const { return f / groups; }
    // Rows of the im2col matrix of one group: (C/G)*KH*KW.
    std::int64_t patch_size() const { return channels_per_group() * kh * kw; }
};

enum class ConvSizeRule { floor, cuda_convnet };
ConvSizeRule conv_size_rule_from_name(const std::string& name);
// Output positions along one axis; throws ArgumentError when the kernel does not fit.
std::int64_t conv_output_size(std::int64_t size, std::int64_t kernel, int stride, int padding,
                              ConvSizeRule rule);

// Reads the geometry off the tensors (y's spatial size gives OH, OW) and checks it.
ConvGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& y, int stride_h,
                           int stride_w, int pad_h, int pad_w, int groups, const char* op);

// Called with an image's index as soon as its output is complete (and in cache), from the op's
// threads: calls for different images may run at once.
using ImageHook = std::function<void(std::int64_t image)>;

// neuron (optional): y = neuron(conv + b), applied to each image's output while it is in cache.
// after_image (optional): called for every image once its output is written (on a GPU, after the
// whole batch, in order).
void conv_forward(const Tensor& x, const Tensor& w, const Tensor& b /* may be undefined */,
                  const Tensor& y, const ConvGeometry& g, const NeuronParams* neuron = nullptr,
                  const ImageHook* after_image = nullptr);
// Any of dx, dw, db may be undefined to skip that gradient. x_neuron (optional, beta 0 only): x
// is the output of that neuron (one whose gradient reads only its output), and dx receives the
// gradient of the neuron's input instead, neuron'(x) * dL/dx, applied per image while in cache.
void conv_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                   const Tensor& dw, const Tensor& db, const ConvGeometry& g, float beta = 0.f,
                   const NeuronParams* x_neuron = nullptr);

template <typename T>
void conv_forward_cpu(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g,
                      const NeuronParams* neuron = nullptr,
                      const ImageHook* after_image = nullptr);
// x and x_neuron: null, or the neuron whose output x is (conv_backward).
template <typename T>
void conv_backward_data_cpu(const T* w, const T* dy, T* dx, const ConvGeometry& g, T beta,
                            const T* x = nullptr, const NeuronParams* x_neuron = nullptr);
template <typename T>
void conv_backward_filter_cpu(const T* x, const T* dy, T* dw, T* db, const ConvGeometry& g,
                              T beta);

// CUDA launchers (kernels/conv_forward.cu, conv_backward_data.cu, conv_backward_filter.cu):
// float32 device pointers in the layouts above, implicit-GEMM kernels on `stream`; `precision`
// picks FP32 on the CUDA cores or the TF32/BF16 tensor-core path (FP32 below sm_80).
void conv_forward_cuda(const float* x, const float* w, const float* b /* may be null */, float* y,
                       const ConvGeometry& g, MathPrecision precision, void* stream);
void conv_backward_data_cuda(const float* w, const float* dy, float* dx, const ConvGeometry& g,
                             float beta, MathPrecision precision, void* stream);
// Floats of device workspace conv_backward_filter_cuda needs for its split-K partial sums
// (0: none) on the current device.
std::int64_t conv_backward_filter_workspace_cuda(const ConvGeometry& g);
// dw or db may be null to skip it; workspace holds conv_backward_filter_workspace_cuda(g) floats.
void conv_backward_filter_cuda(const float* x, const float* dy, float* dw, float* db,
                               const ConvGeometry& g, float beta, float* workspace,
                               MathPrecision precision, void* stream);

}  // namespace convnet
