// Direct convolution on the CPU for stride-1 layers: no im2col matrix and no GEMM packing. The
// small images of the CIFAR-10 and MNIST nets make per-image GEMMs skinny (32 or 64 filters by a
// few hundred positions), where OpenBLAS runs at half its rate and im2col plus packing cost as
// much again; here each image is padded once and vector registers accumulate a tile of outputs
// for 16 or 32 output channels over all input channels and taps (direct_conv_avx512.cpp).
// Backward-data is the same forward loop over the zero-padded output gradient with the kernel
// flipped and its channel axes swapped. Used where the CPU has AVX-512F, the layer fits (below)
// and the batch gives every thread an image (AlexNet's fatter layers too: it beats im2col + GEMM
// there as well); everything else stays on im2col + GEMM (conv.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "ops/conv.h"

namespace convnet::direct_conv {

// Which CPU convolution runs: "auto" (direct where it fits, the default), "gemm" (always im2col
// + GEMM) or "direct" (direct wherever it fits, whatever the batch). Tests pin each in turn.
void set_algorithm(const std::string& name);
std::string algorithm();
// Whether this CPU runs the direct kernels at all.
bool cpu_supported();
// How many forward, backward-data and backward-filter calls took the direct path so far: the
// tests' proof that their shapes exercised it.
std::int64_t calls();

// Whether each direction takes the direct path for this geometry and batch.
bool use_forward(const ConvGeometry& g);
bool use_backward_data(const ConvGeometry& g);
bool use_backward_filter(const ConvGeometry& g);
// The data gradient of a first layer on RGB images (one group of 3 channels), by tiles of rows
// rather than channels.
bool use_thin_backward_data(const ConvGeometry& g);

// neuron (optional) is applied to each image's output once it is complete (ops/conv.h).
// short_from (forward and filter gradient, one group): the channels from this one on have all
// zero weights in their last kernel row, which is left out (their filter gradient there is
// not computed: dw holds zeros); -1: none.
void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g,
             const NeuronParams* neuron = nullptr, const ImageHook* after_image = nullptr,
             std::int64_t short_from = -1);
// x and x_neuron (optional): x is the output of that neuron, and dx becomes the gradient of its
// input (ops/conv.h), image by image.
void backward_data(const float* w, const float* dy, float* dx, const ConvGeometry& g, float beta,
                   const float* x = nullptr, const NeuronParams* x_neuron = nullptr);
// dw and db may be null (that gradient is skipped).
void backward_filter(const float* x, const float* dy, float* dw, float* db, const ConvGeometry& g,
                     float beta, std::int64_t short_from = -1);
// backward_data's contract, for use_thin_backward_data's layers.
void thin_backward_data(const float* w, const float* dy, float* dx, const ConvGeometry& g,
                        float beta, const float* x = nullptr,
                        const NeuronParams* x_neuron = nullptr);

}  // namespace convnet::direct_conv
