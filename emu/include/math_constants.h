// Stands in for the CUDA toolkit's math_constants.h on the emulated device (CONVNET_CUDA=EMU).
#pragma once

#include <limits>

#define CUDART_INF_F (std::numeric_limits<float>::infinity())
#define CUDART_NAN_F (std::numeric_limits<float>::quiet_NaN())
