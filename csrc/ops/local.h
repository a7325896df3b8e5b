// Locally connected layer (cuda-convnet's type=local): a convolution whose filters differ at every
// output position. Same geometry as ops/conv.h (stride, padding, groups, output size chosen by the
// caller; pixels outside the image read zero).
// Layouts: x is (N, C, H, W); w is (OH, OW, F, C/groups, KH, KW): the filters of output position
// (oy, ox); b is (F, OH, OW), one bias per filter and position, or undefined; y is (N, F, OH, OW).
// Backward entry points write dx = beta*dx + ..., dw = beta*dw + ..., db = beta*db + ...
#pragma once

#include "core/tensor.h"
#include "ops/conv.h"

namespace convnet {

// The geometry from x, w and y (checks that w holds one filter bank per output position).
ConvGeometry local_geometry(const Tensor& x, const Tensor& w, const Tensor& y, int stride_h,
                            int stride_w, int pad_h, int pad_w, int groups, const char* op);

void local_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                   const ConvGeometry& g);
// Any of dx, dw, db may be undefined to skip that gradient.
void local_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                    const Tensor& dw, const Tensor& db, const ConvGeometry& g, float beta = 0.f);

template <typename T>
void local_forward_cpu(const T* x, const T* w, const T* b, T* y, const ConvGeometry& g);
template <typename T>
void local_backward_cpu(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                        const ConvGeometry& g, T beta);

// CUDA launchers (kernels/local.cu): float32 device pointers in the layouts above, on `stream`;
// always FP32 (the math precision setting does not apply). dx, dw, db, b may be null.
void local_forward_cuda(const float* x, const float* w, const float* b, float* y,
                        const ConvGeometry& g, void* stream);
void local_backward_cuda(const float* x, const float* w, const float* dy, float* dx, float* dw,
                         float* db, const ConvGeometry& g, float beta, void* stream);

}  // namespace convnet
