// SGD update dispatch.
#include "ops/sgd.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;

void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& v, const SgdParams& p) {
    const char* op = "sgd_update";
    expect(w, op, "w", w.dtype(), w.device());
    ops_detail::expect_like(w, op, {{&grad, "grad"}, {&v, "v"}});
    ops_detail::run_on_device(
        op, w,
        CONVNET_CPU(sgd_update_cpu<T>(w.data<T>(), grad.data<T>(), v.data<T>(), w.numel(), p)),
        CONVNET_CUDA(sgd_update_cuda(w.data<float>(), grad.data<float>(), v.data<float>(),
                                     w.numel(), p, nullptr)));
}

}  // namespace convnet
