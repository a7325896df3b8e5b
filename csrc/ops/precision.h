// The arithmetic the matrix-product ops (conv, fc, local) use on the GPU: plain FP32 on the CUDA
// cores, or the tensor cores with TF32 or BF16 inputs and FP32 accumulation (sm_80 and newer; on
// older GPUs a tensor-core request runs the FP32 path). One process-wide setting, FP32 by default
// so that training keeps FP32-level accuracy unless asked otherwise. The CPU path ignores it.
#pragma once

#include <string>

namespace convnet {

enum class MathPrecision { fp32, tf32, bf16 };

// "fp32" | "tf32" | "bf16"; throws ArgumentError otherwise.
MathPrecision math_precision_from_name(const std::string& name);
const char* math_precision_name(MathPrecision precision);

// The process-wide precision the CUDA ops read at each call (thread-safe).
void set_math_precision(MathPrecision precision);
MathPrecision current_math_precision();

}  // namespace convnet
