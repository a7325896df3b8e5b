// The CUDA-free facade of the C++ core that the binding files (bindings.cpp, bindings/) include:
// plain C++ over convnet::Tensor; no Python, no CUDA types.
#pragma once

#include "core/allocator.h"
#include "core/check.h"
#include "core/device.h"
#include "core/tensor.h"
#include "graph/net.h"
#include "ops/bias.h"
#include "ops/concat.h"
#include "ops/conv.h"
#include "ops/dropout.h"
#include "ops/eltwise.h"
#include "ops/fc.h"
#include "ops/local.h"
#include "ops/lrn.h"
#include "ops/neuron.h"
#include "ops/pool.h"
#include "ops/rnorm.h"
#include "ops/sgd.h"
#include "ops/softmax.h"

namespace convnet {

// Threads of the CPU path: OpenMP loops and OpenBLAS together.
int get_num_threads();
void set_num_threads(int n);

}  // namespace convnet
