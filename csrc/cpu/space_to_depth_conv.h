// A strided convolution with few input channels (AlexNet's conv1: 3 channels, 11x11, stride 4)
// run as a stride-1 one on the direct path (direct_conv.h). Space-to-depth deals each s x s block
// of the (zero-padded) image into s^2 channels: x (C, H, W) becomes x2 (C*s^2, H2, W2), the
// kernel (F, C, KH, KW) becomes w2 (F, C*s^2, ceil(KH/s), ceil(KW/s)) with zeros where
// KH, KW do not fill the blocks, and y = conv(x, w, stride s, pad p) = conv(x2, w2, stride 1).
// The direct path pays for the zero taps (132 per channel instead of 121 for 11x11 in blocks of
// 4: the block rows wholly past the kernel are left out, the columns are not) and one pass over
// x, and still beats im2col + GEMM on AlexNet's conv1 at batch 32 (2-core AVX-512 Xeon,
// 2026-12-06): forward 43.5 -> 38.8 ms, filter gradient 49 -> 36 ms. Not the data gradient: the
// direct path's is no faster there (45.8 ms against 45.3 on a 2-core AMD EPYC, 2026-12-06, with
// the blocks dealt back), and training never needs the data gradient of a first layer.
#pragma once

#include "ops/conv.h"

namespace convnet::space_to_depth {

// Whether each direction of this float32 geometry takes this route: stride s > 1 on both axes,
// one group, fewer than 16 input channels and C*s^2 <= 64, kernels at least s wide, and the
// stride-1 geometry taken by the direct path in that direction.
bool use_forward(const ConvGeometry& g);
bool use_backward_filter(const ConvGeometry& g);

// The same contracts as direct_conv's (ops/conv.h): neuron applied per image, beta accumulation.
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g,
             const NeuronParams* neuron, const ImageHook* after_image);
void backward_filter(const float* x, const float* dy, float* dw, float* db, const ConvGeometry& g,
                     float beta);

}  // namespace convnet::space_to_depth
