// The replicated layers' gradient sum (replicas.h).
#include "graph/replicas.h"

#include "comm/device_sum.h"
#include "core/check.h"
#include "ops/eltwise.h"

namespace convnet {

std::string sum_replica_gradients(const std::vector<Net*>& graphs,
                                  const std::vector<double>& shares) {
    CONVNET_ARG_CHECK(!graphs.empty() && graphs.size() == shares.size(),
                      "sum_replica_gradients: one share per graph");
    std::string path = "local";
    const Net& first = *graphs[0];
    for (int i = 0; i < first.size(); ++i) {
        if (!graphs[0]->layer(i).trains()) continue;
        for (std::size_t j = 0; j < graphs[0]->layer(i).params().size(); ++j) {
            // Graphs by the device that holds this parameter, in order of first appearance.
            std::vector<Device> devices;
            std::vector<std::vector<std::size_t>> on;  // graphs on devices[k]
            for (std::size_t r = 0; r < graphs.size(); ++r) {
                const Device d = graphs[r]->layer(i).params().at(j).grad.device();
                std::size_t k = 0;
                while (k < devices.size() && devices[k] != d) ++k;
                if (k == devices.size()) devices.push_back(d), on.emplace_back();
                on[k].push_back(r);
            }
            std::vector<Tensor> parts;
            for (const auto& graphs_here : on) {
                std::vector<Tensor> grads;
                std::vector<double> coeffs;
                for (std::size_t r : graphs_here) {
                    if (shares[r] == 0.0) continue;
                    grads.push_back(graphs[r]->layer(i).params().at(j).grad);
                    coeffs.push_back(shares[r]);
                }
                const Tensor& target = graphs[graphs_here[0]]->layer(i).params().at(j).grad;
                if (grads.empty())   // no graph here ran: this device adds nothing
                    target.copy_from(Tensor::zeros(target.shape(), target.dtype(), Device::cpu()));
                else
                    eltsum_forward(grads, coeffs, target);
                parts.push_back(target);
            }
            const std::string here = sum_across_devices(parts);
            if (here != "local" && path != "nccl") path = here;
            for (std::size_t k = 0; k < on.size(); ++k)
                for (std::size_t n = 1; n < on[k].size(); ++n)
                    graphs[on[k][n]]->layer(i).params().at(j).grad.copy_from(parts[k]);
        }
    }
    return path;
}

}  // namespace convnet
