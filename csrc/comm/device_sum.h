// Sums of tensors that live on different devices, for the gradients of replicated layers.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace convnet {

// parts[k]: one tensor per device (distinct devices, same shape and dtype). Every part ends
// holding the sum of all, in list order: on GPUs with NCCL through one all-reduce over the
// devices (communicators made once per device set and kept), otherwise through host memory.
// Returns the path: "nccl", "host", or "local" for a single part.
std::string sum_across_devices(const std::vector<Tensor>& parts);

}  // namespace convnet
