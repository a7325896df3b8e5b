// Helpers for the files built with -mavx512f (*_avx512.cpp), with internal linkage. Those files
// include no header whose inline functions they would instantiate (std::min, std::max, ...): an
// instantiation compiled there for AVX-512 could be the copy the linker keeps for the whole
// library, and crash it on a CPU without AVX-512. What they need is here, in an unnamed
// namespace, so that each such file has its own copy.
#pragma once

#include <cstdint>

namespace {
inline std::int64_t smaller(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
inline std::int64_t larger(std::int64_t a, std::int64_t b) { return a > b ? a : b; }
constexpr float kMinusInfinity = -__builtin_inff();
}  // namespace
