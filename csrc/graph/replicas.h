// The gradient sum of cuda-convnet2's replicated layers (src/convnet/replicas.py builds one layer
// graph per replica; each runs forward and backward on its part of the batch).
#pragma once

#include <string>
#include <vector>

#include "graph/net.h"

namespace convnet {

// Every graph's gradient of every parameter that trains becomes sum_r shares[r] * grad_r, the
// whole batch's mean gradient: summed on each device first (graphs in order), then across the
// devices (sum_across_devices: NCCL on GPUs, else host memory), then copied to the other graphs
// on each device. shares[r] = 0: graph r did not run (its part was empty) and adds nothing.
// Returns how the cross-device sums went: "nccl" if any went through NCCL, else "host" if any
// went through host memory, else "local" (every parameter's graphs on one device).
std::string sum_replica_gradients(const std::vector<Net*>& graphs,
                                  const std::vector<double>& shares);

}  // namespace convnet
