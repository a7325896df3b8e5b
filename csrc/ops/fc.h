// Fully connected layer: y = x * W^T + b.
// Layouts: x is (N, K) (an image batch (N, C, H, W) is read as (N, C*H*W) in C order);
// w is (M, K), the PyTorch/ONNX convention; b is (M,); y is (N, M).
// Backward writes dx = beta*dx + dy*W, dw = beta*dw + dy^T*x, db = beta*db + sum_n dy.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "ops/precision.h"

namespace convnet {

struct FcGeometry {
    std::int64_t n = 0, k = 0, m = 0;  // batch, inputs, outputs
};

FcGeometry fc_geometry(const Tensor& x, const Tensor& w, const char* op);

void fc_forward(const Tensor& x, const Tensor& w, const Tensor& b /* may be undefined */,
                const Tensor& y);
// Any of dx, dw, db may be undefined to skip that gradient.
void fc_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                 const Tensor& dw, const Tensor& db, float beta = 0.f);

template <typename T>
void fc_forward_cpu(const T* x, const T* w, const T* b, T* y, const FcGeometry& g);
template <typename T>
void fc_backward_cpu(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                     const FcGeometry& g, T beta);

// CUDA launchers (kernels/fc.cu): float32 device pointers in the layouts above, GEMMs on
// `stream` in the given precision (FP32 below sm_80). `workspace` holds fc_workspace_cuda(g)
// floats (split-K partial sums on the current device; null when that is 0).
std::int64_t fc_workspace_cuda(const FcGeometry& g);
void fc_forward_cuda(const float* x, const float* w, const float* b /* may be null */, float* y,
                     const FcGeometry& g, MathPrecision precision, float* workspace,
                     void* stream);
// dx, dw, db may be null to skip them.
void fc_backward_cuda(const float* x, const float* w, const float* dy, float* dx, float* dw,
                      float* db, const FcGeometry& g, float beta, MathPrecision precision,
                      float* workspace, void* stream);

}  // namespace convnet
