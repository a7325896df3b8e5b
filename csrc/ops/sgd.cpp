// SGD update dispatch.
#include "ops/sgd.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;

void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& v, const SgdParams& p) {
    const char* op = "sgd_update";
    expect(w, op, "w", w.dtype(), w.device());
    ops_detail::expect_like(w, op, {{&grad, "grad"}, {&v, "v"}});
    if (w.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(w.dtype() == DType::f32, op, ": the GPU path takes float32");
        sgd_update_cuda(w.data<float>(), grad.data<float>(), v.data<float>(), w.numel(), p,
                        nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(w.dtype(), [&](auto tag) {
        using T = decltype(tag);
        sgd_update_cpu<T>(w.data<T>(), grad.data<T>(), v.data<T>(), w.numel(), p);
    });
}

}  // namespace convnet
