// Kernel launches on the emulated device: CONVNET_LAUNCH (kernels/common.cuh) builds a Launch,
// whose call runs every thread of every block of the grid on the CPU before it returns (the
// emulated streams are synchronous). Dynamic shared memory is a per-block buffer filled with
// signalling NaNs, so a read before any write shows up as NaN.
#pragma once

#include <cstddef>
#include <type_traits>

namespace convnet::emu {

struct LaunchConfig {
    dim3 grid, block;
    std::size_t shared_bytes = 0;
    const char* kernel = "";     // its source text, for errors
    const void* function = nullptr;  // what cudaFuncSetAttribute names it by
    cudaStream_t stream = nullptr;
};

// Runs thread_body(context) once per thread of every block, with threadIdx & co. set; blocks in
// parallel. Throws convnet::Error naming the kernel for a bad configuration or misuse.
void run_grid(const LaunchConfig& config, void (*thread_body)(const void*), const void* context);
// The current block's dynamic shared memory.
void* dynamic_shared();
// A kernel's pointer argument must be null or point into (or just past) a live device block of
// the current device; throws convnet::Error naming the kernel and the argument otherwise.
void check_pointer_argument(const char* kernel, int position, const void* pointer);

template <typename... Params>
class Launch {
public:
    Launch(dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream, const char* name,
           void (*kernel)(Params...))
        : config_{grid, block, shared_bytes, name, reinterpret_cast<const void*>(kernel), stream},
          kernel_(kernel) {}

    template <typename... Args>
    void operator()(Args&&... args) const {
        int position = 0;
        (check_argument(position++, args), ...);
        // Each thread gets its own copy of the arguments, as kernel parameters are by value. The
        // copying reads the launcher's stack, which the access checks must not see.
        const auto body = [&]() __attribute__((no_sanitize("thread"))) { kernel_(args...); };
        run_grid(config_, &call<decltype(body)>, &body);
    }

private:
    template <typename Body>
    __attribute__((no_sanitize("thread"))) static void call(const void* body) {
        (*static_cast<const Body*>(body))();
    }

    template <typename T>
    void check_argument(int position, const T& value) const {
        if constexpr (std::is_pointer_v<T>)
            check_pointer_argument(config_.kernel, position, static_cast<const void*>(value));
    }

    LaunchConfig config_;
    void (*kernel_)(Params...);
};

}  // namespace convnet::emu

#define CONVNET_EMU_LAUNCH(grid, block, shared_bytes, stream, ...) \
    ::convnet::emu::Launch(grid, block, shared_bytes, stream, #__VA_ARGS__, __VA_ARGS__)
#define CONVNET_EMU_DYNAMIC_SHARED(type, name) \
    type* name = static_cast<type*>(::convnet::emu::dynamic_shared())
