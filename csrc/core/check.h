// Errors and argument checks. Everything below the bindings reports failure by throwing
// convnet::Error (or ArgumentError for a bad argument, which Python sees as ValueError);
// nothing calls exit() or abort().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace convnet {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A caller passed something the op cannot take (shape, hyper-parameter, device).
class ArgumentError : public Error {
public:
    explicit ArgumentError(const std::string& what) : Error(what) {}
};

// Shapes that do not fit together in a net (Python: convnet.ShapeError, a ValueError).
class ShapeError : public ArgumentError {
public:
    explicit ShapeError(const std::string& what) : ArgumentError(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
    std::ostringstream s;
    (s << ... << args);
    return s.str();
}
}  // namespace detail

}  // namespace convnet

// CONVNET_ARG_CHECK(cond, "op: x must ...", value): throws ArgumentError with the concatenation.
#define CONVNET_ARG_CHECK(cond, ...)                                                   \
    do {                                                                               \
        if (!(cond)) throw ::convnet::ArgumentError(::convnet::detail::concat(__VA_ARGS__)); \
    } while (0)

// CONVNET_CHECK(cond, ...): an internal invariant; the message carries file and line.
#define CONVNET_CHECK(cond, ...)                                                       \
    do {                                                                               \
        if (!(cond))                                                                   \
            throw ::convnet::Error(::convnet::detail::concat(__FILE__, ":", __LINE__, ": ", \
                                                             __VA_ARGS__));            \
    } while (0)
