// register_builtin_layers(): every layer type this build runs, keyed by the cfg's type= string.
#include "layers/layer.h"

namespace convnet {

std::unique_ptr<Layer> make_data_layer(const LayerConfig&);
std::unique_ptr<Layer> make_conv_layer(const LayerConfig&);
std::unique_ptr<Layer> make_local_layer(const LayerConfig&);
std::unique_ptr<Layer> make_fc_layer(const LayerConfig&);
std::unique_ptr<Layer> make_pool_layer(const LayerConfig&);
std::unique_ptr<Layer> make_norm_layer(const LayerConfig&);
std::unique_ptr<Layer> make_neuron_layer(const LayerConfig&);
std::unique_ptr<Layer> make_softmax_layer(const LayerConfig&);
std::unique_ptr<Layer> make_combine_layer(const LayerConfig&);
std::unique_ptr<Layer> make_dropout_layer(const LayerConfig&);
std::unique_ptr<Layer> make_logreg_layer(const LayerConfig&);
std::unique_ptr<Layer> make_sum2_layer(const LayerConfig&);

void register_builtin_layers() {
    register_layer("data", make_data_layer);
    register_layer("conv", make_conv_layer);
    register_layer("local", make_local_layer);
    register_layer("fc", make_fc_layer);
    register_layer("pool", make_pool_layer);
    register_layer("cmrnorm", make_norm_layer);
    register_layer("rnorm", make_norm_layer);
    register_layer("cnorm", make_norm_layer);
    register_layer("neuron", make_neuron_layer);
    register_layer("softmax", make_softmax_layer);
    register_layer("eltsum", make_combine_layer);
    register_layer("eltmax", make_combine_layer);
    register_layer("concat", make_combine_layer);
    register_layer("dropout", make_dropout_layer);
    register_layer("dropout2", make_dropout_layer);
    register_layer("hs", make_dropout_layer);
    register_layer("cost.logreg", make_logreg_layer);
    register_layer("cost.sum2", make_sum2_layer);
}

}  // namespace convnet
