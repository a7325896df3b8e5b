// SGD update on the CPU: one fused, threaded pass over w, grad and v.
#include "ops/sgd.h"

namespace convnet {

template <typename T>
void sgd_update_cpu(T* w, const T* grad, T* v, std::int64_t n, const SgdParams& p) {
    const T mom = T(p.mom), eps = T(p.eps), decay = T(p.wc * p.eps);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) {
        const T vi = mom * v[i] - decay * w[i] - eps * grad[i];
        v[i] = vi;
        w[i] += vi;
    }
}

template void sgd_update_cpu<float>(float*, const float*, float*, std::int64_t, const SgdParams&);
template void sgd_update_cpu<double>(double*, const double*, double*, std::int64_t,
                                     const SgdParams&);

}  // namespace convnet
