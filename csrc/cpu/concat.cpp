// Concatenation on the CPU: row-by-row copies between the parts and the whole.
#include "ops/concat.h"

#include <cstring>

namespace convnet {

template <typename T>
void concat_copy_cpu(const std::vector<T*>& parts, const std::vector<std::int64_t>& widths,
                     T* whole, std::int64_t n, bool to_whole, T beta) {
    std::int64_t total = 0;
    for (auto w : widths) total += w;
#pragma omp parallel for schedule(static) if (n * total > (1 << 16))
    for (std::int64_t row = 0; row < n; ++row) {
        std::int64_t offset = row * total;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            T* part = parts[i] + row * widths[i];
            T* slice = whole + offset;
            if (to_whole)
                std::memcpy(slice, part, widths[i] * sizeof(T));
            else if (beta == T(0))
                std::memcpy(part, slice, widths[i] * sizeof(T));
            else
                for (std::int64_t j = 0; j < widths[i]; ++j) part[j] = beta * part[j] + slice[j];
            offset += widths[i];
        }
    }
}

template void concat_copy_cpu<float>(const std::vector<float*>&, const std::vector<std::int64_t>&,
                                     float*, std::int64_t, bool, float);
template void concat_copy_cpu<double>(const std::vector<double*>&,
                                      const std::vector<std::int64_t>&, double*, std::int64_t,
                                      bool, double);

}  // namespace convnet
