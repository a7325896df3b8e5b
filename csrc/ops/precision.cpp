// The process-wide math precision of the GPU matrix-product ops.
#include "ops/precision.h"

#include <atomic>

#include "core/check.h"

namespace convnet {

namespace {
std::atomic<MathPrecision> g_precision{MathPrecision::fp32};
}  // namespace

MathPrecision math_precision_from_name(const std::string& name) {
    if (name == "fp32") return MathPrecision::fp32;
    if (name == "tf32") return MathPrecision::tf32;
    if (name == "bf16") return MathPrecision::bf16;
    throw ArgumentError("math precision must be 'fp32', 'tf32' or 'bf16', got '" + name + "'");
}

const char* math_precision_name(MathPrecision precision) {
    switch (precision) {
        case MathPrecision::tf32: return "tf32";
        case MathPrecision::bf16: return "bf16";
        default: return "fp32";
    }
}

void set_math_precision(MathPrecision precision) { g_precision.store(precision); }

MathPrecision current_math_precision() { return g_precision.load(); }

}  // namespace convnet
