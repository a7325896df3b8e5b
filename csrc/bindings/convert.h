// Conversions the binding files share: numpy arrays to and from tensors (the net's batches, its
// parameters and Tensor.from_numpy), and optional tensors (None) to undefined ones.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <vector>

#include "api.h"

namespace convnet::bindings {

// A CPU tensor over a numpy array's memory (no copy); the caller keeps the array alive during the
// call. Checks what memory safety needs: float32/float64, C-contiguous, writeable if written.
Tensor borrow(const pybind11::array& a, const char* op, const char* name, bool writeable = false);
std::vector<Tensor> borrow_list(const std::vector<pybind11::array>& arrays, const char* op,
                                const char* name);

// A numpy view of a CPU tensor that keeps its storage alive.
pybind11::array tensor_to_numpy(const Tensor& t);

// None (an input or gradient the op skips) as the undefined tensor the ops expect.
inline Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

}  // namespace convnet::bindings
